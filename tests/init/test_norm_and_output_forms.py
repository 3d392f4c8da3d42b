"""Norms and outputs in forms other libraries write (issue 34): a norm scaled by ``w + c`` with the constant read
from the traced call (``c = 0`` is a plain scale, not ``1 + w``), a norm module holding its own scale and shift
around a ``LayerNorm`` without affine parameters, an output built from several layers summed (each an output
layer), and an output that adds a skip no layer carries (said in the report)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from detinit import initialize
from detinit.diagnostics.promises import zero_start_promises

WIDTH = 8


class OffsetRMSNorm(nn.Module):
    """``x / rms(x) * (g + offset)``, ``g`` built at ``1 - offset`` as its library does."""

    def __init__(self, offset: float) -> None:
        super().__init__()
        self.offset = offset
        self.g = nn.Parameter(torch.full((WIDTH,), 1.0 - offset))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * (self.g + self.offset)


class WrappedLayerNorm(nn.Module):
    """A scale and shift of its own around a parameter-free ``LayerNorm``."""

    def __init__(self) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(WIDTH, elementwise_affine=False)
        self.gamma, self.beta = nn.Parameter(torch.ones(WIDTH)), nn.Parameter(torch.zeros(WIDTH))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln(x) * self.gamma + self.beta


class PreNormBlock(nn.Module):
    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.norm, self.up, self.down = norm, nn.Linear(WIDTH, 2 * WIDTH), nn.Linear(2 * WIDTH, WIDTH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(torch.relu(self.up(self.norm(x))))


def lm(make_norm) -> nn.Sequential:
    return nn.Sequential(
        nn.Embedding(50, WIDTH), PreNormBlock(make_norm()), PreNormBlock(make_norm()), make_norm(), nn.Linear(WIDTH, 50)
    )


@pytest.mark.parametrize(
    ("offset", "rule", "value"), [(0.0, "ones", 1.0), (1.0, "zeros", 0.0), (0.5, "constant(0.5)", 0.5)]
)
def test_an_offset_norm_starts_at_scale_one_whatever_its_constant(offset: float, rule: str, value: float):
    net = lm(lambda: OffsetRMSNorm(offset))
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3)  # what training left
    report = initialize(net, "zero", example_inputs=torch.randint(0, 50, (2, 5)), strict=True)
    assert report["1.norm.g"].rule == rule and torch.equal(net[1].norm.g, torch.full((WIDTH,), value))
    assert all(p.kept for p in zero_start_promises(net, torch.randint(0, 50, (3, 7))))


def test_a_norm_with_its_scale_at_zero_is_still_found_as_a_norm():
    net = lm(lambda: OffsetRMSNorm(0.0))
    with torch.no_grad():
        net[1].norm.g.zero_()  # its output is 0 on the example: found with its scale tried at 1
    report = initialize(net, "kaiming", example_inputs=torch.randint(0, 50, (2, 5)), strict=True)
    assert report["1.norm.g"].rule == "ones"


@pytest.mark.parametrize("scheme", ["zero", "kaiming"])
def test_a_norm_module_scaling_a_parameter_free_layer_norm_is_a_norm(scheme: str):
    net = lm(WrappedLayerNorm)
    report = initialize(net, scheme, example_inputs=torch.randint(0, 50, (2, 5)), strict=True)
    assert report["1.norm.gamma"].rule == "ones" and report["1.norm.beta"].rule == "zeros"
    assert report["1.norm.beta"].role != "position"  # it shifts a norm's output, it is no table added to the stream


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.c2(torch.relu(self.c1(x)))


class TwoHeads(nn.Module):
    """The output is a head on the last features plus a side head on the stem's."""

    def __init__(self) -> None:
        super().__init__()
        self.stem, self.body = nn.Conv2d(3, 8, 3, padding=1), nn.Sequential(Block(), Block())
        self.head, self.side = nn.Conv2d(8, 3, 1), nn.Conv2d(8, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stem(x)
        return self.head(self.body(s)) + self.side(s)


class GlobalSkip(TwoHeads):
    """The output is the input plus a correction (an image restorer)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.head(self.body(self.stem(x)))


def test_an_output_summed_from_two_layers_makes_both_output_layers():
    net = TwoHeads()
    report = initialize(net, "zero", example_inputs=torch.randn(2, 3, 8, 8), strict=True)
    assert report["head.weight"].role == report["side.weight"].role == "classifier"
    assert all(p.kept for p in zero_start_promises(net, torch.randn(2, 3, 12, 12)))


def test_an_output_adding_the_input_says_it_cannot_start_at_zero():
    report = initialize(GlobalSkip(), "zero", example_inputs=torch.randn(2, 3, 8, 8), strict=True)
    assert report["head.weight"].role == "classifier"
    assert any("a term no layer ends" in note for note in report.notes)


class LossLM(nn.Module):
    """A language model whose forward returns its loss (x-transformers' wrappers): by ``F.cross_entropy``, or by
    hand over a padding mask (``logsumexp`` minus the target's logit, averaged over the real tokens)."""

    def __init__(self, by_hand: bool) -> None:
        super().__init__()
        self.by_hand = by_hand
        self.embed, self.block, self.head = (
            nn.Embedding(50, WIDTH),
            PreNormBlock(nn.LayerNorm(WIDTH)),
            nn.Linear(WIDTH, 50),
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        inputs, targets = tokens[:, :-1], tokens[:, 1:]
        logits = self.head(self.block(self.embed(inputs)))
        if not self.by_hand:
            return torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets)
        real = targets != 0
        losses = logits.logsumexp(-1) - logits.gather(-1, targets[..., None])[..., 0]
        return torch.where(real, losses, 0.0).sum() / real.sum()


@pytest.mark.parametrize("by_hand", [False, True])
def test_a_model_returning_its_loss_has_the_layer_it_is_computed_from_as_output(by_hand: bool):
    net = LossLM(by_hand)
    report = initialize(net, "zero", example_inputs=torch.randint(1, 50, (2, 9)), strict=True)
    assert report["head.weight"].role == "classifier" and report["head.weight"].rule == "zeros"
    assert torch.allclose(net(torch.randint(1, 50, (3, 12))), torch.tensor(50.0).log())  # the uniform prediction
