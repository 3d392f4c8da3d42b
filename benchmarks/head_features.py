"""What the output layer of a normalisation-free ResNet-20 reads at init, per scheme: the pooled features on 256
Fashion-MNIST training images (the first ones, normalised as the trainer does).

Columns: the mean absolute feature, the share of the features' energy that varies over the images (the rest is
the same for every image, which a linear readout cannot tell apart), and the features that are 0 on every image.
With the output layer at 0 (ZerO) its first gradient is the features times the error, so their size sets how
fast the head starts (docs/results.md section 13).

Usage, from the repository root (Fashion-MNIST is fetched into the cache on first use)::

    .venv/bin/python benchmarks/head_features.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from detinit import create_model, initialize  # noqa: E402
from detinit._table import format_table  # noqa: E402
from detinit.argtypes import no_options  # noqa: E402
from detinit.data import load_dataset, probe_batch  # noqa: E402

CASES = [
    ("zero", {"branch_zero": "end"}),  # ZerO's norm-free default until session 24 (docs/results.md section 13)
    ("zero", {}),  # the default now: the zero on the gates, the stem's and shortcuts' rows at He's norm
    ("zero", {"variant": "paper"}),
    ("partial_identity", {}),
    ("idinit", {}),
    ("fixup", {}),
    ("kaiming", {}),
]


def pooled_features(scheme: str, options: dict, images: torch.Tensor) -> torch.Tensor:
    """The input of the output layer of a normalisation-free ResNet-20 initialised by ``scheme``."""
    model = create_model("resnet20", norm="none", in_chans=images.shape[1])
    initialize(model, scheme, **options)
    found: dict[str, torch.Tensor] = {}
    model.fc.register_forward_hook(lambda module, args, out: found.__setitem__("x", args[0].detach()))
    with torch.no_grad():
        model.eval()(images)
    return found["x"]


def main() -> None:
    no_options(__doc__)
    images = probe_batch(load_dataset("fashion_mnist", "train", subset=512), 256)
    rows = []
    for scheme, options in CASES:
        f = pooled_features(scheme, options, images)
        varying = float(f.var(0).sum() / f.pow(2).mean(0).sum().clamp_min(1e-30))
        dead = int((f.abs().amax(0) == 0).sum())
        name = scheme + (f" {options}" if options else "")
        rows.append([name, f"{float(f.abs().mean()):.3g}", f"{varying:.3g}", f"{dead} of {f.shape[1]}"])
    print(f"normalisation-free ResNet-20, {len(images)} Fashion-MNIST images, torch {torch.__version__}")
    print(format_table(["scheme", "mean |feature|", "varying share", "dead features"], rows))


if __name__ == "__main__":
    main()
