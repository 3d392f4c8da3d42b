"""Docs/results.md section 14: what ZerO's first SGD steps do to a ResNet-20 without normalisation.

    .venv/bin/python benchmarks/no_norm_start.py [--steps 48] [--seeds 0 1]     # about 1 min on 2 CPU cores

ResNet-20 with Fixup's scalar biases and multipliers (``norm="none"``), ZerO with and without Fixup's depth scale
(``depth_scale``), 8,192 Fashion-MNIST images, batches of 128 drawn with the seed, SGD (lr 0.1, momentum 0.9,
weight decay 5e-4, scalar parameters at lr 0.01), no warm-up: the loss, the largest |logit|, the mean |pooled
feature| the output layer reads, and the mean norm of the branches' last convs, every ``--every`` steps.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from detinit import initialize  # noqa: E402
from detinit.argtypes import positive_int, random_seed  # noqa: E402
from detinit.data import load_dataset  # noqa: E402
from detinit.models import create_model  # noqa: E402


def fixup_sgd_steps(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, seed: int, steps: int, warmup: int = 0
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """``(step, logits, loss)`` of steps 0 .. ``steps`` of the parity recipe's SGD on a norm-free model: batches
    of 128 drawn with ``seed``, lr 0.1 (0-dim parameters, Fixup's scalars: 0.01), momentum 0.9, weight decay
    5e-4, a linear warm-up over ``warmup`` steps (0: none). The update follows each yield; a non-finite loss
    ends the steps (also shared by ``gate_coherence.py``)."""
    scalars = [p for p in model.parameters() if p.dim() == 0]
    rest = [p for p in model.parameters() if p.dim() > 0]
    opt = torch.optim.SGD([{"params": rest}, {"params": scalars, "lr": 0.01}], lr=0.1, momentum=0.9, weight_decay=5e-4)
    g = torch.Generator().manual_seed(seed)
    for step in range(steps + 1):
        if warmup:
            for group, base in zip(opt.param_groups, (0.1, 0.01)):
                group["lr"] = base * min(1.0, (step + 1) / warmup)
        idx = torch.randint(0, len(labels), (128,), generator=g)
        logits = model(images[idx])
        loss = nn.functional.cross_entropy(logits, labels[idx])
        yield step, logits, loss
        if not torch.isfinite(loss):
            return
        opt.zero_grad()
        loss.backward()
        opt.step()


def trace_steps(depth_scale: bool, seed: int, steps: int, every: int, images: torch.Tensor, labels: torch.Tensor):
    """One line per ``every`` steps: step, loss, max |logit|, mean |pooled feature|, mean |conv2|."""
    model = create_model("resnet20", norm="none", in_chans=1)
    initialize(model, "zero", depth_scale=depth_scale)
    pooled = {}
    model.fc.register_forward_hook(lambda m, args, out: pooled.__setitem__("f", args[0].detach()))
    ends = [m for name, m in model.named_modules() if name.endswith("conv2")]
    for step, logits, loss in fixup_sgd_steps(model, images, labels, seed, steps):
        if step % every == 0:
            size = sum(float(m.weight.detach().norm()) for m in ends) / len(ends)
            yield step, loss.item(), float(logits.detach().abs().max()), float(pooled["f"].abs().mean()), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=positive_int, default=48)
    parser.add_argument("--every", type=positive_int, default=4)
    parser.add_argument("--seeds", type=random_seed, nargs="+", default=[0, 1])
    args = parser.parse_args()
    data = load_dataset("fashion_mnist", "train").subset(8192, seed=0)
    images = (data.images.float() / 255 - data.mean[0]) / data.std[0]
    print("| depth_scale | seed | step | loss | max abs logit | mean abs pooled feature | mean norm of conv2 |")
    print("|---|---|---|---|---|---|---|")
    for depth_scale in (False, True):
        for seed in args.seeds:
            for step, loss, logit, feature, size in trace_steps(
                depth_scale, seed, args.steps, args.every, images, data.labels
            ):
                print(f"| {depth_scale} | {seed} | {step} | {loss:.3f} | {logit:.3g} | {feature:.3g} | {size:.3g} |")


if __name__ == "__main__":
    main()
