"""CIFAR-10 / CIFAR-100 from the standard python-pickle batches at a user's path.

``root`` may be the extracted folder (``cifar-10-batches-py`` /
``cifar-100-python``), its parent, or the ``.tar.gz`` archive itself. Files are
checked against the official MD5 sums (https://www.cs.toronto.edu/~kriz/cifar.html)
and example counts; ``verify=False`` accepts other data in the same format.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch

from .base import ArrayDataset, DataError, check_split, register_dataset

CIFAR10 = {
    "folder": "cifar-10-batches-py",
    "train": [
        ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
        ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
        ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
        ("data_batch_4", "634d18415352ddfa80567beed471001a"),
        ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
    ],
    "test": [("test_batch", "40351d587109b95175f43aff81a1287e")],
    "label_key": b"labels",
    "classes": 10,
    # Commonly used per-channel statistics of the training split.
    "mean": (0.4914, 0.4822, 0.4465),
    "std": (0.2470, 0.2435, 0.2616),
}
CIFAR100 = {
    "folder": "cifar-100-python",
    "train": [("train", "16019d7e3df5f24257cddd939b257f8d")],
    "test": [("test", "f0ef6b0ae62326f3e7ffdfab6717acfc")],
    "label_key": b"fine_labels",
    "classes": 100,
    "mean": (0.5071, 0.4865, 0.4409),
    "std": (0.2673, 0.2564, 0.2762),
}
SIZES = {"train": 50000, "test": 10000}


def _read_files(root: Path, folder: str, names: list[str]) -> dict[str, bytes]:
    """Bytes of the batch files, from a folder or a tar.gz archive."""
    if root.is_file() and root.name.endswith((".tar.gz", ".tgz")):
        try:
            tar = tarfile.open(root, "r:gz")
        except (tarfile.TarError, OSError) as err:
            raise DataError(
                f"{root} is not a readable CIFAR tar.gz archive ({err}); pass the archive or its folder"
            ) from None
        with tar:
            out = {}
            for name in names:
                try:
                    member = tar.extractfile(f"{folder}/{name}")
                except KeyError:
                    member = None
                if member is None:
                    raise DataError(f"{root} has no {folder}/{name}")
                out[name] = member.read()
            return out
    base = root / folder if (root / folder).is_dir() else root
    out = {}
    for name in names:
        path = base / name
        if not path.is_file():
            raise DataError(
                f"missing CIFAR batch file {path}: pass root= the folder {folder} (or its parent, "
                "or the .tar.gz) from https://www.cs.toronto.edu/~kriz/cifar.html"
            )
        out[name] = path.read_bytes()
    return out


def load_cifar(root: Path | None, split: str, spec: dict, name: str, verify: bool = True) -> ArrayDataset:
    if root is None:
        raise DataError(f"{name} cannot be downloaded here: pass root=DIR with {spec['folder']} (or the .tar.gz)")
    check_split(split, name)
    files = spec[split]
    raw = _read_files(Path(root), spec["folder"], [f for f, _ in files])
    images, labels = [], []
    for fname, md5 in files:
        if verify and hashlib.md5(raw[fname]).hexdigest() != md5:
            raise DataError(
                f"{name} file {fname} in {root} fails its MD5 check (corrupt or not the official file); "
                "re-download it, or pass verify=False for your own data in CIFAR format"
            )
        try:
            entry = pickle.load(io.BytesIO(raw[fname]), encoding="bytes")
            data = np.asarray(entry[b"data"])
            if data.dtype != np.uint8:
                raise ValueError(f"its data are {data.dtype}; CIFAR batches hold uint8 pixels")
            images.append(data.reshape(-1, 3, 32, 32))
            labels.append(np.asarray(entry[spec["label_key"]], dtype=np.int64))
        except (pickle.UnpicklingError, KeyError, ValueError, EOFError, TypeError) as err:
            raise DataError(f"{name} file {fname} in {root} is not a CIFAR pickle batch ({err!r})") from None
    x, y = torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))
    if verify and len(y) != SIZES[split]:
        raise DataError(f"{name} {split} in {root} has {len(y)} examples, expected {SIZES[split]}")
    if len(y) and (y.min() < 0 or y.max() >= spec["classes"]):
        raise DataError(f"{name} labels in {root} fall outside 0..{spec['classes'] - 1}")
    return ArrayDataset(name, split, x, y, spec["classes"], spec["mean"], spec["std"])


@register_dataset("cifar10", "CIFAR-10 32x32 RGB, 10 classes, python batches from root=DIR")
def cifar10(split: str, root: Path | None = None, verify: bool = True) -> ArrayDataset:
    return load_cifar(root, split, CIFAR10, "cifar10", verify)


@register_dataset("cifar100", "CIFAR-100 32x32 RGB, 100 classes, python batches from root=DIR")
def cifar100(split: str, root: Path | None = None, verify: bool = True) -> ArrayDataset:
    return load_cifar(root, split, CIFAR100, "cifar100", verify)
