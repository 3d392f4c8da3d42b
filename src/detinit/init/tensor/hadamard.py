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

:func:`fill_sylvester_entries_` writes any rows and columns of :math:`H`: rows
:math:`i = 64 h + l` split the popcount, so a block is the broadcast product of
two small factors, written in one pass as a memset writes (ZerO's expanding
layers, embedding tables and a shard's rows are built on it).
"""

from __future__ import annotations

import math

import torch

from ...contract import checked_arguments
from ...values import is_int
from .layout import centre_plane, check_choice_argument, check_flag_argument, check_float_tensor, matrix_views
from .row_fills import check_block


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
    if not is_int(n, 1):
        raise ValueError(f"ceil_log2: n={n!r} is not supported; n must be an int >= 1")
    return (n - 1).bit_length()


@torch.no_grad()
@checked_arguments()
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


MAX_ORDER = 2**31  # hadamard(n): n**2 entries must fit a tensor's int64 element count


@checked_arguments()
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
    if not is_int(n) or not is_power_of_two(n):
        raise ValueError(
            f"hadamard: n={n!r} is not supported; the Sylvester construction needs a power of two "
            "(1, 2, 4, 8, ...). For other sizes use fill_sylvester_ on a (P, Q) block."
        )
    if n > MAX_ORDER:
        raise ValueError(
            f"hadamard: n={n} is too large: the matrix would hold n**2 = 2**{2 * (n.bit_length() - 1)} entries; "
            f"n <= 2**{MAX_ORDER.bit_length() - 1} is supported. To apply H_n to a vector use "
            "detinit.nn.fwht or HadamardTransform, which never build the matrix"
        )
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"hadamard: dtype={dtype!r} is not supported; use a floating torch.dtype (torch.float32, ...)")
    scale = float(n) ** -0.5 if check_flag_argument("hadamard", "normalized", normalized) else 1.0
    return fill_sylvester_(torch.empty(n, n, dtype=dtype, device=device), scale)


MIXING_TAPS = ("centre", "all")  # hadamard_mixing_'s taps: the kernel's centre, or every tap by its pattern
_INDEX_DTYPES = (torch.int64, torch.int32)  # rows and columns of H (torch reads a uint8 index as a mask)
_ROWS_PER_CHUNK = 4096  # bounds the gathered scratch of fill_sylvester_entries_ to 4096 x Q


_TILE = 64  # rows of the low factor in _sylvester_rows_ (a 64 x Q block stays in cache)


def _sylvester_factors(
    rows: int, columns: torch.Tensor, scale: float, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(A, B)`` with ``scale * H[64 h + l, columns] = A[h] * B[l]`` for the rows ``0 .. rows - 1``.

    Split the row index as ``i = 64 h + l``: ``popcount(i & c) = popcount(h & (c >> 6)) + popcount(l & (c & 63))``,
    so ``A = H[:ceil(rows / 64), columns >> 6]`` and ``B = scale H[:min(rows, 64), columns & 63]``, each built
    by :func:`_doubled_rows_`; every product is exactly ``+-scale``.
    """
    count, device = len(columns), columns.device
    low = _doubled_rows_(torch.empty(min(rows, _TILE), count, dtype=dtype, device=device), columns & 63, scale)
    high = _doubled_rows_(torch.empty(-(-rows // _TILE), count, dtype=dtype, device=device), columns >> 6, 1.0)
    return high, low


def _product_rows_(out: torch.Tensor, high: torch.Tensor, low: torch.Tensor, first: int = 0) -> torch.Tensor:
    """``out[j] = high[h] * low[l]`` for the rows ``i = first + j = 64 h + l``, in one pass over ``out`` (any
    strided 2-D view): every value written once, as a memset writes it. ``first`` is the row of the whole
    block that ``out`` starts at (a shard's rows, :mod:`detinit.init.tensor.zero_rows`)."""
    rows, done = len(out), min(len(out), -first % _TILE)  # done: the rows before the next whole tile
    if done:
        h, l = divmod(first, _TILE)
        torch.mul(high[h], low[l : l + done], out=out[:done])
    whole, h = (rows - done) // _TILE, (first + done) // _TILE
    if whole:
        tiles = out if rows == whole * _TILE else out[done : done + whole * _TILE]  # a slice costs a microsecond
        torch.mul(high[h : h + whole].unsqueeze(1), low, out=tiles.view(whole, _TILE, out.shape[1]))
        done += whole * _TILE
    if rows > done:
        torch.mul(high[h + whole], low[: rows - done], out=out[done:])
    return out


def _product_columns_(out: torch.Tensor, high: torch.Tensor, low: torch.Tensor, first: int = 0) -> torch.Tensor:
    """``out[j, i] = high[h, first + j] * low[l, first + j]`` for the columns ``i = 64 h + l``: the transpose of
    :func:`_product_rows_`'s block, for a weight stored ``(in, out)`` (a ConvTranspose kernel, Hugging Face's
    ``Conv1D``), written along its rows in one pass (filling the transpose's rows strides through memory and
    is many times slower; docs/benchmarks.md). ``first`` is the column of the block that ``out[0]`` is."""
    rows, cols = out.shape
    high_t = high[:, first : first + rows].t().contiguous()  # (rows, tiles): small, read once per value written
    low_t = low[:, first : first + rows].t().contiguous()  # (rows, 64)
    whole = cols // _TILE
    if whole:
        torch.mul(high_t[:, :whole, None], low_t[:, None, :], out=out[:, : whole * _TILE].view(rows, whole, _TILE))
    if cols > whole * _TILE:
        torch.mul(high_t[:, whole, None], low_t[:, : cols - whole * _TILE], out=out[:, whole * _TILE :])
    return out


def _sylvester_rows_(out: torch.Tensor, columns: torch.Tensor, scale: float) -> torch.Tensor:
    """``out[i, b] = scale * H[i, columns[b]]`` for rows ``i = 0 .. len(out) - 1``, in one pass over ``out``
    (:func:`_sylvester_factors`, :func:`_product_rows_`)."""
    if len(out) <= _TILE:
        return _doubled_rows_(out, columns, scale)
    return _product_rows_(out, *_sylvester_factors(len(out), columns, scale, out.dtype))


def _doubled_rows_(out: torch.Tensor, columns: torch.Tensor, scale: float) -> torch.Tensor:
    """``out[i, b] = scale * H[i, columns[b]]`` for rows ``i = 0 .. len(out) - 1``, by doubling the rows.

    For ``i < 2**k``, ``popcount((i + 2**k) & c) = popcount(i & c) + bit_k(c)``, so rows ``2**k ..`` are rows
    ``0 ..`` times the sign vector ``(-1)**bit_k(columns)``: one multiply per written value, exact.
    """
    out[:1] = scale
    if len(out) == 1:
        return out
    bits = torch.arange(ceil_log2(len(out)), device=columns.device)
    signs = (1 - 2 * ((columns >> bits[:, None]) & 1)).to(out.dtype)  # row k: (-1)**bit_k(columns), one op set
    filled = 1
    for sign in signs:
        count = min(filled, len(out) - filled)
        torch.mul(out[:count], sign, out=out[filled : filled + count])
        filled *= 2
    return out


@torch.no_grad()
@checked_arguments(ranges={"scale": (-math.inf, math.inf)})
def fill_sylvester_entries_(
    matrix: torch.Tensor, rows: torch.Tensor, columns: torch.Tensor, scale: float = 1.0
) -> torch.Tensor:
    r"""``matrix[a, b] = scale * (H)_{rows[a], columns[b]}`` for a Sylvester Hadamard ``H``, in place.

    :math:`H_{ij} = (-1)^{\mathrm{popcount}(i \,\&\, j)}`. The rows ``0 .. max(rows)`` of ``H`` at
    ``columns`` are built by doubling (:func:`_sylvester_rows_`), in ``matrix`` itself when ``rows`` is
    ``0, 1, 2, ...``, else in a scratch block whose rows are then gathered a chunk at a time; rows far beyond
    their count (``max(rows) + 1 > max(4 len(rows), 4096)``) are written from the parity of ``rows[a] & columns[b]``
    instead, so memory stays the output's. No full Hadamard matrix is built.

    >>> fill_sylvester_entries_(torch.empty(2, 3), torch.tensor([1, 3]), torch.tensor([0, 1, 2]))
    tensor([[ 1., -1.,  1.],
            [ 1., -1., -1.]])
    """
    check_float_tensor(matrix, "fill_sylvester_entries_")
    for name, index in (("rows", rows), ("columns", columns)):
        if index.dim() != 1 or index.dtype not in _INDEX_DTYPES or (len(index) and int(index.min()) < 0):
            raise ValueError(
                f"fill_sylvester_entries_: {name} of shape {tuple(index.shape)}, dtype {index.dtype} is not supported; "
                f"{name} must be a 1-D integer tensor of indices >= 0 (rows or columns of H)"
            )
    if matrix.shape != (len(rows), len(columns)):
        raise ValueError(
            f"fill_sylvester_entries_: matrix of shape {tuple(matrix.shape)} does not fit {len(rows)} rows and "
            f"{len(columns)} columns; give a 2-D matrix of shape (len(rows), len(columns))"
        )
    return _sylvester_entries_(matrix, rows, columns, scale)


def _sylvester_entries_(matrix: torch.Tensor, rows: torch.Tensor, columns: torch.Tensor, scale: float) -> torch.Tensor:
    """:func:`fill_sylvester_entries_` for arguments the library built itself (no checks)."""
    if len(rows) == 0:
        return matrix
    if torch.equal(rows, torch.arange(len(rows), device=rows.device)):
        return _sylvester_rows_(matrix, columns, scale)
    needed = int(rows.max()) + 1  # rows of H the gathered path would build
    if needed > max(4 * len(rows), _ROWS_PER_CHUNK):  # far rows: no scratch of that many rows
        return _parity_entries_(matrix, rows, columns, scale)
    block = torch.empty(needed, len(columns), dtype=matrix.dtype, device=matrix.device)
    _sylvester_rows_(block, columns, scale)
    for start in range(0, len(rows), _ROWS_PER_CHUNK):
        matrix[start : start + _ROWS_PER_CHUNK] = block[rows[start : start + _ROWS_PER_CHUNK]]
    return matrix


def _parity_entries_(matrix: torch.Tensor, rows: torch.Tensor, columns: torch.Tensor, scale: float) -> torch.Tensor:
    """``scale (-1)^popcount(rows[a] & columns[b])`` by folding each ``rows[a] & columns[b]`` to its parity, a chunk
    of rows at a time: memory of the output's size whatever the row indices (row 2**40 included)."""
    columns = columns.to(torch.int64)
    for start in range(0, len(rows), _ROWS_PER_CHUNK):
        bits = rows[start : start + _ROWS_PER_CHUNK, None].to(torch.int64) & columns[None, :]
        for shift in (32, 16, 8, 4, 2, 1):
            bits ^= bits >> shift
        signs = 1 - 2 * (bits & 1)
        matrix[start : start + _ROWS_PER_CHUNK] = signs.to(matrix.dtype) * scale
    return matrix


def _mixing_rows_(out: torch.Tensor, start: int, total: int, gain: float, reverse: bool, taps: str, fn: str) -> None:
    """Rows ``start : start + len(out)`` of :func:`hadamard_mixing_` on a ``total``-row weight into ``out``
    (2-5-D), the channel mixing ``gain H_n / sqrt n`` built by :func:`fill_sylvester_entries_` for those rows
    only (no full matrix)."""
    n = out.shape[1]
    if total != n or not is_power_of_two(n):
        raise ValueError(
            f"{fn}: a weight of {total} outputs and {n} inputs is not supported; the mixing needs a square weight "
            "whose width is a power of two"
        )
    rows = torch.arange(start, start + len(out), device=out.device)
    columns = torch.arange(n, device=out.device)
    block = torch.empty(len(out), n, dtype=out.dtype, device=out.device)
    _sylvester_entries_(block, rows, columns.flip(0) if reverse else columns, gain / math.sqrt(n))
    count = math.prod(out.shape[2:])
    if taps == "centre" or count == 1:
        centre_plane(out.zero_()).copy_(block)
        return
    size = 1 << (count - 1).bit_length()  # tap patterns: rows of H_size on the kernel's taps, at unit norm
    table = fill_sylvester_(torch.empty(size, count, dtype=out.dtype, device=out.device), 1.0 / math.sqrt(count))
    patterns = table[rows % size]
    out.copy_((block[:, :, None] * patterns[:, None, :]).view(out.shape))


@torch.no_grad()
@checked_arguments(ranges={"gain": (0.0, math.inf)})
def hadamard_mixing_(
    tensor: torch.Tensor, gain: float = 1.0, reverse: bool = False, taps: str = "centre"
) -> torch.Tensor:
    r"""Fill a square weight (``n`` outputs, ``n`` inputs, ``n`` a power of two) with the channel mixing
    :math:`g\, H_n / \sqrt{n}` (columns reversed, :math:`g\, H_{i, n-1-j} / \sqrt n`, with ``reverse``): an
    orthogonal matrix times ``gain`` whose every output reads every input.

    On a conv kernel, ``taps="centre"`` puts it on the centre tap (0 elsewhere); ``taps="all"`` spreads output
    ``i``'s row over every tap through its own pattern :math:`t_i`, row ``i mod 2^k`` of :math:`H_k` on the
    ``K`` taps (:math:`2^k \ge K`) at unit norm: :math:`W_{i,c} = g\, H_{i,c} / \sqrt n \cdot t_i`. The unfolded
    ``(n, n K)`` rows stay orthogonal (:math:`\langle h_i \otimes t_i, h_j \otimes t_j\rangle =
    \langle h_i, h_j\rangle \langle t_i, t_j\rangle = 0`) at norm ``gain``, and every output reads every tap.

    ZerO's ``branch_zero="gate"`` gives a branch's first layer ``gain`` sqrt 2 (a ReLU follows) and its last the
    reversed block, so that the branch does not point along the stream it is added to (it would be the identity
    of its input with both blocks plain), both on every tap.

    >>> (hadamard_mixing_(torch.empty(2, 2), reverse=True) * 2**0.5).round()
    tensor([[ 1.,  1.],
            [-1.,  1.]])
    >>> w = hadamard_mixing_(torch.empty(4, 4, 3, 3), taps="all").view(4, -1)
    >>> torch.allclose(w @ w.T, torch.eye(4))
    True
    """
    check_choice_argument("hadamard_mixing_", "taps", taps, MIXING_TAPS)
    matrix_views(tensor, "hadamard_mixing_")  # the layout: 2-5-D, float, no shared memory
    _mixing_rows_(tensor, 0, len(tensor), gain, reverse, taps, "hadamard_mixing_")
    return tensor


@torch.no_grad()
@checked_arguments(at_least={"start": 0}, ranges={"gain": (0.0, math.inf)})
def hadamard_mixing_rows_(
    out: torch.Tensor, start: int, total: int, gain: float = 1.0, reverse: bool = False, taps: str = "centre"
) -> torch.Tensor:
    """Rows ``start : start + len(out)`` of :func:`hadamard_mixing_` on a ``total``-row weight (a shard).

    >>> torch.equal(hadamard_mixing_rows_(torch.empty(2, 4), 2, 4), hadamard_mixing_(torch.empty(4, 4))[2:])
    True
    """
    check_choice_argument("hadamard_mixing_rows_", "taps", taps, MIXING_TAPS)
    check_block(out, start, total, "hadamard_mixing_rows_")
    _mixing_rows_(out, start, total, gain, reverse, taps, "hadamard_mixing_rows_")
    return out


__all__ = ["fill_sylvester_", "fill_sylvester_entries_", "hadamard", "hadamard_mixing_", "hadamard_mixing_rows_"]
