"""Datasets from disk and generated offline, batch augmentation, and a seeded batch iterator.

Registered datasets: ``fashion_mnist`` (default; fetched once from Debian's
``dataset-fashion-mnist``), ``mnist`` and ``cifar10`` / ``cifar100`` (from a
path), ``imagenet`` (image folders at a path, streamed), ``digits``
(scikit-learn), ``mnist1d`` (generated), ``synthetic``; for language
modelling ``kjv`` (the King James Bible, fetched once from Debian's
``sword-text-kjv``) and ``text_file`` (a text file at a path).
"""

from . import cifar, folder, generated, mnist, text  # noqa: F401  (registers the datasets)
from .augment import random_crop_flip, to_float
from .base import (
    ArrayDataset,
    DataError,
    cache_dir,
    channel_stats,
    gives_tokens,
    list_datasets,
    load_dataset,
    reads_files,
    register_dataset,
)
from .batches import make_batches, model_shape, probe_batch, probe_targets
from .folder import FolderBatches, FolderDataset
from .idx import read_idx, write_idx
from .loader import Batches, derived_seed, epoch_generator
from .mnist import fetch_fashion_mnist
from .sample import SampleBatch, sample_batch
from .text import TokenDataset, fetch_kjv, text_dataset, unigram_loss

__all__ = [
    "ArrayDataset",
    "Batches",
    "DataError",
    "FolderBatches",
    "FolderDataset",
    "SampleBatch",
    "TokenDataset",
    "cache_dir",
    "channel_stats",
    "derived_seed",
    "epoch_generator",
    "fetch_fashion_mnist",
    "fetch_kjv",
    "list_datasets",
    "load_dataset",
    "gives_tokens",
    "reads_files",
    "make_batches",
    "model_shape",
    "probe_batch",
    "probe_targets",
    "random_crop_flip",
    "read_idx",
    "register_dataset",
    "sample_batch",
    "text_dataset",
    "to_float",
    "unigram_loss",
    "write_idx",
]
