"""Feature diversity of trained runs: the participation ratio of each residual block's output (the effective number
of distinct channels, :func:`detinit.diagnostics.participation_ratio`) at initialisation and after training, for
the run directories given, on one fixed batch of the run's test split: at initialisation in train mode (what the
first step sees: a BatchNorm normalises with the batch's statistics, not its running ones, which are 0 and 1 at
init), after training in eval mode (what the test accuracy measures).

    .venv/bin/python benchmarks/run_features.py runs/bn_seeds_256_resnet20_fashion_mnist/runs/*

Docs/results/14-fast-start.md reads it on ZerO's and Kaiming's BatchNorm ResNet-20 after 256 steps. A run is
rebuilt from its ``config.json`` (the same initialisation, bitwise) and its final weights are read from its
``checkpoint.pt`` (checked against its digest), so the figures are those of the run that was trained.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from detinit.argtypes import positive_int  # noqa: E402
from detinit.data import load_dataset, probe_batch  # noqa: E402
from detinit.diagnostics import feature_diversity  # noqa: E402
from detinit.train import TrainConfig, build_model, load_checkpoint  # noqa: E402


def run_folder(text: str) -> Path:
    """A run directory: a folder holding ``config.json`` and ``checkpoint.pt``."""
    path = Path(text)
    if not (path / "config.json").is_file() or not (path / "checkpoint.pt").is_file():
        raise argparse.ArgumentTypeError(f"{text} is no run directory (it needs config.json and checkpoint.pt)")
    return path


def participation(model: torch.nn.Module, images: torch.Tensor, train: bool) -> list[float]:
    """Per block; on a copy in train mode (a forward pass there would move the model's running statistics)."""
    model = copy.deepcopy(model).train(train)
    with torch.no_grad():
        return [row.participation_ratio for row in feature_diversity(model, images)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=run_folder, help="run directories (of image models), one or more")
    parser.add_argument("--images", type=positive_int, default=256, help="test images in the probe batch")
    args = parser.parse_args()
    if not args.runs:  # checked here, after argparse has refused any option it does not know
        parser.error("give one or more run directories")
    torch.set_num_threads(1)
    for folder in args.runs:
        config = TrainConfig.from_dict(json.loads((folder / "config.json").read_text()))
        test = load_dataset(config.data, "test", root=config.data_root, subset=args.images, **config.data_args)
        images = probe_batch(test, args.images)
        model = build_model(config, test)
        at_init = participation(model, images, train=True)
        model.load_state_dict(load_checkpoint(folder / "checkpoint.pt")["model"])
        trained = participation(model, images, train=False)
        print(f"{folder.name}\n  at init  {' '.join(f'{v:5.1f}' for v in at_init)}")
        print(f"  trained  {' '.join(f'{v:5.1f}' for v in trained)}", flush=True)


if __name__ == "__main__":
    main()
