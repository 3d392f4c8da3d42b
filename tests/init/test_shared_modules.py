"""Modules registered under several names (one activation, rotary or norm module reused by several layers, an
activation shared between a block and the head): every scheme runs, every name of a shared module gets what
tracing found under any of them, and ZerO keeps its promises (issue 34)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from detinit import initialize
from detinit.diagnostics.promises import zero_start_promises

WIDTH = 8


class RMSNorm(nn.Module):
    """A norm of a class detinit does not know: found by what it computes."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(WIDTH))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


class Rotary(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("angle", torch.linspace(0, 1, WIDTH))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.cos(self.angle) + x.roll(1, -1) * torch.sin(self.angle)


class Block(nn.Module):
    def __init__(self, act: nn.Module, rotary: nn.Module, norm: nn.Module) -> None:
        super().__init__()
        self.norm, self.rotary, self.act = norm, rotary, act
        self.up, self.down = nn.Linear(WIDTH, 2 * WIDTH), nn.Linear(2 * WIDTH, WIDTH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(self.act(self.up(self.rotary(self.norm(x)))))


def shared_model() -> nn.Sequential:
    """One activation in both blocks and the head, one rotary module in both blocks, one norm at two depths and
    before the output layer."""
    act, rotary, norm = nn.GELU(), Rotary(), RMSNorm()
    head = nn.Sequential(act, norm, nn.Linear(WIDTH, 50))
    return nn.Sequential(nn.Embedding(50, WIDTH), Block(act, rotary, norm), Block(act, rotary, RMSNorm()), head)


@pytest.mark.parametrize("scheme", ["zero", "kaiming", "xavier", "orthogonal", "fixup", "gpt2"])
def test_every_scheme_runs_and_leaves_nothing_unknown_on_shared_modules(scheme: str):
    net = shared_model()
    report = initialize(net, scheme, example_inputs=torch.randint(0, 50, (2, 5)), strict=True)
    assert not [r.name for r in report.records if r.rule == "unknown"]


def test_a_shared_norm_is_a_norm_under_every_name_and_zero_keeps_its_promises():
    net = shared_model().eval()
    report = initialize(net, "zero", example_inputs=torch.randint(0, 50, (2, 5)), strict=True)
    assert report["1.norm.weight"].rule == "ones"  # found as a norm where it was called last, as 3.1
    assert report["1.down.weight"].role == "branch_last" and report["3.2.weight"].role == "classifier"
    assert all(p.kept for p in zero_start_promises(net, torch.randint(0, 50, (3, 7))))
