"""Docs/results.md section 14: where a norm-free ZerO ResNet-20 loses to SkipInit -- each part of ZerO's start
put into SkipInit's network, and the other way round, trained with the parity recipe.

    .venv/bin/python benchmarks/no_norm_parts.py --variants skipinit zero zero+he_rows --seeds 0 1 2

The parity recipe of ``configs/studies/baselines_resnet20_fashion_mnist.yaml``'s norm-free rows (8,192
Fashion-MNIST images, batch 128, SGD lr 0.1 with momentum 0.9, weight decay 5e-4, cosine with one warm-up epoch,
Fixup's scalar biases and gates at lr 0.01, fp32), through :func:`detinit.train.train`, one run directory a
variant and seed under ``--out`` (a second call resumes and reuses them). The variants (``--list`` prints them):

* ``skipinit``: He-random layers, a scalar gate at 0 on each branch (the registered scheme);
* ``skipinit+zero_classifier``, ``skipinit+zero_body``, ``skipinit+zero_classifier+zero_body``,
  ``skipinit+zero_body+he_rows``, ``skipinit+mixed_branches``: SkipInit with ZerO's output layer (0), ZerO's
  stem and shortcuts (Hadamard blocks, orthonormal), both, the body with every row at He's norm, or
  ZerO-style deterministic branches
  (:func:`gate_coherence.branch_mixing_`);
* ``zero``: ZerO with the zero at the branch end (identity branches at Fixup's depth scale, the last conv at 0;
  the default until ``branch_zero="gate"`` became it on norm-free models with gates);
  ``zero+he_rows``: the same with every layer's rows at He's norm but the zeros (the stem, the shortcuts and each
  branch's first conv, whose identity rows then get Fixup's depth scale);
* ``gated_zero+he_rows``: every part deterministic -- ZerO's stem, shortcuts (He rows) and output layer, mixed
  branches (on the centre tap), the zero on SkipInit's gate: bitwise ZerO's ``branch_zero="gate"`` of session 24;
  ``gated_zero+he_rows+gate_gain_3``: the gate computed through an
  :class:`~detinit.init.apply.end_gain.EndGain` of slope 3;
* ``gated_zero+he_rows+spatial``: the branches' mixing spread over every tap
  (``hadamard_mixing_(taps="all")``): bitwise ZerO's ``branch_zero="gate"`` now, its default here;
  ``gated_zero+he_rows+spatial_first``: on a branch's first layer only; ``skipinit+spatial_mixed_branches``:
  SkipInit with those branches alone (``+zero_classifier``: and ZerO's output layer, so that only the stem and
  shortcuts are SkipInit's); ``gated_zero+he_rows+spatial+readout``: with an output layer that is not 0
  (Hadamard rows at the norm of torch's default init, :func:`hadamard_readout_`): the cost of ZerO's zero logits;
* ``zero+open_entries``: ZerO's default with the gates of its entry blocks (the first block, the two with a
  projection shortcut) at 1, as ``open_blocks`` does on BatchNorm networks.

*He rows*: a Hadamard block's rows rescaled to norm sqrt 2, He's expected row norm for a layer before a ReLU
(an expanding block's orthonormal rows have norm sqrt(Q / 2^m) instead, so each output carries a share of the
input's energy rather than its second moment, and without normalisation the signal at the output layer of a
ResNet-20 is 4x smaller than He's).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from gate_coherence import branch_mixing_  # noqa: E402 (this folder)
from head_features import pooled_features  # noqa: E402 (this folder)

import detinit.train.trainer as trainer  # noqa: E402
from detinit.argtypes import output_folder, positive_int, random_seed  # noqa: E402
from detinit.data import load_dataset, probe_batch  # noqa: E402
from detinit.init.apply.end_gain import install_end_gains_  # noqa: E402
from detinit.init.roles.layers import Matrix  # noqa: E402
from detinit.init.roles.vocabulary import LayerInfo  # noqa: E402
from detinit.init.schemes import ParamRule  # noqa: E402
from detinit.init.schemes.random import GatedScheme  # noqa: E402
from detinit.init.schemes.registry import SCHEMES  # noqa: E402
from detinit.init.schemes.zero import ZerOScheme, he_rows_rule  # noqa: E402
from detinit.init.tensor.hadamard import fill_sylvester_entries_  # noqa: E402
from detinit.train import TrainConfig, TrainingDiverged, read_jsonl  # noqa: E402

BRANCH_ROLES = ("branch", "branch_last")


def hadamard_readout_(weight: torch.Tensor, norm: float) -> torch.Tensor:
    """An output layer that is not 0 (logits are not 0 at init: ZerO's promise given up, to measure its cost):
    class ``k`` reads the features through row ``k + 1`` of a Sylvester Hadamard matrix (not the constant row 0),
    every row at ``norm`` (``1 / sqrt 3``: the expected row norm of torch's default Linear init, SkipInit's)."""
    classes, features = weight.shape
    rows = torch.arange(1, classes + 1)
    return fill_sylvester_entries_(weight, rows, torch.arange(features), norm / math.sqrt(features))


class Swapped(GatedScheme):
    """SkipInit, with the parts named taken from ZerO's default (``body``: the stem and shortcuts); ``spatial``:
    the mixed branches' layers read every tap (``branch_mixing_(taps="all")``; ``"first"``: a branch's first only)."""

    def __init__(
        self,
        classifier: bool = False,
        body: bool = False,
        mixed: bool = False,
        rows: bool = False,
        spatial: str = "",
        readout: float = 0.0,
    ):
        super().__init__("skipinit")
        self.zero = ZerOScheme(branch_zero="end")  # its rules for layers that carry no zero
        self.classifier, self.body, self.mixed, self.rows = classifier, body, mixed, rows
        self.spatial, self.readout = spatial, readout

    def matrix_rule(self, matrix: Matrix, layer: LayerInfo) -> ParamRule | None:
        if layer.role in BRANCH_ROLES:
            if not self.mixed:
                return super().matrix_rule(matrix, layer)
            if matrix.out_features == matrix.in_features and matrix.groups == 1:
                last = layer.role == "branch_last"
                if self.spatial == "both" or (self.spatial == "first" and not last):
                    return ParamRule("spatial_mixing", "", lambda w, g: branch_mixing_(w, last, taps="all"))
                return ParamRule("hadamard_mixing", "branch mixing", lambda w, g: branch_mixing_(w, last))
            return self.zero.matrix_rule(matrix, replace(layer, role="default"))
        if layer.role == "classifier" and self.readout:
            return ParamRule("hadamard_readout", "", lambda w, g: hadamard_readout_(w, self.readout))
        ours = self.classifier if layer.role == "classifier" else self.body
        if not ours:
            return super().matrix_rule(matrix, layer)
        rule = self.zero.matrix_rule(matrix, layer)
        return he_rows_rule(rule) if self.rows and layer.role == "default" and rule is not None else rule


class ZerOHeRows(ZerOScheme):
    """ZerO with the zero at the branch end (and Fixup's depth scale), each rule of a layer's own at He's rows."""

    def __init__(self) -> None:
        super().__init__(branch_zero="end")

    def matrix_rule(self, matrix: Matrix, layer: LayerInfo) -> ParamRule | None:
        rule = super().matrix_rule(matrix, layer)
        return he_rows_rule(rule) if layer.role == "default" and rule is not None else rule


ALL_ZERO = {"classifier": True, "body": True, "mixed": True, "rows": True}
VARIANTS: dict[str, tuple[str, Callable[[], object] | None, float]] = {  # name: (scheme, its builder, gate slope)
    "skipinit": ("skipinit", None, 1.0),
    "skipinit+zero_classifier": ("nn_parts_a", lambda: Swapped(classifier=True), 1.0),
    "skipinit+zero_body": ("nn_parts_b", lambda: Swapped(body=True), 1.0),
    "skipinit+zero_classifier+zero_body": ("nn_parts_g", lambda: Swapped(classifier=True, body=True), 1.0),
    "skipinit+zero_body+he_rows": ("nn_parts_c", lambda: Swapped(body=True, rows=True), 1.0),
    "skipinit+mixed_branches": ("nn_parts_d", lambda: Swapped(mixed=True), 1.0),
    "zero": ("nn_parts_z", lambda: ZerOScheme(branch_zero="end"), 1.0),
    "zero+he_rows": ("nn_parts_e", ZerOHeRows, 1.0),
    "gated_zero+he_rows": ("nn_parts_f", lambda: Swapped(**ALL_ZERO), 1.0),
    "gated_zero+he_rows+gate_gain_3": ("nn_parts_f", lambda: Swapped(**ALL_ZERO), 3.0),
    "gated_zero+he_rows+spatial": ("nn_parts_h", lambda: Swapped(**ALL_ZERO, spatial="both"), 1.0),
    "gated_zero+he_rows+spatial_first": ("nn_parts_i", lambda: Swapped(**ALL_ZERO, spatial="first"), 1.0),
    "skipinit+spatial_mixed_branches": ("nn_parts_j", lambda: Swapped(mixed=True, spatial="both"), 1.0),
    "skipinit+zero_classifier+spatial_mixed_branches": (
        "nn_parts_l",
        lambda: Swapped(classifier=True, mixed=True, spatial="both"),
        1.0,
    ),
    "zero+open_entries": ("zero", None, 1.0),  # the default, then its entry blocks' gates at 1 (open_gates)
    "gated_zero+he_rows+spatial+readout": (
        "nn_parts_k",
        lambda: Swapped(**ALL_ZERO, spatial="both", readout=1 / math.sqrt(3.0)),
        1.0,
    ),
}


def register_variants() -> None:
    for scheme, builder, _ in VARIANTS.values():
        if builder is not None and scheme not in SCHEMES:
            SCHEMES.add(scheme, lambda builder=builder, **kw: builder(**kw), "benchmarks/no_norm_parts.py")


def with_gate_slope(slope: float, open_entries: bool = False) -> Callable[..., nn.Module]:
    """The trainer's ``build_model``, then each residual gate computed through an EndGain of ``slope``; with
    ``open_entries``, the gates of the entry blocks (the first block and each with a projection shortcut, as
    ZerO's ``open_blocks`` on BatchNorm networks) set to 1."""
    build = trainer.build_model

    def build_model(*args: object, **kwargs: object) -> nn.Module:
        model = build(*args, **kwargs)
        gates = [name for name, module in model.named_modules() if getattr(module, "is_residual_gate", False)]
        if slope > 1:
            install_end_gains_(model, {f"{name}.weight": (slope, 1.0) for name in gates})
        if open_entries:
            blocks = [block for stage in model.stages for block in stage]
            with torch.no_grad():
                for index, block in enumerate(blocks):
                    if index == 0 or not isinstance(block.shortcut, nn.Identity):
                        block.gate.weight.fill_(1.0)
        return model

    return build_model


def run(variant: str, seed: int, epochs: int, out: Path) -> str:
    """Train one variant and seed (or read its finished run); its final test accuracy, or how it failed."""
    scheme, _, slope = VARIANTS[variant]
    config = TrainConfig.from_dict(
        dict(
            model="resnet20", data="fashion_mnist", train_subset=8192, test_subset=2000, batch_size=128, lr=0.1,
            weight_decay=5e-4, schedule="cosine", warmup_epochs=1, epochs=epochs, seed=seed, init=scheme,
            model_args={"norm": "none"}, scalar_lr_factor=0.1, threads=1, progress=False,
        )
    )  # fmt: skip
    folder = out / f"{variant}-e{epochs}-s{seed}"
    plain = trainer.build_model
    trainer.build_model = with_gate_slope(slope, open_entries=variant.endswith("+open_entries"))
    try:
        trainer.train(config, folder)
    except TrainingDiverged as error:
        return f"diverged ({str(error).split(':')[1].split(';')[0].strip()})"
    finally:
        trainer.build_model = plain
    accuracy = read_jsonl(folder / "metrics.jsonl")[-1]["test_acc"]
    return f"{100 * accuracy:.2f}" + (" (chance)" if accuracy < 0.15 else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS), metavar="VARIANT")
    parser.add_argument("--seeds", nargs="+", type=random_seed, default=[0, 1, 2])
    parser.add_argument("--epochs", type=positive_int, default=4, help="of 64 steps (4: the parity budget)")
    parser.add_argument("--out", type=output_folder, default="runs/no_norm_parts", help="the run directories' folder")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--list", action="store_true", help="print the variants and exit")
    mode.add_argument("--features", action="store_true", help="instead: the output layer's input at init (RMS)")
    args = parser.parse_args()
    mode_name = "list" if args.list else "features" if args.features else None
    if mode_name:  # a mode that trains nothing: an option it would ignore is a mistake, not a no-op
        defaults = vars(parser.parse_args([]))  # as parsed: a str default goes through its type too
        unused = ("seeds", "epochs", "out") if args.features else ("variants", "seeds", "epochs", "out")
        ignored = [d for d in unused if vars(args)[d] != defaults[d]]
        if ignored:
            parser.error(f"--{mode_name} does not use --{ignored[0]} (it trains nothing)")
    if args.list:
        print("\n".join(VARIANTS))
        return
    register_variants()
    if args.features:
        images = probe_batch(load_dataset("fashion_mnist", "train", subset=512), 256)
        for variant in args.variants:
            rms = float(pooled_features(VARIANTS[variant][0], {}, images).pow(2).mean().sqrt())
            print(f"{variant}: RMS of the pooled features at init on {len(images)} training images {rms:.3f}")
        return
    print(
        f"| ResNet-20 without normalisation, {64 * args.epochs} steps | " + " | ".join(f"seed {s}" for s in args.seeds)
    )
    print("|---|" + "---|" * len(args.seeds))
    for variant in args.variants:
        cells = [run(variant, seed, args.epochs, args.out) for seed in args.seeds]
        print(f"| {variant} | " + " | ".join(cells) + " |", flush=True)
    print(json.dumps({"command": " ".join(sys.argv), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
