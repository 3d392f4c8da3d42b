r"""Random baselines (Kaiming, Xavier, orthogonal) with an explicit generator.

Same distributions as :mod:`torch.nn.init`, with three differences a
reproducible study needs:

* ``generator`` is required: the global RNG is never touched, so initialising
  one model cannot shift the random stream of another.
* The numbers are drawn on the generator's device and copied, so a CPU
  generator gives the same weights on CPU and CUDA.
* Fans are computed per group and respect transposed convolutions. For a
  conv kernel ``(out, in/G, *k)`` or a ConvTranspose kernel ``(in, out/G, *k)``:
  ``fan_in = in/G * prod(k)`` and ``fan_out = out/G * prod(k)``. (torch uses
  ``fan_out = dim0 * prod(k)`` even for grouped convolutions, and reads
  ConvTranspose kernels as if they were ``(out, in)``.)

Kaiming: :math:`\sigma = \text{gain}/\sqrt{\text{fan}}`; Xavier:
:math:`\sigma = \text{gain}\sqrt{2/(\text{fan\_in}+\text{fan\_out})}`; uniform
variants use the bound :math:`\sqrt3\,\sigma`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ...contract import checked_arguments
from ._no_grad import no_grad
from .layout import check_float_tensor, matrix_views

FAN_MODES = ("fan_in", "fan_out")


def draw_(
    tensor: torch.Tensor,
    sample: Callable[[torch.Tensor, torch.Generator], object],
    generator: torch.Generator,
) -> torch.Tensor:
    """Fill ``tensor`` with ``sample(buffer, generator)`` drawn on the generator's device."""
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator, got {type(generator).__name__}; "
            "the global RNG is never used, e.g. pass torch.Generator().manual_seed(0)"
        )
    if tensor.device == generator.device:
        sample(tensor, generator)
    else:
        buffer = torch.empty(tensor.shape, dtype=tensor.dtype, device=generator.device)
        sample(buffer, generator)
        tensor.copy_(buffer)
    return tensor


@checked_arguments()
def fans(tensor: torch.Tensor, *, groups: int = 1, transposed: bool = False, fn: str = "fans") -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight, per group and transposed-aware (errors name ``fn``, the caller).

    >>> fans(torch.empty(64, 8, 3, 3), groups=4)
    (72, 144)
    >>> fans(torch.empty(32, 16, 3, 3), transposed=True)
    (288, 144)
    """
    matrix = matrix_views(tensor, fn, groups=groups, transposed=transposed)[0]
    receptive_field = math.prod(tensor.shape[2:])
    out_per_group, in_per_group = matrix.shape
    return in_per_group * receptive_field, out_per_group * receptive_field


NONLINEARITIES = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
                  "sigmoid", "tanh", "relu", "leaky_relu", "selu")  # fmt: skip  # torch.nn.init.calculate_gain's


def _gain(nonlinearity: str, a: float, fn: str) -> float:
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"{fn}: nonlinearity={nonlinearity!r} is not supported; choose one of {NONLINEARITIES}")
    return torch.nn.init.calculate_gain(nonlinearity, a)


def _fan(tensor: torch.Tensor, mode: str, groups: int, transposed: bool, fn: str) -> int:
    if mode not in FAN_MODES:
        raise ValueError(f"{fn}: mode={mode!r} is not supported; choose one of {FAN_MODES}")
    fan_in, fan_out = fans(tensor, groups=groups, transposed=transposed, fn=fn)
    return fan_in if mode == "fan_in" else fan_out


@no_grad
@checked_arguments()
def kaiming_normal_(
    tensor: torch.Tensor,
    *,
    generator: torch.Generator,
    mode: str = "fan_in",
    nonlinearity: str = "relu",
    a: float = 0.0,
    groups: int = 1,
    transposed: bool = False,
) -> torch.Tensor:
    r"""He et al. (2015): :math:`\mathcal N(0, \text{gain}^2/\text{fan})`.

    >>> w = kaiming_normal_(torch.empty(256, 256), generator=torch.Generator().manual_seed(0))
    >>> round(float(w.var() * 256 / 2), 1)
    1.0
    """
    std = _gain(nonlinearity, a, "kaiming_normal_") / math.sqrt(
        _fan(tensor, mode, groups, transposed, "kaiming_normal_")
    )
    return draw_(tensor, lambda t, g: t.normal_(0.0, std, generator=g), generator)


@no_grad
@checked_arguments()
def kaiming_uniform_(
    tensor: torch.Tensor,
    *,
    generator: torch.Generator,
    mode: str = "fan_in",
    nonlinearity: str = "relu",
    a: float = 0.0,
    groups: int = 1,
    transposed: bool = False,
) -> torch.Tensor:
    r"""He et al. (2015), uniform: :math:`U(-b, b)`, :math:`b = \text{gain}\sqrt{3/\text{fan}}`."""
    gain = _gain(nonlinearity, a, "kaiming_uniform_")
    bound = gain * math.sqrt(3.0 / _fan(tensor, mode, groups, transposed, "kaiming_uniform_"))
    return draw_(tensor, lambda t, g: t.uniform_(-bound, bound, generator=g), generator)


@no_grad
@checked_arguments(ranges={"gain": (0.0, math.inf)})
def xavier_normal_(
    tensor: torch.Tensor,
    *,
    generator: torch.Generator,
    gain: float = 1.0,
    groups: int = 1,
    transposed: bool = False,
) -> torch.Tensor:
    r"""Glorot & Bengio (2010): :math:`\mathcal N(0, 2\,\text{gain}^2/(\text{fan\_in}+\text{fan\_out}))`."""
    fan_in, fan_out = fans(tensor, groups=groups, transposed=transposed, fn="xavier_normal_")
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return draw_(tensor, lambda t, g: t.normal_(0.0, std, generator=g), generator)


@no_grad
@checked_arguments(ranges={"gain": (0.0, math.inf)})
def xavier_uniform_(
    tensor: torch.Tensor,
    *,
    generator: torch.Generator,
    gain: float = 1.0,
    groups: int = 1,
    transposed: bool = False,
) -> torch.Tensor:
    r"""Glorot & Bengio (2010), uniform: bound :math:`\text{gain}\sqrt{6/(\text{fan\_in}+\text{fan\_out})}`."""
    fan_in, fan_out = fans(tensor, groups=groups, transposed=transposed, fn="xavier_uniform_")
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return draw_(tensor, lambda t, g: t.uniform_(-bound, bound, generator=g), generator)


@no_grad
@checked_arguments()
def orthogonal_(tensor: torch.Tensor, *, generator: torch.Generator, gain: float = 1.0) -> torch.Tensor:
    r"""Saxe et al. (2014): the weight flattened to ``(dim0, rest)`` has orthonormal rows or columns, times ``gain``.

    >>> w = orthogonal_(torch.empty(8, 8, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
    >>> torch.allclose(w @ w.T, torch.eye(8, dtype=torch.float64))
    True
    """
    check_float_tensor(tensor, "orthogonal_")
    if tensor.dim() < 2:
        raise ValueError(f"orthogonal_: needs at least 2 dimensions, got shape {tuple(tensor.shape)}")
    if tensor.dtype in (torch.float16, torch.bfloat16):  # QR has no half kernels: draw in float32
        buffer = torch.empty(tensor.shape, dtype=torch.float32, device=generator.device)
        draw_(buffer, lambda t, g: torch.nn.init.orthogonal_(t, gain, generator=g), generator)
        return tensor.copy_(buffer)
    return draw_(tensor, lambda t, g: torch.nn.init.orthogonal_(t, gain, generator=g), generator)


@no_grad
@checked_arguments(ranges={"std": (0.0, math.inf)})
def normal_(tensor: torch.Tensor, *, generator: torch.Generator, std: float = 1.0) -> torch.Tensor:
    r""":math:`\mathcal N(0, \text{std}^2)`, e.g. for embeddings (torch's default for ``nn.Embedding``)."""
    check_float_tensor(tensor, "normal_")
    return draw_(tensor, lambda t, g: t.normal_(0.0, std, generator=g), generator)


__all__ = [
    "FAN_MODES",
    "fans",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "orthogonal_",
    "xavier_normal_",
    "xavier_uniform_",
]
