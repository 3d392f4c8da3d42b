"""Sums that are not residual blocks, and residual blocks that end in uncommon ways, as the Hugging Face zoo sweep
(benchmarks/hf_zoo.py) found them, in plain torch: a linear-attention state recurrence inside a mixer, attention
scores plus a position bias, a short convolution with its own skip at the end of a branch, attention computed in one
``F.multi_head_attention_forward`` call, a branch ending in ``reshape_as``, in a concatenation of one layer's
outputs, or in experts added into their tokens' rows plus a bias. Each test checks ZerO's promises on inputs that
are not the tracing example (:func:`detinit.diagnostics.promises.zero_start_promises`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from detinit import initialize
from detinit.diagnostics.promises import zero_start_promises
from detinit.init.roles.trace import record_forward
from detinit.init.roles.traced.index import GraphIndex
from detinit.init.roles.traced.residuals import residual_sums

WIDTH = 8


def kept(model: nn.Module, inputs: object, open_blocks: tuple[str, ...] = ()) -> dict[str, bool | None]:
    return {p.promise: p.kept for p in zero_start_promises(model, inputs, open_blocks=open_blocks)}


def sums_in(model: nn.Module, inputs: object) -> list[str]:
    """The module of each residual sum the recorded pass holds."""
    with torch.no_grad():
        return [s.module for s in residual_sums(GraphIndex(model, record_forward(model, inputs)))]


def lm(block: type[nn.Module], depth: int = 2) -> nn.Sequential:
    return nn.Sequential(nn.Embedding(50, WIDTH), *[block() for _ in range(depth)], nn.Linear(WIDTH, 50))


def assert_branch_ends_at_zero(block: type[nn.Module], end: str, role: str = "branch_last", length: int = 5):
    """ZerO on a two-block LM of ``block``: the second block's ``end`` parameter has ``role`` and is 0, and the
    promises hold on inputs longer than the example (but in the entry block a branch ending on a BatchNorm opens,
    the report's ``open_blocks``: the first block)."""
    net = lm(block).eval()
    report = initialize(net, "zero", example_inputs=torch.randint(0, 50, (2, length)), strict=True)
    assert report[f"2.{end}"].role == role and report[f"2.{end}"].rule == "zeros"
    opened = tuple(report.open_blocks)
    assert opened == (("1",) if isinstance(net[1].get_submodule(end.rpartition(".")[0]), nn.BatchNorm1d) else ())
    assert all(kept(net, torch.randint(0, 50, (3, length + 2)), opened).values())
    return report


class LinearAttention(nn.Module):
    """A pre-norm block around a gated linear-attention mixer: the state ``S_t = decay_t S_(t-1) + k_t^T v_t``
    is a sum of two computed tensors too, but not a residual sum (Qwen3-Next's gated delta rule, Mamba's scan)."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(WIDTH)
        self.qkv = nn.Linear(WIDTH, 3 * WIDTH)
        self.decay = nn.Linear(WIDTH, 1)
        self.out = nn.Linear(WIDTH, WIDTH)

    def mix(self, h: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        decay = torch.sigmoid(self.decay(h))
        state = torch.zeros(h.shape[0], WIDTH, WIDTH)
        outputs = []
        for t in range(h.shape[1]):
            state = state * decay[:, t, :, None] + k[:, t, :, None] @ v[:, t, None, :]
            outputs.append((q[:, t, None, :] @ state).squeeze(1))
        return self.out(torch.stack(outputs, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mix(self.norm(x))


def test_a_state_recurrence_is_not_a_residual_sum():
    net = lm(LinearAttention)
    tokens = torch.randint(0, 50, (2, 5))
    assert sums_in(net, tokens) == ["1", "2"]  # one sum a block, none for the 5 state updates of each
    report = initialize(net, "zero", example_inputs=tokens, strict=True)
    assert report["1.out.weight"].role == "branch_last" and report["1.out.weight"].rule == "zeros"
    assert all(kept(net, torch.randint(0, 50, (3, 6))).values())


class BiasedScores(nn.Module):
    """Attention whose scores get a bias computed from the input before the softmax (CPM-Ant's position bias,
    a segment bias): the sum of two computed tensors with layers on both sides, not a residual sum."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(WIDTH)
        self.q, self.k, self.v, self.o = (nn.Linear(WIDTH, WIDTH) for _ in range(4))
        self.segment = nn.Linear(WIDTH, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        scores = self.q(h) @ self.k(h).transpose(1, 2) / WIDTH**0.5
        bias = self.segment(h)
        scores = scores + (bias + bias.transpose(1, 2))
        return x + self.o(torch.softmax(scores, -1) @ self.v(h))


def test_attention_scores_plus_a_position_bias_are_not_a_residual_sum():
    net = lm(BiasedScores)
    tokens = torch.randint(0, 50, (2, 6))
    assert sums_in(net, tokens) == ["1", "2"]
    report = initialize(net, "zero", example_inputs=tokens, strict=True)
    assert report["1.o.weight"].rule == "zeros"
    assert all(kept(net, torch.randint(0, 50, (3, 6))).values())


class ShortConvolution(nn.Module):
    """``h + conv(h)``, causal and depthwise, in float32: a residual of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(WIDTH, WIDTH, 3, groups=WIDTH, padding=2)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        residual = h.float()
        out = self.conv(residual.transpose(1, 2))[..., : h.shape[1]].transpose(1, 2)
        return (out + residual).to(h.dtype)


class ConvolvedBranch(nn.Module):
    """``x + sconv(mlp(LN x))``: the branch ends in a short convolution with its own skip (Inkling)."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(WIDTH)
        self.up, self.down = nn.Linear(WIDTH, 2 * WIDTH), nn.Linear(2 * WIDTH, WIDTH)
        self.sconv = ShortConvolution()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.sconv(self.down(F.gelu(self.up(self.norm(x)))))


def test_a_branch_ending_in_its_own_residual_gives_its_zero_to_the_layer_before():
    net = lm(ConvolvedBranch)
    tokens = torch.randint(0, 50, (2, 5))
    assert sums_in(net, tokens) == ["1.sconv", "1", "2.sconv", "2"]  # two sums, not one of three terms
    report = initialize(net, "zero", example_inputs=tokens, strict=True)
    for block in ("1", "2"):
        assert report[f"{block}.sconv.conv.weight"].rule == "zeros"
        assert report[f"{block}.down.weight"].role == "branch_last" and report[f"{block}.down.weight"].rule == "zeros"
    assert all(kept(net, torch.randint(0, 50, (3, 7))).values())


class FunctionalAttention(nn.Module):
    """A post-norm block computing its attention in one ``F.multi_head_attention_forward`` call with separate
    projection weights (WavLM)."""

    def __init__(self) -> None:
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(WIDTH, WIDTH) for _ in range(4))
        self.norm = nn.LayerNorm(WIDTH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.transpose(0, 1)
        bias = torch.cat((self.q.bias, self.k.bias, self.v.bias))
        attended, _ = F.multi_head_attention_forward(
            h, h, h, WIDTH, 2, torch.empty([0]), bias, None, None, False, 0.0, self.o.weight, self.o.bias,
            training=False, need_weights=False, use_separate_proj_weight=True,
            q_proj_weight=self.q.weight, k_proj_weight=self.k.weight, v_proj_weight=self.v.weight,
        )  # fmt: skip
        return self.norm(x + attended.transpose(0, 1))


def test_attention_in_one_functional_call_ends_its_branch_with_the_output_projection():
    net = nn.Sequential(nn.Embedding(50, WIDTH), nn.LayerNorm(WIDTH), FunctionalAttention(), nn.Linear(WIDTH, 50))
    tokens = torch.randint(0, 50, (2, 5))
    report = initialize(net, "zero", example_inputs=tokens, strict=True)
    assert report["2.o.weight"].rule == "zeros" and report["2.o.bias"].rule == "zeros"
    assert all(kept(net, torch.randint(0, 50, (3, 4))).values())


class BatchNormedMLP(nn.Module):
    """A branch ending in Linear then BatchNorm1d over the flattened tokens, reshaped back with ``reshape_as``
    (LeViT)."""

    def __init__(self) -> None:
        super().__init__()
        self.up, self.down = nn.Linear(WIDTH, 2 * WIDTH), nn.Linear(2 * WIDTH, WIDTH)
        self.bn = nn.BatchNorm1d(WIDTH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.down(F.hardswish(self.up(x)))
        return x + self.bn(h.flatten(0, 1)).reshape_as(h)


def test_a_branch_ending_in_reshape_as_carries_its_zero_on_the_norm():
    assert_branch_ends_at_zero(BatchNormedMLP, "bn.weight", role="branch_last_norm")


class TwoStreams(nn.Module):
    """One output projection applied to two streams and the results concatenated (ProphetNet's main and
    n-gram streams)."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(WIDTH)
        self.inner, self.out = nn.Linear(WIDTH, WIDTH), nn.Linear(WIDTH, WIDTH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.inner(self.norm(x)))
        half = x.shape[1] // 2
        return x + torch.cat([self.out(h[:, :half]), self.out(h[:, half:])], 1)


def test_a_branch_concatenating_one_layers_outputs_ends_with_that_layer():
    assert_branch_ends_at_zero(TwoStreams, "out.weight", length=6)


class IndexAddExperts(nn.Module):
    """Routed tokens, gathered in the router's order, through the experts (one here), scaled by their gates and
    added back into their rows with one ``index_add``, then a shared bias (JetMoE)."""

    def __init__(self, experts: int = 3) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(WIDTH)
        self.router = nn.Linear(WIDTH, experts)
        self.expert = nn.Linear(WIDTH, WIDTH)
        self.bias = nn.Parameter(torch.zeros(WIDTH))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x).flatten(0, 1)
        gate, choice = torch.softmax(self.router(h), -1).max(-1)
        order = choice.argsort()
        routed = self.expert(h[order]) * gate[order, None]
        out = h.new_zeros(h.shape).index_add(0, order, routed)
        return x + (out.view_as(x) + self.bias)


def test_experts_added_into_rows_plus_a_bias_end_with_the_experts():
    net = lm(IndexAddExperts)
    tokens = torch.randint(0, 50, (4, 6))
    report = initialize(net, "zero", example_inputs=tokens, strict=True)
    for block in ("1", "2"):
        expert = report[f"{block}.expert.weight"]
        assert expert.role == "branch_last" and expert.rule == "zeros" and report[f"{block}.bias"].rule == "zeros"
    assert all(kept(net, torch.randint(0, 50, (3, 8))).values())


class UnscaledNormEnd(nn.Module):
    """A branch ending in conv, a LayerNorm without parameters and GELU (data2vec-audio's positional
    convolutions): the norm cannot carry the zero, the conv does."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(WIDTH, WIDTH, 3, padding=1)
        self.norm = nn.LayerNorm(WIDTH, elementwise_affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x.transpose(1, 2)).transpose(1, 2)
        return x + F.gelu(self.norm(h))


def test_a_norm_without_parameters_leaves_the_branch_zero_on_the_layer():
    assert_branch_ends_at_zero(UnscaledNormEnd, "conv.weight")


def test_a_post_norm_block_on_an_unnormalised_input_is_reported_with_its_mechanism():
    net = nn.Sequential(nn.Linear(4, WIDTH), FunctionalAttention(), nn.Linear(WIDTH, 3))
    initialize(net, "zero", example_inputs=torch.randn(2, 5, 4), strict=True)
    blocks = zero_start_promises(net, 3 * torch.randn(2, 5, 4))[2]
    assert blocks.kept is False and "post-norm block on an input that is not normalised" in str(blocks)


class LeftMultiplied(nn.Module):
    """Block-diagonal gates read by ``torch.baddbmm`` (RecurrentGemma), then an output weight applied on the left,
    ``W @ h^T`` (Zamba's ``x_proj_weight``): both are layers."""

    def __init__(self, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(WIDTH)
        self.gate = nn.Parameter(torch.randn(heads, WIDTH // heads, WIDTH // heads))
        self.gate_bias = nn.Parameter(torch.randn(heads, WIDTH // heads))
        self.out = nn.Parameter(torch.randn(WIDTH, WIDTH))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        batch, length, _ = h.shape
        blocks = h.reshape(batch * length, self.heads, -1).permute(1, 0, 2)
        gated = torch.sigmoid(torch.baddbmm(self.gate_bias[:, None, :], blocks, self.gate)) * blocks
        gated = gated.permute(1, 0, 2).reshape(batch, length, WIDTH)
        return x + (self.out @ gated.transpose(1, 2)).transpose(1, 2)


def test_stacked_gates_by_baddbmm_and_a_weight_on_the_left_are_layers():
    report = assert_branch_ends_at_zero(LeftMultiplied, "out")
    assert report["1.gate"].rule != "unknown" and report["1.gate_bias"].rule == "zeros"


class PostNormNoEmbeddingNorm(nn.Module):
    """Token and position tables summed straight into post-norm blocks, with no embedding norm (GPT-1)."""

    def __init__(self, depth: int = 2) -> None:
        super().__init__()
        self.tokens, self.positions = nn.Embedding(50, WIDTH), nn.Embedding(16, WIDTH)
        self.blocks = nn.ModuleList(FunctionalAttention() for _ in range(depth))
        self.head = nn.Linear(WIDTH, 50)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.tokens(ids) + self.positions(torch.arange(ids.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def test_a_token_table_entering_a_post_norm_stream_is_scaled_to_its_fixed_point():
    net = PostNormNoEmbeddingNorm()
    report = initialize(net, "zero", example_inputs=torch.randint(0, 50, (2, 6)), strict=True)
    assert report["tokens.weight"].rule == "fixed_point" and report["positions.weight"].rule == "zeros"
    rows = net.tokens.weight.detach().double().pow(2).mean(-1)
    assert torch.allclose(rows, torch.full_like(rows, 1 - 1e-5), rtol=1e-6)  # LayerNorm's eps
    assert all(kept(net, torch.randint(0, 50, (3, 9))).values())


class VectorOnTheLeft(nn.Module):
    """A learned vector on the left of a matmul, ``q @ h^T`` (Inkling 2's score probe): no layer."""

    def __init__(self) -> None:
        super().__init__()
        self.probe = nn.Parameter(torch.zeros(WIDTH))
        self.fc = nn.Linear(WIDTH, WIDTH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.probe @ x.transpose(1, 2), -1)
        return x + self.fc(weights[..., None] * x)


def test_a_vector_on_the_left_of_a_matmul_is_not_taken_for_a_layer():
    net = lm(VectorOnTheLeft)
    report = initialize(net, "zero", example_inputs=torch.randint(0, 50, (2, 5)))
    assert report["1.fc.weight"].rule == "zeros" and report["1.probe"].rule != "hadamard"


class ValueConvolution(nn.Module):
    """Attention plus a depthwise convolution of its values (Nystromformer): ``softmax(q k^T) v + conv(v)``
    sums two paths that part at the value projection's output, inside the branch, so it is no residual sum."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(WIDTH)
        self.q, self.k, self.v, self.o = (nn.Linear(WIDTH, WIDTH) for _ in range(4))
        self.conv = nn.Conv1d(WIDTH, WIDTH, 3, padding=1, groups=WIDTH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        v = self.v(h)
        mixed = torch.softmax(self.q(h) @ self.k(h).transpose(1, 2), -1) @ v
        mixed = mixed + self.conv(v.transpose(1, 2)).transpose(1, 2)
        return x + self.o(mixed)


def test_two_paths_from_a_layer_output_inside_a_branch_are_no_residual_sum():
    tokens = torch.randint(0, 50, (2, 5))
    assert sums_in(lm(ValueConvolution), tokens) == ["1", "2"]  # the blocks alone
    assert_branch_ends_at_zero(ValueConvolution, "o.weight")


class GatedChannelMix(nn.Module):
    """RWKV's channel mix, ``sigmoid(r(h)) * v(relu(k(h))^2)``, whose output weight the model rescales in place
    for inference (``v.weight.div_(2 ** k)`` in the forward pass): the branch ends with ``v``, the gated factor."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(WIDTH)
        self.r, self.k, self.v = nn.Linear(WIDTH, WIDTH), nn.Linear(WIDTH, 2 * WIDTH), nn.Linear(2 * WIDTH, WIDTH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            self.v.weight.div_(1.0)
        h = self.norm(x)
        return x + torch.sigmoid(self.r(h)) * self.v(torch.relu(self.k(h)) ** 2)


def test_a_gated_output_gives_its_zero_to_the_gated_layer_even_rescaled_in_place():
    assert_branch_ends_at_zero(GatedChannelMix, "v.weight")


class LoopedExperts(nn.Module):
    """Experts stored as stacks, run in a loop over the experts the router hit: ``h[rows] @ W[e] + b[e]``, each
    matrix picked by an index the routing computed, added into the rows by ``index_add_`` (GPT-OSS's eager path,
    OpenAI's privacy filter)."""

    def __init__(self, experts: int = 3) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(WIDTH)
        self.router = nn.Linear(WIDTH, experts)
        self.up, self.down = (
            nn.Parameter(torch.empty(experts, WIDTH, 16)),
            nn.Parameter(torch.empty(experts, 16, WIDTH)),
        )
        self.down_bias = nn.Parameter(torch.empty(experts, WIDTH))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x).flatten(0, 1)
        gate, choice = torch.softmax(self.router(h), -1).max(-1)
        out = torch.zeros_like(h)
        for expert in choice.unique():
            rows = torch.where(choice == expert)[0]
            y = torch.relu(h[rows] @ self.up[expert]) @ self.down[expert] + self.down_bias[expert]
            out.index_add_(0, rows, y * gate[rows, None])
        return x + out.view_as(x)


def test_experts_picked_by_a_routed_index_are_layers_and_end_their_branch():
    report = assert_branch_ends_at_zero(LoopedExperts, "down", role="branch_last")
    assert report["1.up"].rule != "unknown" and report["1.down_bias"].rule == "zeros"


class ModuleExperts(nn.Module):
    """Experts held as one module each (SwitchTransformers, NLLB-MoE), run in a loop over the experts hit and
    added into their rows one ``index_add_`` after another; the router's bias sends every token to the first
    ``hit`` experts, so the others are never read while tracing."""

    def __init__(self, experts: int = 4, hit: int = 2) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(WIDTH)
        self.router = nn.Linear(WIDTH, experts)
        self.experts = nn.ModuleList(
            nn.Sequential(nn.Linear(WIDTH, 16), nn.ReLU(), nn.Linear(16, WIDTH)) for _ in range(experts)
        )
        self.hit = hit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x).flatten(0, 1)
        choice = torch.arange(h.shape[0]) % self.hit  # where the router sends each token, whatever its weights
        gate = torch.softmax(self.router(h), -1).gather(1, choice[:, None])
        out = torch.zeros_like(h)
        for expert in choice.unique().tolist():
            rows = torch.where(choice == expert)[0]
            out.index_add_(0, rows, self.experts[expert](h[rows]) * gate[rows])
        return x + out.view_as(x)


def test_experts_as_modules_all_end_their_branch_and_unhit_ones_copy_a_hit_one():
    net = lm(ModuleExperts).eval()
    report = initialize(net, "zero", example_inputs=torch.randint(0, 50, (2, 5)), strict=True)
    for expert in range(4):
        assert report[f"1.experts.{expert}.2.weight"].role == "branch_last"
        assert report[f"1.experts.{expert}.2.weight"].rule == "zeros"
        assert report[f"1.experts.{expert}.0.weight"].role == "branch"
    assert any("1.experts.2 as 1.experts.0" in note for note in report.notes)
    for block in net[1:3]:
        block.hit = 4  # at use, tokens go to every expert
    assert all(kept(net, torch.randint(0, 50, (3, 7))).values())


class SkippedFlows(nn.Module):
    """A list of residual blocks, each ending in a norm with a scale, whose last member the forward pass skips
    (VITS's duration predictor drops a flow at inference): it takes the roles of a member that ran, in a block of
    its own."""

    def __init__(self) -> None:
        super().__init__()
        self.flows = nn.ModuleList(nn.Sequential(nn.Linear(WIDTH, WIDTH), nn.LayerNorm(WIDTH)) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for flow in self.flows[:-1]:
            x = x + flow(x)
        return x


def test_a_skipped_list_member_takes_a_run_members_roles_in_a_block_of_its_own():
    net = nn.Sequential(nn.Embedding(50, WIDTH), SkippedFlows(), nn.Linear(WIDTH, 50)).eval()
    report = initialize(net, "zero", example_inputs=torch.randint(0, 50, (2, 5)), strict=True)
    assert report["1.flows.2.1.weight"].role == "branch_last_norm" and report["1.flows.2.1.weight"].rule == "zeros"
    assert report["1.flows.2.0.weight"].role == "branch_last"


class EinsumAttention(nn.Module):
    """XLNet's attention: projections held as ``(width, heads, head_dim)`` and read by ``einsum``, and a
    segment table multiplied into the scores only where segment ids are given."""

    def __init__(self, heads: int = 2) -> None:
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Parameter(torch.empty(WIDTH, heads, WIDTH // heads)) for _ in range(4))
        self.segments = nn.Parameter(torch.empty(2, heads, WIDTH // heads))
        self.norm = nn.LayerNorm(WIDTH)

    def forward(self, x: torch.Tensor, segments: torch.Tensor | None = None) -> torch.Tensor:
        q, k, v = (torch.einsum("bih,hnd->bind", x, w) for w in (self.q, self.k, self.v))
        scores = torch.einsum("bind,bjnd->bnij", q, k)
        if segments is not None:
            different = (segments[:, :, None] != segments[:, None, :]).long()  # (b, i, j)
            bias = torch.einsum("bind,snd->bnis", q, self.segments)  # (b, n, i, 2)
            scores = scores + torch.gather(bias, 3, different[:, None].expand(-1, bias.shape[1], -1, -1))
        mixed = torch.einsum("bnij,bjnd->bind", torch.softmax(scores, -1), v)
        return self.norm(x + torch.einsum("bind,hnd->bih", mixed, self.o))


class EinsumLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed, self.blocks, self.head = (
            nn.Embedding(50, WIDTH),
            nn.ModuleList([EinsumAttention()]),
            nn.Linear(WIDTH, 50),
        )

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        x = self.embed(input_ids)
        for block in self.blocks:
            x = block(x, token_type_ids)
        return self.head(x)


def test_einsum_projections_are_layers_and_a_segment_table_is_traced_with_segment_ids():
    net = EinsumLM()
    report = initialize(net, "zero", example_inputs={"input_ids": torch.randint(0, 50, (2, 6))}, strict=True)
    assert report["blocks.0.q"].rule == "identity" and report["blocks.0.o"].rule == "zeros"
    assert torch.equal(net.blocks[0].q.view(WIDTH, WIDTH), torch.eye(WIDTH))
    assert report["blocks.0.segments"].role == "position" and net.blocks[0].segments.abs().max() == 0
