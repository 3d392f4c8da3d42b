"""Optimiser parameter groups by initialisation role: learning-rate factors for the scales that start at 0.

A scale that starts at 0 and is shared by many outputs grows slowly under Adam: each step moves an
entry by about ``lr``. Two such scales matter in practice:

* the scale of a norm ending a residual branch (role ``"branch_last_norm"``: 0 under norm-aware ZerO,
  Fixup's and timm's zero-init-last), which gates the whole branch;
* the scale of the final norm before an output layer tied to the token embedding (role
  ``"classifier_norm"``: ZerO puts the output's zero there, since the tied weight cannot be 0). The
  logits are ``E (g * n)`` with ``g`` that scale, one vector for the whole vocabulary, so after ``k``
  Adam steps they are at most about ``k * lr * |E_v| * |n|``; an untied zero output layer has one
  entry per (token, feature) and grows ``sqrt(d)`` times faster (docs/results.md, section 8).

0-dim parameters (Fixup's scalar biases and multipliers, SkipInit's gates) are a third group.

>>> from torch import nn
>>> from detinit import initialize
>>> model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
>>> report = initialize(model, "zero")
>>> [len(g["params"]) for g in param_groups(model, 1e-3, report=report)]
[4]
"""

from __future__ import annotations

import math
from typing import Any

from torch import nn

from ..contract import checked_arguments
from ..init.apply.end_gain import plain_name
from ..init.apply.report import InitReport

_RATES = ("lr", "scalar_lr_factor", "branch_norm_lr_factor", "classifier_norm_lr_factor")  # 0 freezes a group


@checked_arguments(ranges={name: (0.0, math.inf) for name in _RATES})
def param_groups(
    model: nn.Module,
    lr: float,
    *,
    report: InitReport | None = None,
    scalar_lr_factor: float = 1.0,
    branch_norm_lr_factor: float = 1.0,
    classifier_norm_lr_factor: float = 1.0,
) -> list[dict[str, Any]]:
    """The trainable parameters of ``model`` as optimiser groups, with ``lr`` times a factor per group.

    Args:
        model: the initialised model.
        lr: the base learning rate (the first group's, and the one each factor multiplies).
        report: what :func:`detinit.initialize` returned; defaults to ``model.init_report`` (set by
            :func:`detinit.create_model`). Without either, only the 0-dim group can be told apart.
        scalar_lr_factor: for 0-dim parameters.
        branch_norm_lr_factor: for the weights (scales) of ``branch_last_norm`` norms that carry a branch's zero
            (or IDInit's epsilon): not those that start at 1 (an entry block's, ZerO's ``open_blocks``; every one
            under a scheme that does not zero branch ends).
        classifier_norm_lr_factor: for the weight (scale) of the ``classifier_norm`` norm.

    Returns:
        A list for ``torch.optim``: the other parameters first, then each non-empty group in the order
        above, each with its ``"lr"`` and a ``"name"`` (``"scalar"``, ``"branch_norm"``,
        ``"classifier_norm"``; the first is ``"default"``).
    """
    if report is None:
        report = getattr(model, "init_report", None)
    records = report.records if report is not None else []
    roles = {r.name: r.role for r in records if not (r.role == "branch_last_norm" and r.rule == "ones")}
    own = {plain_name(n): tuple(p.shape) for n, p in model.named_parameters(remove_duplicate=False)}
    foreign = [r for r in records if own.get(r.name) != tuple(r.shape)]  # a name it lacks, or another shape
    if foreign:  # a report of another model would put none of this model's scales in their groups
        raise ValueError(
            f"param_groups: the report's {foreign[0].name!r} {foreign[0].shape} is no parameter of "
            f"{type(model).__name__} (of that shape); give the report initialize() returned for this model"
        )

    def scale_of(name: str, role: str) -> bool:
        name = plain_name(name)  # a scale stored through ZerO's end_gain
        return roles.get(name) == role and name.endswith(".weight")

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    chosen = {
        "scalar": ([p for _, p in named if p.dim() == 0], scalar_lr_factor),
        "branch_norm": (
            [p for n, p in named if p.dim() > 0 and scale_of(n, "branch_last_norm")],
            branch_norm_lr_factor,
        ),
        "classifier_norm": (
            [p for n, p in named if p.dim() > 0 and scale_of(n, "classifier_norm")],
            classifier_norm_lr_factor,
        ),
    }
    taken = {id(p) for params, _ in chosen.values() for p in params}
    groups: list[dict[str, Any]] = [
        {"name": "default", "params": [p for _, p in named if id(p) not in taken], "lr": lr}
    ]
    groups += [{"name": key, "params": params, "lr": lr * factor} for key, (params, factor) in chosen.items() if params]
    return groups
