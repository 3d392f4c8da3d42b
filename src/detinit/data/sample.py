"""One batch to measure a model on at initialisation (``detinit demo``, ``detinit inspect``): the first test
examples of a dataset, which then decide the model's shape, or seeded random inputs of a given shape."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..contract import checked_arguments
from .base import load_dataset
from .batches import model_shape, probe_batch, probe_targets
from .text import TokenDataset


@dataclass
class SampleBatch:
    """Inputs and targets, what they are (``description``), and the shape they imply for a model
    (``shape``: :func:`~detinit.data.batches.model_shape`'s keys)."""

    inputs: torch.Tensor
    targets: torch.Tensor
    description: str
    shape: dict[str, int]

    def describe_shape(self) -> str:
        """``"256 tokens, context 64"`` or ``"input 1x28x28, 10 classes"``."""
        if "vocab_size" in self.shape:
            return f"{self.shape['vocab_size']} tokens, context {self.shape['context']}"
        size = self.inputs.shape[-1]
        grid = f"{size}" if "length" in self.shape else f"{size}x{size}"
        return f"input {self.shape['in_chans']}x{grid}, {self.shape['num_classes']} classes"


@checked_arguments()
def sample_batch(
    data: str,
    n: int,
    *,
    tokens: bool,
    seed: int = 0,
    num_classes: int = 10,
    in_chans: int = 1,
    image_size: int = 28,
    vocab_size: int = 256,
    context: int = 64,
) -> SampleBatch:
    """``n`` examples for a language model (``tokens``) or an image model.

    ``data="synthetic"``: standard-normal images ``(n, in_chans, image_size, image_size)`` with uniform
    labels in ``[0, num_classes)``, or uniformly random token windows of ``context`` tokens from
    ``vocab_size``, drawn from a generator seeded with ``seed``. Any other registered dataset: its first
    ``n`` test examples, normalised (its test windows of ``context`` tokens), and its own shape.

    >>> batch = sample_batch("synthetic", 4, tokens=False, in_chans=3, image_size=8)
    >>> tuple(batch.inputs.shape), batch.describe_shape()
    ((4, 3, 8, 8), 'input 3x8x8, 10 classes')
    """
    if data != "synthetic":
        ds = load_dataset(data, "test", context=context) if tokens else load_dataset(data, "test")
        if isinstance(ds, TokenDataset) != tokens:
            given, wanted = ("token windows", "images") if not tokens else ("images", "token windows")
            raise ValueError(f"sample_batch: dataset {data!r} holds {given}, and a batch of {wanted} was asked")
        inputs, targets = probe_batch(ds, n), probe_targets(ds, n)
        kind = "validation windows" if tokens else "test images"
        return SampleBatch(inputs, targets, f"the first {len(targets)} {data} {kind}", model_shape(ds))
    g = torch.Generator().manual_seed(seed)
    if tokens:
        windows = torch.randint(0, vocab_size, (n, context + 1), generator=g)
        what = f"{n} uniformly random token windows of length {context} (seed {seed})"
        return SampleBatch(windows[:, :-1], windows[:, 1:], what, {"vocab_size": vocab_size, "context": context})
    inputs = torch.randn(n, in_chans, image_size, image_size, generator=g)
    targets = torch.randint(0, num_classes, (n,), generator=g)
    what = f"{n} standard-normal images (seed {seed}), labels uniform"
    shape = {"num_classes": num_classes, "in_chans": in_chans, "image_size": image_size}
    return SampleBatch(inputs, targets, what, shape)
