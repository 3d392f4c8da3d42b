r"""Dead channels: features that are zero, or copies of another feature, up to rounding.

For an activation :math:`y` with channels :math:`y_1, \dots, y_C` (each a
vector over samples and positions) and :math:`r = \mathrm{rms}(y)` over the
whole tensor:

* channel :math:`c` is **zero** when :math:`\mathrm{rms}(y_c) \le \tau\, r`;
* a non-zero channel :math:`c` is a **copy** when
  :math:`\mathrm{rms}(y_c - y_{c'}) \le \tau\, r` for an earlier non-zero
  channel :math:`c' < c`.

:math:`\tau` (``rtol``, default :math:`10^{-4}`) sits far above float32
rounding (:math:`\sim 10^{-7}`, the residue of exact cancellations such as
:math:`H_m H_m = 2^m I`) and far below any feature a network computes on
purpose. A zero channel carries nothing; a copy carries nothing new, and when
every later weight treats the two alike (zero-initialised heads, identity
layers, BatchNorm with equal statistics) the gradients keep them equal: in
exact arithmetic the network trains as a narrower one, and only rounding
separates the copies (the ConstNet mechanism inside ZerO). BatchNorm makes
both worse: it multiplies a zero channel's gradient by :math:`1/\sqrt{\epsilon}`
and rescales rounding residue to unit variance once the channel moves.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..contract import checked_arguments
from ._checks import check_activations
from ._hooks import channel_outputs

MAX_POSITIONS = 2048  # samples x positions per channel used for the copy test (evenly strided)


@dataclass(frozen=True)
class DeadChannelRow:
    """Zero and copied channels at one probe point."""

    name: str
    channels: int
    zero: int
    copies: int

    @property
    def distinct(self) -> int:
        """Channels that are neither zero nor a copy of an earlier one."""
        return self.channels - self.zero - self.copies


@checked_arguments(at_least={"channel_dim": None})
def count_dead(y: torch.Tensor, channel_dim: int = 1, rtol: float = 1e-4) -> tuple[int, int]:
    """``(zero, copies)`` among the channels of ``y`` (channels on ``channel_dim``).

    >>> y = torch.randn(4, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    >>> y = torch.cat([y, y[:, :1], torch.zeros(4, 2, 5, 5)], 1)  # 3 channels, a copy, 2 zeros
    >>> count_dead(y)
    (2, 1)
    """
    if not 0 < rtol < 1:
        raise ValueError(f"count_dead: rtol={rtol!r} must lie in (0, 1)")
    check_activations("count_dead", "y", y, channel_dim)
    flat = y.detach().movedim(channel_dim, 0).reshape(y.shape[channel_dim], -1).double()
    scale = flat.pow(2).mean().sqrt()
    if scale == 0:
        return flat.shape[0], 0
    rms = flat.pow(2).mean(1).sqrt()
    zero = rms <= rtol * scale
    live = flat[~zero]
    if live.shape[1] > MAX_POSITIONS:
        live = live[:, :: -(-live.shape[1] // MAX_POSITIONS)]
    if live.shape[0] < 2:
        return int(zero.sum()), 0
    dist = torch.cdist(live, live) / live.shape[1] ** 0.5  # rms of the difference of every pair
    close = torch.triu(dist <= rtol * scale, diagonal=1)  # (earlier, later) pairs
    copies = int(close.any(0).sum())
    return int(zero.sum()), copies


@torch.no_grad()
@checked_arguments(at_least={"channel_dim": None})
def dead_channels(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    at: str = "auto",
    channel_dim: int | None = None,
    rtol: float = 1e-4,
) -> list[DeadChannelRow]:
    """Zero and copied channels at every probe point (residual blocks, or every layer).

    Args:
        model: any module; run in its current mode (``eval()`` for BatchNorm running statistics).
        inputs: a probe batch.
        at: ``"blocks"``, ``"layers"`` or ``"auto"`` (see :func:`detinit.diagnostics.feature_diversity`).
        channel_dim: where channels are; default the model's ``detinit_channel_dim`` or 1.
        rtol: the tolerance :math:`\\tau` of the module docstring.

    >>> from detinit.models import create_model
    >>> net = create_model("resnet20", in_chans=1, init="zero", init_options={"variant": "paper"})
    >>> rows = dead_channels(net.eval(), torch.randn(8, 1, 16, 16, generator=torch.Generator().manual_seed(0)))
    >>> rows[0].channels, rows[0].zero + rows[0].copies   # the 1-channel stem: 16 identical channels
    (16, 15)
    """
    return [
        DeadChannelRow(name, y.shape[1], *count_dead(y, 1, rtol))
        for name, y in channel_outputs("dead_channels", model, inputs, at, channel_dim)
    ]
