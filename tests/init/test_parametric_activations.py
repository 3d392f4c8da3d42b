"""Parametric activations (issue 34): ``PReLU``'s slope keeps the constant it was built with under every scheme
(it shapes the activation, it maps no features), and a residual branch ending Conv -> InstanceNorm -> PReLU ends
at the conv and the norm, since PReLU(0) = 0."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from detinit import initialize
from detinit.diagnostics.promises import zero_start_promises


class ConvNormPReLU(nn.Module):
    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm = nn.InstanceNorm2d(channels, affine=True)
        self.act = nn.PReLU(channels, init=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.act(self.norm(self.conv(x)))


def net() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), ConvNormPReLU(), ConvNormPReLU(), nn.Conv2d(4, 2, 1))


@pytest.mark.parametrize("scheme", ["zero", "kaiming", "xavier", "orthogonal", "gpt2"])
def test_a_prelu_slope_keeps_its_built_constant_under_every_scheme(scheme: str):
    model = net()
    with torch.no_grad():
        model[1].act.weight.fill_(7.0)  # what training left: initialisation starts it again at init=0.1
    report = initialize(model, scheme, example_inputs=torch.randn(2, 3, 8, 8), strict=True)
    assert report["1.act.weight"].rule == "constant(0.1)"
    assert torch.equal(model[1].act.weight, torch.full((4,), 0.1))


def test_a_branch_ending_in_norm_and_prelu_ends_at_its_conv_and_zero_keeps_its_promises():
    model = net()
    report = initialize(model, "zero", example_inputs=torch.randn(2, 3, 8, 8), strict=True)
    assert report["1.conv.weight"].role == "branch_last" and report["1.norm.weight"].rule == "zeros"
    assert all(p.kept for p in zero_start_promises(model, torch.randn(3, 3, 12, 12)))
