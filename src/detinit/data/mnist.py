"""MNIST-format datasets: Fashion-MNIST (fetched from Debian) and MNIST (from a path).

Fashion-MNIST is fetched once, without root, from the Debian package
``dataset-fashion-mnist``: ``apt-get download`` then ``dpkg-deb -x`` into the
cache (:func:`detinit.data.base.cache_dir`). If apt's package lists are empty
(a fresh machine), they are refreshed into a private folder of the cache,
which needs no root either. The four files are checked against the SHA-256
sums below (taken from Debian's ``0.0~git20200523.55506a9-1``, identical to the
upstream release files).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

from .base import ArrayDataset, DataError, cache_dir, register_dataset
from .idx import read_idx

log = logging.getLogger(__name__)

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


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _find(root: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    raise DataError(f"missing file {root / stem}(.gz)")


def _verify_fashion(folder: Path) -> list[str]:
    """Names of files that are missing or fail their checksum."""
    bad = []
    for name, digest in FASHION_SHA256.items():
        path = folder / name
        if not path.is_file() or sha256(path) != digest:
            bad.append(name)
    return bad


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


def _apt_download(workdir: Path) -> Path:
    """``apt-get download`` the package into ``workdir``, refreshing private package lists if needed."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise DataError(f"Fashion-MNIST is not in the cache and apt-get/dpkg-deb are not available. {HOW_TO_GET}")
    result = _run(["apt-get", "download", DEBIAN_PACKAGE], workdir)
    if result.returncode != 0:
        lists = workdir / "apt-lists"
        (lists / "partial").mkdir(parents=True)
        (workdir / "apt-cache" / "archives" / "partial").mkdir(parents=True)
        private = [
            "-o",
            f"Dir::State::Lists={lists}",
            "-o",
            f"Dir::Cache={workdir / 'apt-cache'}",
            "-o",
            "Debug::NoLocking=1",
        ]
        log.info("apt-get download failed (%s); refreshing package lists privately", result.stderr.strip()[-200:])
        update = _run(["apt-get", *private, "update"], workdir)
        result = _run(["apt-get", *private, "download", DEBIAN_PACKAGE], workdir)
        if result.returncode != 0:
            raise DataError(
                f"could not download {DEBIAN_PACKAGE}: {result.stderr.strip()[-500:]} "
                f"(apt-get update said: {update.stderr.strip()[-300:]}). {HOW_TO_GET}"
            )
    debs = sorted(workdir.glob(f"{DEBIAN_PACKAGE}_*.deb"))
    if not debs:
        raise DataError(f"apt-get download left no {DEBIAN_PACKAGE}_*.deb in {workdir}. {HOW_TO_GET}")
    return debs[-1]


def fetch_fashion_mnist(cache: Path | None = None) -> Path:
    """The folder with the four verified Fashion-MNIST files, fetching them on first use."""
    folder = (cache or cache_dir()) / "fashion-mnist"
    if not _verify_fashion(folder):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    log.info("fetching Fashion-MNIST from the Debian package %s into %s", DEBIAN_PACKAGE, folder)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".fetch-") as tmp:
        work = Path(tmp)
        deb = _apt_download(work)
        result = _run(["dpkg-deb", "-x", str(deb), str(work / "x")], work)
        if result.returncode != 0:
            raise DataError(f"dpkg-deb -x {deb.name} failed: {result.stderr.strip()[-300:]}. {HOW_TO_GET}")
        unpacked = work / "x" / _PACKAGE_PATH
        bad = _verify_fashion(unpacked)
        if bad:
            raise DataError(f"the files {bad} of {deb.name} fail their SHA-256 check. {HOW_TO_GET}")
        staging = work / "fashion-mnist"
        staging.mkdir()
        for name in FASHION_SHA256:
            shutil.copy2(unpacked / name, staging / name)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)  # atomic: the cache never holds half a dataset
    return folder


def load_mnist_format(
    root: Path, split: str, name: str, expected: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``(N, 1, 28, 28)`` uint8 and labels int64 from the IDX files in ``root``."""
    images = read_idx(_find(root, FILES[(split, "images")]))
    labels = read_idx(_find(root, FILES[(split, "labels")]))
    if images.dim() != 3 or labels.dim() != 1 or images.shape[0] != labels.shape[0]:
        raise DataError(f"{name} in {root}: images {tuple(images.shape)} and labels {tuple(labels.shape)} do not match")
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
        bad = [n for n in _verify_fashion(root) if (root / n).exists()]
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
