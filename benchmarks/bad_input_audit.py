"""A hostile audit of detinit's public boundaries: bad inputs of every class, each expected to end in a clean
error (a ValueError/TypeError raised by detinit that names what was wrong) and never in a raw traceback from
deep inside (torch, numpy, Python) or a silent accept.

Three groups: the Python API (models, fills, schemes, ``initialize``, ``detinit.nn``, the diagnostics, the
symmetry mechanisms, the data readers, study files), the command line (each case a fresh ``detinit``
process: a clean error is a non-zero exit whose stderr holds no traceback and names the culprit), and run
directories (damaged, foreign or edited runs and studies: refused naming the file, or repaired with a
warning, never a lost or duplicated record). Prints a table per group and every case that is not clean.

    python benchmarks/bad_input_audit.py                 # all groups (about 4 minutes on 2 cores)
    python benchmarks/bad_input_audit.py --groups api    # one group

Each case is (what, expected words, callable); "expected words": one of them must appear in the message
(case-insensitive), so a message that does not name the culprit counts as unhelpful.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import detinit  # noqa: E402
from detinit import diagnostics as dg  # noqa: E402
from detinit import init as di  # noqa: E402
from detinit import nn as dnn  # noqa: E402
from detinit.data import load_dataset, read_idx, sample_batch, text_dataset, write_idx  # noqa: E402
from detinit.data.loader import Batches  # noqa: E402
from detinit.experiments import parse_study  # noqa: E402
from detinit.models import create_model  # noqa: E402
from detinit.symmetry import breaking, make_mechanism  # noqa: E402

Case = tuple[str, tuple[str, ...], Callable[[], object]]
OURS = os.sep + "detinit" + os.sep
TORCH = "@torch"  # in a case's words: torch's own error is the answer (detinit says where and why)


def classify(run: Callable[[], object], words: tuple[str, ...]) -> tuple[str, str]:
    """``("clean" | "torch" | "raw" | "unnamed" | "silent", message)`` for one API case: "clean" is an error
    detinit raised (a ValueError, a TypeError or one of detinit's own error classes) naming the culprit; "torch"
    one that torch raised on purpose-checked ground (``TORCH`` in the words: a case detinit leaves to torch, said
    why where it does), naming it."""
    try:
        result = run()
    except Exception as err:  # noqa: BLE001 - classifying every exception is the point
        raiser = traceback.extract_tb(err.__traceback__)[-1].filename
        message = f"{type(err).__name__}: {err}".splitlines()[0][:220]
        named = any(word.lower() in str(err).lower() for word in words if word != TORCH)
        if TORCH in words and OURS not in raiser and named:
            return "torch", message
        ours = isinstance(err, (ValueError, TypeError)) or type(err).__module__.startswith("detinit")
        if not ours or OURS not in raiser:
            return "raw", f"{message}  [raised in {Path(raiser).name}]"
        if not any(word.lower() in str(err).lower() for word in words):
            return "unnamed", message
        return "clean", message
    if isinstance(result, str) and result.startswith("refused:"):  # a case that checks an outcome, not an error
        return "clean", result
    return "silent", "accepted"


# --------------------------------------------------------------------------- the API
def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def api_cases(tmp: Path) -> list[Case]:
    x4 = torch.randn(2, 4)
    conv_net = create_model("resnet20", num_classes=10, in_chans=1)
    images = torch.randn(4, 1, 28, 28)
    cases: list[Case] = [
        # detinit.nn
        ("HadamardTransform(0)", ("channels",), lambda: dnn.HadamardTransform(0)),
        ("HadamardTransform(12.0)", ("channels",), lambda: dnn.HadamardTransform(12.0)),
        ("HadamardTransform('8')", ("channels",), lambda: dnn.HadamardTransform("8")),
        ("HadamardTransform(8) on 4 channels", ("channel", "8", "4"), lambda: dnn.HadamardTransform(8)(x4)),
        ("ChannelPad(8, 4): fewer out", ("out_channels",), lambda: dnn.ChannelPad(8, 4)),
        ("ChannelPad(4, 8, stride=0)", ("stride",), lambda: dnn.ChannelPad(4, 8, stride=0)),
        (
            "ChannelPad(4, 8) on 5 channels",
            ("channel", "4", "5"),
            lambda: dnn.ChannelPad(4, 8)(torch.randn(2, 5, 4, 4)),
        ),
        ("fwht(dim=5) of a 2-D tensor", ("dim",), lambda: dnn.fwht(x4, dim=5)),
        ("fwht of an int tensor", ("dtype", "floating"), lambda: dnn.fwht(torch.ones(2, 4, dtype=torch.long))),
        ("power_of_two_blocks(0)", ("n",), lambda: dnn.power_of_two_blocks(0)),
        ("power_of_two_blocks(2.5)", ("n",), lambda: dnn.power_of_two_blocks(2.5)),
        ("make_relu('leaky')", ("kind", "leaky"), lambda: dnn.make_relu("leaky")),
        (
            "cross_entropy with a class out of range",
            ("target", "5", TORCH),  # detinit.nn.cross_entropy: a range check would synchronise a GPU
            lambda: dnn.cross_entropy(torch.randn(2, 3), torch.tensor([0, 5])),
        ),
        (
            "cross_entropy batch mismatch",
            ("target", "shape", "batch"),
            lambda: dnn.cross_entropy(torch.randn(2, 3), torch.tensor([0, 1, 2])),
        ),
        (
            "flatten_predictions 1-D logits",
            ("logits",),
            lambda: dnn.flatten_predictions(torch.randn(3), torch.tensor([0])),
        ),
        # diagnostics
        ("effective_rank of a vector", ("matrix", "2-d", "dim"), lambda: dg.effective_rank(torch.randn(3))),
        ("stable_rank of a 0x3 matrix", ("matrix", "empty"), lambda: dg.stable_rank(torch.zeros(0, 3))),
        ("numerical_rank tol=-1", ("tol",), lambda: dg.numerical_rank(torch.eye(3), tol=-1.0)),
        ("numerical_rank tol=nan", ("tol",), lambda: dg.numerical_rank(torch.eye(3), tol=math.nan)),
        (
            "mean_row_correlation rows='sideways'",
            ("rows",),
            lambda: dg.mean_row_correlation(torch.randn(4, 4), rows="sideways"),
        ),
        (
            "mean_row_correlation max_rows=0",
            ("max_rows",),
            lambda: dg.mean_row_correlation(torch.randn(4, 4), max_rows=0),
        ),
        (
            "feature_diversity at='nowhere'",
            ("at", "nowhere"),
            lambda: dg.feature_diversity(conv_net, images, at="nowhere"),
        ),
        ("dead_channels rtol=-1", ("rtol",), lambda: dg.dead_channels(conv_net, images, rtol=-1.0)),
        ("dead_channels channel_dim=7", ("channel_dim",), lambda: dg.dead_channels(conv_net, images, channel_dim=7)),
        (
            "signal_propagation with 3-channel images into a 1-channel net",
            ("input", "shape", "channels"),
            lambda: dg.signal_propagation(conv_net, torch.randn(2, 3, 28, 28)),
        ),
        (
            "gradient_at_init steps=0",
            ("steps",),
            lambda: dg.gradient_at_init(conv_net, images, torch.zeros(4, dtype=torch.long), steps=0),
        ),
        (
            "gradient_at_init lr=nan",
            ("lr",),
            lambda: dg.gradient_at_init(conv_net, images, torch.zeros(4, dtype=torch.long), lr=math.nan),
        ),
        (
            "gradient_at_init targets of another batch",
            ("targets", "batch", "shape"),
            lambda: dg.gradient_at_init(conv_net, images, torch.zeros(3, dtype=torch.long)),
        ),
        (
            "jacobian_singular_values num_steps=0",
            ("num_steps",),
            lambda: dg.jacobian_singular_values(mlp(), torch.randn(1, 8), num_steps=0),
        ),
        (
            "zero_start_promises tolerance=-1",
            ("tolerance",),
            lambda: dg.zero_start_promises(mlp(), torch.randn(2, 8), tolerance=-1.0),
        ),
        ("rank_table tol=-1", ("tol",), lambda: dg.rank_table(mlp(), tol=-1.0)),
        (
            "channel_stats channel_dim=3 of 2-D",
            ("channel_dim",),
            lambda: dg.channel_stats(torch.randn(4, 4), channel_dim=3),
        ),
        (
            "participation_ratio of an empty batch",
            ("empty", "batch", "y"),
            lambda: dg.participation_ratio(torch.zeros(0, 4)),
        ),
        ("check_zero_one mode='exact'", ("mode",), lambda: di.check_zero_one(mlp(), mode="exact")),
        ("weight_symmetry max_rows=-1", ("max_rows",), lambda: dg.weight_symmetry(mlp(), max_rows=-1)),
        # symmetry mechanisms
        ("make_mechanism('atomics')", ("atomics", "mechanism"), lambda: make_mechanism("atomics")),
        ("make_mechanism dropout p=1.5", ("p",), lambda: make_mechanism("dropout", p=1.5)),
        ("make_mechanism weight_noise s=-1", ("s",), lambda: make_mechanism("weight_noise", s=-1.0)),
        (
            "make_mechanism activation_noise sigma='big'",
            ("sigma",),
            lambda: make_mechanism("activation_noise", sigma="big"),
        ),
        ("make_mechanism seed=-1", ("seed",), lambda: make_mechanism("dropout", seed=-1)),
        ("make_mechanism layers='conv1' (a str)", ("layers",), lambda: make_mechanism("dropout", layers="conv1")),
        (
            "mechanism attached to layers that do not exist",
            ("layers", "nonexistent"),
            lambda: make_mechanism("dropout", layers=["nonexistent"]).attach(mlp()),
        ),
        (
            "breaking('rounding') on a model without branches",
            ("branch", "layers"),
            lambda: breaking("activation_noise", mlp()).__enter__(),
        ),
        # data
        ("read_idx of a missing file", ("missing", "exist", "nope.idx"), lambda: read_idx(tmp / "nope.idx")),
        ("read_idx of an empty file", ("empty.idx",), lambda: read_idx(_write(tmp / "empty.idx", b""))),
        (
            "read_idx of a bad magic",
            ("bad.idx", "magic"),
            lambda: read_idx(_write(tmp / "bad.idx", b"\x01\x02\x03\x04" + b"\0" * 8)),
        ),
        (
            "read_idx of a truncated payload",
            ("short.idx", "bytes", "truncated"),
            lambda: read_idx(_write(tmp / "short.idx", b"\0\0\x08\x01\0\0\0\x10" + b"\0" * 4)),
        ),
        ("read_idx of a folder", ("folder", "directory", str(tmp.name)), lambda: read_idx(tmp)),
        (
            "write_idx of a complex array",
            ("dtype", "complex"),
            lambda: write_idx(tmp / "c.idx", np.zeros(3, np.complex64)),
        ),
        ("load_dataset subset=-3", ("subset",), lambda: load_dataset("synthetic", subset=-3)),
        ("load_dataset subset=2.5", ("subset",), lambda: load_dataset("synthetic", subset=2.5)),
        ("load_dataset seed='x'", ("seed",), lambda: load_dataset("synthetic", seed="x")),
        ("synthetic num_classes=0", ("num_classes",), lambda: load_dataset("synthetic", num_classes=0)),
        (
            "cifar10 from a missing root",
            ("cifar", str(tmp / "none")),
            lambda: load_dataset("cifar10", root=tmp / "none"),
        ),
        ("cifar10 batch with wrong keys", ("cifar", "data_batch", "labels", "key"), lambda: _bad_cifar(tmp)),
        ("text_dataset of empty text", ("text", "empty"), lambda: text_dataset("", "train")),
        ("text_dataset context=0", ("context",), lambda: text_dataset("hello world " * 50, "train", context=0)),
        (
            "text_dataset val_fraction=1.5",
            ("val_fraction",),
            lambda: text_dataset("hello world " * 50, "train", val_fraction=1.5),
        ),
        (
            "text_dataset tokenizer='bpe'",
            ("tokenizer",),
            lambda: text_dataset("hello world " * 50, "train", tokenizer="bpe"),
        ),
        (
            "text_dataset shorter than one window",
            ("context", "short", "window"),
            lambda: text_dataset("abc", "train", context=64),
        ),
        ("Batches batch_size=0", ("batch_size",), lambda: Batches(load_dataset("synthetic", num_examples=8), 0)),
        ("sample_batch('nope')", ("nope", "data"), lambda: sample_batch("nope", 4, tokens=False)),
        ("sample_batch n=0", ("n",), lambda: sample_batch("synthetic", 0, tokens=False)),
        # study files
        ("parse_study of {}", ("base", "variants"), lambda: parse_study({})),
        ("study variants a mapping", ("variants",), lambda: parse_study({"name": "s", "variants": {"a": 1}})),
        ("study grid value not a list", ("grid", "seed"), lambda: parse_study({"name": "s", "grid": {"seed": 3}})),
        ("study grid value empty", ("grid", "seed"), lambda: parse_study({"name": "s", "grid": {"seed": []}})),
        ("study grid key unknown", ("lrr",), lambda: parse_study({"name": "s", "grid": {"lrr": [0.1]}})),
        (
            "study with two variants of one name",
            ("a", "twice", "duplicate", "same name"),
            lambda: parse_study({"name": "s", "variants": [{"name": "a"}, {"name": "a"}]}),
        ),
        ("study base a list", ("base",), lambda: parse_study({"name": "s", "base": [1]})),
        (
            "study group_by an unknown key",
            ("group_by", "colour"),
            lambda: parse_study({"name": "s", "base": {"lr": 0.1}, "group_by": ["colour"]}),
        ),
        ("study workers=0", ("workers",), lambda: parse_study({"name": "s", "base": {"lr": 0.1}}, workers=0)),
        ("study unknown top-level key", ("varients",), lambda: parse_study({"name": "s", "varients": []})),
        # init: new cases
        ("initialize scheme=42", ("scheme",), lambda: detinit.initialize(mlp(), 42)),
        (
            "initialize roles with a misspelt role",
            ("clasifier", "role"),
            lambda: detinit.initialize(mlp(), "zero", roles={"2": "clasifier"}),
        ),
        (
            "initialize roles naming no module",
            ("nonexistent",),
            lambda: detinit.initialize(mlp(), "zero", roles={"nonexistent": "classifier"}),
        ),
        (
            "initialize example_inputs of the wrong shape",
            ("example_inputs", "shape"),
            lambda: detinit.initialize(mlp(), "zero", example_inputs=torch.randn(2, 5)),
        ),
        (
            "initialize example_inputs a string",
            ("example_inputs",),
            lambda: detinit.initialize(mlp(), "zero", example_inputs="x"),
        ),
        ("initialize a non-module", ("model", "module"), lambda: detinit.initialize([nn.Linear(2, 2)], "zero")),
        ("get_scheme zero variant='papers'", ("variant", "papers"), lambda: di.get_scheme("zero", variant="papers")),
        ("get_scheme zero norm='l2'", ("norm", "l2"), lambda: di.get_scheme("zero", norm="l2")),
        ("get_scheme idinit tau=-1", ("tau",), lambda: di.get_scheme("idinit", tau=-1.0)),
        ("get_scheme constnet c=2", ("c",), lambda: di.get_scheme("constnet", c=2.0)),
        ("get_scheme gpt2 std=0", ("std",), lambda: di.get_scheme("gpt2", std=0.0)),
        ("get_scheme tfixup stack='both'", ("stack",), lambda: di.get_scheme("tfixup", stack="both")),
        ("zero_ groups=3 on 4 channels", ("groups", "3"), lambda: di.zero_(torch.empty(4, 4, 3, 3), groups=3)),
        ("zero_ columns='middle'", ("columns",), lambda: di.zero_(torch.empty(4, 4), columns="middle")),
        ("zero_ of a 1-D tensor", ("dim", "2", "shape"), lambda: di.zero_(torch.empty(4))),
        ("identity_ of a 0-D tensor", ("dim", "shape"), lambda: di.identity_(torch.tensor(1.0))),
        ("hadamard(3)", ("power of two", "3"), lambda: di.hadamard(3)),
        ("hadamard(0)", ("n",), lambda: di.hadamard(0)),
        ("hadamard_scale(0)", ("out_features",), lambda: di.hadamard_scale(0)),
        ("hadamard_scale norm='l1'", ("norm",), lambda: di.hadamard_scale(8, norm="l1")),
        ("zero_singular_values(0, 3)", ("out_features", "shape (0, 3)"), lambda: di.zero_singular_values(0, 3)),
        ("fans of a 1-D tensor", ("fan", "dim", "shape"), lambda: di.fans(torch.empty(4))),
        (
            "kaiming_normal_ without a generator",
            ("generator",),
            lambda: di.kaiming_normal_(torch.empty(3, 3), generator=None),
        ),
        (
            "kaiming_normal_ nonlinearity='swish'",
            ("nonlinearity", "swish"),
            lambda: di.kaiming_normal_(torch.empty(3, 3), generator=torch.Generator(), nonlinearity="swish"),
        ),
        (
            "orthogonal_ of a 1-D tensor",
            ("dim", "shape", "2"),
            lambda: di.orthogonal_(torch.empty(4), generator=torch.Generator()),
        ),
        ("create_model(42)", ("model", "42"), lambda: create_model(42)),
        ("create_model('resnet21')", ("resnet21",), lambda: create_model("resnet21")),
        ("create_model resnet20 norm='group'", ("norm", "group"), lambda: create_model("resnet20", norm="group")),
        # second batch, written after the first was fixed (a fresh look: see docs/bad_inputs.md)
        (
            "create_model vit image_size=30 patch=4",
            ("image_size", "patch"),
            lambda: create_model("vit", image_size=30, patch=4),
        ),
        ("create_model gpt width=100 heads=3", ("width", "heads"), lambda: create_model("gpt", width=100, heads=3)),
        ("create_model mnist_mlp hiden=8 (misspelt)", ("hiden", "hidden"), lambda: create_model("mnist_mlp", hiden=8)),
        ("initialize fixup on a plain MLP", ("fixup", "residual", "block"), lambda: detinit.initialize(mlp(), "fixup")),
        ("const_avg_ of a 4x0 matrix", ("shape", "zero-sized", "empty"), lambda: di.const_avg_(torch.empty(4, 0))),
        ("identity_ groups=2 on 3 channels", ("groups",), lambda: di.identity_(torch.empty(3, 3, 1, 1), groups=2)),
        (
            "partial_identity_ of a 6-D tensor",
            ("dim", "shape"),
            lambda: di.partial_identity_(torch.empty(2, 2, 2, 2, 2, 2)),
        ),
        ("hadamard(2**40)", ("n", "large", "memory"), lambda: di.hadamard(2**40)),
        (
            "HadamardTransform of an int tensor",
            ("dtype", "floating"),
            lambda: dnn.HadamardTransform(4)(torch.ones(2, 4, dtype=torch.long)),
        ),
        ("make_relu(3)", ("kind",), lambda: dnn.make_relu(3)),
        (
            "mnist IDX images and labels of other counts",
            ("labels", "images", "10", "9"),
            lambda: _mismatched_mnist(tmp),
        ),
        (
            "cifar10 root a file that is not an archive",
            ("cifar", "archive", "tar"),
            lambda: load_dataset("cifar10", root=_write(tmp / "x.tar.gz", b"no")),
        ),
        (
            "imagenet from an empty folder",
            ("imagenet", "train", "folder"),
            lambda: load_dataset("imagenet", root=_mkdir(tmp / "inet")),
        ),
        (
            "write_idx into a missing folder",
            ("nofolder",),
            lambda: write_idx(tmp / "nofolder" / "a.idx", np.zeros(3, np.uint8)),
        ),
        (
            "study grid of a bad hidden",
            ("hidden",),
            lambda: parse_study({"name": "s", "base": {"model": "mnist_mlp"}, "grid": {"model_args.hidden": [8, "x"]}}),
        ),
        (
            "study variant with an unknown key",
            ("lrr",),
            lambda: parse_study({"name": "s", "variants": [{"name": "a", "lrr": 0.1}]}),
        ),
        ("study out ''", ("out",), lambda: parse_study({"name": "s", "base": {"lr": 0.1}, "out": ""})),
        (
            "zero_start_promises on inputs of the wrong shape",
            ("input", "shape"),
            lambda: dg.zero_start_promises(mlp(), torch.randn(2, 5)),
        ),
        ("make_mechanism rounding scale=-1", ("scale",), lambda: make_mechanism("rounding", scale=-1.0)),
        (
            "TrainConfig diagnostics_every past the run",
            ("diagnostics_every",),
            lambda: _config(epochs=2, diagnostics_every=5),
        ),
        (
            "TrainConfig kaiming with variant=paper",
            ("variant",),
            lambda: _config(init="kaiming", init_options={"variant": "paper"}),
        ),
        ("TrainConfig model_args misspelt", ("hiden",), lambda: _config(model="mnist_mlp", model_args={"hiden": 8})),
        # third batch, written after the second was fixed
        (
            "initialize roles with a role that is not a str",
            ("role", "42"),
            lambda: detinit.initialize(mlp(), "zero", roles={"2": 42}),
        ),
        (
            "initialize device='cuda' without CUDA",
            ("cuda", "device"),
            lambda: detinit.initialize(mlp(), "zero", device="cuda"),
        ),
        ("initialize trace='yes'", ("trace",), lambda: detinit.initialize(mlp(), "zero", trace="yes")),
        (
            "create_model init_options norm='bogus'",
            ("norm", "bogus"),
            lambda: create_model("gpt", vocab_size=32, context=8, init="zero", init_options={"norm": "bogus"}),
        ),
        ("create_model device='tpu'", ("device", "tpu"), lambda: create_model("mnist_mlp", hidden=8, device="tpu")),
        ("check_zero_one of a string", ("model", "module"), lambda: di.check_zero_one("not a model")),
        (
            "signal_at_init targets of another batch",
            ("targets", "shape"),
            lambda: dg.signal_at_init(mlp(), torch.randn(4, 8), torch.zeros(3, dtype=torch.long)),
        ),
        (
            "measure_diagnostics of an empty probe",
            ("probe", "empty", "no values"),
            lambda: dg.measure_diagnostics(conv_net, torch.zeros(0, 1, 28, 28), 1),
        ),
        ("initial_weights of a string", ("model", "module"), lambda: dg.initial_weights("x")),
        ("fwht normalized=1", ("normalized",), lambda: dnn.fwht(torch.randn(2, 4), normalized=1)),
        ("kjv tokenizer='bpe'", ("tokenizer", "bpe"), lambda: load_dataset("kjv", tokenizer="bpe")),
        ("load_dataset split='TRAIN'", ("split",), lambda: load_dataset("synthetic", split="TRAIN")),
        (
            "Batches rank=2 of world_size=2",
            ("rank", "world_size"),
            lambda: Batches(load_dataset("synthetic", num_examples=8), 4, rank=2, world_size=2),
        ),
        (
            "study description not a str",
            ("description",),
            lambda: parse_study({"name": "s", "base": {"lr": 0.1}, "description": 5}),
        ),
        ("mechanism 'gpu' on a CPU model", ("gpu", "cpu", "cuda"), lambda: make_mechanism("gpu").attach(mlp())),
        ("random_crop_flip of a 3-D batch", ("shape", "4", "x"), lambda: dnn_crop(torch.randn(3, 8, 8))),
        ("to_float with a zero std", ("std",), lambda: _to_float_zero_std()),
        # fourth batch, written after the third was fixed
        ("get_scheme zero end_gain=-1", ("end_gain",), lambda: di.get_scheme("zero", end_gain=-1.0)),
        ("get_scheme zero depth_scale=0", ("depth_scale",), lambda: di.get_scheme("zero", depth_scale=0.0)),
        ("get_scheme idinit eps=nan", ("eps",), lambda: di.get_scheme("idinit", eps=math.nan)),
        (
            "jacobian_singular_values on inputs of the wrong width",
            ("input", "shape"),
            lambda: dg.jacobian_singular_values(mlp(), torch.randn(1, 5)),
        ),
        (
            "gradient_at_init loss_fn='mse'",
            ("loss_fn",),
            lambda: dg.gradient_at_init(mlp(), torch.randn(4, 8), torch.zeros(4, dtype=torch.long), loss_fn="mse"),
        ),
        (
            "zero_start_promises carries_output_zero a str",
            ("carries_output_zero",),
            lambda: dg.zero_start_promises(mlp(), torch.randn(2, 8), carries_output_zero="2"),
        ),
        (
            "text_file of an empty file",
            ("empty.txt", "tokens", "text"),
            lambda: load_dataset("text_file", root=_write(tmp / "empty.txt", b"")),
        ),
        ("mnist1d seed=-1", ("seed",), lambda: load_dataset("mnist1d", seed=-1)),
        ("sample_batch of kjv as images", ("kjv", "token", "image"), lambda: sample_batch("kjv", 4, tokens=False)),
        (
            "study group_by a str",
            ("group_by",),
            lambda: parse_study({"name": "s", "grid": {"seed": [0, 1]}, "group_by": "seed"}),
        ),
        (
            "study grid over 'variant'",
            ("variant",),
            lambda: parse_study({"name": "s", "grid": {"variant": ["a", "b"]}}),
        ),
        ("Mechanism.reseed(-1)", ("seed",), lambda: make_mechanism("dropout").reseed(-1)),
    ]
    return cases


def dnn_crop(x: torch.Tensor) -> object:
    from detinit.data import random_crop_flip

    return random_crop_flip(x, torch.Generator().manual_seed(0))


def _to_float_zero_std() -> object:
    from detinit.data import to_float

    return to_float(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), (0.5,), (0.0,))


def _config(**changes: object) -> object:
    from detinit.train import TrainConfig

    return TrainConfig.from_dict(changes)


def _mkdir(path: Path) -> Path:
    path.mkdir(exist_ok=True)
    return path


def _mismatched_mnist(tmp: Path) -> object:
    root = _mkdir(tmp / "mnist")
    for split, n in (("train", 10), ("t10k", 10)):
        write_idx(root / f"{split}-images-idx3-ubyte", np.zeros((n, 28, 28), np.uint8))
        write_idx(root / f"{split}-labels-idx1-ubyte", np.zeros(n - 1, np.uint8))
    return load_dataset("mnist", root=root)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _bad_cifar(tmp: Path) -> object:
    root = tmp / "cifar-10-batches-py"
    root.mkdir(exist_ok=True)
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]:
        with open(root / name, "wb") as f:
            pickle.dump({b"pixels": np.zeros((2, 3072), np.uint8)}, f)
    return load_dataset("cifar10", root=tmp, verify=False)


# --------------------------------------------------------------------------- the command line
def cli_cases(tmp: Path) -> list[tuple[str, tuple[str, ...], list[str]]]:
    (tmp / "list.yaml").write_text("- 1\n- 2\n")
    (tmp / "empty.yaml").write_text("")
    (tmp / "bad.toml").write_text("model = [\n")
    (tmp / "afile").write_text("x")
    (tmp / "list.json").write_text("[1, 2]")
    (tmp / "study_novariants.yaml").write_text("name: s\nbase: {data: synthetic}\nvariants: []\n")
    (tmp / "study_badgrid.yaml").write_text("name: s\ngrid: {seed: 3}\n")
    syn = ["--data", "synthetic", "--epochs", "1"]
    return [
        ("train --epochs 0", ("epochs",), ["train", "--epochs", "0"]),
        ("train --lr nan", ("lr",), ["train", *syn, "--lr", "nan"]),
        ("train --batch-size -4", ("batch_size",), ["train", *syn, "--batch-size", "-4"]),
        ("train --model resnet21", ("resnet21",), ["train", "--model", "resnet21"]),
        ("train --init zeros", ("zeros",), ["train", "--init", "zeros"]),
        ("train --data cifar11", ("cifar11",), ["train", "--data", "cifar11"]),
        ("train --seed -1", ("seed",), ["train", *syn, "--seed", "-1"]),
        ("train --threads 0", ("threads",), ["train", *syn, "--threads", "0"]),
        ("train --symmetry atomics", ("atomics",), ["train", *syn, "--symmetry", "atomics"]),
        ("train --config a YAML list", ("list.yaml", "mapping"), ["train", "--config", str(tmp / "list.yaml")]),
        ("train --config an empty file", ("empty.yaml",), ["train", "--config", str(tmp / "empty.yaml")]),
        ("train --config broken TOML", ("bad.toml",), ["train", "--config", str(tmp / "bad.toml")]),
        ("train --config a folder", (str(tmp.name), "folder", "directory"), ["train", "--config", str(tmp)]),
        ("train --set nokey", ("nokey",), ["train", *syn, "--set", "nokey"]),
        ("train --set epochs=abc", ("epochs",), ["train", *syn, "--set", "epochs=abc"]),
        (
            "train --set model_args.hidden=0",
            ("hidden",),
            ["train", *syn, "--model", "mnist_mlp", "--set", "model_args.hidden=0"],
        ),
        (
            "train --set data_args.num_examples=-1",
            ("num_examples",),
            ["train", *syn, "--set", "data_args.num_examples=-1"],
        ),
        (
            "train --set init_options.variant=x",
            ("variant",),
            ["train", *syn, "--init", "zero", "--set", "init_options.variant=x"],
        ),
        ("train --set device=tpu", ("device", "tpu"), ["train", *syn, "--set", "device=tpu"]),
        ("train --set device=cuda without CUDA", ("cuda",), ["train", *syn, "--set", "device=cuda"]),
        ("train --out a file", ("afile",), ["train", *syn, "--out", str(tmp / "afile")]),
        ("train --data-root for synthetic", ("data_root",), ["train", *syn, "--data-root", str(tmp)]),
        (
            "train cifar10 from an empty root",
            ("cifar",),
            ["train", "--data", "cifar10", "--data-root", str(tmp / "nocifar")],
        ),
        ("train --set train_subset=10000 of 512", ("subset",), ["train", *syn, "--set", "train_subset=10000"]),
        (
            "train --set optimizer=adamw momentum=0.5",
            ("momentum",),
            ["train", *syn, "--set", "optimizer=adamw", "--set", "momentum=0.5"],
        ),
        ("inspect --init bogus", ("bogus",), ["inspect", "resnet20", "--init", "bogus"]),
        (
            "inspect --init-option no equals",
            ("init-option", "key=value", "variant"),
            ["inspect", "resnet20", "--init-option", "variant"],
        ),
        ("inspect --init-option variant=x", ("variant",), ["inspect", "resnet20", "--init-option", "variant=x"]),
        ("inspect --num-classes 0", ("num_classes", "num-classes"), ["inspect", "resnet20", "--num-classes", "0"]),
        ("inspect --batch-size 0", ("batch", "batch-size", "batch_size"), ["inspect", "resnet20", "--batch-size", "0"]),
        ("inspect --max-rows 0", ("max-rows", "max_rows"), ["inspect", "resnet20", "--max-rows", "0"]),
        ("inspect --lanczos-steps 0", ("lanczos",), ["inspect", "resnet20", "--lanczos-steps", "0"]),
        ("inspect --data nope", ("nope",), ["inspect", "resnet20", "--data", "nope"]),
        ("inspect --out a file", ("afile",), ["inspect", "resnet20", "--out", str(tmp / "afile")]),
        ("inspect gpt --context 0", ("context",), ["inspect", "gpt", "--context", "0"]),
        ("inspect gpt --vocab-size 1", ("vocab",), ["inspect", "gpt", "--vocab-size", "0"]),
        ("inspect an unknown model", ("resnet21",), ["inspect", "resnet21"]),
        ("inspect --image-size 0", ("image", "size"), ["inspect", "vit", "--image-size", "0"]),
        ("study --config missing", ("missing.yaml",), ["study", "--config", str(tmp / "missing.yaml")]),
        ("study --workers 0", ("workers",), ["study", "--config", "configs/studies/quick.yaml", "--workers", "0"]),
        (
            "study with no variants",
            ("variants",),
            ["study", "--config", str(tmp / "study_novariants.yaml"), "--out", str(tmp / "s1")],
        ),
        (
            "study with a scalar grid",
            ("grid", "seed"),
            ["study", "--config", str(tmp / "study_badgrid.yaml"), "--out", str(tmp / "s2")],
        ),
        (
            "study --report-only never run",
            ("run", "report"),
            ["study", "--config", "configs/studies/quick.yaml", "--out", str(tmp / "s3"), "--report-only"],
        ),
        (
            "study --out a file",
            ("afile",),
            ["study", "--config", "configs/studies/quick.yaml", "--out", str(tmp / "afile")],
        ),
        ("list with an argument", ("unrecognized", "argument"), ["list", "models"]),
        ("fetch an unknown dataset", ("unrecognized", "argument", "imagenet"), ["fetch", "imagenet"]),
        # second batch
        (
            "train --set model_args.hiden=8",
            ("hiden",),
            ["train", *syn, "--model", "mnist_mlp", "--set", "model_args.hiden=8"],
        ),
        ("train --model gpt --data synthetic", ("gpt", "token", "image"), ["train", *syn, "--model", "gpt"]),
        (
            "train --data kjv --model resnet20",
            ("resnet20", "token", "kjv"),
            ["train", "--data", "kjv", "--model", "resnet20", "--epochs", "1"],
        ),
        (
            "train vit on 30-pixel images (patch 4)",
            ("image_size", "patch"),
            ["train", *syn, "--model", "vit", "--set", "data_args.image_size=30"],
        ),
        (
            "train --set milestones=[0]",
            ("milestones",),
            ["train", *syn, "--set", "schedule=step", "--set", "milestones=[0]"],
        ),
        (
            "train --set diagnostics_every=5 of 1 epoch",
            ("diagnostics_every",),
            ["train", *syn, "--set", "diagnostics_every=5"],
        ),
        ("inspect vit --image-size 30", ("image_size", "patch"), ["inspect", "vit", "--image-size", "30"]),
        (
            "inspect gpt --data fashion_mnist",
            ("gpt", "token", "fashion"),
            ["inspect", "gpt", "--data", "fashion_mnist"],
        ),
        (
            "study --workers 1.5",
            ("workers",),
            ["study", "--config", "configs/studies/quick.yaml", "--workers", "1.5", "--out", str(tmp / "s4")],
        ),
        ("demo with an argument", ("unrecognized", "argument"), ["demo", "extra"]),
        # third batch
        ("train --config a JSON list", ("list.json", "mapping"), ["train", "--config", str(tmp / "list.json")]),
        ("train --set model_args=5", ("model_args",), ["train", *syn, "--set", "model_args=5"]),
        ("train --set lr= (empty)", ("lr",), ["train", *syn, "--set", "lr="]),
        ("inspect --seed -1", ("seed",), ["inspect", "resnet20", "--seed", "-1"]),
        ("inspect --threads 0", ("threads",), ["inspect", "resnet20", "--threads", "0"]),
        (
            "study --out /dev/null",
            ("/dev/null",),
            ["study", "--config", "configs/studies/quick.yaml", "--out", "/dev/null"],
        ),
        (
            "train gpt on kjv with context 0",
            ("context",),
            ["train", "--model", "gpt", "--data", "kjv", "--set", "data_args.context=0"],
        ),
        # fourth batch
        (
            "train --config a study file",
            ("name", "base", "unknown"),
            ["train", "--config", "configs/studies/quick.yaml"],
        ),
        (
            "study --config a train config",
            ("unknown", "model"),
            ["study", "--config", "configs/quick_fashion_mnist.yaml"],
        ),
        (
            "inspect resnet20 on mnist1d",
            ("mnist1d", "1-D", "in_features"),
            ["inspect", "resnet20", "--data", "mnist1d"],
        ),
        (
            "train --batch-size larger than the data",
            ("batch_size", "examples"),
            ["train", *syn, "--batch-size", "100000"],
        ),
        ("train mnist without a root", ("mnist", "root"), ["train", "--data", "mnist", "--epochs", "1"]),
    ]


def run_cli(args: list[str], words: tuple[str, ...], repo: Path, cwd: Path) -> tuple[str, str]:
    """One command in ``cwd`` (its runs/ stay there); a command still working after a minute took the bad input
    and started training on it: a silent accept."""
    env = {**os.environ, "PYTHONPATH": str(repo / "src")}
    args = [str(repo / a) if a.startswith("configs/") else a for a in args]
    if args[0] == "train" and "--out" not in args:  # a run directory of its own: no case meets another's run
        args += ["--out", str(cwd / f"run{len(list(cwd.iterdir()))}")]
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "detinit", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        return "silent", "still running after 60 s (it started training)"
    err = (proc.stderr.strip().splitlines() or [""])[-1][:220]
    if proc.returncode == 0:
        return "silent", "exit 0: " + (proc.stdout.strip().splitlines() or [""])[-1][:200]
    if "Traceback" in proc.stderr:
        return "raw", err
    if not any(word.lower() in proc.stderr.lower() for word in words):
        return "unnamed", err
    return "clean", err


# --------------------------------------------------------------------------- run directories
def rundir_cases(tmp: Path) -> list[Case]:
    from detinit.train import TrainConfig, train

    def config(**changes: object) -> TrainConfig:
        base = dict(
            model="mnist_mlp",
            model_args={"hidden": 16},
            data="synthetic",
            data_args={"num_examples": 64, "image_size": 8},
            epochs=2,
            batch_size=32,
            progress=False,
            tensorboard=False,
            threads=1,
        )
        return TrainConfig.from_dict(base | changes)

    def fresh(name: str) -> Path:
        out = tmp / name
        train(config(), out)
        return out

    def killed_after_epoch_1(name: str, *, before_record: bool = False, **changes: object) -> Path:
        """A run of 2 epochs killed after its first (after its checkpoint, and after or ``before_record``
        of its metrics): what a resume meets."""
        from unittest import mock

        from detinit.train import trainer

        class Killed(BaseException):
            pass

        def kill(*args: object, **kwargs: object) -> None:
            raise Killed

        out = tmp / name
        target = (trainer.RunDir, "append_epoch") if before_record else (trainer, "_log_epoch")
        with mock.patch.object(*target, kill):
            try:
                train(config(**changes), out)
            except Killed:
                pass
        return out

    def epochs_of(out: Path) -> list[int]:
        epochs = [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]
        if epochs != sorted(set(epochs)):
            raise AssertionError(f"records lost or duplicated: epochs {epochs}")  # counted raw
        return epochs

    def damaged_run_json() -> object:
        out = killed_after_epoch_1("run_json")
        (out / "run.json").write_text("{not json")
        return train(config(), out)

    def missing_config_json() -> object:
        out = killed_after_epoch_1("config_json")
        (out / "config.json").unlink()
        with _warnings("detinit.train.rundir") as said:
            train(config(), out)
        if not said or epochs_of(out) != [1, 2]:
            raise AssertionError(f"resumed without a word (warnings {said}) or lost records")
        return f"refused: resumed on the checkpoint's identity, with a warning: {said[0][:80]}"

    def truncated_checkpoint() -> object:
        out = killed_after_epoch_1("trunc")
        data = (out / "checkpoint.pt").read_bytes()
        (out / "checkpoint.pt").write_bytes(data[: len(data) // 2])
        return train(config(), out)

    def metrics_ahead_of_checkpoint() -> object:
        out = killed_after_epoch_1("ahead")
        lines = (out / "metrics.jsonl").read_text().splitlines()
        record = json.loads(lines[-1]) | {"epoch": 2}  # a record of an epoch that has no checkpoint
        (out / "metrics.jsonl").write_text("\n".join([*lines, json.dumps(record)]) + "\n")
        train(config(), out)
        return f"refused: nothing lost or doubled; epochs {epochs_of(out)}"

    def metrics_behind_checkpoint() -> object:
        out = killed_after_epoch_1("behind", before_record=True)
        train(config(), out)
        if epochs_of(out) != [1, 2]:
            raise AssertionError(f"records lost: epochs {epochs_of(out)}")
        return f"refused: nothing lost; epochs {epochs_of(out)}"

    def duplicated_metrics_line() -> object:
        out = fresh("dup")
        lines = (out / "metrics.jsonl").read_text().splitlines()
        (out / "metrics.jsonl").write_text("\n".join([*lines, lines[-1]]) + "\n")
        train(config(), out)
        return f"refused: repaired to epochs {epochs_of(out)}"

    def digest_of_other_run() -> object:
        a = killed_after_epoch_1("dig_a")
        b = killed_after_epoch_1("dig_b", seed=1)
        shutil.copy(a / "checkpoint.pt.sha256", b / "checkpoint.pt.sha256")
        return train(config(seed=1), b)

    def edited_config_resumed() -> object:
        out = fresh("edited")
        return train(config(lr=0.5), out)

    def stale_lock() -> object:
        out = killed_after_epoch_1("lock")
        (out / ".lock").write_text("999999\n")  # a process that does not exist: a stale lock
        train(config(), out)
        return f"refused: nothing; the stale lock was taken over, epochs {epochs_of(out)}"

    def study_out_of_other_study() -> object:
        from detinit.experiments import run_study

        base = {"data": "synthetic", "model": "mnist_mlp", "model_args": {"hidden": 8}, "epochs": 1,
                "data_args": {"num_examples": 32, "image_size": 8}, "batch_size": 16, "progress": False,
                "tensorboard": False, "threads": 1}  # fmt: skip
        out = tmp / "study_shared"
        run_study(parse_study({"name": "a", "base": base, "variants": [{"name": "v"}]}, out=out, workers=1))
        other = parse_study({"name": "b", "base": base | {"lr": 0.3}, "variants": [{"name": "v"}]}, out=out, workers=1)
        status = run_study(other)
        if any(s == "complete" for s in status.values()):
            raise AssertionError(f"study b reused study a's run under other settings: {status}")
        return f"refused: statuses {status}"

    return [
        ("resume with run.json not JSON", ("run.json",), damaged_run_json),
        ("resume with config.json missing", ("config.json",), missing_config_json),
        ("resume with a truncated checkpoint", ("checkpoint.pt",), truncated_checkpoint),
        ("metrics.jsonl ahead of the checkpoint (resumed whole)", ("metrics", "epoch"), metrics_ahead_of_checkpoint),
        ("killed between checkpoint and its record", ("metrics", "epoch"), metrics_behind_checkpoint),
        ("complete run with a duplicated metrics line", ("metrics", "epoch"), duplicated_metrics_line),
        ("checkpoint digest of another run", ("checkpoint", "sha256", "digest"), digest_of_other_run),
        ("resume under an edited config (lr)", ("lr", "config"), edited_config_resumed),
        ("a stale .lock of a dead process", (".lock", "lock"), stale_lock),
        ("second study in the out of another", ("lr", "changed", "config"), study_out_of_other_study),
    ]


@contextlib.contextmanager
def _warnings(logger: str) -> Iterator[list[str]]:
    """The warnings ``logger`` gives inside the block (the audit silences logging otherwise)."""
    said: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            said.append(record.getMessage())

    handler, previous = Keep(logging.WARNING), logging.root.manager.disable
    logging.disable(logging.NOTSET)
    logging.getLogger(logger).addHandler(handler)
    try:
        yield said
    finally:
        logging.getLogger(logger).removeHandler(handler)
        logging.disable(previous)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", nargs="*", default=["api", "cli", "rundir"], choices=["api", "cli", "rundir"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    repo = Path(__file__).resolve().parents[1]
    results: dict[str, list[tuple[str, str, str]]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if "api" in args.groups:
            results["api"] = [(what, *classify(run, words)) for what, words, run in api_cases(tmp)]
        if "cli" in args.groups:
            (tmp / "cwd").mkdir()
            results["cli"] = [(what, *run_cli(argv, words, repo, tmp / "cwd")) for what, words, argv in cli_cases(tmp)]
        if "rundir" in args.groups:
            logging.disable(logging.WARNING)
            results["rundir"] = [(what, *classify(run, words)) for what, words, run in rundir_cases(tmp)]
    print(f"torch {torch.__version__}, detinit {detinit.__version__}\n")
    print("group   cases  clean  torch  raw  unnamed  silent")
    for group, rows in results.items():
        n = Counter(outcome for _, outcome, _ in rows)
        counts = f"{n['clean']:5d}  {n['torch']:5d}  {n['raw']:3d}  {n['unnamed']:7d}  {n['silent']:6d}"
        print(f"{group:7s} {len(rows):5d}  {counts}")
    for group, rows in results.items():
        bad = [row for row in rows if row[1] not in ("clean", "torch")]
        if bad:
            print(f"\n{group}: not clean")
            for what, outcome, message in bad:
                print(f"  [{outcome}] {what}: {message}")


if __name__ == "__main__":
    main()
