"""Scalar gates and biases of normalisation-free residual networks.

* :class:`ScalarBias`: a learnable scalar added to a tensor, starts at 0
  (Fixup's scalar biases).
* :class:`ScalarGate`: a learnable scalar multiplying a residual branch.
  It starts at the scheme's ``residual_gate_value``: 1 (Fixup's multiplier; ZerO's
  no-BN ResNets) under every scheme except ``skipinit`` and ``rezero``, where it
  starts at 0 (De & Smith 2020; Bachlechner et al. 2020).

Both initialise themselves through the ``detinit_init_`` hook, so
:func:`detinit.initialize` reports what they got.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from ..init.schemes import Scheme


class ScalarBias(nn.Module):
    """``x + b`` with a scalar ``b`` (starts at 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias

    @torch.no_grad()
    def detinit_init_(self, scheme: Scheme, generator: torch.Generator) -> dict[str, str]:
        self.bias.zero_()
        return {"bias": "scalar bias starts at 0 (Fixup)"}


class ScalarGate(nn.Module):
    """``alpha * x`` with a scalar ``alpha``: 1 at init, 0 under skipinit / rezero.

    >>> from detinit import initialize
    >>> gate = ScalarGate()
    >>> _ = initialize(gate, "rezero"); gate.weight.item()
    0.0
    """

    is_residual_gate = True  # what detinit.initialize looks for under skipinit / rezero

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight

    @torch.no_grad()
    def detinit_init_(self, scheme: Scheme, generator: torch.Generator) -> dict[str, str]:
        value = scheme.residual_gate_value
        self.weight.fill_(value)
        why = f"{scheme.name}: residual branch gated off" if value == 0 else "branch multiplier starts at 1"
        return {"weight": f"scalar gate = {value:g} ({why})"}
