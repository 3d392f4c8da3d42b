r"""ConstNet's channel-averaging initialisation (Blumenfeld, Gilboa & Soudry, 2020).

``ConstAvg`` with constant ``c`` in ``[0, 1]``:

.. math::
    W \sim \mathcal N\!\left(0, \frac{\text{gain}\,(1-c)}{\text{fan\_in}}\right) \ (c<1),
    \qquad W = 0 \ (c = 1), \qquad
    W_{[:, :, \text{centre}]} \mathrel{+}= \frac{c}{Q},

with ``Q`` the inputs per group and ``fan_in = Q * prod(kernel)``. With
``c = 1`` every output channel is the per-position mean of the input channels,
so every channel of every layer is the same function of the input: the
ConstNet symmetric state. ``c < 1`` mixes in Gaussian noise (the paper's
partially random knob); ``gain`` multiplies the variance, as in the official code.
"""

from __future__ import annotations

import math

import torch

from ...contract import checked_arguments
from ._no_grad import no_grad
from .layout import centre_plane, check_float_tensor, matrix_views
from .random import draw_
from .row_fills import check_block


@no_grad
@checked_arguments(ranges={"c": (0.0, 1.0), "gain": (0.0, math.inf)})
def const_avg_noise_(
    tensor: torch.Tensor, c: float, fan_in: int, *, gain: float, generator: torch.Generator
) -> torch.Tensor:
    r"""The noise part of ConstAvg, in place: :math:`W \sim \mathcal N(0, \text{gain}\,(1-c)/\text{fan\_in})`.

    Shared by :func:`const_avg_` and LeakyNet's layers (which add an identity or
    an average to it). Drawn on the generator's device, then copied into ``tensor``.

    >>> g = torch.Generator().manual_seed(0)
    >>> w = const_avg_noise_(torch.empty(256, 256), 0.5, 256, gain=2.0, generator=g)
    >>> round(w.var().item() * 256, 1)
    1.0
    """
    check_float_tensor(tensor, "const_avg_noise_")
    std = math.sqrt(gain * (1.0 - c) / fan_in)  # gain, c and fan_in in range: checked_arguments
    return draw_(tensor, lambda t, g: t.normal_(0.0, std, generator=g), generator)


@no_grad
@checked_arguments(ranges={"c": (0.0, 1.0), "gain": (0.0, math.inf)})
def const_avg_(
    tensor: torch.Tensor,
    c: float = 1.0,
    *,
    gain: float = 1.0,
    generator: torch.Generator | None = None,
    groups: int = 1,
    transposed: bool = False,
) -> torch.Tensor:
    r"""ConstNet averaging initialisation, in place.

    Args:
        tensor: Linear weight ``(out, in)``, conv kernel ``(out, in/groups, *k)``
            or, with ``transposed=True``, a ConvTranspose kernel ``(in, out/groups, *k)``.
        c: weight of the averaging part, in ``[0, 1]``. ``c = 1`` is deterministic.
        gain: variance multiplier of the noise part (used only when ``c < 1``).
        generator: required when ``c < 1``; the global RNG is never used.
        groups: number of convolution groups (averaging within each group).
        transposed: the tensor is a ConvTranspose weight.

    Returns:
        ``tensor``.

    >>> const_avg_(torch.empty(2, 4))
    tensor([[0.2500, 0.2500, 0.2500, 0.2500],
            [0.2500, 0.2500, 0.2500, 0.2500]])
    >>> g = torch.Generator().manual_seed(0)
    >>> const_avg_(torch.empty(16, 16, 3, 3), 0.5, generator=g).std() > 0
    tensor(True)
    """
    views = matrix_views(tensor, "const_avg_", groups=groups, transposed=transposed)
    in_features = views[0].shape[1]
    if c < 1.0:
        if generator is None:
            raise ValueError(
                f"const_avg_: c={c} < 1 mixes in Gaussian noise; pass generator=torch.Generator()"
                ".manual_seed(seed) (the global RNG is never used)"
            )
        const_avg_noise_(tensor, c, in_features * math.prod(tensor.shape[2:]), gain=gain, generator=generator)
    else:
        tensor.zero_()
    if c > 0.0:
        for view in views:
            view.add_(c / in_features)
    return tensor


@no_grad
@checked_arguments(at_least={"start": 0})
def const_avg_rows_(
    out: torch.Tensor, start: int, total: int, *, groups: int = 1, transposed: bool = False
) -> torch.Tensor:
    """Rows ``start : start + len(out)`` of :func:`const_avg_` with ``c = 1`` on a ``total``-row weight (a shard
    of it, :mod:`detinit.init.tensor.row_fills`): zeros, and ``1 / Q`` on the centre tap, the same in every row.

    >>> torch.equal(const_avg_rows_(torch.empty(1, 2, 3), 2, 4, groups=2), const_avg_(torch.empty(4, 2, 3), groups=2)[2:3])
    True
    """
    check_block(out, start, total, "const_avg_rows_", groups, transposed)
    in_features = total // groups if transposed else out.shape[1]
    centre_plane(out.zero_()).add_(1.0 / in_features)
    return out


__all__ = ["const_avg_", "const_avg_noise_", "const_avg_rows_"]
