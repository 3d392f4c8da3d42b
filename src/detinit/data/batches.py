"""Choosing the batch iterator for a dataset, and a fixed probe batch for diagnostics."""

from __future__ import annotations

from typing import Any

import torch

from .augment import to_float
from .base import ArrayDataset
from .folder import FolderBatches, FolderDataset
from .loader import Batches

Dataset = ArrayDataset | FolderDataset


def make_batches(dataset: Dataset, batch_size: int, **options: Any) -> Batches | FolderBatches:
    """:class:`Batches` for in-memory data, :class:`FolderBatches` (streamed) for image folders."""
    if isinstance(dataset, FolderDataset):
        options.pop("pad", None)
        return FolderBatches(dataset, batch_size, **options)
    options.pop("workers", None)
    return Batches(dataset, batch_size, **options)


def probe_batch(dataset: Dataset, n: int = 256) -> torch.Tensor:
    """The first ``n`` examples, normalised, without augmentation (for diagnostics during training)."""
    n = min(n, len(dataset))
    if isinstance(dataset, FolderDataset):
        images = torch.stack([dataset.load(i, False, None) for i in range(n)])
    else:
        images = dataset.images[:n]
    return to_float(images, dataset.mean, dataset.std)
