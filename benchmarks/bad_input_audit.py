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
from detinit import argtypes, atomic, hooks  # noqa: E402
from detinit import data as data_api  # noqa: E402
from detinit import diagnostics as dg  # noqa: E402
from detinit import experiments as experiments_api  # noqa: E402
from detinit import init as di  # noqa: E402
from detinit import models as models_api  # noqa: E402
from detinit import nn as dnn  # noqa: E402
from detinit import train as train_api  # noqa: E402
from detinit.data import cifar as data_cifar  # noqa: E402
from detinit.data import folder as data_folder  # noqa: E402
from detinit.data import load_dataset, read_idx, sample_batch, text_dataset, write_idx  # noqa: E402
from detinit.data import mnist as data_mnist  # noqa: E402
from detinit.data.loader import Batches  # noqa: E402
from detinit.experiments import parse_study, select_runs  # noqa: E402
from detinit.init.apply.end_gain import EndGain, install_end_gains_  # noqa: E402
from detinit.init.apply.scaled_sums import complete_scaled_sums_  # noqa: E402
from detinit.init.tensor.constnet import const_avg_rows_  # noqa: E402
from detinit.init.tensor.embedding import embedding_collisions, embedding_row_indices, zero_embedding_  # noqa: E402
from detinit.init.tensor.hadamard import fill_sylvester_entries_, hadamard_mixing_, hadamard_mixing_rows_  # noqa: E402
from detinit.init.tensor.zero import hadamard_columns, tap_order, unfolded_kernel, zero_unfolded_  # noqa: E402
from detinit.init.tensor.zero_rows import (  # noqa: E402
    partial_identity_rows_,
    zero_embedding_rows_,
    zero_rows_,
    zero_unfolded_rows_,
)
from detinit.models import create_model  # noqa: E402
from detinit.models.resnet import BasicBlock  # noqa: E402
from detinit.symmetry import Mechanism, branch_outputs, breaking, make_mechanism  # noqa: E402

Case = tuple[str, tuple[str, ...], Callable[[], object]]
CHANNEL = hooks.CHANNEL_DIM_ATTRIBUTE
OURS = os.sep + "detinit" + os.sep
TORCH = "@torch"  # in a case's words: torch's own error is the answer (detinit says where and why)


def classify(run: Callable[[], object], words: tuple[str, ...]) -> tuple[str, str]:
    """``("clean" | "torch" | "raw" | "unnamed" | "silent", message)`` for one API case: "clean" is an error
    detinit raised (a ValueError, a TypeError, an OSError such as a missing file, a RuntimeError for an object in
    the wrong state, or one of detinit's own error classes) naming the culprit; "torch"
    one that torch raised on purpose-checked ground (``TORCH`` in the words: a case detinit leaves to torch, said
    why where it does), naming it."""
    try:
        result = run()
    except Exception as err:  # noqa: BLE001 - classifying every exception is the point
        frame = traceback.extract_tb(err.__traceback__)[-1]
        raiser = frame.filename
        message = f"{type(err).__name__}: {err}".splitlines()[0][:220]
        named = any(word.lower() in str(err).lower() for word in words if word != TORCH)
        raised_by_us = OURS in raiser and (frame.line or "").lstrip().startswith("raise")  # not a torch call of ours
        if TORCH in words and not raised_by_us and named:
            return "torch", message
        expected = (ValueError, TypeError, OSError, RuntimeError, argparse.ArgumentTypeError)  # the last: argtypes
        ours = isinstance(err, expected) or type(err).__module__.startswith("detinit")
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
        # fifth batch, written after the fourth was fixed
        ("fans of a 1-D tensor", ("tensor", "1", "dim"), lambda: di.fans(torch.zeros(5))),
        (
            "partial_identity_ of a 0-row matrix",
            ("tensor", "0", "empty"),
            lambda: di.partial_identity_(torch.empty(0, 4)),
        ),
        ("hadamard(0)", ("n",), lambda: di.hadamard(0)),
        ("hadamard(6)", ("n", "power"), lambda: di.hadamard(6)),
        ("zero_singular_values(0, 4)", ("out_features",), lambda: di.zero_singular_values(0, 4)),
        (
            "kaiming_normal_ nonlinearity='gelu'",
            ("nonlinearity", "gelu"),
            lambda: di.kaiming_normal_(torch.empty(4, 4), generator=torch.Generator(), nonlinearity="gelu"),
        ),
        (
            "kaiming_uniform_ mode='fan_avg'",
            ("mode", "fan_avg"),
            lambda: di.kaiming_uniform_(torch.empty(4, 4), generator=torch.Generator(), mode="fan_avg"),
        ),
        (
            "orthogonal_ of a 1-D tensor",
            ("tensor", "1-D", "dim", "2"),
            lambda: di.orthogonal_(torch.empty(4), generator=torch.Generator()),
        ),
        ("normal_ std=-1", ("std",), lambda: di.normal_(torch.empty(4, 4), generator=torch.Generator(), std=-1.0)),
        (
            "xavier_normal_ of an int tensor",
            ("dtype", "float", "tensor"),
            lambda: di.xavier_normal_(torch.empty(4, 4, dtype=torch.long), generator=torch.Generator()),
        ),
        ("idinit_ tau=inf", ("tau",), lambda: di.idinit_(torch.empty(4, 4), tau=math.inf)),
        ("identity_ groups=3 on 4 channels", ("groups",), lambda: di.identity_(torch.empty(4, 4, 3, 3), groups=3)),
        ("zero_ columns='middle'", ("columns", "middle"), lambda: di.zero_(torch.empty(8, 4), columns="middle")),
        ("zero_ of a bool tensor", ("dtype", "bool", "tensor"), lambda: di.zero_(torch.empty(4, 4, dtype=torch.bool))),
        ("fill_sylvester_ of a 3-D tensor", ("matrix", "2-D", "dim"), lambda: di.fill_sylvester_(torch.empty(2, 4, 4))),
        ("check_zero_one mode='exact?'", ("mode",), lambda: di.check_zero_one(mlp(), mode="exact?")),
        (
            "initialize example_inputs a str",
            ("example_inputs",),
            lambda: detinit.initialize(mlp(), "zero", example_inputs="x"),
        ),
        (
            "initialize example_inputs of the wrong width",
            ("example_inputs", "shape", "input"),
            lambda: detinit.initialize(mlp(), "zero", example_inputs=torch.randn(2, 5)),
        ),
        ("initialize scheme=None", ("scheme",), lambda: detinit.initialize(mlp(), None)),
        ("initialize generator a seed int", ("generator",), lambda: detinit.initialize(mlp(), "kaiming", generator=3)),
        ("ChannelPad 8 -> 4", ("out_channels", "in_channels"), lambda: dnn.ChannelPad(8, 4)),
        ("ChannelPad stride 0", ("stride",), lambda: dnn.ChannelPad(4, 8, stride=0)),
        ("HadamardTransform(0)", ("channels",), lambda: dnn.HadamardTransform(0)),
        (
            "HadamardTransform(8) on 6 channels",
            ("channels", "8", "6"),
            lambda: dnn.HadamardTransform(8)(torch.randn(2, 6, 4, 4)),
        ),
        ("make_relu('gelu')", ("kind", "gelu"), lambda: dnn.make_relu("gelu")),
        ("power_of_two_blocks(0)", ("n",), lambda: dnn.power_of_two_blocks(0)),
        (
            "cross_entropy of int logits",
            ("logits", "dtype", "float"),
            lambda: dnn.cross_entropy(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, dtype=torch.long)),
        ),
        (
            "cross_entropy float targets",
            ("targets", "dtype", "long", "int"),
            lambda: dnn.cross_entropy(torch.zeros(2, 3), torch.zeros(2)),
        ),
        ("fwht dim=5 of a 2-D tensor", ("dim",), lambda: dnn.fwht(torch.randn(2, 4), dim=5)),
        ("fwht of an int tensor", ("dtype", "x", "float"), lambda: dnn.fwht(torch.ones(2, 4, dtype=torch.long))),
        (
            "effective_rank of a zero matrix",
            ("zero", "matrix", "refused:"),
            lambda: _refused_nan(dg.effective_rank(torch.zeros(3, 3))),
        ),
        (
            "stable_rank of a zero matrix",
            ("zero", "matrix", "refused:"),
            lambda: _refused_nan(dg.stable_rank(torch.zeros(3, 3))),
        ),
        ("numerical_rank tol=-1", ("tol",), lambda: dg.numerical_rank(torch.eye(3), tol=-1.0)),
        ("count_dead rtol=-1", ("rtol",), lambda: dg.count_dead(torch.randn(4, 3), rtol=-1.0)),
        (
            "mean_row_correlation rows='diag'",
            ("rows", "diag"),
            lambda: dg.mean_row_correlation(torch.randn(4, 4), rows="diag"),
        ),
        (
            "mean_row_correlation of a 1-row matrix",
            ("row", "weight", "refused:"),
            lambda: _refused_nan(dg.mean_row_correlation(torch.randn(1, 4))),
        ),
        ("diversity_score of no rows", ("rows", "empty", "refused:"), lambda: _refused_nan(dg.diversity_score([]))),
        (
            "dead_channels at='nowhere'",
            ("at", "nowhere"),
            lambda: dg.dead_channels(mlp(), torch.randn(4, 8), at="nowhere"),
        ),
        ("rank_table tol=nan", ("tol",), lambda: dg.rank_table(mlp(), tol=math.nan)),
        ("measure_diagnostics epoch=-1", ("epoch",), lambda: dg.measure_diagnostics(mlp(), torch.randn(4, 8), -1)),
        ("weight_symmetry max_rows=0", ("max_rows",), lambda: dg.weight_symmetry(mlp(), max_rows=0)),
        ("minus_identity of a str", ("module",), lambda: dg.minus_identity("x")),
        ("make_mechanism noise std=-1", ("std",), lambda: make_mechanism("weight_noise", std=-1.0)),
        ("breaking dropout p=1.5", ("p",), lambda: _inside("dropout", p=1.5)),
        ("make_mechanism unknown knob", ("knob", "bogus", "takes"), lambda: make_mechanism("dropout", bogus=1.0)),
        ("branch_outputs layers naming nothing", ("layers", "nope"), lambda: branch_outputs(mlp(), ["nope"])),
        ("derived_seed epoch=-1", ("epoch",), lambda: data_api.derived_seed(0, -1)),
        ("epoch_generator stream=-1", ("stream",), lambda: data_api.epoch_generator(0, 0, stream=-1)),
        (
            "probe_batch n=0",
            ("n",),
            lambda: data_api.probe_batch(data_api.load_dataset("synthetic", num_examples=8), 0),
        ),
        ("model_shape of a str", ("dataset",), lambda: data_api.model_shape("synthetic")),
        (
            "write_idx of float16",
            ("dtype", "float16", "array"),
            lambda: data_api.write_idx(tmp / "a.idx", np.zeros(3, dtype=np.float16)),
        ),
        (
            "read_idx of a truncated file",
            ("idx", "a.idx", "truncated", "size", "bytes"),
            lambda: data_api.read_idx(
                _write(
                    tmp / "t.idx",
                    data_api.write_idx(tmp / "full.idx", np.zeros((4, 4), dtype=np.uint8)).read_bytes()[:-3],
                )
            ),
        ),
        (
            "text_dataset val_fraction=1.5",
            ("val_fraction",),
            lambda: data_api.text_dataset("hello world " * 50, "train", val_fraction=1.5),
        ),
        (
            "text_dataset context=0",
            ("context",),
            lambda: data_api.text_dataset("hello world " * 50, "train", context=0),
        ),
        (
            "to_float mean of the wrong length",
            ("mean", "channel"),
            lambda: data_api.to_float(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), (0.5, 0.5, 0.5), (1.0,)),
        ),
        (
            "random_crop_flip pad=-1",
            ("pad",),
            lambda: data_api.random_crop_flip(torch.randn(2, 1, 8, 8), torch.Generator(), pad=-1),
        ),
        (
            "register_dataset over an existing name",
            ("synthetic", "registered", "exists"),
            lambda: data_api.register_dataset("synthetic", "again")(lambda **k: None),
        ),
        (
            "register_model over an existing name",
            ("resnet20", "registered", "exists"),
            lambda: models_api.register_model("resnet20", "zero", "again")(lambda **k: nn.Linear(2, 2)),
        ),
        (
            "register_model default_init unknown",
            ("default_init", "bogus"),
            lambda: models_api.register_model("my_new_model_x", "bogus", "d")(lambda **k: nn.Linear(2, 2)),
        ),
        ("model_entry('nope')", ("nope",), lambda: models_api.model_entry("nope")),
        (
            "data_kwargs_for shape missing keys",
            ("shape", "num_classes", "vocab_size"),
            lambda: models_api.data_kwargs_for("resnet20", {}),
        ),
        ("create_model constnet depth not 6n+4", ("depth",), lambda: models_api.create_model("constnet", depth=15)),
        (
            "create_model vit image_size not divisible by patch",
            ("image_size", "patch"),
            lambda: models_api.create_model("vit", image_size=30, patch=4),
        ),
        (
            "create_model gpt width not divisible by heads",
            ("width", "heads"),
            lambda: models_api.create_model("gpt", vocab_size=32, width=64, heads=3),
        ),
        ("list_models pattern 5", ("pattern",), lambda: models_api.list_models(5)),
        ("mean_std of []", ("values", "empty", "refused:"), lambda: f"refused: {experiments_api.mean_std([])!r}"),
        ("mean_std digits=-1", ("digits",), lambda: experiments_api.mean_std([1.0], digits=-1)),
        ("load_study of a missing file", ("nope.yaml",), lambda: experiments_api.load_study(tmp / "nope.yaml")),
        (
            "parse_study workers=0",
            ("workers",),
            lambda: experiments_api.parse_study({"name": "s", "base": {"lr": 0.1}}, workers=0),
        ),
        ("param_groups lr=-1", ("lr",), lambda: train_api.param_groups(mlp(), -1.0)),
        ("constnet_milestones(0)", ("epochs",), lambda: train_api.constnet_milestones(0)),
        ("write_json of a set", ("json", "set", "data"), lambda: train_api.write_json(tmp / "x.json", {1, 2})),
        ("append_jsonl a row not a dict", ("row",), lambda: train_api.append_jsonl(tmp / "m2.jsonl", [1, 2])),
        ("load_checkpoint of a missing file", ("nope.pt",), lambda: train_api.load_checkpoint(tmp / "nope.pt")),
        (
            "load_checkpoint of a text file",
            ("junk.pt", "checkpoint"),
            lambda: train_api.load_checkpoint(_write(tmp / "junk.pt", b"hello")),
        ),
        (
            "save_checkpoint to a directory",
            ("dir", "checkpoint", "directory"),
            lambda: train_api.save_checkpoint(_mkdir(tmp / "ckdir"), {"a": 1}),
        ),
        ("read_jsonl of a directory", ("dir", "directory"), lambda: train_api.read_jsonl(_mkdir(tmp / "jdir"))),
        ("TrainConfig lr=inf", ("lr",), lambda: _config(lr=math.inf)),
        ("TrainConfig epochs=True", ("epochs",), lambda: _config(epochs=True)),
        ("TrainConfig weight_decay=-0.1", ("weight_decay",), lambda: _config(weight_decay=-0.1)),
        ("RunDir of a file path", ("file", "directory", "run"), lambda: train_api.RunDir(_write(tmp / "afile", b"x"))),
        # sixth batch, written after the fifth was fixed
        ("get_scheme fixup with an option", ("fixup", "option", "depth"), lambda: di.get_scheme("fixup", depth=3)),
        ("get_scheme gpt2 std=0", ("std",), lambda: di.get_scheme("gpt2", std=0.0)),
        ("get_scheme tfixup stack='both'", ("stack", "both"), lambda: di.get_scheme("tfixup", stack="both")),
        ("get_scheme constnet c=-1", ("c",), lambda: di.get_scheme("constnet", c=-1.0)),
        (
            "get_scheme kaiming distribution='gamma'",
            ("distribution", "gamma"),
            lambda: di.get_scheme("kaiming", distribution="gamma"),
        ),
        (
            "get_scheme rezero zero_init_last='no'",
            ("zero_init_last",),
            lambda: di.get_scheme("rezero", zero_init_last="no"),
        ),
        (
            "get_scheme idinit variant='paperz'",
            ("variant", "paperz"),
            lambda: di.get_scheme("idinit", variant="paperz"),
        ),
        (
            "initialize roles naming a parameter",
            ("roles", "0.weight", "module"),
            lambda: detinit.initialize(mlp(), "zero", roles={"0.weight": "classifier"}),
        ),
        (
            "initialize strict on an untraceable model",
            ("strict", "example_inputs", "trace"),
            lambda: detinit.initialize(
                nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)),
                "zero",
                strict=True,
                example_inputs=torch.randn(2, 5),
            ),
        ),
        (
            "create_model gpt position='sinusoid?'",
            ("position",),
            lambda: models_api.create_model("gpt", vocab_size=32, position="bogus"),
        ),
        (
            "create_model gpt layout='bogus'",
            ("layout",),
            lambda: models_api.create_model("gpt", vocab_size=32, layout="bogus"),
        ),
        ("create_model vit norm='bogus'", ("norm",), lambda: models_api.create_model("vit", norm="bogus")),
        (
            "create_model vit patch larger than the image",
            ("patch", "image_size"),
            lambda: models_api.create_model("vit", image_size=28, patch=64),
        ),
        ("create_model mnist_mlp hidden=[]", ("hidden",), lambda: models_api.create_model("mnist_mlp", hidden=[])),
        ("create_model constnet dropout=1", ("dropout",), lambda: models_api.create_model("constnet", dropout=1.0)),
        ("create_model leakynet alpha=-1", ("alpha",), lambda: models_api.create_model("leakynet", alpha=-1.0)),
        (
            "create_model mnist_mlp relu='bogus'",
            ("relu", "bogus"),
            lambda: models_api.create_model("mnist_mlp", relu="bogus"),
        ),
        (
            "load_dataset synthetic num_examples=0",
            ("num_examples",),
            lambda: data_api.load_dataset("synthetic", num_examples=0),
        ),
        (
            "load_dataset cifar10 from an empty folder",
            ("cifar", "root", "data_batch"),
            lambda: data_api.load_dataset("cifar10", root=_mkdir(tmp / "empty_cifar")),
        ),
        (
            "load_dataset imagenet from an empty folder",
            ("imagenet", "root", "train", "class", "folder"),
            lambda: data_api.load_dataset("imagenet", root=_mkdir(tmp / "empty_in")),
        ),
        ("load_dataset digits bogus option", ("bogus",), lambda: data_api.load_dataset("digits", bogus=1)),
        ("Batches pad=-1", ("pad",), lambda: data_api.Batches(_synthetic8(), 4, pad=-1)),
        ("Batches unknown option", ("bogus", "option"), lambda: data_api.Batches(_synthetic8(), 4, bogus=1)),
        (
            "make_batches drop_last='yes'",
            ("drop_last",),
            lambda: data_api.make_batches(_synthetic8(), 4, drop_last="yes"),
        ),
        (
            "zero_start_promises tolerance=-1",
            ("tolerance",),
            lambda: dg.zero_start_promises(mlp(), torch.randn(2, 8), tolerance=-1.0),
        ),
        (
            "signal_propagation at='bogus'",
            ("at", "bogus"),
            lambda: dg.signal_propagation(mlp(), torch.randn(2, 8), at="bogus"),
        ),
        (
            "jacobian_singular_values num_steps=0",
            ("num_steps",),
            lambda: dg.jacobian_singular_values(mlp(), torch.randn(1, 8), num_steps=0),
        ),
        (
            "gradient_at_init steps=0",
            ("steps",),
            lambda: dg.gradient_at_init(mlp(), torch.randn(4, 8), torch.zeros(4, dtype=torch.long), steps=0),
        ),
        (
            "rank_table initial of other names",
            ("initial", "nope"),
            lambda: dg.rank_table(mlp(), initial={"nope": torch.zeros(3, 3)}),
        ),
        (
            "rank_table initial of another shape",
            ("initial", "shape"),
            lambda: dg.rank_table(mlp(), initial={"0.weight": torch.zeros(3, 3)}),
        ),
        ("mechanism attached twice", ("attach", "twice", "already"), _attach_twice),
        (
            "mechanism layers naming nothing",
            ("layers", "nope"),
            lambda: make_mechanism("dropout", p=0.1, layers=["nope"]).attach(mlp()),
        ),
        (
            "study grid value not a list",
            ("grid", "lr", "list"),
            lambda: experiments_api.parse_study({"name": "s", "grid": {"lr": 0.1}}),
        ),
        (
            "study grid with an empty list",
            ("grid", "lr", "empty"),
            lambda: experiments_api.parse_study({"name": "s", "grid": {"lr": []}}),
        ),
        (
            "study variant with an unknown key",
            ("bogus",),
            lambda: experiments_api.parse_study({"name": "s", "variants": {"a": {"bogus": 1}}}),
        ),
        (
            "study name with a slash",
            ("name",),
            lambda: experiments_api.parse_study({"name": "a/b", "base": {"lr": 0.1}}),
        ),
        ("TrainConfig label_smoothing=1.5", ("label_smoothing",), lambda: _config(label_smoothing=1.5)),
        ("TrainConfig warmup_epochs=-1", ("warmup_epochs",), lambda: _config(warmup_epochs=-1)),
        ("TrainConfig optimizer='adam?'", ("optimizer",), lambda: _config(optimizer="adamz")),
        (
            "TrainConfig symmetry_args out of range",
            ("p",),
            lambda: _config(symmetry="dropout", symmetry_args={"p": 2.0}),
        ),
        ("TrainConfig data_args unknown", ("bogus",), lambda: _config(data="synthetic", data_args={"bogus": 1})),
        (
            "TrainConfig model_args num_classes against the data",
            ("num_classes",),
            lambda: train_api.build_model(
                _config(model="mnist_mlp", data="synthetic", model_args={"num_classes": 5}), _synthetic8()
            ),
        ),
        ("TrainConfig max_steps_per_epoch=0", ("max_steps_per_epoch",), lambda: _config(max_steps_per_epoch=0)),
        ("TrainConfig device='cuda:7' without CUDA", ("device", "cuda"), lambda: _config(device="cuda:7")),
        ("fwht cache a str", ("cache",), lambda: dnn.fwht(torch.randn(2, 4), cache="x")),
        (
            "HadamardTransform of an int tensor",
            ("dtype", "float", "x", "input"),
            lambda: dnn.HadamardTransform(8)(torch.ones(2, 8, dtype=torch.int32)),
        ),
        ("text_dataset of empty text", ("text", "empty"), lambda: data_api.text_dataset("", "train")),
        (
            "text_dataset text shorter than the context",
            ("context", "text", "tokens"),
            lambda: data_api.text_dataset("ab" * 10, "train", context=128),
        ),
        (
            "to_float mean of 3 channels on 1-channel images",
            ("mean", "channel"),
            lambda: data_api.to_float(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), (0.5, 0.5, 0.5), (1.0, 1.0, 1.0)),
        ),
        (
            "channel_stats of no images",
            ("images", "empty"),
            lambda: data_api.channel_stats(torch.zeros(0, 1, 4, 4, dtype=torch.uint8)),
        ),
        ("derived_seed seed=2**40", ("seed",), lambda: data_api.derived_seed(2**40, 0)),
        # seventh batch: arguments that must agree with each other (the class the sixth found)
        ("Batches world_size=0", ("world_size",), lambda: data_api.Batches(_synthetic8(), 4, rank=0, world_size=0)),
        (
            "feature_diversity channel_dim=5",
            ("channel_dim",),
            lambda: dg.feature_diversity(mlp(), torch.randn(4, 8), channel_dim=5),
        ),
        (
            "zero_start_promises carries_output_zero naming nothing",
            ("carries_output_zero", "nope"),
            lambda: dg.zero_start_promises(mlp(), torch.randn(2, 8), carries_output_zero=["nope"]),
        ),
        (
            "mean_row_correlation max_rows=1",
            ("max_rows",),
            lambda: dg.mean_row_correlation(torch.randn(4, 4), max_rows=1),
        ),
        ("const_avg_ c=0", ("c",), lambda: di.const_avg_(torch.empty(4, 4), c=0.0)),
        ("zero_ norm='l2'", ("norm", "l2"), lambda: di.zero_(torch.empty(8, 4), norm="l2")),
        ("hadamard_scale(0)", ("out_features",), lambda: di.hadamard_scale(0)),
        (
            "identity_ transposed on a 2-D weight",
            ("transposed",),
            lambda: di.identity_(torch.empty(4, 4), transposed=True),
        ),
        (
            "partial_identity_ groups=8 of 4 channels",
            ("groups",),
            lambda: di.partial_identity_(torch.empty(4, 4, 3, 3), groups=8),
        ),
        ("ResNet with a block that is not one", ("block",), lambda: models_api.ResNet(int, [1, 1, 1], [16, 32, 64])),
        (
            "ResNet layers and widths of different lengths",
            ("layers", "widths"),
            lambda: models_api.ResNet(BasicBlock, [1, 1], [16, 32, 64]),
        ),
        ("GPT mlp_ratio=0", ("mlp_ratio",), lambda: models_api.GPT(32, 8, mlp_ratio=0)),
        (
            "ChannelPad on inputs of other channels",
            ("channels", "6", "4"),
            lambda: dnn.ChannelPad(4, 8, stride=2)(torch.randn(2, 6, 8, 8)),
        ),
        ("load_dataset subset=0", ("subset",), lambda: data_api.load_dataset("synthetic", num_examples=8, subset=0)),
        (
            "Batches augment of 1-D signals",
            ("augment", "1-D", "crop", "image"),
            lambda: next(iter(data_api.Batches(data_api.load_dataset("mnist1d"), 4, augment=True).epoch(0))),
        ),
        ("epoch_generator seed=2**32", ("seed",), lambda: data_api.epoch_generator(2**32, 0)),
        ("text_dataset split='valid'", ("split", "valid"), lambda: data_api.text_dataset("abc" * 100, "valid")),
        (
            "study grid with a repeated value",
            ("seed", "repeat", "twice", "duplicate"),
            lambda: experiments_api.parse_study({"name": "s", "grid": {"seed": [0, 0]}}),
        ),
        (
            "study grid and variant set the same key",
            ("lr", "grid", "variant"),
            lambda: experiments_api.parse_study({"name": "s", "grid": {"lr": [0.1]}, "variants": {"a": {"lr": 0.2}}}),
        ),
        (
            "study group_by a key no run has",
            ("group_by", "bogus"),
            lambda: experiments_api.parse_study({"name": "s", "grid": {"seed": [0, 1]}, "group_by": ["bogus"]}),
        ),
        (
            "study variants that are the same run",
            ("a", "b", "same"),
            lambda: experiments_api.parse_study({"name": "s", "variants": {"a": {"lr": 0.1}, "b": {"lr": 0.1}}}),
        ),
        (
            "TrainConfig nesterov without momentum",
            ("nesterov", "momentum"),
            lambda: _config(nesterov=True, momentum=0.0),
        ),
        (
            "TrainConfig symmetry gpu on device cpu",
            ("gpu", "cpu", "cuda"),
            lambda: _config(symmetry="gpu", device="cpu"),
        ),
        ("TrainConfig gpt on images", ("gpt", "synthetic", "token"), lambda: _config(model="gpt", data="synthetic")),
        ("TrainConfig init_seed=-1", ("init_seed",), lambda: _config(init_seed=-1)),
        ("TrainConfig data_workers=-1", ("data_workers",), lambda: _config(data_workers=-1)),
        ("TrainConfig threads=0", ("threads",), lambda: _config(threads=0)),
        ("TrainConfig tensorboard='yes'", ("tensorboard",), lambda: _config(tensorboard="yes")),
        (
            "TrainConfig batch larger than the train subset",
            ("batch_size", "train_subset"),
            lambda: _config(data="synthetic", train_subset=4, batch_size=8),
        ),
        # eighth batch: methods of public classes, arguments that contradict each other
        ("Batches.epoch(-1)", ("epoch",), lambda: next(iter(data_api.Batches(_synthetic8(), 4).epoch(-1)))),
        ("Batches.epoch('a')", ("epoch",), lambda: next(iter(data_api.Batches(_synthetic8(), 4).epoch("a")))),
        ("RunDir.damage(-1)", ("epochs",), lambda: train_api.RunDir(tmp / "r1").damage(-1)),
        (
            "RunDir.set_status 'bogus'",
            ("status", "bogus"),
            lambda: train_api.RunDir(_mkdir(tmp / "r2")).set_status({}, "bogus"),
        ),
        ("Mechanism.attach of a str", ("model",), lambda: make_mechanism("dropout", p=0.1).attach("x")),
        (
            "initialize example_inputs with trace=False",
            ("example_inputs", "trace"),
            lambda: detinit.initialize(mlp(), "zero", example_inputs=torch.randn(2, 8), trace=False),
        ),
        (
            "initialize generator and seed both",
            ("generator", "seed"),
            lambda: detinit.initialize(mlp(), "kaiming", generator=torch.Generator(), seed=5),
        ),
        ("load_dataset kjv context past the text", ("context",), lambda: data_api.load_dataset("kjv", context=10**9)),
        (
            "text_dataset test split with val_fraction=0",
            ("val_fraction", "test", "empty"),
            lambda: data_api.text_dataset("abc" * 100, "test", val_fraction=0.0),
        ),
        (
            "jacobian_singular_values seed=-1",
            ("seed",),
            lambda: dg.jacobian_singular_values(mlp(), torch.randn(1, 8), seed=-1),
        ),
        (
            "numerical_rank eps_dtype=int32",
            ("eps_dtype", "int32", "float"),
            lambda: dg.numerical_rank(torch.eye(3), eps_dtype=torch.int32),
        ),
        (
            "effective_rank of a complex matrix",
            ("complex", "matrix", "dtype"),
            lambda: dg.effective_rank(torch.eye(3, dtype=torch.complex64)),
        ),
        (
            "write_report of a study never run",
            ("never", "run", "finished"),
            lambda: experiments_api.write_report(_unrun_study(tmp)),
        ),
        ("lr_factor_fn steps_per_epoch=0", ("steps_per_epoch",), lambda: train_api.lr_factor_fn(_config(), 0)),
        ("ZeroReLU inplace='yes'", ("inplace",), lambda: dnn.ZeroReLU(inplace="yes")),
        # ninth batch: reports, registrations and references of another model
        (
            "param_groups with another model's report",
            ("report", "model"),
            lambda: train_api.param_groups(mlp(), 0.1, report=_report_of_another_model()),
        ),
        (
            "measure_diagnostics probe of another width",
            ("probe", "shape", "input"),
            lambda: dg.measure_diagnostics(mlp(), torch.randn(4, 5), 0),
        ),
        (
            "gradient_at_init float targets",
            ("targets", "dtype", "long", "int"),
            lambda: dg.gradient_at_init(mlp(), torch.randn(4, 8), torch.zeros(4)),
        ),
        (
            "signal_propagation targets of another batch",
            ("targets", "batch", "shape"),
            lambda: dg.signal_propagation(mlp(), torch.randn(4, 8), torch.zeros(3, dtype=torch.long)),
        ),
        ("register_dataset of a loader without split", ("split",), _register_loader_without_split),
        (
            "breaking on a layer without parameters",
            ("layers", "1", "parameter", "branch"),
            lambda: make_mechanism("weight_noise", layers=["1"]).attach(mlp()),
        ),
        (
            "initialize roles naming a module of another model",
            ("roles", "nope", "module"),
            lambda: detinit.initialize(mlp(), "zero", roles={"nope.fc": "classifier"}),
        ),
        ("check_zero_one mode='exact'", ("mode", "exact"), lambda: di.check_zero_one(mlp(), mode="exact")),
        (
            "hadamard dtype int8 of n=256",
            ("dtype", "int8", "n"),
            lambda: di.hadamard(256, dtype=torch.int8, normalized=True),
        ),
        (
            "identity_ of a non-square Linear",
            ("identity", "square", "shape", "tensor"),
            lambda: di.identity_(torch.empty(4, 6)),
        ),
        (
            "xavier_uniform_ gain=-1",
            ("gain",),
            lambda: di.xavier_uniform_(torch.empty(4, 4), generator=torch.Generator(), gain=-1.0),
        ),
        (
            "const_avg_ of a 3-D tensor with groups=3 on 4 channels",
            ("groups",),
            lambda: di.const_avg_(torch.empty(4, 4, 3), groups=3),
        ),
        (
            "TrainConfig schedule cosine with warmup longer than epochs",
            ("warmup_epochs",),
            lambda: _config(schedule="cosine", epochs=2, warmup_epochs=3),
        ),
        (
            "study grid over 'out'",
            ("out", "grid"),
            lambda: experiments_api.parse_study({"name": "s", "grid": {"out": ["a", "b"]}}),
        ),
        (
            "study with workers in the file as a str",
            ("workers",),
            lambda: experiments_api.parse_study({"name": "s", "base": {"lr": 0.1}, "workers": "2"}),
        ),
        # tenth batch: options that do nothing on this model, fused roles, parts of a grid
        (
            "initialize end_gain under variant='paper'",
            ("end_gain", "paper"),
            lambda: detinit.initialize(detinit.create_model("resnet20"), "zero", variant="paper", end_gain=30),
        ),
        (
            "initialize output_gain on a model without a tied output",
            ("output_gain", "tied"),
            lambda: detinit.initialize(detinit.create_model("resnet20"), "zero", output_gain=100),
        ),
        ("initialize a ReLU", ("ReLU", "parameters"), lambda: detinit.initialize(nn.ReLU(), "zero")),
        ("initialize end_gain=0.5", ("end_gain",), lambda: detinit.initialize(mlp(), "zero", end_gain=0.5)),
        ("initialize end_reach=nan", ("end_reach",), lambda: detinit.initialize(mlp(), "zero", end_reach=math.nan)),
        (
            "initialize fused role with sizes that do not sum",
            ("attn_qkv", "16", "1,2,3"),
            lambda: detinit.initialize(mlp(), "zero", roles={"0": "attn_qkv:1,2,3"}, example_inputs=_x8()),
        ),
        (
            "initialize fused role with words for sizes",
            ("attn_qkv", "sizes"),
            lambda: detinit.initialize(mlp(), "zero", roles={"0": "attn_qkv:a,b,c"}),
        ),
        ("initialize roles value an int", ("roles",), lambda: detinit.initialize(mlp(), "zero", roles={"0": 3})),
        (
            "initialize example_inputs of another width",
            ("example_inputs", "shape", "2x5"),
            lambda: detinit.initialize(mlp(), "zero", example_inputs=torch.randn(2, 5)),
        ),
        (
            "initialize example_inputs of integers",
            ("example_inputs", "dtype", "Long"),
            lambda: detinit.initialize(mlp(), "zero", example_inputs=torch.ones(2, 8, dtype=torch.long)),
        ),
        ("initialize scheme 'ZERO'", ("ZERO", "scheme"), lambda: detinit.initialize(mlp(), "ZERO")),
        ("initialize idinit tau=nan", ("tau",), lambda: detinit.initialize(mlp(), "idinit", tau=math.nan)),
        ("initialize xavier gain=", ("gain", "xavier"), lambda: detinit.initialize(mlp(), "xavier", gain=2.0)),
        (
            "initialize kaiming nonlinearity=",
            ("nonlinearity", "kaiming"),
            lambda: detinit.initialize(mlp(), "kaiming", nonlinearity="tanh"),
        ),
        (
            "study panel_by of a nested list",
            ("panel_by",),
            lambda: parse_study({"base": {"model": "resnet20"}, "grid": {"epochs": [4, 12]}, "panel_by": [["epochs"]]}),
        ),
        (
            "study panel_by a label it does not group by",
            ("panel_by", "seed"),
            lambda: parse_study({"base": {"model": "resnet20"}, "grid": {"seed": [0, 1]}, "panel_by": "seed"}),
        ),
        (
            "select_runs of a label no run has",
            ("budget", "labels"),
            lambda: experiments_api.select_runs(parse_study({"base": {"model": "resnet20"}}), {"budget": "4"}),
        ),
        (
            "select_runs of a value no run has",
            ("epochs", "7"),
            lambda: experiments_api.select_runs(
                parse_study({"base": {"model": "resnet20"}, "grid": {"epochs": [4, 12]}}), {"epochs": "7"}
            ),
        ),
        ("create_model vit patch 5 on 28", ("patch", "28", "5"), lambda: detinit.create_model("vit", patch=5)),
        (
            "create_model gpt width 30 heads 4",
            ("width", "heads"),
            lambda: detinit.create_model("gpt", width=30, heads=4),
        ),
        (
            "HadamardTransform(4) on 8 channels",
            ("HadamardTransform", "8", "shape"),
            lambda: dnn.HadamardTransform(4)(torch.randn(2, 8, 4, 4)),
        ),
        ("fwht of integers", ("dtype", "int64"), lambda: dnn.fwht(torch.ones(2, 4, dtype=torch.long))),
        ("make_relu('gelu')", ("gelu", "kind"), lambda: dnn.make_relu("gelu")),
        ("weight_noise with std=", ("std", "knobs"), lambda: make_mechanism("weight_noise", std=0.1)),
        ("weight_noise s=-1", ("s",), lambda: make_mechanism("weight_noise", s=-1.0)),
        ("TrainConfig amp='fp8'", ("amp", "fp8"), lambda: _config(amp="fp8")),
        ("TrainConfig parallel='zero3'", ("parallel", "zero3"), lambda: _config(parallel="zero3")),
        ("TrainConfig lr=inf", ("lr",), lambda: _config(lr=math.inf)),
        ("RunDir on a file", ("file", "folder"), lambda: train_api.RunDir(__file__)),
        # eleventh batch: devices, roles of the root, readers of files, dataset and config options
        ("initialize device='cuda' without CUDA", ("device", "cuda"), lambda: _initialize_on_cuda()),
        ("initialize device='meta'", ("device", "meta"), lambda: detinit.initialize(mlp(), "zero", device="meta")),
        ("initialize device='tpu'", ("device", "tpu"), lambda: detinit.initialize(mlp(), "zero", device="tpu")),
        (
            "initialize roles of the root ''",
            ("roles", "model itself"),
            lambda: detinit.initialize(mlp(), "zero", roles={"": "classifier"}),
        ),
        (
            "initialize example of an unknown keyword",
            ("example_inputs", "bogus"),
            lambda: detinit.initialize(mlp(), "zero", example_inputs={"bogus": torch.randn(2, 8)}),
        ),
        (
            "initialize trace=True without an example",
            ("trace", "example_inputs"),
            lambda: detinit.initialize(mlp(), "zero", trace=True),
        ),
        ("initialize trace='yes'", ("trace",), lambda: detinit.initialize(mlp(), "zero", trace="yes")),
        (
            "create_model resnet20 norm='layernorm'",
            ("norm", "layernorm"),
            lambda: detinit.create_model("resnet20", norm="layernorm"),
        ),
        ("create_model resnet20 widht=", ("widht",), lambda: detinit.create_model("resnet20", widht=16)),
        ("create_model gpt vocab_size=10.5", ("vocab_size",), lambda: detinit.create_model("gpt", vocab_size=10.5)),
        (
            "text_dataset of a file's path",
            ("path", "text"),
            lambda: text_dataset(str(_write(tmp / "t.txt", b"ab\n" * 99)), "train"),
        ),
        ("text_dataset split='valid'", ("split", "valid"), lambda: text_dataset("ab" * 200, "valid", context=4)),
        (
            "read_jsonl of a complete line that is not JSON",
            ("line 1", "JSON"),
            lambda: train_api.read_jsonl(_write(tmp / "g.jsonl", b"{not json}\n")),
        ),
        (
            "read_jsonl of a number among records",
            ("line 2",),
            lambda: train_api.read_jsonl(_write(tmp / "n.jsonl", b'{"a": 1}\n3\n{"b": 2}\n')),
        ),
        (
            "load_checkpoint of a plain tensor file",
            ("tensor.pt",),
            lambda: train_api.load_checkpoint(_saved_tensor(tmp)),
        ),
        ("digits split='valid'", ("split", "valid"), lambda: load_dataset("digits", split="valid")),
        ("TrainConfig label_smoothing=1.5", ("label_smoothing",), lambda: _config(label_smoothing=1.5)),
        ("TrainConfig optimizer='lion'", ("optimizer", "lion"), lambda: _config(optimizer="lion")),
        ("TrainConfig schedule='step' without milestones", ("milestones",), lambda: _config(schedule="step")),
        ("TrainConfig compile='max'", ("compile",), lambda: _config(compile="max")),
        ("dropout p=nan", ("p",), lambda: make_mechanism("dropout", p=math.nan)),
        ("effective_rank of a vector", ("shape", "dimensions"), lambda: dg.effective_rank(torch.ones(4))),
        # batch 12 (session 23): file formats and the new study keys
        (
            "read_idx of a type code the format does not define",
            ("0x0F", "type code"),
            lambda: read_idx(_write(tmp / "code.idx", bytes([0, 0, 0x0F, 1, 0, 0, 0, 2]) + bytes(8))),
        ),
        ("write_idx to a folder", ("folder",), lambda: write_idx(_mkdir(tmp / "idx_dir"), np.zeros(3, np.uint8))),
        ("mnist of 32x32 images", ("28x28", "pixels"), lambda: _mnist_of(tmp / "m32", (3, 32, 32), [0, 1, 2])),
        ("mnist labels beyond 9", ("labels", "classes"), lambda: _mnist_of(tmp / "m200", (3, 28, 28), [0, 200, 3])),
        ("mnist split='val'", ("split", "val"), lambda: data_mnist.mnist("val", root=tmp)),
        (
            "cifar10 batch of float pixels",
            ("float32", "uint8"),
            lambda: _cifar_batch(tmp / "cf", np.zeros((2, 3072), np.float32)),
        ),
        ("cifar10 batch that is a list", ("pickle batch",), lambda: _cifar_batch(tmp / "cl", None)),
        ("cifar10 split='validation'", ("split", "validation"), lambda: data_cifar.cifar10("validation", root=tmp)),
        ("imagenet split='val'", ("split", "val"), lambda: data_folder.imagenet("val", root=tmp)),
        ("imagenet image_size=0", ("image_size",), lambda: data_folder.imagenet("train", root=tmp, image_size=0)),
        ("imagenet image_size=7.5", ("image_size",), lambda: data_folder.imagenet("train", root=tmp, image_size=7.5)),
        (
            "study tag value a list",
            ("tag",),
            lambda: parse_study({"variants": [{"name": "a", "tags": {"norm": ["bn", "none"]}}]}),
        ),
        (
            "study tags on one variant only",
            ("tag", "norm"),
            lambda: parse_study({"variants": [{"name": "a", "tags": {"norm": "bn"}}, {"name": "b"}]}),
        ),
        (
            "study panel_by one label twice",
            ("panel_by",),
            lambda: parse_study({"grid": {"seed": [0, 1]}, "group_by": ["seed"], "panel_by": ["seed", "seed"]}),
        ),
        (
            "select_runs a value no run has beside one that matches",
            ("7",),
            lambda: select_runs(parse_study({"grid": {"seed": [0, 1]}}), {"seed": ["0", "7"]}),
        ),
        # batch 13 (session 23): this session's new functions and study keys again
        (
            "complete_scaled_sums_ of a layer the model lacks",
            ("'7'", "module"),
            lambda: complete_scaled_sums_(mlp(), torch.randn(2, 8), [("7", "0", 0.5)]),
        ),
        (
            "complete_scaled_sums_ with a scale of 0",
            ("scale", "0"),
            lambda: complete_scaled_sums_(mlp(), torch.randn(2, 8), [("0", "", 0.0)]),
        ),
        (
            "study tag value NaN",
            ("tag", "nan"),
            lambda: parse_study({"variants": [{"name": "a", "tags": {"x": math.nan}}]}),
        ),
        (
            "study tag with an empty label",
            ("tag",),
            lambda: parse_study({"variants": [{"name": "a", "tags": {"": 1}}]}),
        ),
        # batch 14 (session 24): the end gain's own functions, writers and readers given a folder
        ("EndGain with a gain that is a string", ("gain", "'30'"), lambda: EndGain("30", 1.0)),  # type: ignore[arg-type]
        (
            "install_end_gains_ of a parameter the model lacks",
            ("'9.weight'", "parameter"),
            lambda: install_end_gains_(mlp(), {"9.weight": (3.0, 1.0)}),
        ),
        (
            "install_end_gains_ with a gain and no reach",
            ("'0.bias'", "pair"),
            lambda: install_end_gains_(mlp(), {"0.bias": 3.0}),  # type: ignore[dict-item]
        ),
        ("install_end_gains_ of a list", ("gains", "mapping"), lambda: install_end_gains_(mlp(), ["0.bias"])),  # type: ignore[arg-type]
        ("append_jsonl into a folder", ("append_jsonl", "folder"), lambda: train_api.append_jsonl(tmp, {"x": 1})),
        ("write_json onto a folder", (str(tmp), "folder"), lambda: train_api.write_json(tmp, {"x": 1})),
        ("load_checkpoint of a folder", ("checkpoint", "folder"), lambda: train_api.load_checkpoint(tmp)),
        # batch 15 (session 24, after batch 14's fixes): the two public modules it added
        ("check_output_file of an int", ("5", "path"), lambda: atomic.check_output_file(5)),  # type: ignore[arg-type]
        ("atomic_write with bytes for write", ("write", "callable"), lambda: atomic.atomic_write(tmp / "w", b"x")),  # type: ignore[arg-type]
        (
            "atomic_write under a file",
            ("afile", "is a file"),
            lambda: atomic.atomic_write(_write(tmp / "afile", b"x") / "x", lambda f: f.write(b"x")),
        ),
        ("argtypes.pair of an int", ("text", "str"), lambda: argtypes.pair(3)),  # type: ignore[arg-type]
        # batch 16 (session 25): what session 24 added (branch_zero, the mixing fill) and the tensor-level modules
        ("hadamard_mixing_ gain a string", ("gain",), lambda: hadamard_mixing_(torch.empty(4, 4), gain="2")),  # type: ignore[arg-type]
        ("hadamard_mixing_ gain nan", ("gain",), lambda: hadamard_mixing_(torch.empty(4, 4), gain=math.nan)),
        ("hadamard_mixing_ reverse='yes'", ("reverse",), lambda: hadamard_mixing_(torch.empty(4, 4), reverse="yes")),  # type: ignore[arg-type]
        ("hadamard_mixing_ of a 1-D tensor", ("1-D", "shape"), lambda: hadamard_mixing_(torch.empty(4))),
        ("hadamard_mixing_ of a 0x0 tensor", ("zero-sized",), lambda: hadamard_mixing_(torch.empty(0, 0))),
        (
            "hadamard_mixing_ of an int tensor",
            ("int64",),
            lambda: hadamard_mixing_(torch.empty(4, 4, dtype=torch.int64)),
        ),
        (
            "hadamard_mixing_ of overlapping memory",
            ("share memory",),
            lambda: hadamard_mixing_(torch.zeros(64).as_strided((4, 4), (1, 1))),
        ),
        (
            "hadamard_mixing_ of a complex tensor",
            ("complex64",),
            lambda: hadamard_mixing_(torch.empty(4, 4, dtype=torch.complex64)),
        ),
        (
            "hadamard_mixing_ of a 3x3 weight",
            ("3 outputs", "power of two"),
            lambda: hadamard_mixing_(torch.empty(3, 3)),
        ),
        (
            "hadamard_mixing_rows_ past the end",
            ("row 3", "4 rows"),
            lambda: hadamard_mixing_rows_(torch.empty(2, 4), 3, 4),
        ),
        ("hadamard_mixing_rows_ start -1", ("start",), lambda: hadamard_mixing_rows_(torch.empty(2, 4), -1, 4)),
        ("hadamard_mixing_rows_ start a float", ("start",), lambda: hadamard_mixing_rows_(torch.empty(2, 4), 0.5, 4)),  # type: ignore[arg-type]
        (
            "hadamard_mixing_rows_ total not its width",
            ("8 outputs",),
            lambda: hadamard_mixing_rows_(torch.empty(2, 4), 0, 8),
        ),
        ("zero_embedding_rows_ total a string", ("total",), lambda: zero_embedding_rows_(torch.empty(2, 4), 0, "4")),  # type: ignore[arg-type]
        (
            "fill_sylvester_entries_ rows of floats",
            ("rows", "float32"),
            lambda: fill_sylvester_entries_(torch.empty(2, 2), torch.tensor([0.5, 1.0]), torch.arange(2)),
        ),
        (
            "fill_sylvester_entries_ more rows than the matrix",
            ("3 rows", "(2, 2)"),
            lambda: fill_sylvester_entries_(torch.empty(2, 2), torch.tensor([0, 1, 2]), torch.arange(2)),
        ),
        (
            "fill_sylvester_entries_ row -1",
            ("rows", ">= 0"),
            lambda: fill_sylvester_entries_(torch.empty(1, 2), torch.tensor([-1]), torch.arange(2)),
        ),
        (
            "branch_zero='gate' on a model without gates",
            ("gate",),
            lambda: di.initialize(mlp(), "zero", branch_zero="gate"),
        ),
        (
            "branch_zero='gate' on a ResNet-20 with BatchNorm",
            ("gates",),
            lambda: di.initialize(models_api.create_model("resnet20"), "zero", branch_zero="gate"),
        ),
        (
            "branch_zero='gate' with end_gain on the norm-free ResNet-20",
            ("end_gain",),
            lambda: di.initialize(
                models_api.create_model("resnet20", norm="none"), "zero", branch_zero="gate", end_gain=3.0
            ),
        ),
        ("branch_zero='GATE'", ("branch_zero", "'GATE'"), lambda: di.get_scheme("zero", branch_zero="GATE")),
        ("branch_zero=True", ("branch_zero",), lambda: di.get_scheme("zero", branch_zero=True)),
        (
            "partial_identity with branch_zero='gate'",
            ("hadamard",),
            lambda: di.get_scheme("partial_identity", branch_zero="gate"),
        ),
        (
            "partial_identity on the norm-free ResNet-20: no Hadamard block",
            ("hadamard",),
            lambda: _hadamard_rules_under_partial_identity(),
        ),
        (
            "branch_zero='gate' on GPT",
            ("gates", "GPT"),
            lambda: di.initialize(models_api.create_model("gpt"), "zero", branch_zero="gate"),
        ),
        ("argtypes.positive_int('1e3')", ("1e3",), lambda: argtypes.positive_int("1e3")),
        ("argtypes.positive_float('inf')", ("inf",), lambda: argtypes.positive_float("inf")),
        (
            "argtypes.random_seed 2**32 (seed 0's draws)",
            ("4294967296", "2**32"),
            lambda: argtypes.random_seed(str(2**32)),
        ),
        ("argtypes.output_file('')", ("empty",), lambda: argtypes.output_file("")),
        ("argtypes.pair('1,2,3')", ("1,2,3",), lambda: argtypes.pair("1,2,3")),
        # batch 17 (session 25, after batch 16's fixes): the new taps option and the tensor modules' helpers
        ("hadamard_mixing_ taps='ALL'", ("taps",), lambda: hadamard_mixing_(torch.empty(4, 4, 3, 3), taps="ALL")),
        ("hadamard_mixing_ taps=None", ("taps",), lambda: hadamard_mixing_(torch.empty(4, 4), taps=None)),  # type: ignore[arg-type]
        (
            "fill_sylvester_entries_ bool rows",
            ("torch.bool",),
            lambda: fill_sylvester_entries_(torch.empty(2, 2), torch.tensor([True, False]), torch.arange(2)),
        ),
        (
            "fill_sylvester_entries_ uint8 rows (torch reads them as a mask)",
            ("torch.uint8",),
            lambda: fill_sylvester_entries_(torch.empty(1, 2), torch.tensor([5], dtype=torch.uint8), torch.arange(2)),
        ),
        ("fill_sylvester_entries_ row 2**40 (no 2**40-row scratch)", ("refused",), _far_sylvester_row),
        (
            "unfolded_kernel of columns that are no taps' multiple",
            ("(2, 5)", "kernel"),
            lambda: unfolded_kernel(torch.eye(2, 5), (3,)),
        ),
        ("unfolded_kernel of a 1-D matrix", ("(6,)", "matrix"), lambda: unfolded_kernel(torch.ones(6), (3,))),
        ("tap_order of a kernel with a 0", ("kernel_size",), lambda: tap_order((3, 0))),
        ("embedding_row_indices read_width 0", ("read_width",), lambda: embedding_row_indices(8, read_width=0)),
        *_batch_18(tmp),
    ]
    return cases


def _batch_18(tmp: Path) -> list[Case]:
    """Batch 18 (session 26, written before its fixes): arguments of the right type and the wrong shape or size,
    across the older public modules (diagnostics, fills, row forms, ``detinit.nn``, data helpers, models)."""
    g = torch.Generator().manual_seed(0)
    create, x7 = models_api.create_model, torch.ones(2, 7)
    return [
        ("effective_rank of a 1-D tensor", ("(5,)", "matrix"), lambda: dg.effective_rank(torch.ones(5))),
        ("effective_rank of an empty matrix", ("(0, 3)",), lambda: dg.effective_rank(torch.zeros(0, 3))),
        ("numerical_rank tol=nan", ("tol",), lambda: dg.numerical_rank(torch.ones(3, 3), tol=math.nan)),
        ("numerical_rank tol=-1", ("tol",), lambda: dg.numerical_rank(torch.ones(3, 3), tol=-1.0)),
        ("participation_ratio of a 1-D tensor", ("(5,)",), lambda: dg.participation_ratio(torch.ones(5))),
        ("participation_ratio of an empty batch", ("(0, 3)",), lambda: dg.participation_ratio(torch.ones(0, 3))),
        ("count_dead channel_dim=5 of a 2-D batch", ("channel_dim",), lambda: dg.count_dead(torch.ones(4, 3), 5)),
        (
            "channel_stats channel_dim=-3 of a 2-D batch",
            ("channel_dim",),
            lambda: dg.channel_stats(torch.ones(4, 3), -3),
        ),
        ("count_dead rtol=-1", ("rtol",), lambda: dg.count_dead(torch.ones(4, 3), rtol=-1.0)),
        ("mean_row_correlation of one row (documented: 1)", ("refused",), lambda: _one_row_correlation()),
        ("jacobian_singular_values inputs 7 wide for 8", ("(2, 7)",), lambda: dg.jacobian_singular_values(mlp(), x7)),
        (
            "signal_propagation targets of another batch",
            ("targets", "(3,)"),
            lambda: dg.signal_propagation(mlp(), torch.ones(2, 8), torch.zeros(3, dtype=torch.long)),
        ),
        (
            "gradient_at_init target class 5 of 4 outputs",
            ("targets", "(2, 4)"),
            lambda: dg.gradient_at_init(mlp(), torch.ones(2, 8), torch.tensor([0, 5])),
        ),
        (
            "gradient_at_init steps=0",
            ("steps",),
            lambda: dg.gradient_at_init(mlp(), _x8(), torch.zeros(2).long(), steps=0),
        ),
        (
            "dead_channels on an empty batch",
            ("dead_channels", "(0, 8)"),
            lambda: dg.dead_channels(mlp(), torch.ones(0, 8)),
        ),
        ("feature_diversity inputs 7 wide for 8", ("(2, 7)",), lambda: dg.feature_diversity(mlp(), x7)),
        ("zero_start_promises inputs 7 wide for 8", ("(2, 7)",), lambda: dg.zero_start_promises(mlp(), x7)),
        ("rank_table tol=-1", ("tol",), lambda: dg.rank_table(mlp(), tol=-1.0)),
        ("fwht dim=3 of a 2-D tensor", ("dim",), lambda: dnn.fwht(torch.ones(4, 8), dim=3)),
        ("HadamardTransform(8) on 6 channels", ("6",), lambda: dnn.HadamardTransform(8)(torch.ones(2, 6, 4, 4))),
        ("HadamardTransform on a 1-D input", ("(8,)",), lambda: dnn.HadamardTransform(8)(torch.ones(8))),
        ("HadamardTransform(0)", ("channels",), lambda: dnn.HadamardTransform(0)),
        ("ChannelPad(8, 4): fewer out than in", ("out_channels",), lambda: dnn.ChannelPad(8, 4)),
        ("ChannelPad(4, 8) on 5 channels", ("(2, 5, 4, 4)",), lambda: dnn.ChannelPad(4, 8)(torch.ones(2, 5, 4, 4))),
        ("ChannelPad on a 1-D input", ("(4,)",), lambda: dnn.ChannelPad(4, 8)(torch.ones(4))),
        ("ChannelPad stride 0", ("stride",), lambda: dnn.ChannelPad(4, 8, stride=0)),
        (
            "cross_entropy targets of another batch",
            ("targets", "(3,)"),
            lambda: dnn.cross_entropy(torch.ones(2, 3), torch.arange(3)),
        ),
        (
            "flatten_predictions of another sequence length",
            ("targets", "(2, 4)"),
            lambda: dnn.flatten_predictions(torch.ones(2, 5, 3), torch.ones(2, 4, dtype=torch.long)),
        ),
        ("power_of_two_blocks(0)", ("n",), lambda: dnn.power_of_two_blocks(0)),
        ("fans of a 1-D tensor", ("(5,)",), lambda: di.fans(torch.ones(5))),
        ("fans groups=8 of 4 channels", ("groups",), lambda: di.fans(torch.empty(4, 4, 3), groups=8)),
        ("identity_ groups=3 of 4 channels", ("groups",), lambda: di.identity_(torch.empty(4, 4, 3, 3), groups=3)),
        ("identity_ groups=0", ("groups",), lambda: di.identity_(torch.empty(4, 4, 3), groups=0)),
        (
            "identity_ transposed groups=2 of 3 in",
            ("groups",),
            lambda: di.identity_(torch.empty(3, 2, 3), groups=2, transposed=True),
        ),
        ("partial_identity_ of a 1-D tensor", ("(6,)",), lambda: di.partial_identity_(torch.empty(6))),
        ("zero_ of a (0, 4) tensor", ("(0, 4)",), lambda: di.zero_(torch.empty(0, 4))),
        ("zero_ of a kernel of size 0", ("(4, 4, 0)",), lambda: di.zero_(torch.empty(4, 4, 0))),
        ("zero_ groups=2 on a Linear weight", ("groups",), lambda: di.zero_(torch.empty(4, 4), groups=2)),
        (
            "const_avg_ transposed on a Linear weight",
            ("transposed",),
            lambda: di.const_avg_(torch.empty(4, 4), transposed=True),
        ),
        ("idinit_ groups=2 of 3 outputs", ("groups",), lambda: di.idinit_(torch.empty(3, 4, 2), groups=2)),
        ("orthogonal_ of a 1-D tensor", ("(5,)",), lambda: di.orthogonal_(torch.empty(5), generator=g)),
        (
            "kaiming_normal_ groups=3 of 4",
            ("groups",),
            lambda: di.kaiming_normal_(torch.empty(4, 4), generator=g, groups=3),
        ),
        ("xavier_uniform_ of a 1-D tensor", ("(5,)",), lambda: di.xavier_uniform_(torch.empty(5), generator=g)),
        ("fill_sylvester_ of a 3-D tensor", ("(2, 2, 2)",), lambda: di.fill_sylvester_(torch.empty(2, 2, 2))),
        ("zero_unfolded_ groups=3 of 4 rows", ("groups",), lambda: zero_unfolded_(torch.empty(4, 2, 3, 3), groups=3)),
        (
            "zero_embedding_ of a table 0 wide",
            ("zero_embedding_", "(8, 0)"),
            lambda: zero_embedding_(torch.empty(8, 0)),
        ),
        (
            "zero_embedding_ of a table of 0 tokens",
            ("zero_embedding_", "(0, 4)"),
            lambda: zero_embedding_(torch.empty(0, 4)),
        ),
        ("zero_embedding_ of a 3-D table", ("(4, 4, 2)",), lambda: zero_embedding_(torch.empty(4, 4, 2))),
        ("zero_singular_values(0, 4)", ("out_features",), lambda: di.zero_singular_values(0, 4)),
        ("hadamard(3)", ("3",), lambda: di.hadamard(3)),
        ("hadamard_scale(0)", ("out_features",), lambda: di.hadamard_scale(0)),
        (
            "initialize example_inputs 7 wide for 8",
            ("example_inputs", "(2, 7)"),
            lambda: di.initialize(mlp(), "zero", example_inputs=x7),
        ),
        # the row forms: the whole fills' layout contract on a block, and the groups/transposed combinations
        ("zero_rows_ groups=2 on a 2-D block", ("groups",), lambda: zero_rows_(torch.empty(2, 4), 0, 4, groups=2)),
        (
            "partial_identity_rows_ of a kernel of size 0",
            ("(2, 4, 0)",),
            lambda: partial_identity_rows_(torch.empty(2, 4, 0), 0, 4),
        ),
        (
            "partial_identity_rows_ transposed, 6 inputs in groups of 4",
            ("groups",),
            lambda: partial_identity_rows_(torch.empty(2, 1, 3), 0, 6, groups=4, transposed=True),
        ),
        (
            "const_avg_rows_ 3 rows in groups of 2",
            ("groups",),
            lambda: const_avg_rows_(torch.empty(1, 2, 3), 0, 3, groups=2),
        ),
        (
            "zero_unfolded_rows_ 5 rows in groups of 2",
            ("groups",),
            lambda: zero_unfolded_rows_(torch.empty(2, 3, 3, 3), 0, 5, groups=2),
        ),
        ("zero_embedding_rows_ of a block 0 wide", ("(8, 0)",), lambda: zero_embedding_rows_(torch.empty(8, 0), 0, 8)),
        (
            "hadamard_mixing_rows_ 4 rows of 6 columns",
            ("6 inputs",),
            lambda: hadamard_mixing_rows_(torch.empty(2, 6), 0, 4),
        ),
        (
            "zero_rows_ of a 2**40-row weight (torch's allocator)",
            (TORCH, "allocate"),
            lambda: zero_rows_(torch.empty(2, 4), 0, 2**40),
        ),
        (
            "zero_singular_values(2**40, 4) (torch's allocator)",
            (TORCH, "allocate"),
            lambda: di.zero_singular_values(2**40, 4),
        ),
        ("hadamard_columns(4, 2**40) (torch's allocator)", (TORCH, "allocate"), lambda: hadamard_columns(4, 2**40)),
        ("embedding_collisions of 0 tokens", ("num_embeddings",), lambda: embedding_collisions(0, 4)),
        # the models, at construction and on inputs that do not fit them
        ("mnist_mlp image_size 0", ("image_size",), lambda: create("mnist_mlp", image_size=0)),
        ("deep_mlp depth 0", ("depth",), lambda: create("deep_mlp", depth=0)),
        ("deep_mlp width 0", ("width",), lambda: create("deep_mlp", width=0)),
        ("vit image 30 with patch 4", ("patch",), lambda: create("vit", image_size=30, patch=4)),
        ("vit on 32x32 images, built for 28", ("32",), lambda: create("vit")(torch.ones(1, 1, 32, 32))),
        ("gpt on 16 tokens, context 8", ("context",), lambda: create("gpt", context=8)(torch.zeros(1, 16).long())),
        ("gpt on token 300 of 256", ("[0, 256)",), lambda: create("gpt")(torch.full((1, 4), 300))),
        ("gpt on float tokens", ("float",), lambda: create("gpt")(torch.zeros(1, 4))),
        ("gpt heads 3 of width 128", ("heads",), lambda: create("gpt", heads=3)),
        ("gpt depth 0", ("depth",), lambda: create("gpt", depth=0)),
        ("constnet widen 0", ("widen",), lambda: create("constnet", widen=0)),
        ("constnet depth 15", ("depth",), lambda: create("constnet", depth=15)),
        ("leakynet widen -1", ("widen",), lambda: create("leakynet", widen=-1)),
        ("resnet18 in_chans 0", ("in_chans",), lambda: create("resnet18", in_chans=0)),
        (
            "mnist_mlp on 32x32 images (torch's matmul)",
            (TORCH, "784"),
            lambda: create("mnist_mlp")(torch.ones(1, 1, 32, 32)),
        ),
        (
            "resnet20 of 1 channel on 3 (torch's conv)",
            (TORCH, "channels"),
            lambda: create("resnet20", in_chans=1)(torch.ones(1, 3, 28, 28)),
        ),
        # the data helpers
        (
            "write_idx of float16",
            ("float16",),
            lambda: data_api.write_idx(tmp / "f16.idx", np.ones((2, 3), np.float16)),
        ),
        ("to_float mean of 1 for 3 std", ("mean", "std"), lambda: data_api.to_float(_u8(3), (0.5,), (0.5, 0.5, 0.5))),
        ("to_float std 0", ("std",), lambda: data_api.to_float(_u8(1), (0.5,), (0.0,))),
        ("random_crop_flip pad=-1", ("pad",), lambda: data_api.random_crop_flip(torch.ones(2, 3, 4, 4), g, pad=-1)),
        ("random_crop_flip of a 3-D batch", ("(3, 4, 4)",), lambda: data_api.random_crop_flip(torch.ones(3, 4, 4), g)),
        ("channel_stats of a 1-D tensor", ("(5,)",), lambda: data_api.channel_stats(torch.ones(5))),
        ("probe_batch n=0", ("n",), lambda: data_api.probe_batch(_tokens(), n=0)),
        (
            "text_dataset shorter than its context",
            ("context",),
            lambda: data_api.text_dataset("abc", "train", context=10),
        ),
        (
            "text_dataset val_fraction=1",
            ("val_fraction",),
            lambda: data_api.text_dataset("ab" * 90, "train", val_fraction=1.0),
        ),
        ("derived_seed epoch -1", ("epoch",), lambda: data_api.derived_seed(0, -1)),
        ("sample_batch n=0", ("n",), lambda: data_api.sample_batch("fashion_mnist", 0, tokens=False)),
        ("make_batches batch_size 0", ("batch_size",), lambda: data_api.make_batches(_tokens(), 0)),
        ("branch_outputs layers naming no module", ("nope",), lambda: branch_outputs(mlp(), layers=["nope"])),
        ("param_groups lr=-1", ("lr",), lambda: train_api.param_groups(mlp(), -1.0)),
        (
            "lr_factor_fn steps_per_epoch=0",
            ("steps_per_epoch",),
            lambda: train_api.lr_factor_fn(train_api.TrainConfig(), 0),
        ),
        ("constnet_milestones(0)", ("epochs",), lambda: train_api.constnet_milestones(0)),
        *_batch_19(),
        *_batch_20(tmp),
    ]


def _batch_19() -> list[Case]:
    """Batch 19 (session 26, after batch 18's fixes): callables that return the wrong thing, dtypes, devices,
    roles, mechanisms' knobs and options of the right type that must agree with the model or the data."""
    create, targets = models_api.create_model, torch.zeros(2).long()
    gpt = lambda: create("gpt", context=8, depth=1, width=16, heads=2)  # noqa: E731
    return [
        (
            "gradient_at_init loss_fn returning a loss per example",
            ("loss_fn", "(2,)"),
            lambda: dg.gradient_at_init(mlp(), _x8(), targets, loss_fn=lambda a, b: a.sum(1)),
        ),
        (
            "gradient_at_init loss_fn returning a string",
            ("loss_fn",),
            lambda: dg.gradient_at_init(mlp(), _x8(), targets, loss_fn=lambda a, b: "x"),
        ),
        ("make_mechanism dropout p=1.5", ("p",), lambda: make_mechanism("dropout", p=1.5)),
        ("make_mechanism weight_noise s=-1", ("s=",), lambda: make_mechanism("weight_noise", s=-1.0)),
        (
            "make_mechanism gradient_noise sigma=nan",
            ("sigma",),
            lambda: make_mechanism("gradient_noise", sigma=math.nan),
        ),
        (
            "activation_noise layers naming no module",
            ("nope",),
            lambda: make_mechanism("activation_noise", sigma=0.1, layers=["nope"]).attach(create("resnet20")),
        ),
        ("load_dataset synthetic subset 0", ("subset",), lambda: data_api.load_dataset("synthetic", subset=0)),
        ("load_dataset synthetic subset 10**9", ("subset",), lambda: data_api.load_dataset("synthetic", subset=10**9)),
        ("text_dataset context 0", ("context",), lambda: data_api.text_dataset("abc" * 50, "train", context=0)),
        ("make_batches shuffle='yes'", ("shuffle",), lambda: data_api.make_batches(_tokens(), 4, shuffle="yes")),
        ("initialize device cuda:5 without CUDA", ("cuda",), lambda: di.initialize(mlp(), "zero", device="cuda:5")),
        (
            "HadamardTransform on int32",
            ("int32",),
            lambda: dnn.HadamardTransform(8)(torch.ones(2, 8, dtype=torch.int32)),
        ),
        ("check_zero_one mode 'bits'", ("mode",), lambda: di.check_zero_one(mlp(), mode="bits")),
        (
            "feature_diversity at='blocks' of an MLP",
            ("blocks",),
            lambda: dg.feature_diversity(mlp(), _x8(), at="blocks"),
        ),
        (
            "dead_channels channel_dim 3 of an MLP",
            ("channel_dim",),
            lambda: dg.dead_channels(mlp(), _x8(), channel_dim=3),
        ),
        (
            "signal_propagation of a GPT, targets of 6 tokens for 8",
            ("targets", "(2, 6)"),
            lambda: dg.signal_propagation(gpt(), torch.zeros(2, 8).long(), torch.zeros(2, 6).long()),
        ),
        (
            "initialize roles naming a parameter",
            ("fc.weight",),
            lambda: di.initialize(create("resnet20"), "zero", roles={"fc.weight": "classifier"}),
        ),
        (
            "initialize roles of a misspelt role",
            ("clasifier",),
            lambda: di.initialize(create("resnet20"), "zero", roles={"fc": "clasifier"}),
        ),
        (
            "initialize example_inputs of 1 channel for 3",
            ("(2, 1, 28, 28)",),
            lambda: di.initialize(create("resnet20"), "zero", example_inputs=torch.zeros(2, 1, 28, 28)),
        ),
        ("param_groups lr nan", ("lr",), lambda: train_api.param_groups(mlp(), math.nan)),
    ]


def _batch_20(tmp: Path) -> list[Case]:
    """Batch 20 (session 26, after batch 19's fixes): the modules the earlier batches reached least -- study tables
    and files, what a checkpoint or a JSON file may hold, the model registry's decorator -- and public dataclasses
    built by hand (a report, a study, a run, a mechanism)."""
    base = {"data": "synthetic", "model": "mnist_mlp", "epochs": 1}
    study = lambda **kw: experiments_api.parse_study({"name": "s", "base": base, **kw}, out=tmp / "st20")  # noqa: E731
    synthetic = lambda: data_api.load_dataset("synthetic", subset=8)  # noqa: E731
    return [
        ("mean_std digits -1", ("digits",), lambda: experiments_api.mean_std([1.0, 2.0], digits=-1)),
        ("mean_std scale 0", ("scale",), lambda: experiments_api.mean_std([1.0], scale=0.0)),
        (
            "append_jsonl a row holding a tensor",
            ("Tensor",),
            lambda: train_api.append_jsonl(tmp / "b.jsonl", {"x": _x8()}),
        ),
        (
            "write_json keys 1 and '1' (one value lost)",
            ("'1'",),
            lambda: train_api.write_json(tmp / "c.json", {1: 2, "1": 3}),
        ),
        ("save_checkpoint of a function", ("state['f']",), lambda: train_api.save_checkpoint(tmp / "e.pt", {"f": len})),
        ("save_checkpoint of a module", ("state['m']",), lambda: train_api.save_checkpoint(tmp / "f.pt", {"m": mlp()})),
        ("RunDir of a file", ("file",), lambda: train_api.RunDir(Path(__file__))),
        (
            "select_runs only an unknown label",
            ("lrr",),
            lambda: experiments_api.select_runs(study(grid={"seed": [0, 1]}), {"lrr": 0}),
        ),
        ("parse_study group_by an unknown label", ("lrr",), lambda: study(grid={"seed": [0]}, group_by=["lrr"])),
        ("parse_study seeds of floats", ("seed",), lambda: study(grid={"seed": [0.5]})),
        ("parse_study a variant named ''", ("name",), lambda: study(variants=[{"name": ""}])),
        (
            "parse_study two variants of one name",
            ("variant=a",),
            lambda: study(variants=[{"name": "a"}, {"name": "a"}]),
        ),
        ("parse_study seed 0 twice", ("seed=0",), lambda: study(grid={"seed": [0, 0]})),
        (
            "parse_study base lr a string",
            ("lr",),
            lambda: experiments_api.parse_study({"name": "s", "base": {"lr": "0.1"}}),
        ),
        ("load_study of a folder", ("directory",), lambda: experiments_api.load_study(tmp)),
        ("check_output_dir of ''", ("empty",), lambda: atomic.check_output_dir("")),
        (
            "register_model of a non-callable",
            ("builder",),
            lambda: models_api.register_model("x_model", "zero", "d")(5),
        ),
        (
            "register_model of a name taken",
            ("resnet20",),
            lambda: models_api.register_model("resnet20", "zero", "d")(mlp),
        ),
        (
            "register_model of an unknown scheme",
            ("zerro",),
            lambda: models_api.register_model("x_model2", "zerro", "d"),
        ),
        ("create_model seed -1", ("seed",), lambda: models_api.create_model("mnist_mlp", seed=-1)),
        ("create_model init unknown", ("zerro",), lambda: models_api.create_model("mnist_mlp", init="zerro")),
        ("data_kwargs_for a shape that is a str", ("shape",), lambda: models_api.data_kwargs_for("mnist_mlp", "nope")),
        ("Batches pad -1", ("pad",), lambda: Batches(synthetic(), 4, pad=-1)),
        ("Batches an unknown option", ("shufle",), lambda: Batches(synthetic(), 4, shufle=True)),
        ("model_entry of a typo", ("resnet21",), lambda: models_api.model_entry("resnet21")),
        (
            "initialize strict on a module no rule knows",
            ("Bilinear",),
            lambda: di.initialize(nn.Sequential(nn.Bilinear(3, 3, 2)), "zero", strict=True),
        ),
        (
            "get_scheme of a Scheme with options",
            ("options",),
            lambda: di.get_scheme(di.get_scheme("zero"), variant="paper"),
        ),
        ("InitReport records of ints", ("records",), lambda: di.InitReport("zero", {}, 0, records=[1])),
        ("InitReport options a list", ("options",), lambda: di.InitReport("zero", [], 0)),
        ("RunSpec config a dict", ("config",), lambda: experiments_api.RunSpec("r", {}, {"lr": 0.1})),
        ("Study runs of str", ("runs",), lambda: experiments_api.Study("s", Path("runs/s"), ["a"], [])),
        ("Study workers 0", ("workers",), lambda: experiments_api.Study("s", Path("runs/s"), [], [], workers=0)),
        ("Mechanism knobs a list", ("knobs",), lambda: Mechanism("dropout", knobs=[0.1])),
        ("Mechanism dropout p=2 by hand", ("p=2",), lambda: Mechanism("dropout", knobs={"p": 2.0})),
        ("Mechanism of an unknown name", ("dropuot",), lambda: Mechanism("dropuot")),
        *_batch_21(),
        *_batch_22(tmp),
        *_batch_23(),
        *_batch_24(tmp),
    ]


def _batch_22(tmp: Path) -> list[Case]:
    """Batch 22 (session 26, after batch 21's fixes): scheme options, devices, run-directory records, the meta
    device in the checks, options of the right type that must agree with the model or the data."""
    create = models_api.create_model
    config = train_api.TrainConfig(model="mnist_mlp", data="synthetic")
    return [
        (
            "build_model of token windows for an image model",
            ("image model",),
            lambda: train_api.build_model(config, _tokens()),
        ),
        (
            "RunDir.set_status of an unknown status",
            ("status",),
            lambda: train_api.RunDir(tmp / "r1").set_status({}, "bogus"),
        ),
        (
            "RunDir.append_epoch of a row without its epoch",
            ("'epoch'",),
            lambda: train_api.RunDir(tmp / "r2").append_epoch({"loss": 1.0}),
        ),
        (
            "make_batches device cuda without CUDA",
            ("cuda",),
            lambda: data_api.make_batches(_tokens(), 4, device="cuda"),
        ),
        (
            "Batches device meta",
            ("meta",),
            lambda: Batches(data_api.load_dataset("synthetic", subset=8), 4, device="meta"),
        ),
        ("epoch_generator epoch -1", ("epoch",), lambda: data_api.epoch_generator(0, -1)),
        ("text_dataset tokenizer bpe", ("bpe",), lambda: data_api.text_dataset("abc" * 50, "train", tokenizer="bpe")),
        (
            "sample_batch of tokens, vocab_size 0",
            ("vocab_size",),
            lambda: data_api.sample_batch("kjv", 4, tokens=True, vocab_size=0),
        ),
        ("initialize idinit tau -1", ("tau",), lambda: di.initialize(mlp(), "idinit", tau=-1.0)),
        ("initialize constnet c 2", ("c=",), lambda: di.initialize(create("constnet_16_1"), "constnet", c=2.0)),
        (
            "initialize orthogonal gain 0 (no such option)",
            ("gain",),
            lambda: di.initialize(mlp(), "orthogonal", gain=0.0),
        ),
        ("initialize kaiming mode fan_avg", ("fan_avg",), lambda: di.initialize(mlp(), "kaiming", mode="fan_avg")),
        (
            "initialize kaiming nonlinearity (no such option)",
            ("nonlinearity",),
            lambda: di.initialize(mlp(), "kaiming", nonlinearity="gelu"),
        ),
        ("initialize fixup on an MLP", ("residual",), lambda: di.initialize(mlp(), "fixup")),
        ("initialize rezero on an MLP", ("gates",), lambda: di.initialize(mlp(), "rezero")),
        ("create_model vit depth 0", ("depth",), lambda: create("vit", depth=0)),
        ("create_model vit heads 5", ("heads",), lambda: create("vit", heads=5)),
        ("create_model zero_resnet20 num_classes 0", ("num_classes",), lambda: create("zero_resnet20", num_classes=0)),
        ("fwht normalized 'yes'", ("normalized",), lambda: dnn.fwht(torch.ones(2, 8), normalized="yes")),
        ("make_relu 'leaky'", ("leaky",), lambda: dnn.make_relu("leaky")),
        (
            "zero_start_promises tolerance -1",
            ("tolerance",),
            lambda: dg.zero_start_promises(mlp(), _x8(), tolerance=-1.0),
        ),
        ("weight_symmetry max_rows 1", ("max_rows",), lambda: dg.weight_symmetry(mlp(), max_rows=1)),
        ("signal_at_init float targets", ("targets",), lambda: dg.signal_at_init(mlp(), _x8(), torch.zeros(2))),
        ("check_zero_one of a meta model", ("meta",), lambda: di.check_zero_one(nn.Linear(2, 2, device="meta"))),
        ("idinit_ tau nan", ("tau",), lambda: di.idinit_(torch.empty(4, 4), tau=math.nan)),
        ("load_dataset digits split val", ("val",), lambda: data_api.load_dataset("digits", "val")),
        (
            "load_dataset mnist1d with a misspelt option",
            ("nosie",),
            lambda: data_api.load_dataset("mnist1d", "train", nosie=0.1),
        ),
    ]


# Batch 23's models: each implements one hook of detinit.hooks' protocol wrongly.
class _Head(nn.Sequential):
    def __init__(self) -> None:
        super().__init__(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def _with(attribute: str, value: object) -> nn.Module:
    """``_Head()`` with ``attribute`` set on the instance (a hook or flag given as data)."""
    model = _Head()
    model.__dict__[attribute] = value
    return model


class _FeaturesOf(_Head):
    def forward_features(self, x: torch.Tensor) -> object:
        return x, x


class _FlagOnly(nn.Module):
    is_residual_gate = True  # no detinit_init_: nothing would set it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class _FlagNo(nn.Linear):
    is_residual_gate = "no"


class _GatedBlock(nn.Module):
    def __init__(self, gate: nn.Module) -> None:
        super().__init__()
        self.fc1, self.fc2, self.gate = nn.Linear(4, 4), nn.Linear(4, 4), gate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gate(self.fc2(self.fc1(x)))

    def detinit_roles(self) -> dict[str, str]:
        return {"fc1": "branch", "fc2": "branch_last"}


class _RolesOfItself(nn.Linear):
    def detinit_roles(self) -> dict[str, str]:
        return {"": "branch"}


class _RolesWithAnArgument(nn.Linear):
    def detinit_roles(self, extra: object) -> dict[str, str]:
        return {}


class _InitWithoutArguments(nn.Linear):
    def detinit_init_(self) -> None:
        return None


class _ReasonsForAStranger(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(3))

    def detinit_init_(self, scheme: object, generator: torch.Generator) -> dict[str, str]:
        return {"v": "a parameter the module does not have"}


def _batch_23() -> list[Case]:
    """Batch 23 (session 27): the modules reached least -- the hook protocol a user's model implements
    (``detinit.hooks``), ``Registry`` -- and options that must agree with each other."""
    from detinit.diagnostics.inspect import inspect_model
    from detinit.registry import Registry

    colours = Registry("colour")
    labels = torch.zeros(2, dtype=torch.long)
    synthetic = data_api.load_dataset("synthetic", subset=8)
    config = train_api.TrainConfig
    return [
        ("detinit_channel_dim 'x'", ("detinit_channel_dim",), lambda: dg.feature_diversity(_with(CHANNEL, "x"), _x8())),
        ("detinit_channel_dim 1.5", ("detinit_channel_dim",), lambda: dg.feature_diversity(_with(CHANNEL, 1.5), _x8())),
        ("detinit_channel_dim 5", ("detinit_channel_dim",), lambda: dg.feature_diversity(_with(CHANNEL, 5), _x8())),
        (
            "detinit_channel_dim True",
            ("detinit_channel_dim",),
            lambda: dg.feature_diversity(_with(CHANNEL, True), _x8()),
        ),
        (
            "signal_propagation, detinit_channel_dim 'x'",
            ("detinit_channel_dim",),
            lambda: dg.signal_propagation(_with(CHANNEL, "x"), _x8()),
        ),
        (
            "signal_propagation, detinit_channel_dim 5 (written after the fixes)",
            ("detinit_channel_dim",),
            lambda: dg.signal_propagation(_with(CHANNEL, 5), _x8()),
        ),
        (
            "forward_features returning a tuple",
            ("forward_features",),
            lambda: inspect_model(_FeaturesOf(), _x8(), labels),
        ),
        (
            "a gate flag without detinit_init_",
            ("detinit_init_",),
            lambda: di.initialize(_GatedBlock(_FlagOnly()), "skipinit"),
        ),
        ("is_residual_gate 'no'", ("is_residual_gate",), lambda: di.initialize(_FlagNo(4, 4), "rezero")),
        (
            "detinit_roles naming the block itself",
            ("detinit_roles",),
            lambda: di.initialize(_RolesOfItself(4, 4), "zero"),
        ),
        (
            "detinit_roles a dict, not a method",
            ("detinit_roles",),
            lambda: di.initialize(_with("detinit_roles", {"0": "branch"}), "zero"),
        ),
        (
            "detinit_roles taking an argument",
            ("detinit_roles",),
            lambda: di.initialize(_RolesWithAnArgument(4, 4), "zero"),
        ),
        (
            "detinit_init_ taking no argument",
            ("detinit_init_",),
            lambda: di.initialize(_InitWithoutArguments(4, 4), "zero"),
        ),
        (
            "detinit_init_ reasons for a parameter the module does not have",
            ("detinit_init_",),
            lambda: di.initialize(_ReasonsForAStranger(), "zero"),
        ),
        (
            "get_classifier returning a generator",
            ("get_classifier",),
            lambda: di.initialize(_with("get_classifier", lambda: (m for m in ())), "zero"),
        ),
        ("get_classifier a string", ("get_classifier",), lambda: di.initialize(_with("get_classifier", "2"), "zero")),
        ("Registry.add name 5", ("name",), lambda: colours.add(5, 1)),  # type: ignore[arg-type]
        ("Registry.get 5", ("5",), lambda: colours.get(5)),  # type: ignore[arg-type]
        ("Registry.get None", ("None",), lambda: colours.get(None)),  # type: ignore[arg-type]
        ("Registry kind ''", ("kind",), lambda: Registry("")),
        ("Registry kind 5", ("kind",), lambda: Registry(5)),  # type: ignore[arg-type]
        ("Registry.add description 5", ("description",), lambda: colours.add("blue", 1, 5)),  # type: ignore[arg-type]
        ("Registry.register name a list", ("name",), lambda: colours.register(["x"])(len)),  # type: ignore[arg-type]
        ("InitReport records of dicts", ("records",), lambda: di.InitReport("zero", {}, 0, [{"name": "a"}])),
        ("find_hook of an int", ("module",), lambda: hooks.find_hook(5, "x")),  # type: ignore[arg-type]
        ("declared_roles of a string", ("module",), lambda: hooks.declared_roles("x")),  # type: ignore[arg-type]
        ("warm-up past the end", ("warmup_epochs",), lambda: config(epochs=4, warmup_epochs=5).validate()),
        (
            "a milestone past the end",
            ("milestones",),
            lambda: config(epochs=4, schedule="step", milestones=[10]).validate(),
        ),
        ("milestones with a cosine schedule", ("milestones",), lambda: config(milestones=[2]).validate()),
        ("gamma with a cosine schedule", ("gamma",), lambda: config(gamma=0.5).validate()),
        ("nesterov without momentum", ("nesterov",), lambda: config(momentum=0.0, nesterov=True).validate()),
        ("momentum with adamw", ("momentum",), lambda: config(optimizer="adamw", momentum=0.5).validate()),
        ("zero_rows_ rows past the total", ("start",), lambda: zero_rows_(torch.empty(4, 8), 6, 8)),
        (
            "hadamard_mixing_rows_ rows past the total",
            ("start",),
            lambda: hadamard_mixing_rows_(torch.empty(4, 8), 6, 8, 1.0),
        ),
        ("fwht dim 3 of a 2-D tensor", ("dim",), lambda: dnn.fwht(torch.ones(2, 8), dim=3)),
        (
            "make_batches drop_last, a batch larger than the data",
            ("batch_size",),
            lambda: data_api.make_batches(synthetic, 16, drop_last=True),
        ),
    ]


def _batch_24(tmp: Path) -> list[Case]:
    """Batch 24 (session 27, after batch 23's fixes): the public names no earlier case called -- data helpers
    (``gives_tokens``, ``reads_files``, ``probe_targets``, ``unigram_loss``, the fetchers, ``FolderBatches``),
    two diagnostics, the study tables, the model classes built directly, ``evaluate``, ``read_config_file`` and
    four ``argtypes``."""
    from detinit.models.zero_resnet import ZerOBasicBlock, ZerOResNet
    from detinit.train.distributed import DistInfo

    folder = _mkdir(tmp / "b24")
    files = {name: _write(folder / name, text.encode()) for name, text in BATCH_24_FILES.items()}
    synthetic = data_api.load_dataset("synthetic", subset=8)
    empty = data_api.ArrayDataset(
        "empty",
        "test",
        torch.zeros(0, 1, 8, 8, dtype=torch.uint8),
        torch.zeros(0, dtype=torch.long),
        10,
        (0.5,),
        (0.5,),
    )
    linear = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    read = train_api.read_config_file
    return [
        ("gives_tokens 5", ("name",), lambda: data_api.gives_tokens(5)),  # type: ignore[arg-type]
        ("gives_tokens of a misspelt dataset", ("fashoin",), lambda: data_api.gives_tokens("fashoin")),
        ("reads_files None", ("name",), lambda: data_api.reads_files(None)),  # type: ignore[arg-type]
        ("reads_files of a misspelt dataset", ("kvj",), lambda: data_api.reads_files("kvj")),
        ("probe_targets n 0", ("n",), lambda: data_api.probe_targets(synthetic, 0)),
        ("probe_targets of a tensor", ("dataset",), lambda: data_api.probe_targets(torch.zeros(3), 2)),  # type: ignore
        ("unigram_loss of an image dataset", ("dataset",), lambda: data_api.unigram_loss(synthetic)),  # type: ignore
        ("fetch_kjv with a file for its cache", ("cache",), lambda: data_api.fetch_kjv(files["x.txt"])),
        (
            "fetch_fashion_mnist with a file for its cache",
            ("cache",),
            lambda: data_api.fetch_fashion_mnist(files["x.txt"]),
        ),
        ("fetch_fashion_mnist cache 5", ("cache",), lambda: data_api.fetch_fashion_mnist(5)),  # type: ignore[arg-type]
        ("FolderBatches of an array dataset", ("dataset",), lambda: data_api.FolderBatches(synthetic, 4)),  # type: ignore
        ("channel_variance of a 1-D tensor", ("y",), lambda: dg.channel_variance(torch.ones(4))),
        ("channel_variance of no values", ("y",), lambda: dg.channel_variance(torch.ones(0, 4))),
        ("max_channel_difference of a list", ("y",), lambda: dg.max_channel_difference([[1.0, 2.0]])),  # type: ignore
        ("text_table of a string", ("study",), lambda: experiments_api.text_table("s")),  # type: ignore[arg-type]
        ("collect of None", ("study",), lambda: experiments_api.collect(None)),  # type: ignore[arg-type]
        ("ConstNet depth 15", ("depth",), lambda: models_api.ConstNet(depth=15)),
        ("ConstNet widen 0", ("widen",), lambda: models_api.ConstNet(widen=0)),
        ("ConstNet dropout 1.5", ("dropout",), lambda: models_api.ConstNet(dropout=1.5)),
        ("ConstNet norm 'ln'", ("norm",), lambda: models_api.ConstNet(norm="ln")),
        ("LeakyNet alpha -1", ("alpha",), lambda: models_api.LeakyNet(alpha=-1.0)),
        ("LeakyNet init_string of 2 letters", ("init_string",), lambda: models_api.LeakyNet(init_string="ik")),
        ("ViT image_size 30, patch 4", ("patch",), lambda: models_api.ViT(image_size=30, patch=4)),
        ("ViT width 130, heads 4", ("heads",), lambda: models_api.ViT(width=130, heads=4)),
        ("ViT layout 'split2'", ("layout",), lambda: models_api.ViT(layout="split2")),
        ("ViT mlp_ratio 0", ("mlp_ratio",), lambda: models_api.ViT(mlp_ratio=0)),
        ("ViT position 'rope'", ("position",), lambda: models_api.ViT(position="rope")),
        ("ZerOResNet no stage", ("layers",), lambda: ZerOResNet(ZerOBasicBlock, [], [16])),
        ("ZerOResNet fewer widths than stages", ("widths",), lambda: ZerOResNet(ZerOBasicBlock, [1, 1, 1], [16, 32])),
        ("ZerOResNet relu 'gelu'", ("relu",), lambda: ZerOResNet(ZerOBasicBlock, [1], [16], relu="gelu")),
        ("ZerOResNet block nn.Linear", ("block",), lambda: ZerOResNet(nn.Linear, [1], [16])),  # type: ignore[arg-type]
        ("evaluate of a list", ("data",), lambda: train_api.evaluate(mlp(), [1, 2], DistInfo())),  # type: ignore
        (
            "evaluate of an empty split",
            ("no example",),
            lambda: train_api.evaluate(linear, data_api.make_batches(empty, 4), DistInfo()),
        ),
        ("read_config_file of broken YAML", ("bad.yaml",), lambda: read(files["bad.yaml"])),
        ("read_config_file of a YAML list", ("list.yaml",), lambda: read(files["list.yaml"])),
        ("read_config_file of a .txt", (".txt",), lambda: read(files["x.txt"])),
        ("read_config_file of an empty TOML", ("empty",), lambda: read(files["empty.toml"])),
        ("read_config_file of a folder", (str(folder),), lambda: read(folder)),
        ("read_config_file 5", ("path",), lambda: read(5)),  # type: ignore[arg-type]
        ("existing_file of a folder", ("folder",), lambda: argtypes.existing_file(str(folder))),
        ("non_negative_int '1.5'", ("1.5",), lambda: argtypes.non_negative_int("1.5")),
        ("non_negative_int 5, not text", ("text",), lambda: argtypes.non_negative_int(5)),  # type: ignore[arg-type]
        ("output_folder of a file", ("x.txt",), lambda: argtypes.output_folder(str(files["x.txt"]))),
        ("no_options 5", ("doc",), lambda: argtypes.no_options(5)),  # type: ignore[arg-type]
    ]


BATCH_24_FILES = {"bad.yaml": "lr: [1, 2\n", "list.yaml": "- 1\n- 2\n", "x.txt": "lr: 0.1\n", "empty.toml": ""}


def _batch_21() -> list[Case]:
    """Batch 21 (session 26, after batch 20's fixes): the datasets a user builds from tensors of their own
    (``ArrayDataset``, ``TokenDataset``, ``FolderDataset``): batch 20's class, in ``detinit.data``."""
    images, labels = torch.zeros(4, 1, 8, 8, dtype=torch.uint8), torch.zeros(4, dtype=torch.long)
    tokens = torch.zeros(4, 8, dtype=torch.long)
    half = (0.5,)

    def array(**kw: object) -> object:
        given = {"images": images, "labels": labels, "num_classes": 10, "mean": half, "std": half, **kw}
        return data_api.ArrayDataset("d", "train", **given)  # type: ignore[arg-type]

    def text(**kw: object) -> object:
        given = {"inputs": tokens, "targets": tokens, "vocab": None, "unigram": torch.ones(256), **kw}
        return data_api.TokenDataset("t", "train", **given)  # type: ignore[arg-type]

    def files(**kw: object) -> object:
        given = {"files": (Path("a.png"),), "labels": labels[:1], "classes": ("a",), "image_size": 32, **kw}
        return data_api.FolderDataset("f", "train", **given)  # type: ignore[arg-type]

    return [
        ("ArrayDataset labels of another count", ("labels",), lambda: array(labels=labels[:3])),
        ("ArrayDataset mean and std of 3 for 1 channel", ("mean",), lambda: array(mean=half * 3, std=half * 3)),
        ("ArrayDataset std 0", ("std",), lambda: array(std=(0.0,))),
        ("ArrayDataset num_classes 0", ("num_classes",), lambda: array(num_classes=0)),
        ("ArrayDataset int64 images", ("int64",), lambda: array(images=images.long())),
        ("TokenDataset targets of another shape", ("targets",), lambda: text(targets=tokens[:, :7])),
        ("TokenDataset float inputs", ("inputs",), lambda: text(inputs=tokens.float())),
        (
            "TokenDataset token 9 of a vocabulary of 2",
            ("vocabulary of 2",),
            lambda: text(inputs=tokens + 9, vocab=("a", "b"), unigram=torch.ones(2)),
        ),
        ("TokenDataset unigram of 4 for 256 tokens", ("unigram",), lambda: text(unigram=torch.ones(4))),
        ("FolderDataset 2 labels for 1 file", ("labels",), lambda: files(labels=labels[:2])),
        ("FolderDataset image_size 0", ("image_size",), lambda: files(image_size=0)),
        ("FolderDataset mean of 3 for 1 channel", ("mean",), lambda: files(in_chans=1)),
    ]


def _one_row_correlation() -> object:
    value = dg.mean_row_correlation(torch.randn(1, 5))  # the convention its docstring states
    return (
        "refused: 1.0, documented"
        if value == 1.0 and "fewer than two rows" in dg.mean_row_correlation.__doc__
        else value
    )


def _u8(channels: int) -> torch.Tensor:
    return torch.ones(2, channels, 4, 4, dtype=torch.uint8)


def _tokens() -> object:
    return data_api.text_dataset("abcdefgh" * 40, "train", context=8)


def _far_sylvester_row() -> object:
    filled = fill_sylvester_entries_(torch.empty(1, 2), torch.tensor([2**40 + 1]), torch.arange(2))
    return "refused: written, " + str(filled.tolist()) if filled.tolist() == [[1.0, -1.0]] else filled


def _hadamard_rules_under_partial_identity() -> object:
    report = di.initialize(models_api.create_model("resnet20", norm="none"), "partial_identity")
    rules = sorted({record.rule for record in report.records if "hadamard" in record.rule})
    return f"refused: no Hadamard rule ({report.options})" if not rules else f"partial_identity wrote {rules}"


def _mnist_of(root: Path, shape: tuple[int, ...], labels: list[int]) -> object:
    write_idx(_mkdir(root) / "train-images-idx3-ubyte", np.zeros(shape, np.uint8))
    write_idx(root / "train-labels-idx1-ubyte", np.array(labels, np.uint8))
    return load_dataset("mnist", root=root)


def _cifar_batch(root: Path, data: np.ndarray | None) -> object:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    batch = [1, 2, 3] if data is None else {b"data": data, b"labels": [0] * len(data)}
    (folder / "test_batch").write_bytes(pickle.dumps(batch))
    return load_dataset("cifar10", "test", root=root, verify=False)


def _initialize_on_cuda() -> object:
    if torch.cuda.is_available():
        return "refused: CUDA is here, so device='cuda' is a valid input on this machine"
    return detinit.initialize(mlp(), "zero", device="cuda")


def _saved_tensor(tmp: Path) -> Path:
    torch.save(torch.zeros(3), tmp / "tensor.pt")
    return tmp / "tensor.pt"


def _x8() -> torch.Tensor:
    return torch.randn(2, 8)


def _study_file(tmp: Path, text: str) -> str:
    path = tmp / f"study{len(list(tmp.glob('study*.yaml')))}.yaml"
    path.write_text(text)
    return str(path)


def _report_of_another_model() -> object:
    return detinit.initialize(nn.Sequential(nn.Linear(3, 3)), "zero")


def _register_loader_without_split() -> object:
    @data_api.register_dataset("audit_no_split", "a loader without split")
    def load(root: object = None) -> object:
        return None

    return load


def _unrun_study(tmp: Path) -> object:
    base = {"data": "synthetic", "model": "mnist_mlp", "epochs": 1}
    return parse_study({"name": "never", "base": base, "grid": {"seed": [0, 1]}}, out=tmp / "never")


def _synthetic8() -> object:
    return load_dataset("synthetic", num_examples=8)


def _attach_twice() -> object:
    mechanism, net = make_mechanism("dropout", p=0.1, layers=["0"]), mlp()
    mechanism.attach(net)
    return mechanism.attach(net)


def _inside(name: str, **knobs: float) -> object:
    """Enter a symmetry-breaking context (the knobs are checked on entry)."""
    with breaking(name, mlp(), **knobs) as mechanism:
        return mechanism


def _refused_nan(value: float) -> object:
    """A measurement of a degenerate input: a number (refused: it says what it is) or NaN (silent)."""
    return None if math.isnan(value) else f"refused: {value}"


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
        # sixth batch
        ("demo --model nope", ("nope",), ["demo", "--model", "nope"]),
        ("demo --init-option without =", ("init-option", "KEY=VALUE", "variant"), ["demo", "--init-option", "variant"]),
        ("demo --init-option bogus=1", ("bogus",), ["demo", "--init-option", "bogus=1"]),
        ("demo --threads 0", ("threads",), ["demo", "--threads", "0"]),
        ("demo --seed -1", ("seed",), ["demo", "--seed", "-1"]),
        ("inspect --out /dev/null", ("/dev/null", "out"), ["inspect", "mnist_mlp", "--out", "/dev/null"]),
        ("inspect --max-rows 0", ("max_rows", "max-rows"), ["inspect", "mnist_mlp", "--max-rows", "0"]),
        ("inspect --lanczos-steps 0", ("lanczos", "num_steps"), ["inspect", "mnist_mlp", "--lanczos-steps", "0"]),
        ("inspect gpt --vocab-size 0", ("vocab_size", "vocab-size"), ["inspect", "gpt", "--vocab-size", "0"]),
        ("train --set without =", ("--set", "KEY=VALUE", "nonsense"), ["train", "--set", "nonsense"]),
        ("train --set lr=abc", ("lr",), ["train", "--set", "lr=abc", "--data", "synthetic"]),
        ("train --symmetry bogus", ("bogus", "symmetry"), ["train", "--symmetry", "bogus", "--data", "synthetic"]),
        ("train --config missing.yaml", ("missing.yaml",), ["train", "--config", "missing.yaml"]),
        ("train --epochs 0", ("epochs",), ["train", "--epochs", "0", "--data", "synthetic"]),
        (
            "train cifar10 from a missing root",
            ("cifar", "root", "nowhere"),
            ["train", "--data", "cifar10", "--data-root", "/nowhere", "--epochs", "1"],
        ),
        ("study --workers 0", ("workers",), ["study", "--config", "configs/studies/quick.yaml", "--workers", "0"]),
        ("list bogus", ("bogus", "unrecognized", "argument"), ["list", "bogus"]),
        # seventh batch
        (
            "train model_args.num_classes against the data",
            ("num_classes",),
            [
                "train",
                "--data",
                "synthetic",
                "--model",
                "mnist_mlp",
                "--set",
                "model_args.num_classes=5",
                "--epochs",
                "1",
            ],
        ),
        (
            "train nesterov without momentum",
            ("nesterov", "momentum"),
            ["train", "--data", "synthetic", "--set", "nesterov=true", "--set", "momentum=0", "--epochs", "1"],
        ),
        (
            "train gpt on synthetic images",
            ("gpt", "synthetic", "token"),
            ["train", "--model", "gpt", "--data", "synthetic", "--epochs", "1"],
        ),
        ("inspect mnist_mlp on kjv", ("kjv", "mnist_mlp", "token"), ["inspect", "mnist_mlp", "--data", "kjv"]),
        (
            "inspect kaiming with variant",
            ("variant",),
            ["inspect", "mnist_mlp", "--init", "kaiming", "--init-option", "variant=paper"],
        ),
        ("demo gpt context 0", ("context",), ["demo", "--model", "gpt", "--vocab-size", "10", "--context", "0"]),
        (
            "study with a repeated seed",
            ("seed", "repeat", "twice", "duplicate"),
            [
                "study",
                "--config",
                _study_file(
                    tmp, "name: dup\nbase: {data: synthetic, model: mnist_mlp, epochs: 1}\ngrid: {seed: [0, 0]}\n"
                ),
            ],
        ),
        (
            "study grid and variant on one key",
            ("lr",),
            [
                "study",
                "--config",
                _study_file(
                    tmp,
                    "name: clash\nbase: {data: synthetic, model: mnist_mlp, epochs: 1}\ngrid: {lr: [0.1]}\n"
                    "variants: {a: {lr: 0.2}}\n",
                ),
            ],
        ),
        (
            "train --config with a list at the top",
            ("config", "mapping", "list"),
            ["train", "--config", _study_file(tmp, "- a\n- b\n")],
        ),
        (
            "study file that is a train config",
            ("name",),
            ["study", "--config", _study_file(tmp, "model: mnist_mlp\ndata: synthetic\n")],
        ),
        # tenth batch
        (
            "study --only without =",
            ("--only", "LABEL=VALUE"),
            ["study", "--config", "configs/studies/quick.yaml", "--only", "seed"],
        ),
        (
            "study --only a label no run has",
            ("budget", "labels"),
            ["study", "--config", "configs/studies/quick.yaml", "--only", "budget=4"],
        ),
        (
            "study --only a value no run has",
            ("seed", "99"),
            ["study", "--config", "configs/studies/quick.yaml", "--only", "seed=99"],
        ),
        (
            "study --only with --report-only",
            ("--only", "--report-only"),
            ["study", "--config", "configs/studies/quick.yaml", "--only", "seed=0", "--report-only"],
        ),
        ("train --out empty", ("--out", "empty"), ["train", *syn, "--out", ""]),
        (  # batch 16
            "train partial_identity with branch_zero=gate",
            ("branch_zero", "hadamard"),
            ["train", *syn, "--init", "partial_identity", "--set", "init_options.branch_zero=gate"],
        ),
        *[  # batch 18: numbers of the right type and a size the run cannot use
            (f"train --set {key}", (name,), ["train", *syn, "--model", "mnist_mlp", "--set", key])
            for key, name in [
                ("batch_size=100000", "batch_size"),
                ("warmup_epochs=100", "warmup_epochs"),
                ("label_smoothing=1.5", "label_smoothing"),
                ("gamma=0", "gamma"),
                ("momentum=1.5", "momentum"),
                ("train_subset=1", "train_subset"),
                ("data_args.noise=-1", "noise"),
            ]
        ],
        *[
            (
                f"train --set schedule=step {key}",
                ("milestones",),
                ["train", *syn, "--set", "schedule=step", "--set", key],
            )
            for key in ("milestones=[5]", "milestones=[0]", "milestones=[]")
        ],
        ("train vit with patch 5 of 28", ("patch",), ["train", *syn, "--model", "vit", "--set", "model_args.patch=5"]),
        *script_cases(tmp),
    ]


def script_cases(tmp: Path) -> list[tuple[str, tuple[str, ...], list[str]]]:
    """Batch 14: the command lines of the scripts in benchmarks/ (run as ``python benchmarks/<script>``)."""
    (tmp / "adir").mkdir()
    (tmp / "garbage.jsonl").write_text('{"class": "X"}\nnot json\n')
    (tmp / "README.md").write_text("# no hf_zoo block\n")
    out = ["--out", str(tmp / "zoo.jsonl")]
    return [
        ("gate_coherence --steps 0", ("--steps", ">= 1"), ["benchmarks/gate_coherence.py", "--steps", "0"]),
        ("gate_coherence --every 0", ("--every",), ["benchmarks/gate_coherence.py", "--every", "0"]),
        ("gate_coherence --seeds -1", ("--seeds", "seed"), ["benchmarks/gate_coherence.py", "--seeds", "-1"]),
        ("no_norm_start --steps -1", ("--steps",), ["benchmarks/no_norm_start.py", "--steps", "-1"]),
        ("no_norm_start --every 0", ("--every",), ["benchmarks/no_norm_start.py", "--every", "0"]),
        (
            "hf_zoo --classes unknown",
            ("--classes", "NoSuchModel"),
            ["benchmarks/hf_zoo.py", "--classes", "NoSuchModel"],
        ),
        ("hf_zoo --families unknown", ("--families", "nosuch"), ["benchmarks/hf_zoo.py", "--families", "nosuch"]),
        ("hf_zoo --limit -1", ("--limit",), ["benchmarks/hf_zoo.py", "--limit", "-1", *out]),
        ("hf_zoo --workers 0", ("--workers",), ["benchmarks/hf_zoo.py", "--workers", "0", *out]),
        ("hf_zoo --out a folder", ("--out", "folder"), ["benchmarks/hf_zoo.py", "--out", str(tmp / "adir")]),
        (
            "hf_zoo --out with a garbage line",
            ("garbage.jsonl", "line 2"),
            ["benchmarks/hf_zoo.py", "--classes", "BertModel", "--out", str(tmp / "garbage.jsonl")],
        ),
        (
            "hf_zoo --readme without its block",
            ("--readme", "block"),
            ["benchmarks/hf_zoo.py", "--classes", "BertModel", *out, "--readme", str(tmp / "README.md")],
        ),
        (
            "hf_zoo --real-widths without a colon",
            ("--real-widths", "A:B"),
            ["benchmarks/hf_zoo.py", "--real-widths", "bert"],
        ),
        ("model_zoo --out a folder", ("--out", "folder"), ["benchmarks/model_zoo.py", "--out", str(tmp / "adir")]),
        (
            "model_zoo --markdown a folder",
            ("--markdown", "folder"),
            ["benchmarks/model_zoo.py", "--markdown", str(tmp)],
        ),
        ("rnn_zero_training --seeds 0", ("--seeds",), ["benchmarks/rnn_zero_training.py", "--seeds", "0"]),
        ("rnn_zero_training --lr nan", ("--lr", "finite"), ["benchmarks/rnn_zero_training.py", "--lr", "nan"]),
        ("run_benchmarks --threads 0", ("--threads",), ["benchmarks/run_benchmarks.py", "--threads", "0"]),
        ("run_benchmarks --out a folder", ("--out", "folder"), ["benchmarks/run_benchmarks.py", "--out", str(tmp)]),
        ("tied_lm_start --models bert", ("--models", "bert"), ["benchmarks/tied_lm_start.py", "--models", "bert"]),
        ("tied_lm_start --seeds -1", ("--seeds",), ["benchmarks/tied_lm_start.py", "--seeds", "-1"]),
        ("train_modes --warmup -1", ("--warmup",), ["benchmarks/train_modes.py", "--warmup", "-1"]),
        ("train_modes --steps 0", ("--steps",), ["benchmarks/train_modes.py", "--steps", "0"]),
        ("train_modes --models and no model", ("--models",), ["benchmarks/train_modes.py", "--models"]),
        ("init_digests with an option it lacks", ("--bogus",), ["benchmarks/init_digests.py", "--bogus"]),
        ("scheme_sweep with an option it lacks", ("--bogus",), ["benchmarks/scheme_sweep.py", "--bogus"]),
        ("stage_rank with an argument", ("extra",), ["benchmarks/stage_rank.py", "extra"]),
        ("head_features with an option it lacks", ("--bogus",), ["benchmarks/head_features.py", "--bogus"]),
        ("hf_zero_training with an option it lacks", ("--bogus",), ["benchmarks/hf_zero_training.py", "--bogus"]),
        ("bad_input_audit --groups and no group", ("--groups",), ["benchmarks/bad_input_audit.py", "--groups"]),
        # batch 16 (session 25): the script session 24 added, seeds past the library's contract
        (
            "no_norm_parts --variants unknown",
            ("--variants", "nosuch"),
            ["benchmarks/no_norm_parts.py", "--variants", "nosuch"],
        ),
        ("no_norm_parts --epochs 0", ("--epochs",), ["benchmarks/no_norm_parts.py", "--epochs", "0"]),
        (
            "no_norm_parts --out /dev/null",
            ("--out", "/dev/null"),
            ["benchmarks/no_norm_parts.py", "--out", "/dev/null"],
        ),
        (
            "no_norm_parts --features --out (ignored)",
            ("--out", "--features"),
            ["benchmarks/no_norm_parts.py", "--features", "--out", str(tmp / "feat")],
        ),
        (
            "no_norm_parts --list --seeds (ignored)",
            ("--seeds",),
            ["benchmarks/no_norm_parts.py", "--list", "--seeds", "3"],
        ),
        (
            "no_norm_parts --list --features",
            ("--list", "--features"),
            ["benchmarks/no_norm_parts.py", "--list", "--features"],
        ),
        (
            "no_norm_parts --seeds 2**32 (seed 0 again)",
            ("4294967296", "seed"),
            ["benchmarks/no_norm_parts.py", "--seeds", str(2**32), "--out", str(tmp / "s")],
        ),
        # batch 17: the script this session added
        ("bn_branch_mixing --seeds -1", ("--seeds",), ["benchmarks/bn_branch_mixing.py", "--seeds", "-1"]),
        ("bn_branch_mixing --epochs 0", ("--epochs",), ["benchmarks/bn_branch_mixing.py", "--epochs", "0"]),
        ("bn_branch_mixing --out /dev/null", ("/dev/null",), ["benchmarks/bn_branch_mixing.py", "--out", "/dev/null"]),
        ("bn_branch_mixing --seeds 2**32", ("4294967296",), ["benchmarks/bn_branch_mixing.py", "--seeds", str(2**32)]),
        # batch 19: the probes' options and the new script
        (
            "bn_branch_mixing --variant scaled without --scale",
            ("--scale",),
            ["benchmarks/bn_branch_mixing.py", "--variant", "scaled"],
        ),
        ("bn_branch_mixing --scale without scaled", ("--scale",), ["benchmarks/bn_branch_mixing.py", "--scale", "2"]),
        (
            "bn_branch_mixing --scale 0",
            ("--scale",),
            ["benchmarks/bn_branch_mixing.py", "--variant", "scaled", "--scale", "0"],
        ),
        (
            "bn_branch_mixing --variant typo",
            ("--variant", "he_row"),
            ["benchmarks/bn_branch_mixing.py", "--variant", "he_row"],
        ),
        ("run_features without runs", ("run directories",), ["benchmarks/run_features.py"]),
        ("run_features of a folder that is no run", ("no run directory",), ["benchmarks/run_features.py", str(tmp)]),
        ("run_features --images 0", ("--images",), ["benchmarks/run_features.py", "--images", "0"]),
        (
            "tied_lm_start --seeds 2**32",
            ("4294967296", "seed"),
            ["benchmarks/tied_lm_start.py", "--seeds", str(2**32), "--models", "gpt2"],
        ),
    ]


def run_cli(args: list[str], words: tuple[str, ...], repo: Path, cwd: Path) -> tuple[str, str]:
    """One command in ``cwd`` (its runs/ stay there); a command still working after a minute took the bad input
    and started training on it: a silent accept."""
    env = {**os.environ, "PYTHONPATH": str(repo / "src")}
    args = [str(repo / a) if a.startswith("configs/") else a for a in args]
    if args[0] == "train" and "--out" not in args:  # a run directory of its own: no case meets another's run
        args += ["--out", str(cwd / f"run{len(list(cwd.iterdir()))}")]
    script = args[0].startswith("benchmarks/")  # a script of this folder, else a detinit command
    command = [sys.executable, str(repo / args[0]), *args[1:]] if script else [sys.executable, "-m", "detinit", *args]
    try:
        proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
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
    parser.add_argument("--groups", nargs="+", default=["api", "cli", "rundir"], choices=["api", "cli", "rundir"])
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
