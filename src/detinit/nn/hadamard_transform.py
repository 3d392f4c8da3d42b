r"""A fixed Hadamard transform over channels, as a fast Walsh-Hadamard transform.

For ``C = 2^m`` channels the transform is :math:`y = H_m x / \sqrt{C}` at every
position, computed with ``m`` butterfly passes (:math:`O(C \log C)` additions
per position) instead of a dense ``C x C`` matmul. The normalised
:math:`H_m/\sqrt C` is symmetric and orthogonal, so the transform is its own
inverse and its own transpose (backward = forward).

**Channel counts that are not powers of two** are split by their binary
digits, largest first (``96 = 64 + 32``), and each block gets its own
normalised Hadamard transform: the result is block-diagonal, still exactly
orthogonal and self-inverse, but mixes channels only within a block.
"""

from __future__ import annotations

import torch
from torch import nn


def power_of_two_blocks(n: int) -> list[int]:
    """``n`` as a sum of distinct powers of two, largest first.

    >>> power_of_two_blocks(96), power_of_two_blocks(64), power_of_two_blocks(7)
    ([64, 32], [64], [4, 2, 1])
    """
    if n < 1:
        raise ValueError(f"power_of_two_blocks: n must be >= 1, got {n}")
    return [1 << b for b in range(n.bit_length() - 1, -1, -1) if n >> b & 1]


def _fwht_power_of_two(x: torch.Tensor, dim: int, normalized: bool) -> torch.Tensor:
    n = x.shape[dim]
    before, after = x.shape[:dim], x.shape[dim + 1 :]
    y, half = x, 1
    while half < n:
        y = y.reshape(*before, n // (2 * half), 2, half, *after)
        a, b = y.select(dim + 1, 0), y.select(dim + 1, 1)
        y = torch.stack((a + b, a - b), dim=dim + 1)
        half *= 2
    y = y.reshape(x.shape)
    return y * (n**-0.5) if normalized and n > 1 else y


def fwht(x: torch.Tensor, dim: int = 1, normalized: bool = True) -> torch.Tensor:
    r"""Walsh-Hadamard transform of ``x`` along ``dim`` (Sylvester order).

    Differentiable (autograd through additions only; nothing is saved for
    backward). Sizes that are not powers of two are transformed block-wise,
    see the module docstring.

    >>> x = torch.randn(2, 8, 3)
    >>> from detinit.init import hadamard
    >>> torch.allclose(fwht(x, normalized=False), torch.einsum("ij,bjk->bik", hadamard(8), x), atol=1e-5)
    True
    >>> torch.allclose(fwht(fwht(x)), x, atol=1e-6)
    True
    """
    if not x.dtype.is_floating_point:
        raise TypeError(f"fwht: input dtype {x.dtype} is not supported; use a floating dtype")
    dim = dim % x.dim()
    blocks = power_of_two_blocks(x.shape[dim])
    if len(blocks) == 1:
        return _fwht_power_of_two(x, dim, normalized)
    parts = torch.split(x, blocks, dim=dim)
    return torch.cat([_fwht_power_of_two(p, dim, normalized) for p in parts], dim=dim)


class HadamardTransform(nn.Module):
    r"""Fixed, parameter-free normalised Hadamard transform over channels (dim 1).

    ``y[:, i] = sum_j H[i, j] x[:, j] / sqrt(C)``, with ``H`` block-diagonal
    Sylvester Hadamard when ``channels`` is not a power of two.

    >>> t = HadamardTransform(64)
    >>> x = torch.randn(2, 64, 4, 4)
    >>> torch.allclose(t(t(x)), x, atol=1e-5), sum(p.numel() for p in t.parameters())
    (True, 0)
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"HadamardTransform: channels must be a positive int, got {channels!r}")
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2 or x.shape[1] != self.channels:
            raise ValueError(
                f"HadamardTransform({self.channels}): expected input (N, {self.channels}, ...), "
                f"got shape {tuple(x.shape)}"
            )
        return fwht(x, dim=1, normalized=True)

    def matrix(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """The dense ``C x C`` matrix this module applies (for tests and inspection)."""
        return fwht(torch.eye(self.channels, dtype=dtype), dim=0)

    def extra_repr(self) -> str:
        blocks = power_of_two_blocks(self.channels)
        return f"{self.channels}" + (f", blocks={blocks}" if len(blocks) > 1 else "")
