"""Datasets from disk and generated offline, batch augmentation, and a seeded batch iterator.

Registered datasets: ``fashion_mnist`` (default; fetched once from Debian's
``dataset-fashion-mnist``), ``mnist`` and ``cifar10`` / ``cifar100`` (from a
path), ``imagenet`` (image folders at a path, streamed), ``digits``
(scikit-learn), ``mnist1d`` (generated), ``synthetic``.
"""

from . import cifar, folder, generated, mnist  # noqa: F401  (registers the datasets)
from .augment import random_crop_flip, to_float
from .base import ArrayDataset, DataError, cache_dir, channel_stats, list_datasets, load_dataset, register_dataset
from .batches import make_batches, probe_batch
from .folder import FolderBatches, FolderDataset
from .idx import read_idx, write_idx
from .loader import Batches, derived_seed, epoch_generator
from .mnist import fetch_fashion_mnist

__all__ = [
    "ArrayDataset",
    "Batches",
    "DataError",
    "FolderBatches",
    "FolderDataset",
    "cache_dir",
    "channel_stats",
    "derived_seed",
    "epoch_generator",
    "fetch_fashion_mnist",
    "list_datasets",
    "load_dataset",
    "make_batches",
    "probe_batch",
    "random_crop_flip",
    "read_idx",
    "register_dataset",
    "to_float",
    "write_idx",
]
