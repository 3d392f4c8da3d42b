"""ImageNet (and any image-folder dataset) from its standard on-disk layout, streamed from disk.

Layout: ``root/train/<class>/*.JPEG`` and ``root/val/<class>/*.JPEG`` (the validation images sorted
into class folders, as the usual ``valprep.sh`` does); classes are the sorted ``train`` folder names.
Images are decoded with Pillow in DataLoader workers, never held in memory as a whole.

Transforms (the standard ImageNet recipe): training with ``augment`` -- random resized crop (scale
0.08-1, aspect 3/4-4/3) to ``image_size`` and a horizontal flip with probability 1/2; otherwise --
resize the shorter side to ``image_size * 256 / 224`` and take the central ``image_size`` crop.
The random choices for image ``i`` in epoch ``e`` come from a generator seeded with ``(seed, e, i)``,
so a batch does not depend on how the work is split across worker processes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..contract import check_fields, checked_arguments
from .augment import check_normalisation, to_float
from .base import DataError, register_dataset
from .loader import BatchPlan, derived_seed

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # the standard statistics
IMAGENET_SIZES = {"train": 1_281_167, "test": 50_000}
EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".webp")
LAYOUT = (
    "root must hold train/<class>/*.JPEG and val/<class>/*.JPEG (the validation images sorted into "
    "class folders, e.g. with the usual valprep.sh)"
)


@dataclass(frozen=True)
class FolderDataset:
    """Image files with labels; decoded and transformed on the fly (see the module docstring)."""

    name: str
    split: str
    files: tuple[Path, ...]
    labels: torch.Tensor
    classes: tuple[str, ...]
    image_size: int
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    in_chans: int = 3

    def __post_init__(self) -> None:
        check_fields(self)
        where = f"{self.name}/{self.split}"
        if self.labels.shape != (len(self.files),) or self.labels.dtype != torch.int64:
            raise DataError(
                f"{where}: labels must be int64, one per file ({len(self.files)}), got {self.labels.dtype} "
                f"{tuple(self.labels.shape)}"
            )
        if len(self.labels) and not 0 <= int(self.labels.min()) <= int(self.labels.max()) < len(self.classes):
            raise DataError(f"{where}: labels span {int(self.labels.min())}..{int(self.labels.max())}, outside the "
                            f"{len(self.classes)} classes")  # fmt: skip
        check_normalisation(where, self.mean, self.std, channels=self.in_chans)

    def __len__(self) -> int:
        return len(self.files)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @checked_arguments(at_least={"n": 1})
    def subset(self, n: int | None, seed: int = 0) -> FolderDataset:
        if n is None or n >= len(self):
            return self
        keep = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n].sort().values.tolist()
        return replace(self, files=tuple(self.files[i] for i in keep), labels=self.labels[keep])

    @checked_arguments(at_least={"index": 0})
    def load(self, index: int, augment: bool, generator: torch.Generator | None) -> torch.Tensor:
        """Image ``index`` as a ``uint8`` tensor ``(3, image_size, image_size)``."""
        from PIL import Image

        path = self.files[index]
        try:
            with Image.open(path) as img:
                img = img.convert("RGB")
                out = (
                    _random_resized_crop(img, self.image_size, generator)
                    if augment
                    else _resize_center_crop(img, self.image_size)
                )
        except OSError as err:
            raise DataError(f"cannot read image {path}: {err}") from None
        if augment and float(torch.rand((), generator=generator)) < 0.5:
            out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return torch.from_numpy(np.asarray(out, dtype=np.uint8).copy()).permute(2, 0, 1)


def _uniform(g: torch.Generator | None, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=g))


def _random_resized_crop(img: object, size: int, g: torch.Generator | None) -> object:
    from PIL import Image

    width, height = img.size  # type: ignore[attr-defined]
    area = width * height
    for _ in range(10):
        target = area * _uniform(g, 0.08, 1.0)
        ratio = math.exp(_uniform(g, math.log(3 / 4), math.log(4 / 3)))
        w, h = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (), generator=g))
            left = int(torch.randint(0, width - w + 1, (), generator=g))
            return img.resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + w, top + h))  # type: ignore[attr-defined]
    return _resize_center_crop(img, size)


def _resize_center_crop(img: object, size: int) -> object:
    from PIL import Image

    width, height = img.size  # type: ignore[attr-defined]
    short = round(size * 256 / 224)
    scale = short / min(width, height)
    w, h = max(size, round(width * scale)), max(size, round(height * scale))
    img = img.resize((w, h), Image.Resampling.BILINEAR)  # type: ignore[attr-defined]
    left, top = (w - size) // 2, (h - size) // 2
    return img.crop((left, top, left + size, top + size))  # type: ignore[attr-defined]


def _scan(folder: Path, classes: tuple[str, ...] | None) -> tuple[tuple[Path, ...], list[int], tuple[str, ...]]:
    if not folder.is_dir():
        raise DataError(f"missing folder {folder}: {LAYOUT}")
    found = tuple(sorted(d.name for d in folder.iterdir() if d.is_dir()))
    if classes is None:
        classes = found
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise DataError(f"{folder} has class folders {unknown[:5]} that train/ does not have")
    index = {c: i for i, c in enumerate(classes)}
    files, labels = [], []
    for name in found:
        for path in sorted((folder / name).iterdir()):
            if path.suffix.lower() in EXTENSIONS:
                files.append(path)
                labels.append(index[name])
    if not files:
        raise DataError(f"no images found under {folder}: {LAYOUT}")
    return tuple(files), labels, classes


@register_dataset("imagenet", "ImageNet (or any image folder) from root=DIR with train/ and val/; streamed")
def imagenet(split: str, root: Path | None = None, image_size: int = 224, verify: bool = False) -> FolderDataset:
    """``verify=True`` also checks the official ImageNet-1k image counts (1,281,167 / 50,000)."""
    if root is None:
        raise DataError(f"ImageNet cannot be downloaded here: pass root=DIR; {LAYOUT}")
    classes = None
    if split == "test":  # the class list is the training folders', whichever classes val/ holds
        if not (root / "train").is_dir():
            raise DataError(f"missing folder {root / 'train'}: {LAYOUT}")
        classes = tuple(sorted(d.name for d in (root / "train").iterdir() if d.is_dir()))
    files, labels, classes = _scan(root / ("train" if split == "train" else "val"), classes)
    if verify and len(files) != IMAGENET_SIZES[split]:
        raise DataError(f"ImageNet {split} in {root} has {len(files)} images, expected {IMAGENET_SIZES[split]}")
    return FolderDataset("imagenet", split, files, torch.tensor(labels, dtype=torch.int64), classes, image_size)


class _EpochView(torch.utils.data.Dataset):
    """The images of one epoch, in order, each with its own seeded generator."""

    def __init__(self, dataset: FolderDataset, order: list[int], augment: bool, seed: int, epoch: int) -> None:
        self.dataset, self.order, self.augment, self.seed, self.epoch = dataset, order, augment, seed, epoch

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        index = self.order[i]
        g = torch.Generator().manual_seed(derived_seed(self.seed, self.epoch, 10 + index)) if self.augment else None
        return self.dataset.load(index, self.augment, g), int(self.dataset.labels[index])


class FolderBatches(BatchPlan):
    """Batches of a :class:`FolderDataset`, decoded in ``workers`` DataLoader workers; the other
    options are :class:`BatchPlan`'s, the interface that of :class:`detinit.data.Batches`."""

    @checked_arguments(at_least={"workers": 0})
    def __init__(self, dataset: FolderDataset, batch_size: int, *, workers: int = 2, **options: Any) -> None:
        super().__init__(dataset, batch_size, **options)
        self.workers = workers

    @checked_arguments(at_least={"epoch": 0})
    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        shards = [self.shard(batch.tolist()) for batch in self.global_batches(epoch)]
        mine = [i for shard in shards for i in shard]  # this rank's share of every global batch, in order
        loader = torch.utils.data.DataLoader(
            _EpochView(self.dataset, mine, self.augment, self.seed, epoch),
            batch_size=max(len(shards[0]), 1) if shards else 1,
            num_workers=self.workers,
            shuffle=False,
        )
        for images, labels in loader:
            x = to_float(images, self.dataset.mean, self.dataset.std)
            yield x.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)
