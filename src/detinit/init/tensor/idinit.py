r"""IDInit's fills (Pan et al., ICLR 2025, arXiv 2503.04626): the padded identity ``IDI_tau`` and, for a
convolution, the same rule on its unfolded kernel ("patch-maintain", ``IDIC_tau``).

For :math:`\theta \in \mathbb{R}^{P \times Q}`, :math:`\theta_{mj} = \tau` if :math:`m \equiv j \pmod Q`, else 0
(0-based): ``[I 0]`` when :math:`P \le Q`, and when :math:`P > Q` identities stacked ``[I; I; ...; I*]``, so
that no output is a dead zero row (ZerO's ``[I; 0]`` or its Hadamard block are the alternatives). The last layer
of a residual branch gets the same pattern at :math:`\tau = \varepsilon` (``IDIZ_eps``, :math:`10^{-6}`): its
output is :math:`\approx 0` but every weight feeding it has a gradient.

The paper does not give the order in which a kernel is flattened; detinit orders the patch as ZerO's unfolded
kernel does (:func:`~detinit.init.tensor.zero.unfolded_kernel`: the centre tap first, then by distance, each tap's
channels in order). Then a square convolution is exactly the identity (its centre tap), a convolution with more
outputs than inputs gives shifted copies at the nearest taps, and past :math:`QK` outputs the copies repeat.
"""

from __future__ import annotations

import math

import torch

from ...contract import checked_arguments
from ._no_grad import no_grad
from .layout import matrix_views
from .zero import unfolded_kernel


@no_grad
@checked_arguments(ranges={"tau": (0.0, math.inf)})
def idinit_(tensor: torch.Tensor, tau: float = 1.0, *, groups: int = 1, transposed: bool = False) -> torch.Tensor:
    r"""Fill a weight with IDInit's padded identity: :math:`\theta_{mj} = \tau` if :math:`m \equiv j \pmod Q`.

    A Linear weight ``(P, Q)`` gets it directly; a convolution kernel ``(P, Q / groups, *k)`` gets it on its
    unfolded ``(P, Q K)`` patch matrix per group (patch-maintain; the patch ordered centre tap first, see the
    module docstring), and a ConvTranspose kernel ``(in, out / groups, *k)`` (``transposed=True``) on its
    centre tap. ``tau`` is 1 for IDInit's ``IDI``, :math:`\varepsilon` for a branch's last layer (``IDIZ``).

    Args:
        tensor: the weight, filled in place (dtype and device unchanged).
        tau: the value at the identity positions.
        groups: convolution groups (the rule is applied per group).
        transposed: the tensor is a ConvTranspose weight.

    Returns:
        ``tensor``.

    >>> idinit_(torch.empty(5, 2))
    tensor([[1., 0.],
            [0., 1.],
            [1., 0.],
            [0., 1.],
            [1., 0.]])
    >>> w = idinit_(torch.empty(3, 1, 3, 3))  # a 1-channel stem: the centre, then the nearest taps
    >>> taps = [tuple(map(int, torch.nonzero(w[i, 0]).flatten())) for i in range(3)]
    >>> taps == [(1, 1), (0, 1), (1, 0)]
    True
    """
    if not (isinstance(tau, (int, float)) and math.isfinite(tau)):
        raise ValueError(f"idinit_: tau must be a finite number, got {tau!r}")
    views = matrix_views(tensor, "idinit_", groups=groups, transposed=transposed)
    taps = math.prod(tensor.shape[2:]) if tensor.dim() > 2 else 1
    tensor.zero_()
    if taps == 1 or transposed:
        for view in views:
            _padded_identity_(view, tau)
        return tensor
    out_features, in_features = views[0].shape
    matrix = _padded_identity_(
        torch.zeros(out_features, in_features * taps, dtype=tensor.dtype, device=tensor.device), tau
    )
    kernel = unfolded_kernel(matrix, tuple(tensor.shape[2:]))
    for g in range(groups):
        tensor[g * out_features : (g + 1) * out_features] = kernel
    return tensor


def _padded_identity_(matrix: torch.Tensor, tau: float) -> torch.Tensor:
    """``matrix[m, m mod Q] = tau`` for every row ``m`` of the ``(P, Q)`` view (its other entries already 0)."""
    rows = torch.arange(matrix.shape[0], device=matrix.device)
    matrix[rows, rows % matrix.shape[1]] = tau
    return matrix


__all__ = ["idinit_"]
