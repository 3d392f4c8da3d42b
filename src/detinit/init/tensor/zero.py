r"""ZerO initialisation: Algorithms 1 and 2 of Zhao, Schaefer & Anandkumar (2022).

A layer's matrix :math:`W \in \mathbb{R}^{P \times Q}` (``P`` outputs, ``Q``
inputs, as torch stores it) is set to

* :math:`P = Q`: the identity :math:`I`;
* :math:`P < Q`: the partial identity :math:`I^*(P, Q) = [I, 0]` (keeps the first ``P`` inputs);
* :math:`P > Q`: :math:`c\, I^*(P, 2^m)\, H_m\, I^*(2^m, Q)`, the top-left ``P x Q``
  block of the Sylvester Hadamard matrix :math:`H_m`, :math:`m = \lceil \log_2 P \rceil`.

Convolutions (Algorithm 2) put that matrix on the centre tap
(:func:`detinit.init.tensor.layout.centre_index`) and zeros on every other tap.
Grouped and depthwise convolutions get it per group, transposed convolutions
on the transpose of their ``(in, out/groups)`` plane.

**Normalisation** ``c`` (``norm=``):

* ``"orthonormal"`` (default): :math:`c = 2^{-m/2}`, as in the official MNIST
  notebook and the ``zero-init`` package. When ``P`` is a power of two the
  columns are orthonormal, :math:`W^\top W = I_Q`, so the expanding layer is an
  exact isometry like the identity layers around it; that is why it is the
  default.
* ``"paper"``: :math:`c = 2^{-(m-1)/2}`, the value printed in the paper,
  :math:`\sqrt 2` larger.

**Singular values when P > Q** (orthonormal; multiply by :math:`\sqrt 2` for
``"paper"``): ``W`` is a block of the orthogonal matrix :math:`2^{-m/2} H_m`,
so every singular value is at most 1, and all equal 1 when ``P = 2^m``. When
``P`` is not a power of two some rows of :math:`H_m` are missing: if
:math:`Q \le 2^{m-1}` then :math:`W^\top W = \tfrac12 I + c^2 A^\top A` with
:math:`\|A\|^2 \le 2^{m-1}`, so :math:`\sigma \in [2^{-1/2}, 1]` (e.g. 1000x512,
640x512, 96x64). If :math:`Q > 2^{m-1}` the bound is
:math:`\sigma_{\min}^2 \ge 1 - (2^m-P)\,Q / 2^m` and can be lower (7x5:
:math:`\sigma_{\min} \approx 0.61`). :func:`zero_singular_values` computes them
for any shape so a user can see what a layer gets.
"""

from __future__ import annotations

import functools
import itertools
import math

import torch

from ...contract import checked_arguments
from ...values import is_int
from ._no_grad import no_grad
from .hadamard import _product_columns_, _product_rows_, _sylvester_factors, ceil_log2
from .layout import centre_index, check_choice_argument, matrix_views

HADAMARD_NORMS = ("orthonormal", "paper")  # how zero_ scales its Hadamard blocks (its norm= option)
COLUMNS = ("first", "spanning")


@checked_arguments()
def hadamard_columns(out_features: int, in_features: int, columns: str = "first") -> torch.Tensor:
    r"""Which columns of :math:`H_m` an expanding ``(P, Q)`` layer's Hadamard block uses.

    * ``"first"`` (Algorithm 1): columns :math:`0, \dots, Q-1`, the top-left block.
      These columns only involve the low :math:`\lceil\log_2 Q\rceil` bits of the
      row index, so rows :math:`i` and :math:`i + 2^{\lceil\log_2 Q\rceil}` are
      equal: a 16 -> 32 layer outputs every feature twice, 784 -> 2048 every
      feature twice, 128 -> 512 four times. The copies receive equal gradients
      whenever the layers after them treat them alike (identity layers, a zero
      classifier), so in exact arithmetic they never separate.
    * ``"spanning"``: the columns :math:`1, 2, 4, \dots, 2^{m-1}` first, then the
      others in increasing order. The powers of two span every bit of the row
      index, so the ``P`` rows are distinct sign patterns whenever
      :math:`Q \ge m`. Any set of columns of :math:`H_m` is orthogonal, so the
      singular values of a ``P = 2^m`` layer are still exactly 1.

    >>> hadamard_columns(32, 6).tolist(), hadamard_columns(32, 6, "spanning").tolist()
    ([0, 1, 2, 3, 4, 5], [1, 2, 4, 8, 16, 0])
    """
    check_choice_argument("hadamard_columns", "columns", columns, COLUMNS)
    if columns == "first":
        return torch.arange(in_features)
    size = 1 << ceil_log2(max(out_features, in_features))
    every = torch.arange(size)
    is_power = (every > 0) & (every & (every - 1) == 0)
    return torch.cat([every[is_power], every[~is_power]])[:in_features]


@checked_arguments()
def hadamard_scale(out_features: int, norm: str = "orthonormal") -> float:
    r"""The factor ``c`` of Algorithm 1 for ``P = out_features`` outputs.

    :math:`2^{-m/2}` for ``"orthonormal"``, :math:`2^{-(m-1)/2}` for ``"paper"``,
    :math:`m = \lceil\log_2 P\rceil`.

    >>> hadamard_scale(128), hadamard_scale(128, "paper")
    (0.08838834764831845, 0.125)
    """
    _check_norm(norm)
    if not is_int(out_features, 1):
        raise ValueError(f"hadamard_scale: out_features={out_features!r} is not supported; it must be an int >= 1")
    m = ceil_log2(out_features)
    return 2.0 ** (-m / 2) if norm == "orthonormal" else 2.0 ** (-(m - 1) / 2)


def _check_norm(norm: str) -> None:
    if norm not in HADAMARD_NORMS:
        raise ValueError(f"norm={norm!r} is not supported; choose one of {HADAMARD_NORMS}")


@no_grad
@checked_arguments()
def partial_identity_(tensor: torch.Tensor, *, groups: int = 1, transposed: bool = False) -> torch.Tensor:
    r"""Fill a weight with the partial identity :math:`I^*(P, Q)` on the centre tap.

    Ones on the main diagonal of each group's ``(P, Q)`` matrix, zeros
    everywhere else (all other taps too): ``[I, 0]`` if ``P < Q``, ``[I; 0]``
    if ``P > Q``, ``I`` if square. This is ZerO's ablation without Hadamard,
    and a generalised :func:`torch.nn.init.dirac_`.

    Args:
        tensor: Linear weight ``(out, in)``, conv kernel ``(out, in/groups, *k)``
            or, with ``transposed=True``, a ConvTranspose kernel ``(in, out/groups, *k)``.
        groups: number of convolution groups (the matrix is set per group).
        transposed: the tensor is a ConvTranspose weight.

    Returns:
        ``tensor``, filled in place (dtype and device unchanged).

    >>> partial_identity_(torch.empty(2, 3))
    tensor([[1., 0., 0.],
            [0., 1., 0.]])
    """
    return _partial_identity_views_(
        tensor, matrix_views(tensor, "partial_identity_", groups=groups, transposed=transposed)
    )


def _partial_identity_views_(tensor: torch.Tensor, views: list[torch.Tensor]) -> torch.Tensor:
    """:func:`partial_identity_` on ``tensor`` whose centre-tap matrices ``views`` are already validated."""
    tensor.zero_()
    for view in views:
        view.diagonal().fill_(1)
    return tensor


@no_grad
@checked_arguments()
def identity_(tensor: torch.Tensor, *, groups: int = 1, transposed: bool = False) -> torch.Tensor:
    r"""Fill a square layer with the identity (Dirac kernel for convolutions).

    Like :func:`partial_identity_` but refuses non-square per-group matrices,
    for code that must be an exact identity map. For odd kernels with
    ``padding=k//2`` (or any kernel with ``padding="same"``) and stride 1, the
    convolution returns its input unchanged.

    >>> w = identity_(torch.empty(4, 4, 3, 3))
    >>> x = torch.randn(1, 4, 5, 5)
    >>> torch.equal(torch.nn.functional.conv2d(x, w, padding=1), x)
    True
    """
    views = matrix_views(tensor, "identity_", groups=groups, transposed=transposed)
    out_features, in_features = views[0].shape
    if out_features != in_features:
        raise ValueError(
            f"identity_: weight of shape {tuple(tensor.shape)} (groups={groups}, transposed={transposed}) "
            f"maps {in_features} inputs to {out_features} outputs per group; the identity needs them equal. "
            "Use partial_identity_ or zero_ for rectangular layers."
        )
    return partial_identity_(tensor, groups=groups, transposed=transposed)


@no_grad
@checked_arguments()
def zero_(
    tensor: torch.Tensor,
    *,
    norm: str = "orthonormal",
    groups: int = 1,
    transposed: bool = False,
    columns: str = "first",
) -> torch.Tensor:
    r"""ZerO initialisation (Algorithms 1 and 2), in place.

    Sets each group's centre-tap matrix :math:`W \in \mathbb{R}^{P\times Q}` to
    :math:`I` (``P == Q``), :math:`I^*` (``P < Q``) or
    :math:`c\,[H_m]_{P\times Q}` (``P > Q``, :math:`m=\lceil\log_2 P\rceil`)
    and every other tap to zero. No random numbers are drawn: the result is
    bitwise identical on every device, dtype (up to rounding of ``c``) and
    thread count. See the module docstring for ``norm`` and singular values.

    Args:
        tensor: Linear weight ``(out, in)``, conv kernel ``(out, in/groups, *k)``
            or, with ``transposed=True``, a ConvTranspose kernel ``(in, out/groups, *k)``.
        norm: ``"orthonormal"`` (:math:`c=2^{-m/2}`, default) or ``"paper"``
            (:math:`c=2^{-(m-1)/2}`).
        groups: number of convolution groups.
        transposed: the tensor is a ConvTranspose weight.
        columns: which columns of :math:`H_m` an expanding layer uses: ``"first"``
            (the top-left block, Algorithm 1) or ``"spanning"`` (distinct rows; see
            :func:`hadamard_columns`).

    Returns:
        ``tensor``.

    >>> zero_(torch.empty(4, 2))
    tensor([[ 0.5000,  0.5000],
            [ 0.5000, -0.5000],
            [ 0.5000,  0.5000],
            [ 0.5000, -0.5000]])
    >>> zero_(torch.empty(2, 2, 3))[:, :, 1]
    tensor([[1., 0.],
            [0., 1.]])
    """
    _check_norm(norm)
    check_choice_argument("zero_", "columns", columns, COLUMNS)
    views = matrix_views(tensor, "zero_", groups=groups, transposed=transposed)
    out_features, in_features = views[0].shape
    if out_features <= in_features:
        return _partial_identity_views_(tensor, views)
    scale = hadamard_scale(out_features, norm)
    if sum(view.numel() for view in views) < tensor.numel():  # other taps: a 1x1 kernel's blocks cover it all
        tensor.zero_()
    high, low = _hadamard_factors(out_features, in_features, columns, scale, tensor.dtype, tensor.device)
    for view in views:
        if transposed:  # a ConvTranspose group's view is the transpose of its stored rows: write along those
            _product_columns_(view.t(), high, low)
        else:
            _product_rows_(view, high, low)
    return tensor


@checked_arguments()
def tap_order(kernel_size: tuple[int, ...]) -> torch.Tensor:
    """Flat indices of a kernel's taps, the centre tap first, then by distance from it (ties in raster order).

    >>> tap_order((3, 3)).tolist()
    [4, 1, 3, 5, 7, 0, 2, 6, 8]
    """
    return torch.tensor(_tap_order(tuple(kernel_size)))


@functools.lru_cache(maxsize=64)
def _tap_order(kernel_size: tuple[int, ...]) -> tuple[int, ...]:
    centre = centre_index(kernel_size)
    taps = list(itertools.product(*map(range, kernel_size)))  # raster order
    return tuple(sorted(range(len(taps)), key=lambda i: sum((a - c) ** 2 for a, c in zip(taps[i], centre))))


@functools.lru_cache(maxsize=64)
def _tap_ranks(kernel_size: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """``ranks[s]``: where tap ``s`` (flat, raster order) comes in :func:`tap_order`, its inverse permutation;
    cached per device (a kernel shape repeats, and sorting its taps costs more than filling a stem).

    >>> _tap_ranks((3, 3), torch.device("cpu")).tolist()
    [5, 1, 6, 2, 0, 3, 7, 4, 8]
    """
    ranks = [0] * math.prod(kernel_size)
    for rank, tap in enumerate(_tap_order(kernel_size)):
        ranks[tap] = rank
    return torch.tensor(ranks, device=device)


@checked_arguments()
def unfolded_kernel(matrix: torch.Tensor, kernel_size: tuple[int, ...]) -> torch.Tensor:
    """The kernel ``(P, Q, *kernel_size)`` whose unfolded ``(P, Q K)`` matrix is ``matrix``, its columns ordered
    tap by :func:`tap_order` then channel: ``kernel[p, c, s] = matrix[p, ranks[s] Q + c]`` (a view of a gather).

    >>> unfolded_kernel(torch.eye(2, 6), (3,)).tolist()  # 2 channels, 3 taps: the centre tap first
    [[[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]]
    """
    taps = math.prod(kernel_size)
    if matrix.dim() != 2 or matrix.shape[1] % taps:
        raise ValueError(
            f"unfolded_kernel: matrix of shape {tuple(matrix.shape)} is not the unfolded form of a kernel of size "
            f"{tuple(kernel_size)}; give a 2-D (P, Q * {taps}) matrix, {taps} taps a channel"
        )
    rows, in_features = len(matrix), matrix.shape[1] // taps
    by_tap = matrix.view(rows, taps, in_features).index_select(1, _tap_ranks(kernel_size, matrix.device))
    return by_tap.transpose(1, 2).view(rows, in_features, *kernel_size)


@no_grad
@checked_arguments()
def zero_unfolded_(
    tensor: torch.Tensor, *, norm: str = "orthonormal", groups: int = 1, columns: str = "spanning"
) -> torch.Tensor:
    r"""Algorithm 1 on a convolution's unfolded kernel, in place.

    A conv with ``Q`` inputs per group and ``K`` taps applies, at each position,
    the matrix :math:`M \in \mathbb{R}^{P \times QK}` to the patch of ``QK``
    input values (im2col). This gives :math:`M` its Algorithm-1 matrix, with the
    patch ordered centre tap first (then by distance, :func:`tap_order`;
    within a tap by input channel):

    * :math:`P \le Q`: :math:`M = [I, 0]`, the centre-tap partial identity --
      exactly Algorithm 2;
    * :math:`Q < P \le QK`: still :math:`[I, 0]`: output ``i`` is input channel
      ``i mod Q`` at the ``(i div Q)``-th nearest tap, a shifted copy. A
      1-channel stem with 16 outputs no longer makes 16 identical channels;
    * :math:`P > QK`: the Hadamard block :math:`c\,[H_m]_{P \times QK}` over the
      patch (``columns`` as in :func:`zero_`).

    Args:
        tensor: a conv kernel ``(out, in/groups, *k)``; Linear weights and 1x1
            kernels are handled as by :func:`zero_`.
        norm, groups, columns: as for :func:`zero_`.

    >>> w = zero_unfolded_(torch.empty(3, 1, 3, 3))
    >>> [tuple(map(int, torch.nonzero(w[i, 0]).flatten())) for i in range(3)]   # centre, up, left
    [(1, 1), (0, 1), (1, 0)]
    """
    _check_norm(norm)
    views = matrix_views(tensor, "zero_unfolded_", groups=groups)
    out_features, in_features = views[0].shape
    taps = math.prod(tensor.shape[2:])
    if taps == 1 or out_features <= in_features:
        return zero_(tensor, norm=norm, groups=groups, columns=columns)
    matrix = torch.empty(out_features, in_features * taps, dtype=tensor.dtype, device=tensor.device)
    zero_(matrix, norm=norm, columns=columns)  # (P, QK): partial identity or Hadamard block
    kernel = unfolded_kernel(matrix, tuple(tensor.shape[2:]))
    for g in range(groups):
        tensor[g * out_features : (g + 1) * out_features] = kernel
    return tensor


@functools.lru_cache(maxsize=32)
def _hadamard_factors(
    out_features: int, in_features: int, columns: str, scale: float, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_sylvester_factors` of an expanding layer's block, cached: a network repeats its layer shapes,
    and building the factors (a few dozen small operations) costs more than writing a small layer."""
    cols = hadamard_columns(out_features, in_features, columns).to(device)
    return _sylvester_factors(out_features, cols, scale, dtype)


@checked_arguments()
def zero_singular_values(out_features: int, in_features: int, norm: str = "orthonormal") -> torch.Tensor:
    """Singular values (float64, descending) of the ZerO matrix for a ``(P, Q)`` layer.

    >>> bool(torch.allclose(zero_singular_values(128, 64), torch.ones(64, dtype=torch.float64)))
    True
    >>> bool(zero_singular_values(96, 64).min() >= 2 ** -0.5 - 1e-12)
    True
    """
    matrix = zero_(torch.empty(out_features, in_features, dtype=torch.float64), norm=norm)
    return torch.linalg.svdvals(matrix)


__all__ = [
    "COLUMNS",
    "HADAMARD_NORMS",
    "hadamard_columns",
    "hadamard_scale",
    "identity_",
    "partial_identity_",
    "tap_order",
    "unfolded_kernel",
    "zero_",
    "zero_singular_values",
    "zero_unfolded_",
]
