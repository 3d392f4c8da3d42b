"""Control over symmetry breaking: deterministic training, emulated GPU non-determinism, dropout, noise.

>>> import torch
>>> from detinit import create_model
>>> model = create_model("constnet_10_2")
>>> with breaking("rounding", model, seed=0) as mechanism:
...     mechanism.describe()
'rounding'
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

from ..contract import checked_arguments
from .mechanisms import MECHANISMS, Mechanism, branch_outputs, make_mechanism


@contextmanager
@checked_arguments()
def breaking(
    name: str, model: nn.Module, *, seed: int = 0, layers: list[str] | None = None, **knobs: float
) -> Iterator[Mechanism]:
    """Attach mechanism ``name`` to ``model`` for the duration of the block, then detach it."""
    mechanism = make_mechanism(name, seed=seed, layers=layers, **knobs).attach(model)
    try:
        yield mechanism
    finally:
        mechanism.detach()


__all__ = ["MECHANISMS", "Mechanism", "branch_outputs", "breaking", "make_mechanism"]
