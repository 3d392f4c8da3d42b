"""MNIST-format datasets: Fashion-MNIST (fetched from Debian) and MNIST (from a path).

Fashion-MNIST is fetched once, without root, from the Debian package
``dataset-fashion-mnist`` into the cache (:mod:`detinit.data.debian`,
:func:`detinit.data.base.cache_dir`). The four files are checked against the SHA-256
sums below (taken from Debian's ``0.0~git20200523.55506a9-1``, identical to the
upstream release files).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..contract import checked_arguments
from .base import ArrayDataset, DataError, cache_dir, check_split, register_dataset
from .debian import failing_checksums, fetch_package_files
from .idx import read_idx

FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}
FASHION_SHA256 = {
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}
FASHION_SIZES = {"train": 60000, "test": 10000}
DEBIAN_PACKAGE = "dataset-fashion-mnist"
_PACKAGE_PATH = Path("usr/share/datasets/fashion-mnist")
HOW_TO_GET = (
    "detinit fetches it with `apt-get download dataset-fashion-mnist` + `dpkg-deb -x` (no root needed); "
    "or pass root=DIR holding train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz "
    "and t10k-labels-idx1-ubyte.gz (https://github.com/zalandoresearch/fashion-mnist)"
)


def _find(root: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    raise DataError(f"missing file {root / stem}(.gz)")


@checked_arguments()
def fetch_fashion_mnist(cache: Path | None = None) -> Path:
    """The folder with the four verified Fashion-MNIST files, fetching them on first use."""
    folder = (cache or cache_dir()) / "fashion-mnist"
    return fetch_package_files(DEBIAN_PACKAGE, str(_PACKAGE_PATH), FASHION_SHA256, folder, HOW_TO_GET)


def load_mnist_format(
    root: Path, split: str, name: str, expected: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``(N, 1, 28, 28)`` uint8 and labels int64 from the IDX files in ``root``."""
    check_split(split, name)
    images = read_idx(_find(root, FILES[(split, "images")]))
    labels = read_idx(_find(root, FILES[(split, "labels")]))
    if images.dim() != 3 or labels.dim() != 1 or images.shape[0] != labels.shape[0]:
        raise DataError(f"{name} in {root}: images {tuple(images.shape)} and labels {tuple(labels.shape)} do not match")
    if tuple(images.shape[1:]) != (28, 28):
        raise DataError(f"{name} in {root}: images of {tuple(images.shape[1:])} pixels; the MNIST format is 28x28")
    if expected is not None and images.shape[0] != expected:
        raise DataError(f"{name} {split} in {root} has {images.shape[0]} examples, expected {expected}")
    return images.unsqueeze(1).contiguous(), labels.long()


# Fashion-MNIST: per-channel statistics of the training split, computed here with channel_stats.
FASHION_MEAN, FASHION_STD = (0.2860405969887955,), (0.3530242483182949,)
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)  # the commonly used values (MNIST is not available here)


@register_dataset("fashion_mnist", "Fashion-MNIST 28x28 grey, 10 classes (fetched from Debian; default)")
def fashion_mnist(split: str, root: Path | None = None) -> ArrayDataset:
    if root is None:
        root = fetch_fashion_mnist()
    else:
        bad = [n for n in failing_checksums(root, FASHION_SHA256) if (root / n).exists()]
        if bad:
            raise DataError(f"Fashion-MNIST files {bad} in {root} fail their SHA-256 check (corrupt?). {HOW_TO_GET}")
    try:
        images, labels = load_mnist_format(root, split, "Fashion-MNIST", FASHION_SIZES[split])
    except DataError as err:
        raise DataError(f"{err}. {HOW_TO_GET}") from None
    return ArrayDataset("fashion_mnist", split, images, labels, 10, FASHION_MEAN, FASHION_STD)


@register_dataset("mnist", "MNIST 28x28 grey, 10 classes, IDX files from root=DIR")
def mnist(split: str, root: Path | None = None) -> ArrayDataset:
    if root is None:
        raise DataError(
            "MNIST cannot be downloaded here: pass root=DIR (or data_root in a config) holding "
            "train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], "
            "t10k-labels-idx1-ubyte[.gz]"
        )
    images, labels = load_mnist_format(root, split, "MNIST")
    return ArrayDataset("mnist", split, images, labels, 10, MNIST_MEAN, MNIST_STD)
