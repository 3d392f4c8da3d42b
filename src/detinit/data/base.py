"""In-memory image datasets and the dataset registry.

Every dataset is small enough to live in memory as one tensor: images as
``uint8`` ``(N, C, H, W)`` (or ``float32`` for generated data), labels as
``int64``. Batching, normalisation and augmentation happen on whole batches
(:mod:`detinit.data.loader`), which keeps the CPU busy with the model, not
with Python per-sample code.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ..contract import check_fields, checked_arguments
from ..registry import Registry
from ..values import is_int
from .augment import check_normalisation

SPLITS = ("train", "test")


class DataError(RuntimeError):
    """A dataset file is missing, corrupt or unreadable; the message says which and how to get it."""


@dataclass(frozen=True)
class ArrayDataset:
    """Images, labels and what is needed to normalise them."""

    name: str
    split: str
    images: torch.Tensor  # (N, C, H, W) uint8 or float32, or (N, C, L) for 1-D signals
    labels: torch.Tensor  # (N,) int64
    num_classes: int
    mean: tuple[float, ...]  # per channel, on the [0, 1] scale for uint8 images
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        check_fields(self)  # a dataset built by hand (a user's own tensors) is checked as a loader's is
        where = f"{self.name}/{self.split}"
        if self.images.dim() < 3 or self.images.dtype not in (torch.uint8, torch.float32):
            raise DataError(
                f"{where}: images must be uint8 or float32 (N, C, H, W) or (N, C, L), got {self.images.dtype} "
                f"{tuple(self.images.shape)}"
            )
        check_normalisation(where, self.mean, self.std, channels=self.in_chans)
        if self.images.shape[0] != self.labels.shape[0]:
            raise DataError(
                f"{self.name}/{self.split}: {self.images.shape[0]} images but {self.labels.shape[0]} labels"
            )
        if self.labels.dim() != 1 or self.labels.dtype != torch.int64:
            shape = tuple(self.labels.shape)
            raise DataError(f"{self.name}/{self.split}: labels must be 1-D int64, got {self.labels.dtype} {shape}")
        if len(self.labels) and not 0 <= int(self.labels.min()) <= int(self.labels.max()) < self.num_classes:
            raise DataError(
                f"{self.name}/{self.split}: labels span {int(self.labels.min())}..{int(self.labels.max())}, outside "
                f"the {self.num_classes} classes 0..{self.num_classes - 1}"
            )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def in_chans(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    @checked_arguments(at_least={"n": 1})
    def subset(self, n: int | None, seed: int = 0) -> ArrayDataset:
        """A class-stratified-by-chance random subset of ``n`` examples (the whole set if ``n`` is None)."""
        if n is None or n >= len(self):
            return self
        if n < 1:
            raise ValueError(f"subset size must be >= 1, got {n}")
        keep = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n].sort().values
        return replace(self, images=self.images[keep], labels=self.labels[keep])


@checked_arguments()
def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std (on the [0, 1] scale for uint8 images), computed in float64."""
    if images.dim() < 2 or images.shape[1] == 0 or images.numel() // images.shape[1] < 2:
        raise ValueError(
            f"channel_stats: images of shape {tuple(images.shape)} are not supported; it needs a batch (N, C, ...) "
            "with 2 or more values per channel"
        )
    x = images.double()
    if images.dtype == torch.uint8:
        x = x / 255.0
    flat = x.transpose(0, 1).reshape(images.shape[1], -1)
    return tuple(flat.mean(1).tolist()), tuple(flat.std(1).clamp(min=1e-8).tolist())


def cache_dir() -> Path:
    """Where fetched data lives: ``$DETINIT_CACHE``, else ``$XDG_CACHE_HOME/detinit``, else ``~/.cache/detinit``."""
    if os.environ.get("DETINIT_CACHE"):
        return Path(os.environ["DETINIT_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "detinit"


Loader = Callable[..., ArrayDataset]
DATASETS: Registry[Loader] = Registry("dataset")


@checked_arguments()
def register_dataset(name: str, description: str) -> Callable[[Loader], Loader]:
    """Decorator: register a loader ``fn(split=, root=, **options) -> dataset`` under ``name``; a loader that
    generates its examples rather than reading files takes no ``root`` (:func:`reads_files`)."""
    register = DATASETS.register(name, description)

    def wrap(loader: Loader) -> Loader:
        if "split" not in inspect.signature(loader).parameters:
            raise ValueError(
                f"register_dataset({name!r}): the loader {getattr(loader, '__name__', loader)!r} takes no split; "
                "a loader is fn(split, root=None, **options) -> dataset"
            )
        checked = checked_arguments()(loader)  # its options' types and ranges, from its annotations

        @functools.wraps(loader)
        def load(split: str, *args: object, **kwargs: object) -> ArrayDataset:
            check_split(split, f"dataset {name!r}")
            root = kwargs.get("root")
            if isinstance(root, str) and root:  # a path given as text, as a config holds it
                kwargs["root"] = Path(root).expanduser()
            return checked(split, *args, **kwargs)

        load.check_arguments = checked.check_arguments  # type: ignore[attr-defined]  # options alone, no load
        return register(load)

    return wrap


def check_split(split: object, where: str) -> None:
    """``split`` is one of :data:`SPLITS`, or a ``ValueError`` naming ``where`` and the splits there are."""
    if split not in SPLITS:
        raise ValueError(f"{where}: split={split!r} is not supported; choose 'train' or 'test'")


def list_datasets() -> dict[str, str]:
    """Names and one-line descriptions."""
    return dict(sorted(DATASETS.descriptions().items()))


@checked_arguments(at_least={"seed": 0})
def load_dataset(
    name: str,
    split: str = "train",
    *,
    root: str | Path | None = None,
    subset: int | None = None,
    seed: int = 0,
    **options: object,
) -> ArrayDataset:
    """Load split ``"train"`` or ``"test"`` of a registered dataset (``root`` for data on disk).

    >>> ds = load_dataset("synthetic", "train", num_examples=64)
    >>> ds.images.shape, ds.num_classes
    (torch.Size([64, 1, 28, 28]), 10)
    """
    check_split(split, "load_dataset")
    loader = check_dataset_options(name, options)
    if root is not None and not isinstance(root, (str, Path)):
        raise DataError(f"dataset {name!r}: root must be a path, got {root!r}")
    if root is not None and not reads_files(name):
        raise DataError(f"dataset {name!r} is generated and reads no files: root={str(root)!r} would have no effect")
    if root is not None:
        options["root"] = Path(root).expanduser()
    try:
        dataset = loader(split=split, **options)
    except ValueError as err:  # an option's value the loader refuses (it says which and what it takes)
        raise DataError(f"dataset {name!r}: {err}") from None
    if subset is not None and is_int(subset, 1) and subset > len(dataset):
        raise DataError(
            f"dataset {name!r}: a subset of {subset} examples asked from a {split} split of {len(dataset)}; "
            f"use at most {len(dataset)}, or null for the whole split"
        )
    return dataset.subset(subset, seed)


@checked_arguments()
def check_dataset_options(name: str, options: Mapping[str, object]) -> Loader:
    """The loader of dataset ``name``, if it takes ``options`` (``data_args`` of a config: checked before a run
    directory is written); a :class:`DataError` naming an option it does not take and those it does.

    >>> check_dataset_options("mnist1d", {"sed": 1})
    Traceback (most recent call last):
        ...
    detinit.data.base.DataError: dataset 'mnist1d' does not take option 'sed'; it takes seed
    """
    loader = DATASETS.get(name)
    takes = [p for p in inspect.signature(loader).parameters if p not in ("split", "root")]
    unknown = [key for key in options if key not in takes]
    if unknown:
        raise DataError(
            f"dataset {name!r} does not take option {unknown[0]!r}; "
            + (f"it takes {', '.join(takes)}" if takes else "it takes none")
        )
    try:
        loader.check_arguments("train", **options)  # their types and ranges too, before anything is loaded
    except ValueError as err:
        raise DataError(f"dataset {name!r}: {err}") from None
    return loader


@checked_arguments()
def reads_files(name: str) -> bool:
    """Whether dataset ``name``'s loader reads files (it takes ``root``) rather than generating its examples.

    >>> reads_files("cifar10"), reads_files("synthetic")
    (True, False)
    """
    return "root" in inspect.signature(DATASETS.get(name)).parameters  # an unknown name: the registry's error


@checked_arguments()
def gives_tokens(name: str) -> bool:
    """Whether dataset ``name`` gives token windows (its loader returns a ``TokenDataset``) rather than images or
    signals, read from the loader's return annotation without loading anything.

    >>> gives_tokens("kjv"), gives_tokens("cifar10")
    (True, False)
    """
    annotation = inspect.unwrap(DATASETS.get(name)).__annotations__.get("return")
    return getattr(annotation, "__name__", annotation) == "TokenDataset"
