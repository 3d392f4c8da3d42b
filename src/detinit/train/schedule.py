r"""Learning-rate schedules as a factor of the base rate, per optimisation step.

With ``t`` the (fractional) epoch at a step and ``E`` the number of epochs:

* ``constant``: 1;
* ``step``: :math:`\gamma^{\#\{m \in \text{milestones} : m \le t\}}`;
* ``constnet``: the official ConstNet recipe, x0.2 at epochs E-140, E-80, E-40
  (those > 0);
* ``cosine``: :math:`\tfrac12(1 + \cos(\pi t / E))`;

times a linear warm-up :math:`\min(1, (s+1)/S_w)` over the first
``warmup_epochs`` (``S_w`` steps).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ..contract import checked_arguments
from .config import TrainConfig


@checked_arguments()
def constnet_milestones(epochs: int) -> list[int]:
    """Epochs of ConstNet's x0.2 steps: E-140, E-80, E-40 (those > 0).

    >>> constnet_milestones(300), constnet_milestones(100)
    ([160, 220, 260], [20, 60])
    """
    return [epochs - d for d in (140, 80, 40) if epochs - d > 0]


@checked_arguments()
def lr_factor_fn(config: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """``step -> factor`` for :class:`torch.optim.lr_scheduler.LambdaLR`."""
    epochs = config.epochs
    warmup_steps = int(round(config.warmup_epochs * steps_per_epoch))
    if config.schedule == "constnet":
        milestones, gamma = constnet_milestones(epochs), 0.2
    else:
        milestones, gamma = sorted(config.milestones), config.gamma

    def factor(step: int) -> float:
        t = step / steps_per_epoch
        if config.schedule == "cosine":
            value = 0.5 * (1.0 + math.cos(math.pi * min(t, epochs) / epochs))
        elif config.schedule in ("step", "constnet"):
            value = gamma ** sum(1 for m in milestones if m <= t)
        else:
            value = 1.0
        if warmup_steps > 0 and step < warmup_steps:
            value *= (step + 1) / warmup_steps
        return value

    return factor
