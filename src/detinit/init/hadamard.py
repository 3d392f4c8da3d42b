r"""Sylvester Hadamard matrices, built in place without a dense integer detour.

The Sylvester construction is

.. math::
    H_0 = [1], \qquad
    H_m = \begin{bmatrix} H_{m-1} & H_{m-1} \\ H_{m-1} & -H_{m-1} \end{bmatrix}
    \in \{\pm 1\}^{2^m \times 2^m},

equivalently :math:`(H_m)_{ij} = (-1)^{\mathrm{popcount}(i \,\&\, j)}`. The
second form shows that the top-left ``P x Q`` block of :math:`H_m` does not
depend on ``m`` once :math:`2^m \ge \max(P, Q)`. :func:`fill_sylvester_` uses
this to write just the block a layer needs, by repeated doubling of the part
already written, so no matrix larger than the block is ever allocated.
"""

from __future__ import annotations

import torch

from ._layout import check_float_tensor


def is_power_of_two(n: int) -> bool:
    """``True`` for 1, 2, 4, 8, ...

    >>> [is_power_of_two(n) for n in (1, 6, 64)]
    [True, False, True]
    """
    return isinstance(n, int) and n > 0 and n & (n - 1) == 0


def ceil_log2(n: int) -> int:
    """Smallest ``m`` with ``2**m >= n`` (``n >= 1``).

    >>> ceil_log2(1), ceil_log2(64), ceil_log2(65)
    (0, 6, 7)
    """
    if n < 1:
        raise ValueError(f"ceil_log2: n must be >= 1, got {n}")
    return (n - 1).bit_length()


@torch.no_grad()
def fill_sylvester_(matrix: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    r"""Write ``scale`` times the top-left block of a Sylvester Hadamard matrix.

    ``matrix`` (any 2-D floating view, possibly strided) receives
    :math:`\text{scale}\cdot(H_m)_{[0:P,\,0:Q]}` for its shape ``(P, Q)``.
    Each entry is written exactly once after the first, by copying the already
    written ``s x s`` corner into the three quadrants of the ``2s x 2s`` corner
    (the bottom-right one negated), clipped to the block. All values are
    exactly ``+scale`` or ``-scale`` as rounded to the dtype, so the result is
    bitwise identical on every device and for every thread count.

    >>> fill_sylvester_(torch.empty(3, 4))
    tensor([[ 1.,  1.,  1.,  1.],
            [ 1., -1.,  1., -1.],
            [ 1.,  1., -1., -1.]])
    """
    check_float_tensor(matrix, "fill_sylvester_")
    if matrix.dim() != 2:
        raise ValueError(f"fill_sylvester_: expected a 2-D tensor, got shape {tuple(matrix.shape)}")
    rows, cols = matrix.shape
    if rows == 0 or cols == 0:
        return matrix
    matrix[0, 0] = scale
    size = 1
    while size < max(rows, cols):
        r0, c0 = min(size, rows), min(size, cols)
        r1, c1 = min(2 * size, rows), min(2 * size, cols)
        corner = matrix[:r0, :c0]
        if c1 > c0:  # top right: H
            matrix[:r0, c0:c1].copy_(corner[:, : c1 - c0])
        if r1 > r0:  # bottom left: H
            matrix[r0:r1, :c0].copy_(corner[: r1 - r0, :])
        if r1 > r0 and c1 > c0:  # bottom right: -H
            bottom_right = matrix[r0:r1, c0:c1]
            bottom_right.copy_(corner[: r1 - r0, : c1 - c0]).neg_()
        size *= 2
    return matrix


def hadamard(
    n: int,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    normalized: bool = False,
) -> torch.Tensor:
    r"""The ``n x n`` Sylvester Hadamard matrix :math:`H_m`, ``n = 2**m``.

    Entries are :math:`\pm 1`, or :math:`\pm n^{-1/2}` with ``normalized=True``
    (then :math:`H H^\top = I`). Symmetric; :math:`H_m H_m = n I`.

    Args:
        n: size, a power of two (1, 2, 4, ...).
        dtype: a floating dtype (default: ``torch.get_default_dtype()``).
        device: where to build it; the values are identical on every device.
        normalized: scale by :math:`n^{-1/2}`.

    >>> hadamard(4)
    tensor([[ 1.,  1.,  1.,  1.],
            [ 1., -1.,  1., -1.],
            [ 1.,  1., -1., -1.],
            [ 1., -1., -1.,  1.]])
    >>> h = hadamard(8, dtype=torch.float64, normalized=True)
    >>> torch.allclose(h @ h, torch.eye(8, dtype=torch.float64))
    True
    """
    if isinstance(n, bool) or not isinstance(n, int) or not is_power_of_two(n):
        raise ValueError(
            f"hadamard: n={n!r} is not supported; the Sylvester construction needs a power of two "
            "(1, 2, 4, 8, ...). For other sizes use fill_sylvester_ on a (P, Q) block."
        )
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if not dtype.is_floating_point:
        raise TypeError(f"hadamard: dtype {dtype} is not supported; use a floating dtype")
    scale = float(n) ** -0.5 if normalized else 1.0
    return fill_sylvester_(torch.empty(n, n, dtype=dtype, device=device), scale)
