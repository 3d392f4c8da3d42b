"""Every diagnostic of a model at initialisation, on one batch: :func:`inspect_model`.

The library function behind ``detinit inspect``: it measures, the CLI prints
(:meth:`Inspection.format`) and plots (:meth:`Inspection.plot`).

>>> from detinit import create_model
>>> model = create_model("resnet20", init="zero", num_classes=10, in_chans=1)
>>> result = inspect_model(model, torch.randn(4, 1, 12, 12), torch.arange(4), lanczos_steps=4)
>>> sum(r.zero for r in result.dead), len(result.signal)
(0, 9)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .. import hooks
from .._table import format_table
from .dead_channels import DeadChannelRow, dead_channels
from .diversity import FeatureRow, WeightSymmetryRow, diversity_score, feature_diversity, weight_symmetry
from .gradient_flow import StepGradients, gradient_at_init
from .isometry import jacobian_singular_values
from .rank import RankRow, rank_table
from .signal import SignalRow, signal_propagation


class _Features(nn.Module):
    """``model.forward_features`` as a module (the classifier starts at 0 under ZerO and ConstNet)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = getattr(self.model, hooks.FEATURES_HOOK)(x)
        if not isinstance(features, torch.Tensor):
            raise TypeError(
                f"{type(self.model).__name__}.{hooks.FEATURES_HOOK}(x) returned a {type(features).__name__}; "
                "it must return the features as one tensor (the input of the classifier)"
            )
        return features


@dataclass
class Inspection:
    """The diagnostics of one model on one batch (rows of each table)."""

    signal: list[SignalRow]
    features: list[FeatureRow]  # empty for token models (ids are not features)
    dead: list[DeadChannelRow]
    symmetry: list[WeightSymmetryRow]
    ranks: list[RankRow]
    gradients: list[StepGradients]
    num_parameter_tensors: int
    jacobian: torch.Tensor | None = None  # Lanczos Ritz values of the Jacobian; None for token models
    jacobian_of: str = ""

    def format(self) -> str:
        """The tables as text, in the order ``detinit inspect`` prints them."""
        parts = [
            "Signal propagation (per block or layer):",
            format_table(
                ["point", "C", "mean^2", "variance", "grad RMS"],
                [(r.name, r.channels, r.mean_sq, r.var, r.grad_rms) for r in self.signal],
            ),
        ]
        if self.features:
            parts += [
                "\nFeature diversity (eval mode):",
                format_table(
                    ["point", "C", "channel var", "participation ratio", "max channel diff"],
                    [
                        (r.name, r.channels, r.channel_variance, r.participation_ratio, r.max_channel_difference)
                        for r in self.features
                    ],
                ),
            ]
        else:
            parts.append("\nFeature diversity: not measured for token models (see the rank table)")
        parts += [
            f"\nDead channels (train mode, as the first steps see them): {sum(r.zero for r in self.dead)} zero and "
            f"{sum(r.copies for r in self.dead)} copies of an earlier channel, of "
            f"{sum(r.channels for r in self.dead)} (rms within 1e-4 of the point's)",
            format_table(
                ["point", "C", "zero", "copies", "distinct"],
                [(r.name, r.channels, r.zero, r.copies, r.distinct) for r in self.dead],
            ),
        ]
        silent = [r.name for r in self.dead if r.zero == r.channels]
        if silent:
            parts.append(
                f"({len(silent)} points output 0 in every channel, e.g. {silent[0]}: where a point is a residual "
                "branch and the scheme starts branches at 0, that is by design, not a dead feature)"
            )
        parts += [
            "\nWeight symmetry (mean row correlation; 1 = symmetric). "
            f"Diversity = {diversity_score(self.symmetry):.4g}",
            format_table(
                ["layer", "all", "forward", "backward"],
                [(r.name, r.all, r.forward, r.backward) for r in self.symmetry],
            ),
            "\nRank (numerical rank tolerance: sigma_max * max(P, Q) * eps of the weight dtype):",
            format_table(
                ["layer", "shape", "effective", "stable", "numerical", "rank(W - I)"],
                [
                    (
                        r.name,
                        "x".join(map(str, r.shape)),
                        r.effective_rank,
                        r.stable_rank,
                        r.numerical_rank,
                        r.rank_w_minus_i,
                    )
                    for r in self.ranks
                ],
            ),
        ]
        if self.jacobian is not None:
            parts.append(
                f"\nJacobian {self.jacobian_of} at one input, {len(self.jacobian)} Lanczos Ritz values: "
                f"sigma_max {self.jacobian.max().item():.4g}, sigma_min {self.jacobian.min().item():.4g}"
            )
        parts += [
            "\nGradient at init (plain SGD on this batch, on a copy of the model):",
            format_gradient_steps(self.gradients, self.num_parameter_tensors),
        ]
        return "\n".join(parts)

    def plot(self, out: str | Path, title: str = "") -> list[Path]:
        """PNG plots of the signal, the ranks and (images) the feature diversity in the folder ``out``."""
        from .plots import plot_feature_diversity, plot_rank, plot_signal_propagation

        out = Path(out)
        paths = [
            plot_signal_propagation(self.signal, out / "signal_propagation.png", title),
            plot_rank(self.ranks, out / "rank.png", title),
        ]
        if self.features:
            paths.append(plot_feature_diversity(self.features, out / "feature_diversity.png", title))
        return paths


def format_gradient_steps(steps: list[StepGradients], num_tensors: int) -> str:
    """A line per SGD step of :func:`gradient_at_init`: how many parameter tensors get a non-zero gradient."""
    lines = []
    for step in steps:
        names = ", ".join(step.moving[:4]) + (", ..." if len(step.moving) > 4 else "")
        lines.append(
            f"  step {step.step}: {len(step.moving):3d} of {num_tensors} tensors get a non-zero gradient  [{names}]"
        )
    return "\n".join(lines)


def inspect_model(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    max_rows: int = 1000,
    lanczos_steps: int = 16,
    lr: float = 0.1,
) -> Inspection:
    """Measure every diagnostic at initialisation on ``(inputs, targets)``.

    Images (float inputs) get all of them; token ids no feature diversity and no Jacobian (ids are
    not a differentiable input). Dead channels are counted in train mode on a copy (BatchNorm would
    update its running statistics), feature diversity in eval mode; the gradient steps run on a copy.
    The model is left in train mode, its weights untouched.
    """
    images = inputs.is_floating_point()
    signal = signal_propagation(model, inputs, targets)
    features = feature_diversity(model.eval(), inputs) if images else []
    model.train()
    dead = dead_channels(copy.deepcopy(model).train(), inputs)
    symmetry = weight_symmetry(model, max_rows=max_rows)
    ranks = rank_table(model)
    jacobian, jacobian_of = None, ""
    if images:
        has_features = hooks.callable_hook(model, hooks.FEATURES_HOOK) is not None
        body = _Features(model) if has_features else model
        jacobian = jacobian_singular_values(body, inputs[:1], num_steps=lanczos_steps)
        jacobian_of = "input -> features (before the classifier)" if has_features else "input -> output"
    gradients = gradient_at_init(model, inputs, targets, steps=3, lr=lr)
    return Inspection(
        signal, features, dead, symmetry, ranks, gradients, len(list(model.parameters())), jacobian, jacobian_of
    )
