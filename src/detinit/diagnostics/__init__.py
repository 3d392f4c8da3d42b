"""Diagnostics: what an initialisation does to a network, at init and during training.

* :func:`signal_propagation` -- activation mean^2 / variance and gradient RMS per block or layer;
* :func:`jacobian_singular_values` -- dynamical isometry, by Lanczos on J^T J;
* :func:`weight_symmetry`, :func:`diversity_score`, :func:`feature_diversity` -- ConstNet's
  correlation measures, participation ratio, channel variance, max channel difference;
* :func:`rank_table` -- effective / stable / numerical rank and the rank of W - I;
* :func:`dead_channels` -- channels that are zero, or copies of another, up to rounding;
* :func:`gradient_at_init` -- which parameters get a gradient at steps 0, 1, 2;
* :func:`zero_start_promises` -- whether the logits are 0 and every residual block the identity, on an input,
  blocks found from the recorded computation;
* :func:`measure_diagnostics`, :func:`initial_weights` -- what a training run records as it goes.
"""

from .dead_channels import DeadChannelRow, count_dead, dead_channels
from .diversity import (
    FeatureRow,
    WeightSymmetryRow,
    channel_variance,
    diversity_score,
    feature_diversity,
    max_channel_difference,
    mean_row_correlation,
    participation_ratio,
    weight_symmetry,
)
from .gradient_flow import StepGradients, gradient_at_init
from .isometry import jacobian_singular_values
from .promises import Promise, zero_start_promises
from .rank import RankRow, effective_rank, minus_identity, numerical_rank, rank_table, stable_rank
from .signal import SignalRow, channel_stats, signal_propagation
from .tracking import initial_weights, measure_diagnostics, signal_at_init

__all__ = [
    "DeadChannelRow",
    "Promise",
    "FeatureRow",
    "RankRow",
    "SignalRow",
    "StepGradients",
    "WeightSymmetryRow",
    "channel_stats",
    "channel_variance",
    "count_dead",
    "dead_channels",
    "diversity_score",
    "effective_rank",
    "feature_diversity",
    "gradient_at_init",
    "initial_weights",
    "jacobian_singular_values",
    "max_channel_difference",
    "mean_row_correlation",
    "measure_diagnostics",
    "minus_identity",
    "numerical_rank",
    "participation_ratio",
    "rank_table",
    "signal_at_init",
    "signal_propagation",
    "stable_rank",
    "weight_symmetry",
    "zero_start_promises",
]
