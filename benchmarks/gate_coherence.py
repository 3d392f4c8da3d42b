"""Docs/results.md section 14: why ZerO without normalisation diverges or falls to chance when its branches learn
fast -- identity branches are coherent with the skip path, so their gates compound across the depth.

    .venv/bin/python benchmarks/gate_coherence.py [--steps 128] [--seeds 1 2]     # 4 min on 2 CPU cores

A norm-free ResNet-20 (Fixup's scalar biases and gates, ``norm="none"``) with three starts whose blocks are all
the identity at step 0, each branch gated by a scalar at 0 (SkipInit's place):

* ``ZerO, gated``: ZerO's identity branches (ReLU-gained Hadamard blocks, ``norm="paper"``), the gate computed
  through an :class:`~detinit.init.apply.end_gain.EndGain` of slope 3 (a probe: ZerO's default puts the zero on
  the branch's last conv instead);
* ``ZerO, gated, mixed``: the same, with each square branch conv a Hadamard mixing (the first ``sqrt 2 H / sqrt n``,
  the last ``H / sqrt n`` with its columns reversed), so the branch is no longer the identity of its input;
* ``SkipInit``: He-random branches, a plain gate.

Trained with the parity study's recipe in a plain loop (8,192 Fashion-MNIST images, batches of 128 drawn with
the seed, SGD lr 0.1 with momentum 0.9, weight decay 5e-4, scalar parameters at lr 0.01, linear warm-up over 64
steps): every ``--every`` steps, the loss, the largest |logit|, the product over the nine blocks of
``1 + gate``, the largest |gate|, the mean cosine between each branch's output (before its gate) and the skip
path it is added to, and the RMS of the features the output layer reads.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from no_norm_start import fixup_sgd_steps  # noqa: E402 (this folder: the same SGD loop)

from detinit import initialize  # noqa: E402
from detinit.argtypes import positive_int, random_seed  # noqa: E402
from detinit.data import load_dataset  # noqa: E402
from detinit.init.apply.end_gain import install_end_gains_  # noqa: E402
from detinit.init.roles.layers import Matrix  # noqa: E402
from detinit.init.roles.vocabulary import LayerInfo  # noqa: E402
from detinit.init.schemes import ParamRule  # noqa: E402
from detinit.init.schemes.zero import ZerOScheme  # noqa: E402
from detinit.init.tensor.hadamard import hadamard_mixing_  # noqa: E402
from detinit.models import create_model  # noqa: E402


class GatedZerO(ZerOScheme):
    """ZerO with the branch's zero on its scalar gate; ``mix``: square branch convs mix channels (Hadamard)."""

    def __init__(self, mix: bool) -> None:
        super().__init__(norm="paper", depth_scale=False)
        self.policy = replace(self.policy, residual_gate_value=0.0)
        self.mix = mix

    def matrix_rule(self, matrix: Matrix, layer: LayerInfo) -> ParamRule | None:
        if layer.role not in ("branch", "branch_last"):
            return super().matrix_rule(matrix, layer)
        last = layer.role == "branch_last"
        if self.mix and matrix.out_features == matrix.in_features and matrix.groups == 1:
            return ParamRule("hadamard", "branch mixing", lambda w, g: branch_mixing_(w, last))
        return super().matrix_rule(matrix, replace(layer, role="default"))


def branch_mixing_(weight: torch.Tensor, last: bool, taps: str = "centre") -> torch.Tensor:
    """A branch conv's mixing: ``sqrt 2 H / sqrt n`` first (a ReLU follows), ``H / sqrt n`` reversed last; on the
    centre tap, or on every tap with ``taps="all"`` (ZerO's ``branch_zero="gate"`` since session 25)."""
    return hadamard_mixing_(weight, 1.0 if last else math.sqrt(2.0), reverse=last, taps=taps)


def build(start: str, seed: int) -> nn.Module:
    model = create_model("resnet20", norm="none", in_chans=1, init="kaiming")
    if start == "SkipInit":
        initialize(model, "skipinit", seed=seed)
        return model
    initialize(model, GatedZerO(mix=start.endswith("mixed")))
    gates = [name for name, module in model.named_modules() if getattr(module, "is_residual_gate", False)]
    install_end_gains_(model, {f"{name}.weight": (3.0, 1.0) for name in gates})
    return model


def trace(start: str, seed: int, steps: int, every: int, images: torch.Tensor, labels: torch.Tensor):
    model = build(start, seed)
    blocks = [block for stage in model.stages for block in stage]
    cosines: dict[int, float] = {}
    for i, block in enumerate(blocks):
        block.register_forward_pre_hook(lambda mod, args: setattr(mod, "skip", mod.shortcut(args[0]).detach()))

        def coherence(mod: nn.Module, args: tuple, out: torch.Tensor, i: int = i, block: nn.Module = block) -> None:
            branch, skip = args[0].detach().flatten(1), block.skip.flatten(1)
            cosines[i] = nn.functional.cosine_similarity(branch, skip, dim=1).mean().item()

        block.gate.register_forward_hook(coherence)
    features: dict[str, float] = {}
    model.fc.register_forward_hook(lambda m, a, o: features.__setitem__("rms", a[0].detach().pow(2).mean().sqrt()))
    for step, logits, loss in fixup_sgd_steps(model, images, labels, seed, steps, warmup=64):
        if step % every == 0 or not math.isfinite(loss.item()):
            gates = [float(block.gate.weight.detach()) for block in blocks]
            yield (
                step,
                loss.item(),
                float(logits.detach().abs().max()),
                math.prod(1.0 + a for a in gates),
                max(abs(a) for a in gates),
                sum(cosines.values()) / len(cosines),
                float(features["rms"]),
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=positive_int, default=128)
    parser.add_argument("--every", type=positive_int, default=8)
    parser.add_argument("--seeds", type=random_seed, nargs="+", default=[1, 2])
    args = parser.parse_args()
    data = load_dataset("fashion_mnist", "train").subset(8192, seed=0)
    images = (data.images.float() / 255 - data.mean[0]) / data.std[0]
    print(
        "| start | seed | step | loss | max abs logit | prod (1 + gate) | max abs gate | cos(branch, skip) "
        "| feature RMS |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        for start in ("ZerO, gated", "ZerO, gated, mixed", "SkipInit"):
            for row in trace(start, seed, args.steps, args.every, images, data.labels):
                step, loss, logit, product, gate, cosine, rms = row
                print(
                    f"| {start} | {seed} | {step} | {loss:.3f} | {logit:.3g} | {product:.3g} | {gate:.3g} "
                    f"| {cosine:.2f} | {rms:.3g} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
