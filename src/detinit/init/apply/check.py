"""The ZerO sanity check as an API: :func:`check_zero_one`.

The official ZerO code prints every trainable parameter that holds more than
two distinct values after initialisation. Two modes:

* ``"magnitude"`` (default): all non-zero entries share one absolute value,
  i.e. the tensor is ``s * T`` with ``T`` in ``{-1, 0, 1}``. This is "zeros
  and ones up to the normalisation" and accepts Hadamard blocks (``+-c``) on a
  centre tap surrounded by zeros.
* ``"official"``: at most two distinct values, exactly the official test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ...contract import checked_arguments
from .checks import refuse_meta_parameters

CHECK_MODES = ("magnitude", "official")


@dataclass(frozen=True)
class Offender:
    """A parameter that fails the check, with a few of its distinct values."""

    name: str
    shape: tuple[int, ...]
    num_distinct: int
    sample: tuple[float, ...]


@dataclass
class ZeroOneCheck:
    """Result of :func:`check_zero_one`; truthy when every parameter passes."""

    mode: str
    checked: int
    offenders: list[Offender] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.offenders

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        if self.ok:
            return f"check_zero_one ({self.mode}): all {self.checked} trainable tensors pass"
        lines = [f"check_zero_one ({self.mode}): {len(self.offenders)} of {self.checked} trainable tensors fail"]
        for o in self.offenders:
            values = ", ".join(f"{v:.4g}" for v in o.sample)
            lines.append(f"  {o.name} {tuple(o.shape)}: {o.num_distinct} distinct values ({values}, ...)")
        return "\n".join(lines)


def _passes(values: torch.Tensor, mode: str) -> bool:
    if mode == "official":
        return values.numel() <= 2
    magnitudes = values.abs().unique()
    return bool((magnitudes[magnitudes != 0]).numel() <= 1)


@torch.no_grad()
@checked_arguments()
def check_zero_one(model: nn.Module, mode: str = "magnitude") -> ZeroOneCheck:
    """Check that every trainable parameter is zeros and ones up to the normalisation.

    >>> from detinit import initialize
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3), torch.nn.BatchNorm2d(16))
    >>> _ = initialize(net, "zero", variant="paper")  # a 16x3 Hadamard block on the centre tap: {0, +c, -c}
    >>> check_zero_one(net).ok, check_zero_one(net, mode="official").ok
    (True, False)
    """
    if mode not in CHECK_MODES:
        raise ValueError(f"check_zero_one: mode={mode!r} is not supported; choose one of {CHECK_MODES}")
    refuse_meta_parameters(model, "check_zero_one", "materialise the model first (initialize(model, device='cpu'))")
    result = ZeroOneCheck(mode, 0)
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        result.checked += 1
        values = param.detach().unique()
        if not _passes(values, mode):
            sample = tuple(float(v) for v in values[:4])
            result.offenders.append(Offender(name, tuple(param.shape), values.numel(), sample))
    return result
