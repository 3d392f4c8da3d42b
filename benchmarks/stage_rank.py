"""The features a BatchNorm ResNet-20 carries into its wider stages at init, per scheme: for each stage's output on
64 random images (train mode, generator seed 0), the channels with a duplicate (correlation above 0.999 with
another channel) and the effective rank (exp of the entropy of the normalised squared singular values of the
centred channels x positions matrix). docs/results.md section 13 cites the table.

Usage, from the repository root::

    .venv/bin/python benchmarks/stage_rank.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from detinit import create_model, initialize  # noqa: E402
from detinit._table import format_table  # noqa: E402
from detinit.argtypes import no_options  # noqa: E402

SCHEMES = ("idinit", "zero", "kaiming")
STAGES = ("stages.0", "stages.1", "stages.2")


def stage_outputs(scheme: str, images: torch.Tensor) -> dict[str, torch.Tensor]:
    model = create_model("resnet20")
    initialize(model, scheme)
    found: dict[str, torch.Tensor] = {}
    for name in STAGES:
        model.get_submodule(name).register_forward_hook(lambda m, a, out, name=name: found.__setitem__(name, out))
    with torch.no_grad():
        model.train()(images)
    return found


def duplicates_and_rank(features: torch.Tensor) -> tuple[int, float]:
    channels = features.shape[1]
    flat = features.transpose(0, 1).reshape(channels, -1)
    flat = flat - flat.mean(1, keepdim=True)
    correlation = torch.corrcoef(flat) - torch.eye(channels)
    duplicated = int((correlation.abs() > 0.999).any(1).sum())
    energy = torch.linalg.svdvals(flat).pow(2)
    p = energy / energy.sum()
    return duplicated, float(torch.exp(-(p * torch.log(p + 1e-12)).sum()))


def main() -> None:
    no_options(__doc__)
    images = torch.randn(64, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    rows = []
    for scheme in SCHEMES:
        row = [scheme]
        for name, features in stage_outputs(scheme, images).items():
            duplicated, rank = duplicates_and_rank(features)
            row.append(f"{duplicated} of {features.shape[1]}, rank {rank:.1f}")
        rows.append(row)
    print(f"ResNet-20 (BatchNorm, train mode), 64 random images, torch {torch.__version__}")
    print(format_table(["scheme", *(f"{s}: duplicated, effective rank" for s in STAGES)], rows))


if __name__ == "__main__":
    main()
