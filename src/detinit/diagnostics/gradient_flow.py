"""Which parameters move first: the gradient at initialisation, step by step.

Zero-initialised methods (ZerO, Fixup, SkipInit, ConstNet) start with some
layers at exactly 0, so at step 0 only the layers after them receive a
gradient, and the rest start moving one step later each. Users of these
methods keep asking why "nothing moves at first"; :func:`gradient_at_init`
shows it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..contract import checked_arguments
from ..nn import cross_entropy
from ._checks import run_forward, run_loss


@dataclass(frozen=True)
class StepGradients:
    """Gradient norms of every parameter at one SGD step."""

    step: int
    loss: float
    grad_norms: dict[str, float]

    @property
    def moving(self) -> list[str]:
        """Parameters with a non-zero gradient at this step."""
        return [name for name, norm in self.grad_norms.items() if norm > 0]


@checked_arguments(ranges={"lr": (0.0, math.inf)})
def gradient_at_init(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    steps: int = 3,
    lr: float = 0.1,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = cross_entropy,
) -> list[StepGradients]:
    """Take ``steps`` plain SGD steps on one batch, on a copy of ``model``, and record gradient norms.

    The model passed in is not modified.

    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3))
    >>> from detinit import initialize
    >>> _ = initialize(net, "zero", roles={"2": "classifier"})
    >>> steps = gradient_at_init(net, torch.randn(8, 4), torch.randint(0, 3, (8,)))
    >>> steps[0].moving, len(steps[1].moving) > 2
    (['2.weight', '2.bias'], True)
    """
    work = copy.deepcopy(model).train()
    params = [(n, p) for n, p in work.named_parameters() if p.requires_grad]
    optimiser = torch.optim.SGD([p for _, p in params], lr=lr)
    history = []
    for step in range(steps):
        optimiser.zero_grad(set_to_none=True)
        loss = run_loss("gradient_at_init", loss_fn, run_forward("gradient_at_init", work, inputs), targets)
        loss.backward()
        norms = {n: (float(p.grad.norm()) if p.grad is not None else 0.0) for n, p in params}
        history.append(StepGradients(step, float(loss.detach()), norms))
        optimiser.step()
    return history
