r"""ZerO for embedding tables: token ``i`` gets a distinct, balanced row of a Hadamard matrix.

An embedding is the linear map :math:`E^\top` applied to one-hot tokens; Algorithm 1 on it would
give the identity, or rows of :math:`c\,H_k` that include the constant row and, past ``d`` tokens,
zero vectors. :func:`zero_embedding_` keeps the identity when ``V == d`` and otherwise skips the
constant row and repeats the others (:func:`embedding_rows`, :func:`embedding_collisions`).
"""

from __future__ import annotations

import torch

from ...contract import checked_arguments
from ._no_grad import no_grad
from .hadamard import _sylvester_entries_, ceil_log2
from .layout import check_float_tensor
from .zero import _check_norm, hadamard_scale


@no_grad
@checked_arguments()
def zero_embedding_(
    tensor: torch.Tensor, *, norm: str = "orthonormal", constant_token: bool = False, read_width: int | None = None
) -> torch.Tensor:
    r"""ZerO for an embedding table ``(V, d)``: distinct, balanced Hadamard rows, never a zero token.

    An embedding is the linear map :math:`E^\top \in \mathbb{R}^{d \times V}`
    applied to one-hot tokens. Algorithm 1 on :math:`E^\top` gives the
    identity when ``V == d`` (token ``i`` is :math:`e_i`; kept here) and
    otherwise the first ``V`` rows of :math:`c\,H_k`, :math:`k=\lceil\log_2 d\rceil`
    (first ``d`` columns) when ``V < d``, or a partial identity that gives every
    token ``i >= d`` the zero vector when ``V > d``. detinit departs from it in
    two places, both for Transformers:

    * **Row 0 is skipped** (unless ``constant_token=True``, Algorithm 1
      literally): it is the constant vector, which LayerNorm maps to 0 (and
      whose gradient through LayerNorm is amplified by :math:`1/\sqrt{\epsilon}`).
      Every other Sylvester row is balanced (mean 0 over a power-of-two
      width), so LayerNorm maps it to a :math:`\pm 1` vector. Token ``i`` gets
      row ``i + 1``.
    * **More tokens than rows** (``V >= 2^k``): the rows repeat, token ``i``
      gets row :math:`1 + (i \bmod (2^k - 1))`, so a token shares its vector with
      a lower-numbered one until training separates them (each row is updated
      only where its own token occurs). :func:`embedding_collisions` counts them.

    * **Rows read at a narrower width** (``read_width=n < d``: the model narrows the
      rows to their first ``n`` features, RemBERT's embedding projection under
      ZerO's partial identity): rows constant on those ``n`` features are skipped
      too. Row ``r`` of a Sylvester matrix is constant on the first ``n`` columns
      exactly when ``r`` is a multiple of :math:`2^{\lceil\log_2 n\rceil}`; such a
      token would reach the narrow stream as a constant vector, which every later
      LayerNorm maps to 0. For a power-of-two ``n`` the rows kept are balanced
      on the first ``n`` features too.

    ``c`` is :func:`hadamard_scale` ``(d, norm)``; every row has norm
    :math:`\le 1` (exactly 1 for ``"orthonormal"`` and a power-of-two ``d``), and
    for a power-of-two ``d`` the rows of distinct tokens are orthogonal while
    ``V < d``.

    >>> zero_embedding_(torch.empty(3, 4))
    tensor([[ 0.5000, -0.5000,  0.5000, -0.5000],
            [ 0.5000,  0.5000, -0.5000, -0.5000],
            [ 0.5000, -0.5000, -0.5000,  0.5000]])
    """
    _check_norm(norm)
    check_table(tensor, "zero_embedding_")
    vocab, dim = tensor.shape
    _check_read_width(read_width, dim)
    if vocab == dim and read_width is None:
        tensor.zero_().diagonal().fill_(1)
        return tensor
    rows = embedding_row_indices(dim, constant_token, read_width).to(tensor.device)
    head = min(vocab, len(rows))  # the distinct rows; the others repeat them (token i has row rows[i % period])
    rows = rows[:head]
    _sylvester_entries_(tensor[:head], rows, torch.arange(dim, device=tensor.device), hadamard_scale(dim, norm))
    return _repeat_rows_(tensor, head)


def check_table(tensor: torch.Tensor, fn: str, *, block: bool = False) -> None:
    """Refuse anything but a floating-point embedding table, ``(tokens, embedding_dim)`` with no zero-sized
    dimension; a ``block`` of a table's rows may hold no rows (an empty shard)."""
    check_float_tensor(tensor, fn)
    if tensor.dim() != 2 or 0 in tensor.shape[int(block) :]:
        raise ValueError(
            f"{fn}: expected an embedding table or rows of one (tokens, embedding_dim), embedding_dim at least 1"
            f"{'' if block else ' and tokens at least 1'}; got shape {tuple(tensor.shape)}"
        )


def _repeat_rows_(tensor: torch.Tensor, period: int) -> torch.Tensor:
    """``tensor[i] = tensor[i % period]`` for every row, by copying the filled rows onto the next ones
    (contiguous block copies, doubling: a gather would read an index per row and scatter its reads).

    >>> _repeat_rows_(torch.tensor([[1.0], [2.0], [0.0], [0.0], [0.0]]), 2).flatten().tolist()
    [1.0, 2.0, 1.0, 2.0, 1.0]
    """
    filled = period
    while filled < len(tensor):
        count = min(filled, len(tensor) - filled)  # filled is a whole number of periods: row i stays i % period
        tensor[filled : filled + count] = tensor[:count]
        filled += count
    return tensor


@checked_arguments()
def embedding_rows(embedding_dim: int, constant_token: bool = False) -> tuple[int, int]:
    """``(first, period)``: token ``i`` of :func:`zero_embedding_` gets Hadamard row ``first + i % period``.

    >>> embedding_rows(128), embedding_rows(128, constant_token=True), embedding_rows(96)
    ((1, 127), (0, 128), (1, 127))
    """
    first = 0 if constant_token or embedding_dim == 1 else 1
    return first, (1 << ceil_log2(embedding_dim)) - first


@checked_arguments()
def embedding_row_indices(
    embedding_dim: int, constant_token: bool = False, read_width: int | None = None
) -> torch.Tensor:
    """The Hadamard rows of :func:`zero_embedding_`'s distinct tokens, in order: token ``i`` gets
    ``rows[i % len(rows)]``. Without ``read_width`` they are ``first, ..., first + period - 1``
    (:func:`embedding_rows`); with it, the rows constant on the first ``read_width`` columns are left out.

    >>> embedding_row_indices(8).tolist(), embedding_row_indices(8, read_width=4).tolist()
    ([1, 2, 3, 4, 5, 6, 7], [1, 2, 3, 5, 6, 7])
    """
    first, period = embedding_rows(embedding_dim, constant_token)
    rows = torch.arange(first, first + period)
    if read_width is None or read_width >= embedding_dim:
        return rows
    constant_every = 1 << ceil_log2(read_width)  # row r is constant on columns 0 .. n-1 iff r % 2^ceil(log2 n) == 0
    return rows[rows % constant_every != 0]


@checked_arguments()
def embedding_collisions(
    num_embeddings: int, embedding_dim: int, constant_token: bool = False, read_width: int | None = None
) -> int:
    """How many tokens share their :func:`zero_embedding_` vector with a lower-numbered token.

    >>> embedding_collisions(96, 128), embedding_collisions(256, 128), embedding_collisions(50257, 768)
    (0, 129, 49234)
    >>> embedding_collisions(256, 128, read_width=32)
    132
    """
    if num_embeddings == embedding_dim and read_width is None:
        return 0
    return max(0, num_embeddings - len(embedding_row_indices(embedding_dim, constant_token, read_width)))


def _check_read_width(read_width: int | None, dim: int) -> None:
    if read_width is not None and not (isinstance(read_width, int) and 1 <= read_width <= dim):
        raise ValueError(
            f"zero_embedding_: read_width must be an int from 1 to embedding_dim {dim}, got {read_width!r}"
        )


__all__ = ["embedding_collisions", "embedding_row_indices", "embedding_rows", "zero_embedding_"]
