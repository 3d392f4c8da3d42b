r"""Feature diversity and symmetry (ConstNet's measures and more).

Weights (official ``correlation.py`` of BeyondSigProp): for a weight
``W`` of shape ``(O, I, *k)``, the mean off-diagonal Pearson correlation
between rows, for three choices of rows:

* ``all``: the ``O*I`` kernels (vectors of ``prod(k)`` taps);
* ``forward``: the ``O`` output filters (vectors of ``I*prod(k)``);
* ``backward``: the ``I`` input fan-out vectors (vectors of ``O*prod(k)``).

Rows with zero variance count as correlation 1 (as in the official code), so a
fully symmetric layer scores 1; correlations within 1e-12 of +-1 (identical
rows up to float rounding) are set to +-1 exactly. Logged as :math:`-\log|\rho|` (0 = symmetric),
and ``Diversity`` :math:`= \sum_\ell \log\sqrt{1-\rho_{\text{backward},\ell}^2}`
(:math:`-\infty` when a layer is fully symmetric).

Activations ``y`` of shape ``(N, C, ...)``:

* ``channel_variance``: variance across channels, averaged over samples and positions;
* ``participation_ratio``: :math:`(\mathrm{tr}\,\Sigma)^2/\mathrm{tr}(\Sigma^2)` of the
  ``C x C`` channel covariance: the effective number of distinct features
  (1 when all channels are identical, ``C`` when they are uncorrelated with
  equal variance);
* ``max_channel_difference``: :math:`\max|y_c - y_0| / \max|y|`, exactly 0 in a ConstNet at init.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..contract import checked_arguments
from ..init.roles.layers import MATRIX_LAYER_TYPES
from ._checks import check_activations
from ._hooks import channel_outputs

ROW_CHOICES = ("all", "forward", "backward")


@checked_arguments(at_least={"max_rows": 2})  # a correlation needs two rows
def mean_row_correlation(weight: torch.Tensor, rows: str = "forward", max_rows: int = 5000, seed: int = 0) -> float:
    """Mean off-diagonal Pearson correlation between the chosen rows of ``weight``.

    Constant rows count as correlation 1 (the official convention), and so does a weight with fewer than two rows
    or rows of one entry (nothing tells its rows apart: a layer with one output is as symmetric as it can be).

    >>> mean_row_correlation(torch.ones(4, 3))  # constant rows count as 1
    1.0
    >>> mean_row_correlation(torch.randn(1, 5))  # one row: nothing to tell apart
    1.0
    >>> round(mean_row_correlation(torch.eye(4)), 4)
    -0.3333
    """
    if rows not in ROW_CHOICES:
        raise ValueError(f"rows={rows!r} is not supported; choose one of {ROW_CHOICES}")
    if weight.dim() < 2:
        raise ValueError(f"mean_row_correlation needs a weight of at least 2 dimensions, got {tuple(weight.shape)}")
    w = weight.detach().double().cpu()
    if rows == "all":
        a = w.reshape(w.shape[0] * w.shape[1], -1)
    elif rows == "forward":
        a = w.reshape(w.shape[0], -1)
    else:
        a = w.transpose(0, 1).reshape(w.shape[1], -1)
    if a.shape[0] > max_rows:
        keep = torch.randperm(a.shape[0], generator=torch.Generator().manual_seed(seed))[:max_rows]
        a = a[keep]
    n = a.shape[0]
    if n < 2:
        return 1.0
    if a.shape[1] < 2:
        return 1.0  # scalars: no variance, count as correlated (official convention)
    centred = a - a.mean(1, keepdim=True)
    norms = centred.norm(dim=1)
    constant = norms == 0
    unit = centred / torch.where(constant, torch.ones_like(norms), norms)[:, None]
    corr = (unit @ unit.T).clamp(-1.0, 1.0)
    corr[(corr.abs() - 1.0).abs() < 1e-12] = corr[
        (corr.abs() - 1.0).abs() < 1e-12
    ].sign()  # identical rows: +-1 exactly
    corr[constant, :] = 1.0
    corr[:, constant] = 1.0
    off_diagonal = corr.sum() - corr.diagonal().sum()
    return float(off_diagonal / (n * (n - 1)))


@dataclass(frozen=True)
class WeightSymmetryRow:
    """ConstNet's three correlation measures for one layer."""

    name: str
    all: float
    forward: float
    backward: float

    def neg_log(self) -> tuple[float, float, float]:
        """The logged form :math:`-\\log|\\rho|` (0 = fully symmetric)."""
        return tuple(-math.log(abs(v)) if v != 0 else math.inf for v in (self.all, self.forward, self.backward))


@checked_arguments(at_least={"max_rows": 2})
def weight_symmetry(model: nn.Module, max_rows: int = 5000) -> list[WeightSymmetryRow]:
    """The three correlation measures for every Linear / conv weight of ``model``."""
    rows = []
    for name, module in model.named_modules():
        if isinstance(module, MATRIX_LAYER_TYPES):
            w = module.weight
            rows.append(WeightSymmetryRow(name, *(mean_row_correlation(w, r, max_rows) for r in ROW_CHOICES)))
    return rows


@checked_arguments()
def diversity_score(rows: list[WeightSymmetryRow]) -> float:
    """ConstNet's Diversity: sum over layers of log sqrt(1 - backward^2) (-inf if any layer is symmetric)."""
    total = 0.0
    for row in rows:
        one_minus = 1.0 - row.backward**2
        if one_minus <= 0:
            return -math.inf
        total += 0.5 * math.log(one_minus)
    return total


def _channels_last(y: torch.Tensor) -> torch.Tensor:
    """``(N, C, ...)`` -> ``(N * positions, C)`` in float64."""
    y = y.detach().double()
    return y.movedim(1, -1).reshape(-1, y.shape[1])


def _activations(fn: str, y: torch.Tensor) -> torch.Tensor:
    return _channels_last(check_activations(fn, "y", y))


@checked_arguments()
def channel_variance(y: torch.Tensor) -> float:
    """Variance across channels, averaged over samples and positions (0 when channels are identical)."""
    return float(_activations("channel_variance", y).var(1, unbiased=False).mean())


@checked_arguments()
def participation_ratio(y: torch.Tensor) -> float:
    """Effective number of distinct channels, :math:`(\\mathrm{tr}\\,\\Sigma)^2/\\mathrm{tr}(\\Sigma^2)`.

    >>> y = torch.arange(10.0).view(10, 1, 1).expand(10, 8, 5)  # 8 identical channels
    >>> round(participation_ratio(y), 9)
    1.0
    """
    x = _activations("participation_ratio", y)
    cov = torch.cov(x.T) if x.shape[1] > 1 else x.var().reshape(1, 1)
    trace = cov.trace()
    if trace <= 0:
        return 0.0
    return float(trace**2 / (cov * cov).sum())


@checked_arguments()
def max_channel_difference(y: torch.Tensor) -> float:
    """:math:`\\max|y_c - y_0| / \\max|y|` (0 when every channel equals the first)."""
    y = check_activations("max_channel_difference", "y", y).detach().double()
    scale = y.abs().max()
    return float((y - y[:, :1]).abs().max() / scale) if scale > 0 else 0.0


@dataclass(frozen=True)
class FeatureRow:
    """Activation diversity at one probe point."""

    name: str
    channels: int
    channel_variance: float
    participation_ratio: float
    max_channel_difference: float


@torch.no_grad()
@checked_arguments(at_least={"channel_dim": None})
def feature_diversity(
    model: nn.Module, inputs: torch.Tensor, *, at: str = "auto", channel_dim: int | None = None
) -> list[FeatureRow]:
    """Channel variance, participation ratio and max channel difference at every probe point.

    Channels are on dim 1 (``(N, C, *spatial)``), or on ``channel_dim``; by
    default the model's ``detinit_channel_dim`` attribute if it declares one
    (Transformers: -1, outputs ``(N, T, C)``).
    """
    return [
        FeatureRow(n, y.shape[1], channel_variance(y), participation_ratio(y), max_channel_difference(y))
        for n, y in channel_outputs("feature_diversity", model, inputs, at, channel_dim)
    ]
