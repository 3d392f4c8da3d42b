"""A zero output layer reading a feature that is the same for every input (a cls token through identity blocks)
is a saddle; ZerO (variant detinit) gives it rows orthogonal to that feature instead (detinit.init.apply.readout)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from detinit import initialize
from detinit.init.apply.end_gain import plain_name
from detinit.init.apply.readout import constant_feature, orthogonal_rows

from .timm_patterns import VisionTransformer


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_orthogonal_rows_cancel_exactly_in_any_dtype_and_summation_order(dtype):
    g = torch.Generator().manual_seed(0)
    for width in (7, 32, 192, 768):
        magnitude = torch.rand((), generator=g).item() * 3 + 0.1  # not a power of two: the products are inexact
        signs = torch.randint(0, 2, (width,), generator=g) * 2 - 1
        feature = (magnitude * signs).to(dtype)
        feature[torch.randint(0, width, (3,), generator=g)] = 0
        rows = orthogonal_rows(feature, 1000)
        assert rows.shape == (1000, width) and set(rows.unique().tolist()) <= {-1.0, 0.0, 1.0}
        assert (nn.functional.linear(feature, rows) == 0).all()
        batch = feature.expand(16, width)
        assert (batch @ rows.t() == 0).all() and (nn.functional.linear(batch, rows) == 0).all()
        nonzero = feature != 0
        found = int((~nonzero).sum() + (nonzero[:-1] & nonzero[1:]).sum())  # e_j at zeros, a row per non-zero pair
        assert len(torch.unique(rows[:found], dim=0)) == found and torch.equal(rows[found], rows[0])


def test_a_feature_without_equal_neighbours_or_zeros_keeps_the_zero():
    assert orthogonal_rows(torch.tensor([1.0, 2.0, 3.0]), 4) is None
    assert constant_feature(torch.ones(1, 4)) is None  # one row says nothing about the input
    assert constant_feature(torch.tensor([[1.0, 2.0], [1.0, 3.0]])) is None
    assert torch.equal(constant_feature(torch.tensor([[1.0, 2.0], [1.0, 2.0]])), torch.tensor([1.0, 2.0]))


def _first_gradients(model: nn.Module) -> dict[str, float]:
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    model.zero_grad()
    nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 3])).backward()
    return {plain_name(n): p.grad.abs().max().item() for n, p in model.named_parameters()}  # ls1.gamma: its end_gain


def test_a_zero_classifier_reading_the_cls_token_is_a_saddle_that_the_escape_removes():
    paper = VisionTransformer()
    report = initialize(paper, "zero", variant="paper", strict=True)
    assert report["head.weight"].rule == "zeros"
    grads = _first_gradients(paper)
    assert {n for n, g in grads.items() if g != 0} == {"head.weight", "head.bias"}  # all else exactly 0
    assert torch.linalg.matrix_rank(paper.head.weight.grad) == 1  # (p - y) f^T: it grows only along f

    model = VisionTransformer()
    report = initialize(model, "zero", strict=True)
    assert report["head.weight"].rule == "orthogonal_pairs" and "saddle" in report["head.weight"].reason
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    assert model(x).abs().max() == 0  # the logits are still exactly 0
    grads = _first_gradients(model)
    assert grads["blocks.1.ls1.gamma"] > 0 and grads["blocks.1.ls2.gamma"] > 0  # the last block learns


class MeanPooledViT(VisionTransformer):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        return self.head(self.norm(self.blocks(x)).mean(1))


def test_a_classifier_reading_features_that_depend_on_the_input_keeps_its_zero():
    model = MeanPooledViT()
    report = initialize(model, "zero", strict=True)
    assert report["head.weight"].rule == "zeros"
    assert model.head.weight.abs().max() == 0
    # identical examples say nothing about the input: a Linear on them keeps its zero
    report = initialize(nn.Sequential(nn.Linear(8, 3)), "zero", example_inputs=torch.ones(2, 8))
    assert report["0.weight"].rule == "zeros"
