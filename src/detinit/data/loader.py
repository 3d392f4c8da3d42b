"""Batches from an in-memory dataset: seeded shuffling, normalisation, augmentation, sharding for DDP.

The order and augmentation of epoch ``e`` depend only on ``(seed, e)``, so a
run resumed at an epoch boundary sees exactly the batches an uninterrupted
run would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch

from ..contract import checked_arguments
from ..devices import parse_device
from .augment import random_crop_flip, to_float
from .base import ArrayDataset


@checked_arguments(at_least={"epoch": 0, "stream": 0})
def derived_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """A seed for one epoch and one purpose (``stream``), from the run's seed alone."""
    return (seed * 1_000_003 + epoch) * 7 + stream


@checked_arguments(at_least={"epoch": 0, "stream": 0})
def epoch_generator(seed: int, epoch: int, stream: int = 0) -> torch.Generator:
    """A generator for one epoch (and one purpose), independent of everything that ran before."""
    return torch.Generator().manual_seed(derived_seed(seed, epoch, stream))


class BatchPlan:
    """What every batch iterator shares: validation, the number of batches, the epoch's order, DDP shards.

    Epoch ``e``'s order is a permutation seeded by ``(seed, e)`` (or the identity without
    ``shuffle``); each global batch is split into ``world_size`` consecutive shards of
    ``ceil(len / world_size)`` examples, and rank ``r`` gets shard ``r``.

    Args:
        dataset: the data.
        batch_size: global batch size (split across ``world_size`` ranks).
        shuffle: a new permutation each epoch; ``drop_last`` drops a final partial batch.
        augment: random augmentation (images only; what it is, the subclass says).
        seed: seed of the order and the augmentation of every epoch.
        device: where batches go.
        rank, world_size: this process's shard of every global batch (DDP).
    """

    @checked_arguments(at_least={"rank": 0})
    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        *,
        shuffle: bool = False,
        drop_last: bool = False,
        augment: bool = False,
        seed: int = 0,
        device: torch.device | str = "cpu",
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if rank >= world_size:
            raise ValueError(
                f"rank={rank} is not supported with world_size={world_size}; ranks are 0 to {world_size - 1}"
            )
        if batch_size % world_size:
            raise ValueError(f"batch_size={batch_size} must be divisible by the world size {world_size}")
        if drop_last and 0 < len(dataset) < batch_size:
            raise ValueError(
                f"batch_size={batch_size} with drop_last=True is larger than the dataset ({len(dataset)} examples): "
                f"every epoch would have no batch; use batch_size <= {len(dataset)} or drop_last=False"
            )
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, batch_size, shuffle, drop_last
        self.augment, self.seed, self.device = augment, seed, parse_device(device, type(self).__name__)
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def global_batches(self, epoch: int) -> list[torch.Tensor]:
        """Indices of every global batch of epoch ``epoch``, in order."""
        n = len(self.dataset)
        order = torch.randperm(n, generator=epoch_generator(self.seed, epoch, 0)) if self.shuffle else torch.arange(n)
        return [order[b * self.batch_size : (b + 1) * self.batch_size] for b in range(len(self))]

    def shard(self, items: Sequence[Any] | torch.Tensor) -> Any:
        """This rank's consecutive share of one global batch (the whole batch without DDP)."""
        if self.world_size == 1:
            return items
        per_rank = -(-len(items) // self.world_size)
        return items[self.rank * per_rank : (self.rank + 1) * per_rank]


class Batches(BatchPlan):
    """Iterate over an in-memory ``dataset`` in batches of ``batch_size`` for epoch ``epoch``.

    ``augment`` is a random crop (reflect-pad ``pad``) and a horizontal flip;
    the other options are :class:`BatchPlan`'s.
    """

    @checked_arguments(at_least={"pad": 0})
    def __init__(self, dataset: ArrayDataset, batch_size: int, *, pad: int = 4, **options: Any) -> None:
        if options.get("augment") and dataset.images.dim() != 4:
            raise ValueError(
                f"augment=True needs image data (N, C, H, W); {dataset.name} has {tuple(dataset.images.shape)}"
            )
        super().__init__(dataset, batch_size, **options)
        self.pad = pad

    @checked_arguments(at_least={"epoch": 0})
    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of epoch ``epoch`` (this rank's shard of each)."""
        aug_gen = epoch_generator(self.seed, epoch, 1)
        ds = self.dataset
        for index in self.global_batches(epoch):
            x = to_float(ds.images[index], ds.mean, ds.std)
            if self.augment:
                x = random_crop_flip(x, aug_gen, self.pad)  # drawn for the global batch: same on every rank
            x, y = self.shard(x), self.shard(ds.labels[index])
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)


class TokenBatches(BatchPlan):
    """Batches of ``(inputs, targets)`` token windows (int64) from a :class:`~detinit.data.text.TokenDataset`.

    Same options (:class:`BatchPlan`), order, sharding and resume guarantees as
    :class:`Batches`; there is no augmentation.
    """

    def __init__(self, dataset: Any, batch_size: int, **options: Any) -> None:
        if options.get("augment"):
            raise ValueError("augment=True is for images; token windows have no augmentation (set augment: false)")
        super().__init__(dataset, batch_size, **options)

    @checked_arguments(at_least={"epoch": 0})
    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of epoch ``epoch`` (this rank's shard of each)."""
        for index in self.global_batches(epoch):
            x, y = self.shard(self.dataset.inputs[index]), self.shard(self.dataset.targets[index])
            yield x.long().to(self.device, non_blocking=True), y.long().to(self.device, non_blocking=True)
