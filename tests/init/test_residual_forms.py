"""Residual forms and norm replacements of plain PyTorch libraries (issue 34, x-transformers' options), in plain torch:
a skip scaled by a parameter, a layer scale held as ``1 + w``, the input re-added at every layer, an orthogonal
update ``x + (f - (f . u) u)``, a mean-centred one ``x + (f - mean f) s``, and dynamic tanh in place of norms
(constants its constructor sets and no rule knows: kept). ZerO keeps its promises on each, and the random schemes
leave nothing unknown."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from detinit import initialize
from detinit.diagnostics.promises import zero_start_promises

WIDTH = 8


class DynamicTanh(nn.Module):
    """``gamma * tanh(alpha x) + beta`` in place of a norm ("Transformers without normalization")."""

    def __init__(self) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.full((1,), 0.5))
        self.gamma, self.beta = nn.Parameter(torch.ones(WIDTH)), nn.Parameter(torch.zeros(WIDTH))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gamma * torch.tanh(self.alpha * x) + self.beta


class Block(nn.Module):
    """``x * s + scale(f(norm x))`` or an orthogonal update, by ``form``."""

    def __init__(self, form: str) -> None:
        super().__init__()
        self.form = form
        self.norm = DynamicTanh() if form == "dynamic tanh" else nn.LayerNorm(WIDTH)
        self.up, self.down = nn.Linear(WIDTH, 2 * WIDTH), nn.Linear(2 * WIDTH, WIDTH)
        self.skip_scale = nn.Parameter(torch.ones(WIDTH))
        self.layer_scale = nn.Parameter(torch.zeros(WIDTH))  # used as 1 + w
        self.centred_scale = nn.Parameter(torch.full((WIDTH,), 0.03))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.down(F.gelu(self.up(self.norm(x))))
        if self.form == "scaled skip":
            return x * self.skip_scale + f
        if self.form == "layer scale 1 + w":
            return x + f * (self.layer_scale + 1.0)
        if self.form == "mean-centred update":  # x-transformers' mean-variance split residual
            return x + (f - f.mean(1, keepdim=True)) * self.centred_scale
        if self.form == "orthogonal update":
            unit = F.normalize(x, dim=-1)
            return x + (f - (f * unit).sum(-1, keepdim=True) * unit)
        return x + f


class Reinjected(nn.Module):
    """The input projected once and added to the stream before every block."""

    def __init__(self) -> None:
        super().__init__()
        self.embed, self.inject = nn.Embedding(50, WIDTH), nn.Linear(WIDTH, WIDTH, bias=False)
        self.blocks = nn.ModuleList(Block("plain") for _ in range(3))
        self.head = nn.Linear(WIDTH, 50)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        again = self.inject(x)
        for block in self.blocks:
            x = block(x + again)
        return self.head(x)


def lm(form: str) -> nn.Module:
    if form == "input re-added":
        return Reinjected()
    return nn.Sequential(nn.Embedding(50, WIDTH), Block(form), Block(form), nn.Linear(WIDTH, 50))


FORMS = [
    "scaled skip",
    "layer scale 1 + w",
    "orthogonal update",
    "mean-centred update",
    "dynamic tanh",
    "input re-added",
]


@pytest.mark.parametrize("form", FORMS)
def test_zero_keeps_its_promises_on_each_residual_form(form: str):
    net = lm(form).eval()
    report = initialize(net, "zero", example_inputs=torch.randint(0, 50, (2, 5)), strict=True)
    assert all(p.kept for p in zero_start_promises(net, torch.randint(0, 50, (3, 7))))
    if form == "scaled skip":
        assert report["1.skip_scale"].rule == "ones"
    if form == "layer scale 1 + w":
        assert torch.equal(net[1].layer_scale, -torch.ones(WIDTH))  # 1 + w = 0: the branch's zero
    if form == "dynamic tanh":
        assert report["1.norm.alpha"].rule == "constructed" and net[1].norm.alpha.item() == 0.5
    if form == "input re-added":
        assert report["inject.weight"].rule == "zeros"  # the re-added input is the branch, the stream the skip


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("scheme", ["kaiming", "xavier", "orthogonal"])
def test_random_schemes_leave_nothing_unknown_on_each_residual_form(form: str, scheme: str):
    report = initialize(lm(form), scheme, example_inputs=torch.randint(0, 50, (2, 5)), strict=True)
    assert not report.unknown
