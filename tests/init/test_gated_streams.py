"""Residual streams of recent Hugging Face decoders (issue 30), in plain torch: a hyper-connection that adds a
gated sum of routed and shared experts to its streams (HY-V4: ``streams + (2 sigmoid(z) + eps) * (moe + shared)``),
a mixture whose shared expert is two layers (not a projection shortcut), and sums that scale their skip (Beam's
depth-scaled ``sqrt(1/2) x + f / sqrt(2)``, Ergo's gate ``sqrt(1 + sigmoid(w)) e^{-softplus(w)/2}``), which no
initialisation of the branch makes the identity: the promise check says so and names the mechanism."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from detinit import initialize
from detinit.diagnostics.promises import SCALED_SKIP, zero_start_promises
from detinit.init.apply.scaled_sums import complete_scaled_sums_

WIDTH, STREAMS = 8, 2


class TwoExperts(nn.Module):
    """A routed expert weighted by a softmax router, plus a shared expert of two layers, summed side by side."""

    def __init__(self) -> None:
        super().__init__()
        self.router = nn.Linear(WIDTH, 2)
        self.up, self.down = nn.Linear(WIDTH, 2 * WIDTH), nn.Linear(2 * WIDTH, WIDTH)
        self.shared_up, self.shared_down = nn.Linear(WIDTH, WIDTH), nn.Linear(WIDTH, WIDTH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.router(x).softmax(-1)[..., :1]
        routed = self.down(F.silu(self.up(x))) * weight
        return routed + self.shared_down(F.silu(self.shared_up(x)))


class HyperConnectedBlock(nn.Module):
    """``streams + post (x) moe(norm(sum_i pre_i streams_i))``, ``post = 2 sigmoid(z) + eps`` per stream; with
    ``einsum``, the write into the streams is ``einsum("btd,bts->btsd", moe, post)`` (x-transformers' gated multi
    residual writes its branch so)."""

    def __init__(self, einsum: bool = False) -> None:
        super().__init__()
        self.einsum = einsum
        self.mix = nn.Linear(STREAMS * WIDTH, 2 * STREAMS)
        self.norm = nn.RMSNorm(WIDTH)
        self.moe = TwoExperts()

    def forward(self, streams: torch.Tensor) -> torch.Tensor:  # (batch, tokens, streams, width)
        pre, post = self.mix(streams.flatten(2)).split(STREAMS, dim=-1)
        x = (torch.sigmoid(pre).unsqueeze(-1) * streams).sum(2)
        post = 2.0 * torch.sigmoid(post) + 1e-6
        if self.einsum:
            return torch.einsum("btd,bts->btsd", self.moe(self.norm(x)), post) + streams
        return post.unsqueeze(-1) * self.moe(self.norm(x)).unsqueeze(-2) + streams


class HyperConnectedModel(nn.Module):
    def __init__(self, einsum: bool = False) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, WIDTH)
        self.blocks = nn.ModuleList([HyperConnectedBlock(einsum), HyperConnectedBlock(einsum)])
        self.head = nn.Linear(WIDTH, 5)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        streams = self.embed(ids).unsqueeze(2).expand(-1, -1, STREAMS, -1)
        for block in self.blocks:
            streams = block(streams)
        return self.head(streams.mean(2))


class SandwichMoEBlock(nn.Module):
    """``x + norm(experts(norm x) + shared(norm x))``: the shared expert is a branch beside the routed one."""

    def __init__(self) -> None:
        super().__init__()
        self.pre, self.post = nn.RMSNorm(WIDTH), nn.RMSNorm(WIDTH)
        self.moe = TwoExperts()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.post(self.moe(self.pre(x)))


@pytest.mark.parametrize("einsum", [False, True], ids=["product", "einsum"])
def test_a_gated_sum_of_experts_on_hyper_connected_streams_ends_each_expert_at_zero(einsum: bool) -> None:
    model = HyperConnectedModel(einsum)
    ids = torch.randint(0, 50, (2, 6))
    report = initialize(model, "zero", example_inputs=ids)
    roles = {r.name: r.role for r in report.records}
    for block in ("blocks.0", "blocks.1"):
        assert roles[f"{block}.moe.down.weight"] == "branch_last"
        assert roles[f"{block}.moe.shared_down.weight"] == "branch_last"
    promises = {p.promise: p for p in zero_start_promises(model, torch.randint(0, 50, (3, 5)))}
    assert all(p.kept is not False for p in promises.values()), promises
    assert promises["residual branches add 0"].checked >= 2


def test_a_shared_expert_of_two_layers_is_no_skip_of_the_sum_inside_a_branch() -> None:
    model = nn.Sequential(SandwichMoEBlock(), SandwichMoEBlock())
    x = torch.randn(2, 5, WIDTH)
    initialize(model, "zero", example_inputs=x)
    promises = {p.promise: p for p in zero_start_promises(model, torch.randn(3, 4, WIDTH))}
    branches, blocks = promises["residual branches add 0"], promises["blocks are the identity"]
    assert branches.kept and branches.checked == 2, (branches.error, branches.where)  # the two block sums alone
    assert blocks.kept and blocks.checked == 2


class ScaledSkipBlock(nn.Module):
    """Beam's depth-scaled sum (``gated=False``) or Ergo's gated one."""

    def __init__(self, gated: bool) -> None:
        super().__init__()
        self.gated = gated
        self.norm = nn.RMSNorm(WIDTH)
        self.up, self.down = nn.Linear(WIDTH, 2 * WIDTH), nn.Linear(2 * WIDTH, WIDTH)
        self.gate = nn.Parameter(torch.zeros(WIDTH))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.down(F.gelu(self.up(self.norm(x))))
        if not self.gated:
            return f / math.sqrt(2) + x * math.sqrt(1 / 2)
        skip = torch.sqrt(1 + self.gate.sigmoid()) * torch.exp(-0.5 * F.softplus(self.gate))
        return self.gate.sigmoid() * f + skip * x


@pytest.mark.parametrize("gated, scale", [(False, "a constant, 0.7071"), (True, "computed from parameters, 0.866")])
def test_a_sum_that_scales_its_skip_breaks_the_identity_and_says_why(gated: bool, scale: str) -> None:
    model = nn.Sequential(ScaledSkipBlock(gated), ScaledSkipBlock(gated))
    initialize(model, "zero", example_inputs=torch.randn(2, 5, WIDTH))
    promises = {p.promise: p for p in zero_start_promises(model, torch.randn(3, 4, WIDTH))}
    assert promises["residual branches add 0"].kept  # ZerO did its part: the branches add 0
    blocks = promises["blocks are the identity"]
    expected = 1 - (0.5**0.5 if not gated else 0.75**0.5)  # the block is scale * x
    assert blocks.kept is False and blocks.error == pytest.approx(expected, rel=1e-6)
    assert SCALED_SKIP in blocks.why and scale in blocks.why


class PostNormLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up, self.down = nn.Linear(WIDTH, 2 * WIDTH), nn.Linear(2 * WIDTH, WIDTH)
        self.norm = nn.LayerNorm(WIDTH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.down(F.gelu(self.up(x))))


class EncoderBesideALateral(nn.Module):
    """Mask2Former's pixel decoder in small: post-norm encoder layers, whose output is then added to a lateral
    projection of the input (a feature-pyramid sum, not a residual block of the encoder)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed, self.lateral = nn.Linear(WIDTH, WIDTH), nn.Linear(WIDTH, WIDTH)
        self.layers = nn.Sequential(PostNormLayer(), PostNormLayer())
        self.head = nn.Linear(WIDTH, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lateral(x) + self.layers(self.embed(x)))


def test_a_post_norm_after_a_residual_sum_is_not_zeroed_as_a_branch_end() -> None:
    """Walking back from the outer sum meets the last layer's post-norm, then its residual sum: that norm does not
    end a branch (zeroing it would make the whole encoder's output 0); only a norm after layers summed side by
    side does (routed plus shared experts)."""
    model = EncoderBesideALateral()
    report = initialize(model, "zero", example_inputs=torch.randn(2, 5, WIDTH))
    rules = {r.name: r.rule for r in report.records}
    assert rules["layers.1.norm.weight"] == rules["layers.0.norm.weight"] == "ones"
    with torch.no_grad():
        assert float(model.layers(model.embed(torch.randn(3, 4, WIDTH))).abs().amax()) > 0.5


class ScaledShortConvolution(nn.Module):
    """Inkling2's short convolution: ``(x + conv(x)) / sqrt(k + 1)``, a depthwise conv over the tokens, causal
    (padded by ``k - 1``, cropped to the first ``L`` outputs) or centred; ``act`` puts a GELU on the branch."""

    def __init__(self, kernel: int = 4, causal: bool = True, act: bool = False) -> None:
        super().__init__()
        padding = kernel - 1 if causal else kernel // 2
        self.conv = nn.Conv1d(WIDTH, WIDTH, kernel, groups=WIDTH, padding=padding, bias=False)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = self.conv(x.transpose(1, 2))[..., : x.shape[1]].transpose(1, 2)
        mixed = F.gelu(mixed) if self.act else mixed
        return (x + mixed) / math.sqrt(self.conv.kernel_size[0] + 1)


class BranchEndingInAShortConvolution(nn.Module):
    """``x + sconv(out(act(up(norm(x)))))``: the branch's zero must go on ``out``, before the short convolution,
    whose own zero leaves ``h / sqrt(k + 1)``, not 0."""

    def __init__(self) -> None:
        super().__init__()
        self.norm, self.up, self.out = nn.RMSNorm(WIDTH), nn.Linear(WIDTH, 2 * WIDTH), nn.Linear(2 * WIDTH, WIDTH)
        self.sconv = ScaledShortConvolution()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.sconv(self.out(F.gelu(self.up(self.norm(x)))))


def test_a_branch_ending_in_a_scaled_residual_sum_gets_its_zero_before_that_sum() -> None:
    model = nn.Sequential(BranchEndingInAShortConvolution(), BranchEndingInAShortConvolution(), nn.Linear(WIDTH, 3))
    report = initialize(model, "zero", example_inputs=torch.randn(2, 5, WIDTH))
    roles = {r.name: r.role for r in report.records}
    assert roles["0.out.weight"] == roles["1.out.weight"] == "branch_last"  # the outer branch ends here
    assert roles["0.sconv.conv.weight"] == "branch_last"  # the inner sum's own branch
    promises = {p.promise: p for p in zero_start_promises(model, torch.randn(3, 4, WIDTH))}
    assert all(p.kept is not False for p in promises.values()), promises  # the short convolutions see 0


@pytest.mark.parametrize("kernel, causal, tap", [(4, True, 3), (3, False, 1), (5, True, 4)])
def test_zero_makes_a_scaled_sum_of_one_layer_the_identity_on_the_tap_that_keeps_each_position(kernel, causal, tap):
    model = nn.Sequential(ScaledShortConvolution(kernel, causal), ScaledShortConvolution(kernel, causal))
    model.append(nn.Linear(WIDTH, 3))
    report = initialize(model, "zero", example_inputs=torch.randn(2, 5, WIDTH))
    record = next(r for r in report.records if r.name == "0.conv.weight")
    gain = math.sqrt(kernel + 1) - 1
    assert record.rule == "scaled_identity" and f"{gain:.7g} x identity on tap {tap}" in record.reason
    expected = torch.zeros(WIDTH, 1, kernel)
    expected[:, 0, tap] = gain
    assert torch.equal(model[1].conv.weight, expected.to(model[1].conv.weight.dtype))
    x = torch.randn(3, 7, WIDTH)  # not the example
    with torch.no_grad():
        assert torch.allclose(model[1](model[0](x)), x, atol=1e-6)
    promises = {p.promise: p for p in zero_start_promises(model, x)}
    assert all(p.kept for p in promises.values()), promises


@pytest.mark.parametrize("case", ["paper rules", "a branch with an activation"])
def test_a_scaled_sum_left_scaled_breaks_the_identity_and_says_why(case: str) -> None:
    model = nn.Sequential(ScaledShortConvolution(act=case != "paper rules"), nn.Linear(WIDTH, 3))
    options = {"variant": "paper"} if case == "paper rules" else {}
    initialize(model, "zero", example_inputs=torch.randn(2, 5, WIDTH), **options)
    assert not model[0].conv.weight.any()  # ZerO's zero branch: the block is x / sqrt(5)
    blocks = {p.promise: p for p in zero_start_promises(model, torch.randn(3, 4, WIDTH))}["blocks are the identity"]
    assert blocks.kept is False and blocks.error == pytest.approx(1 - 5**-0.5, rel=1e-6)
    assert SCALED_SKIP in blocks.why and "the whole sum times a constant, 0.4472" in blocks.why
    assert "1.236 times its input" in blocks.why


class SoftclampedStack(nn.Module):
    """Two residual blocks whose last sum goes through a soft clamp, ``tanh(x / 30) * 30`` (x-transformers'
    ``softclamp_output``): a scale into a function, not a scale of the sum."""

    def __init__(self) -> None:
        super().__init__()
        self.ups = nn.ModuleList(nn.Linear(WIDTH, 2 * WIDTH) for _ in range(2))
        self.downs = nn.ModuleList(nn.Linear(2 * WIDTH, WIDTH) for _ in range(2))
        self.head = nn.Linear(WIDTH, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for up, down in zip(self.ups, self.downs):
            x = x + down(F.gelu(up(x)))
        return self.head(torch.tanh(x / 30) * 30)


def test_a_soft_clamp_after_the_last_sum_is_no_scaled_sum() -> None:
    model = SoftclampedStack()
    report = initialize(model, "zero", example_inputs=torch.randn(2, 5, WIDTH))
    assert {r.name: r.rule for r in report.records}["downs.1.weight"] == "zeros"
    promises = {p.promise: p for p in zero_start_promises(model, torch.randn(3, 4, WIDTH))}
    assert promises["residual branches add 0"].kept and promises["residual branches add 0"].checked == 2


@pytest.mark.parametrize(
    "found, message",
    [([("7", "0", 0.5)], "layer '7' is not a module"), ([("0", "", 0.0)], "finite number other than 0, got 0.0")],
)
def test_completing_scaled_sums_refuses_what_no_trace_would_give(found, message):
    model = nn.Sequential(ScaledShortConvolution(), nn.Linear(WIDTH, 3))
    with pytest.raises(ValueError, match=message):
        complete_scaled_sums_(model, torch.randn(2, 5, WIDTH), found)
