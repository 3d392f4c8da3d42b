"""Datasets available offline without files: scikit-learn's digits, MNIST-1D, and a synthetic set."""

from __future__ import annotations

import numpy as np
import torch

from ..values import is_int, is_number
from .base import ArrayDataset, DataError, channel_stats, register_dataset


def _split(
    x: torch.Tensor, y: torch.Tensor, split: str, test_fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_test = int(round(len(y) * test_fraction))
    keep = order[n_test:] if split == "train" else order[:n_test]
    keep = keep.sort().values
    return x[keep], y[keep]


@register_dataset("digits", "scikit-learn's 8x8 digits (1,797 images, 10 classes; 25% test split, seed 0)")
def digits(split: str) -> ArrayDataset:
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise DataError("the digits dataset needs scikit-learn: pip install 'detinit[data]'") from err
    bunch = load_digits()
    x = torch.from_numpy((bunch.images * 16).clip(0, 255).astype(np.uint8)).unsqueeze(1)  # 0..16 -> 0..255
    y = torch.from_numpy(bunch.target.astype(np.int64))
    train_x, _ = _split(x, y, "train", 0.25, 0)
    mean, std = channel_stats(train_x)
    x, y = _split(x, y, split, 0.25, 0)
    return ArrayDataset("digits", split, x, y, 10, mean, std)


@register_dataset("mnist1d", "MNIST-1D (Greydanus 2020): 1-D signals of length 40, generated offline")
def mnist1d(split: str, seed: int = 42) -> ArrayDataset:
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as err:
        raise DataError("the mnist1d dataset needs the mnist1d package: pip install 'detinit[data]'") from err
    args = get_dataset_args()
    args.seed = seed
    data = make_dataset(args)
    key = "" if split == "train" else "_test"
    x = torch.from_numpy(np.asarray(data["x" + key], dtype=np.float32)).unsqueeze(1)
    y = torch.from_numpy(np.asarray(data["y" + key], dtype=np.int64))
    mean, std = channel_stats(torch.from_numpy(np.asarray(data["x"], dtype=np.float32)).unsqueeze(1))
    return ArrayDataset("mnist1d", split, x, y, 10, mean, std)


@register_dataset("synthetic", "Gaussian class prototypes plus noise (for tests; any size)")
def synthetic(
    split: str,
    num_examples: int = 512,
    num_classes: int = 10,
    in_chans: int = 1,
    image_size: int = 28,
    noise: float = 1.0,
    seed: int = 0,
) -> ArrayDataset:
    """Class ``k`` images are ``prototype_k + noise * N(0, 1)``: learnable, and reproducible from ``seed``."""
    sizes = {"num_examples": num_examples, "num_classes": num_classes, "in_chans": in_chans, "image_size": image_size}
    for name, value in sizes.items():
        if not is_int(value, 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not is_number(noise, 0):
        raise ValueError(f"noise must be a number >= 0, got {noise!r}")
    g = torch.Generator().manual_seed(seed)
    prototypes = torch.randn(num_classes, in_chans, image_size, image_size, generator=g)
    g.manual_seed(seed + (1 if split == "train" else 2))
    y = torch.randint(0, num_classes, (num_examples,), generator=g)
    x = prototypes[y] + noise * torch.randn(num_examples, in_chans, image_size, image_size, generator=g)
    zero, one = (0.0,) * in_chans, (1.0 + noise**2) ** 0.5
    return ArrayDataset("synthetic", split, x.float(), y, num_classes, zero, (one,) * in_chans)
