r"""A fixed Hadamard transform over channels, as a fast (Kronecker-factored) Walsh-Hadamard transform.

For ``C = 2^m`` channels the transform is :math:`y = H_m x / \sqrt{C}` at every
position. The Sylvester matrix factors as :math:`H_C = H_{C/k} \otimes H_k`
(channel index ``i = a k + b``), so the transform applies a small ``k x k``
Hadamard matrix along the fine index ``b`` and recurses on the coarse index
``a``: :math:`O(C \cdot k \cdot \log_k C)` operations per position instead of
the :math:`O(C^2)` of a dense matmul, in :math:`\lceil\log_k C\rceil` batched
matrix products (radix ``k = 64``; ``C <= 64`` is a single product). Radix-2
butterflies need :math:`\log_2 C` passes over memory and lose to a dense
matmul on CPUs for small ``C`` (``benchmarks/run_benchmarks.py``); the large
radix keeps the pass count at one or two. The normalised
:math:`H_m/\sqrt C` is symmetric and orthogonal, so the transform is its own
inverse and its own transpose (backward = forward).

**Channel counts that are not powers of two** are split by their binary
digits, largest first (``96 = 64 + 32``), and each block gets its own
normalised Hadamard transform: the result is block-diagonal, still exactly
orthogonal and self-inverse, but mixes channels only within a block.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..contract import checked_arguments
from ..init.tensor.hadamard import hadamard

RADIX = 64  # size of the dense Hadamard factor applied per pass


@checked_arguments()
def power_of_two_blocks(n: int) -> list[int]:
    """``n`` as a sum of distinct powers of two, largest first.

    >>> power_of_two_blocks(96), power_of_two_blocks(64), power_of_two_blocks(7)
    ([64, 32], [64], [4, 2, 1])
    """
    return [1 << b for b in range(n.bit_length() - 1, -1, -1) if n >> b & 1]


FactorCache = dict[tuple[int, torch.dtype, torch.device, bool], torch.Tensor]


def _factor(k: int, x: torch.Tensor, normalized: bool, cache: FactorCache | None) -> torch.Tensor:
    if cache is None:
        return hadamard(k, dtype=x.dtype, device=x.device, normalized=normalized)
    key = (k, x.dtype, x.device, normalized)
    if key not in cache:
        cache[key] = hadamard(k, dtype=x.dtype, device=x.device, normalized=normalized)
    return cache[key]


def _fwht_power_of_two(x: torch.Tensor, dim: int, normalized: bool, cache: FactorCache | None) -> torch.Tensor:
    n = x.shape[dim]
    if n == 1:
        return x
    lead, trail = math.prod(x.shape[:dim]), math.prod(x.shape[dim + 1 :])
    y = x.reshape(lead, n, trail)
    remaining = n
    while remaining > 1:  # y is (lead, remaining, done * trail): apply H_k to the fine part of `remaining`
        k = min(RADIX, remaining)
        factor = _factor(k, x, normalized, cache)
        coarse = remaining // k
        y = torch.matmul(factor, y.reshape(lead * coarse, k, -1)).reshape(lead, coarse, -1)
        remaining = coarse
    return y.reshape(x.shape)


@checked_arguments(at_least={"dim": None})
def fwht(x: torch.Tensor, dim: int = 1, normalized: bool = True, cache: FactorCache | None = None) -> torch.Tensor:
    r"""Walsh-Hadamard transform of ``x`` along ``dim`` (Sylvester order).

    Differentiable (autograd through additions only; nothing is saved for
    backward). Sizes that are not powers of two are transformed block-wise,
    see the module docstring. ``cache`` (a dict) keeps the small factor
    matrices between calls, as :class:`HadamardTransform` does.

    >>> x = torch.randn(2, 8, 3)
    >>> from detinit.init import hadamard
    >>> torch.allclose(fwht(x, normalized=False), torch.einsum("ij,bjk->bik", hadamard(8), x), atol=1e-5)
    True
    >>> torch.allclose(fwht(fwht(x)), x, atol=1e-6)
    True
    """
    if not x.dtype.is_floating_point:
        raise TypeError(f"fwht: input dtype {x.dtype} is not supported; use a floating dtype")
    if not -x.dim() <= dim < x.dim():  # an int: the contract saw to that
        raise ValueError(f"fwht: dim={dim!r} is out of range for a {x.dim()}-D tensor of shape {tuple(x.shape)}")
    dim = dim % x.dim()
    if x.numel() == 0:  # an empty batch (or an empty dim): nothing to transform
        return x.clone()
    blocks = power_of_two_blocks(x.shape[dim])
    if len(blocks) == 1:
        return _fwht_power_of_two(x, dim, normalized, cache)
    parts = torch.split(x, blocks, dim=dim)
    return torch.cat([_fwht_power_of_two(p, dim, normalized, cache) for p in parts], dim=dim)


class HadamardTransform(nn.Module):
    r"""Fixed, parameter-free normalised Hadamard transform over channels (dim 1).

    ``y[:, i] = sum_j H[i, j] x[:, j] / sqrt(C)``, with ``H`` block-diagonal
    Sylvester Hadamard when ``channels`` is not a power of two.

    >>> t = HadamardTransform(64)
    >>> x = torch.randn(2, 64, 4, 4)
    >>> torch.allclose(t(t(x)), x, atol=1e-5), sum(p.numel() for p in t.parameters())
    (True, 0)
    """

    @checked_arguments()
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self._factors: FactorCache = {}  # small Hadamard factors per (size, dtype, device); not state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2 or x.shape[1] != self.channels:
            raise ValueError(
                f"HadamardTransform({self.channels}): expected input (N, {self.channels}, ...), "
                f"got shape {tuple(x.shape)}"
            )
        return fwht(x, dim=1, normalized=True, cache=self._factors)

    def matrix(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """The dense ``C x C`` matrix this module applies (for tests and inspection)."""
        return fwht(torch.eye(self.channels, dtype=dtype), dim=0)

    def extra_repr(self) -> str:
        blocks = power_of_two_blocks(self.channels)
        return f"{self.channels}" + (f", blocks={blocks}" if len(blocks) > 1 else "")
