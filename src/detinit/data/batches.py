"""Choosing the batch iterator for a dataset, and a fixed probe batch for diagnostics."""

from __future__ import annotations

from typing import Any

import torch

from ..contract import checked_arguments
from .augment import to_float
from .base import ArrayDataset
from .folder import FolderBatches, FolderDataset
from .loader import Batches, TokenBatches
from .text import TokenDataset

Dataset = ArrayDataset | FolderDataset | TokenDataset
BatchIterator = Batches | FolderBatches | TokenBatches


@checked_arguments()
def make_batches(dataset: Dataset, batch_size: int, **options: Any) -> BatchIterator:
    """:class:`Batches` for in-memory images, :class:`FolderBatches` (streamed) for image folders,
    :class:`TokenBatches` for token windows."""
    if isinstance(dataset, TokenDataset):
        options.pop("workers", None)
        options.pop("pad", None)
        return TokenBatches(dataset, batch_size, **options)
    if isinstance(dataset, FolderDataset):
        options.pop("pad", None)
        return FolderBatches(dataset, batch_size, **options)
    options.pop("workers", None)
    return Batches(dataset, batch_size, **options)


@checked_arguments()
def probe_batch(dataset: Dataset, n: int = 256) -> torch.Tensor:
    """The first ``n`` examples, normalised, without augmentation (for diagnostics during training).

    Token windows come back as int64 inputs.
    """
    n = min(n, len(dataset))
    if isinstance(dataset, TokenDataset):
        return dataset.inputs[:n].long()
    if isinstance(dataset, FolderDataset):
        images = torch.stack([dataset.load(i, False, None) for i in range(n)])
    else:
        images = dataset.images[:n]
    return to_float(images, dataset.mean, dataset.std)


@checked_arguments()
def probe_targets(dataset: Dataset, n: int = 256) -> torch.Tensor:
    """The targets of :func:`probe_batch`'s examples: labels, or next-token ids of token windows."""
    n = min(n, len(dataset))
    return dataset.targets[:n].long() if isinstance(dataset, TokenDataset) else dataset.labels[:n]


@checked_arguments()
def model_shape(dataset: Dataset) -> dict[str, int]:
    """What a model built for ``dataset`` takes from it: ``num_classes``, ``in_chans`` and ``image_size`` for
    images (``length`` for 1-D signals); ``vocab_size`` and ``context`` for token windows (the keys of
    :meth:`detinit.models.registry.ModelEntry.data_kwargs`).

    >>> from detinit.data import load_dataset
    >>> model_shape(load_dataset("synthetic", "train", num_examples=8, image_size=12))
    {'num_classes': 10, 'in_chans': 1, 'image_size': 12}
    """
    if isinstance(dataset, TokenDataset):
        return {"vocab_size": dataset.num_classes, "context": dataset.context}
    if (
        getattr(dataset, "images", None) is not None and dataset.images.dim() == 3
    ):  # 1-D signals (N, C, L): a length, not a square image
        return {"num_classes": dataset.num_classes, "in_chans": dataset.in_chans, "length": dataset.image_size}
    return {"num_classes": dataset.num_classes, "in_chans": dataset.in_chans, "image_size": dataset.image_size}
