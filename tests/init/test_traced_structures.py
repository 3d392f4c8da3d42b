"""Structures the Hugging Face zoo sweep (benchmarks/hf_zoo.py) found and tracing now reads, in plain torch:
branches side by side in one residual sum, experts stored as stacks of matrices with a router's gate, expert
biases selected per token, a token table of a subclass tied to the output, a bias tied between a head and its
layer, and an output read at one position per sequence. Each test checks ZerO's promises on inputs that are not
the tracing example (:func:`detinit.diagnostics.promises.zero_start_promises`)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from detinit import initialize
from detinit.diagnostics.promises import zero_start_promises

WIDTH = 8


def kept(model: nn.Module, inputs: object) -> dict[str, bool | None]:
    return {p.promise: p.kept for p in zero_start_promises(model, inputs)}


class ParallelBlock(nn.Module):
    """x + attn(LN x) + mlp(LN x), summed as (x + a) + m, as GPT-J and Cohere do."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(WIDTH)
        self.a1, self.a2 = nn.Linear(WIDTH, WIDTH), nn.Linear(WIDTH, WIDTH)
        self.m1, self.m2 = nn.Linear(WIDTH, 2 * WIDTH), nn.Linear(2 * WIDTH, WIDTH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        return x + self.a2(torch.tanh(self.a1(h))) + self.m2(torch.relu(self.m1(h)))


def test_branches_side_by_side_each_end_at_zero():
    net = nn.Sequential(nn.Linear(4, WIDTH), ParallelBlock(), ParallelBlock(), nn.Linear(WIDTH, 3))
    report = initialize(net, "zero", example_inputs=torch.randn(2, 4), strict=True)
    for block in ("1", "2"):
        assert report[f"{block}.a2.weight"].role == "branch_last" and report[f"{block}.a2.weight"].rule == "zeros"
        assert report[f"{block}.m2.weight"].role == "branch_last" and report[f"{block}.m2.weight"].rule == "zeros"
        assert report[f"{block}.m1.weight"].role == "branch"
    assert all(kept(net, torch.randn(5, 4)).values())


class Experts(nn.Module):
    """A mixture of experts with its weights stored as stacks ``(experts, out, in)``, as Hugging Face stores
    them, and a bias per expert selected for each token by index."""

    def __init__(self, experts: int = 4) -> None:
        super().__init__()
        self.router = nn.Linear(WIDTH, experts)
        self.up = nn.Parameter(torch.randn(experts, 2 * WIDTH, WIDTH))
        self.down = nn.Parameter(torch.randn(experts, WIDTH, 2 * WIDTH))
        self.down_bias = nn.Parameter(torch.randn(experts, WIDTH))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.softmax(self.router(x), dim=-1)
        chosen = gate.argmax(dim=-1)
        out = torch.zeros_like(x)
        for e in range(self.up.shape[0]):
            hidden = torch.relu(F.linear(x, self.up[e]))
            out = out + gate[:, e : e + 1] * (F.linear(hidden, self.down[e]) + self.down_bias[chosen])
        return out


class MoEBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm, self.experts = nn.LayerNorm(WIDTH), Experts()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.experts(self.norm(x))


def test_stacked_experts_get_a_rule_per_matrix_and_the_last_one_starts_at_zero():
    net = nn.Sequential(nn.Linear(4, WIDTH), MoEBlock(), nn.Linear(WIDTH, 3))
    report = initialize(net, "zero", example_inputs=torch.randn(6, 4), strict=True)
    up, down = report["1.experts.up"], report["1.experts.down"]
    assert up.rule == "hadamard" and "each of 4 stacked" in up.reason  # 8 -> 16 in every expert
    assert down.role == "branch_last" and down.rule == "zeros"
    assert report["1.experts.down_bias"].rule == "zeros"
    experts = net[1].experts
    assert torch.equal(experts.up[0], experts.up[3]) and experts.up[0].abs().sum() > 0
    assert all(kept(net, torch.randn(5, 4)).values())
    for scheme in ("kaiming", "xavier", "orthogonal"):
        assert not initialize(net, scheme, example_inputs=torch.randn(6, 4)).unknown


class ScaledEmbedding(nn.Embedding):
    """A token table of a subclass (BART's scaled word embedding)."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return super().forward(ids) * 2.0


class TiedLM(nn.Module):
    def __init__(self, vocab: int = 32) -> None:
        super().__init__()
        self.embed = ScaledEmbedding(vocab, WIDTH)
        self.fc = nn.Linear(WIDTH, WIDTH)
        self.norm = nn.LayerNorm(WIDTH)
        self.head = nn.Linear(WIDTH, vocab)
        self.head.weight = self.embed.weight
        self.bias = self.head.bias  # a head holding its layer's bias too, as BERT's LM head does

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)
        return self.head(self.norm(x + self.fc(x)))


def test_a_table_of_a_subclass_and_a_shared_bias_are_tied_without_error():
    model, ids = TiedLM(), torch.arange(16).view(2, 8)
    report = initialize(model, "zero", example_inputs=ids, strict=True)
    assert report["norm.weight"].role == "classifier_norm" and report["norm.weight"].rule == "zeros"
    assert "tied" in report["embed.weight"].reason and report["embed.weight"].rule == "hadamard"
    assert report["bias"].rule == "zeros"
    assert model(torch.randint(0, 32, (3, 5))).abs().max() == 0


class HeadFirstTiedLM(nn.Module):
    """A tied LM whose output layer is registered before its token table (Jina's ``lm_head`` before its
    encoder): the parameter's first holder is the output layer."""

    def __init__(self, vocab: int = 32) -> None:
        super().__init__()
        self.head = nn.Linear(WIDTH, vocab)
        self.embed = nn.Embedding(vocab, WIDTH)
        self.head.weight = self.embed.weight
        self.fc, self.norm = nn.Linear(WIDTH, WIDTH), nn.LayerNorm(WIDTH)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)
        return self.head(self.norm(x + self.fc(x)))


def test_a_table_tied_to_an_output_layer_registered_first_keeps_the_table_rule():
    model = HeadFirstTiedLM()
    report = initialize(model, "zero", example_inputs=torch.arange(16).view(2, 8), strict=True)
    assert report["head.weight"].rule == "hadamard" and "tied" in report["head.weight"].reason
    assert model.embed.weight.abs().min() > 0  # every token keeps a row; the zero is on the norm's scale
    assert report["norm.weight"].role == "classifier_norm" and report["norm.weight"].rule == "zeros"
    assert model(torch.randint(0, 32, (3, 5))).abs().max() == 0


class LastTokenClassifier(nn.Module):
    """Scores every position, returns the score of each sequence's last real token (as Hugging Face's
    ``*ForSequenceClassification`` of decoder models do)."""

    def __init__(self, vocab: int = 32, pad: int = 31) -> None:
        super().__init__()
        self.pad = pad
        self.embed = nn.Embedding(vocab, WIDTH)
        self.fc = nn.Linear(WIDTH, WIDTH)
        self.score = nn.Linear(WIDTH, 3, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)
        logits = self.score(x + self.fc(x))
        last = (ids != self.pad).int().argmax(-1) * 0 + (ids != self.pad).sum(-1) - 1
        return logits[torch.arange(len(ids)), last]


def test_an_output_read_at_one_position_per_sequence_is_the_classifier():
    model = LastTokenClassifier()
    report = initialize(model, "zero", example_inputs=torch.arange(16).view(2, 8), strict=True)
    assert report["score.weight"].role == "classifier" and report["score.weight"].rule == "zeros"
    assert model(torch.randint(0, 31, (4, 6))).abs().max() == 0


@pytest.mark.parametrize("block", [ParallelBlock, MoEBlock])
def test_a_broken_block_is_reported_broken(block):
    """The check is not vacuous: the same blocks with their default (random) weights break both promises."""
    net = nn.Sequential(nn.Linear(4, WIDTH), block(), nn.Linear(WIDTH, 3))
    promises = kept(net, torch.randn(5, 4))
    assert promises == {"zero logits": False, "residual branches add 0": False, "blocks are the identity": False}


class PostNormBlock(nn.Module):
    def __init__(self, width: int, eps: float) -> None:
        super().__init__()
        self.fc, self.norm = nn.Linear(width, width), nn.LayerNorm(width, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.fc(x))


class PostNormEncoder(nn.Module):
    """BART/BERT-style: token table -> LayerNorm (eps 1e-5) -> post-norm blocks LN(x + f(x))."""

    def __init__(self, vocab: int = 40, width: int = 64, eps: float = 1e-5) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width, padding_idx=1)
        self.embed_norm = nn.LayerNorm(width, eps=eps)
        self.blocks = nn.Sequential(PostNormBlock(width, eps), PostNormBlock(width, eps))
        self.head = nn.Linear(width, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.embed_norm(self.embed(ids)))[:, 1:].mean(dim=1))


def test_the_embedding_norm_puts_post_norm_blocks_at_their_fixed_point():
    """With ZerO's +-1/8 table rows and eps 1e-5 a post-norm block moves its input by 3e-4 (relative); scaled
    by sqrt((1 - eps)(m + eps) / m), the embedding norm's output is the fixed point +-sqrt(1 - eps)."""
    model, ids = PostNormEncoder(), torch.arange(16).view(2, 8)
    report = initialize(model, "zero", example_inputs=ids, strict=True)
    settled = report["embed_norm.weight"]
    assert settled.rule == "fixed_point" and "eps 1e-05" in settled.reason
    assert torch.allclose(model.embed_norm.weight, torch.full((64,), (1 - 1e-5) ** 0.5 * (1 + 64e-5) ** 0.5))
    assert all(report[f"blocks.{i}.norm.weight"].rule == "ones" for i in range(2))
    assert all(kept(model, torch.randint(2, 40, (3, 7))).values())
    paper = PostNormEncoder()  # ZerO as the paper writes it does not scale the norm: 3e-4 away
    initialize(paper, "zero", variant="paper", example_inputs=ids)
    error = next(p for p in zero_start_promises(paper, torch.randint(2, 40, (3, 7))) if "blocks" in p.promise).error
    assert 2e-4 < error < 4e-4


class PaddedEncoder(PostNormEncoder):
    """LED-style: the token table looked up for the input and again for padding up to a window, the padding
    rows concatenated to the input's before the embedding norm."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        padding = ids.new_full((ids.shape[0], 4), 1)
        x = torch.cat([self.embed(ids), self.embed(padding)], dim=1)
        return self.head(self.blocks(self.embed_norm(x))[:, 1:].mean(dim=1))


def test_a_token_table_also_looked_up_for_padding_is_a_token_table_settled_by_its_norm():
    model, ids = PaddedEncoder(), torch.arange(16).view(2, 8)
    report = initialize(model, "zero", example_inputs=ids, strict=True)
    assert report["embed.weight"].role == "default" and report["embed.weight"].rule == "hadamard"
    assert report["embed_norm.weight"].rule == "fixed_point"
    assert all(kept(model, torch.randint(2, 40, (3, 7))).values())


class PreNormLM(nn.Module):
    def __init__(self, vocab: int = 40, width: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.norm1, self.fc, self.final_norm = nn.LayerNorm(width), nn.Linear(width, width), nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)
        x = x + self.fc(self.norm1(x))
        return self.head(self.final_norm(x))


def test_a_pre_norm_block_first_norm_is_not_an_embedding_norm():
    """A pre-norm block's first norm reads the token table too, but feeds only the branch: it keeps 1."""
    model = PreNormLM()
    report = initialize(model, "zero", example_inputs=torch.arange(16).view(2, 8), strict=True)
    assert report["norm1.weight"].rule == "ones" and not any(r.rule == "fixed_point" for r in report.records)
    assert kept(model, torch.randint(0, 40, (3, 7)))["residual branches add 0"]


class WeightNormBlock(nn.Module):
    """x + conv2(relu(conv1(x))), both convolutions under weight norm (wav2vec2's positional convolution)."""

    def __init__(self, norm: bool = True) -> None:
        super().__init__()
        wrap = nn.utils.parametrizations.weight_norm if norm else (lambda m: m)
        self.conv1, self.conv2 = (
            wrap(nn.Conv1d(WIDTH, WIDTH, 3, padding=1)),
            wrap(nn.Conv1d(WIDTH, WIDTH, 3, padding=1)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(torch.relu(self.conv1(x)))


def test_weight_norm_layers_get_the_rule_of_the_weight_they_compute():
    normed, plain = (
        nn.Sequential(nn.Conv1d(2, WIDTH, 1), WeightNormBlock()),
        nn.Sequential(nn.Conv1d(2, WIDTH, 1), WeightNormBlock(False)),
    )
    x = torch.randn(3, 2, 10)
    report = initialize(normed, "zero", example_inputs=x, strict=True)
    initialize(plain, "zero", example_inputs=x, strict=True)
    assert report["1.conv2.parametrizations.weight.original0"].rule == "via_zeros"
    assert report["1.conv1.parametrizations.weight.original1"].rule.startswith("via_")
    assert torch.allclose(normed[1].conv1.weight, plain[1].conv1.weight, atol=1e-6)  # W = g v / |v| = the rule's
    g, v = normed[1].conv2.parametrizations.weight.original0, normed[1].conv2.parametrizations.weight.original1
    assert g.abs().max() == 0 and torch.equal(v, torch.ones_like(v))  # the zero is on the magnitude
    assert torch.equal(normed[1].conv2.weight, torch.zeros_like(normed[1].conv2.weight))
    promises = kept(normed, torch.randn(2, 2, 7))  # no output layer here: the residual promises
    assert promises["residual branches add 0"] and promises["blocks are the identity"]
    for scheme in ("kaiming", "orthogonal"):
        assert not initialize(normed, scheme, example_inputs=x).unknown
        assert torch.isfinite(normed[1].conv2.weight).all() and normed[1].conv2.weight.abs().max() > 0


def test_a_rule_a_parametrization_cannot_give_is_refused():
    net = nn.Sequential(nn.Linear(4, 4), nn.utils.parametrizations.orthogonal(nn.Linear(4, 4)))  # never all zeros
    with pytest.raises(ValueError, match=r"1.weight is computed by a parametrization .* cannot give rule 'zeros'"):
        initialize(net, "zero", roles={"1": "classifier"})


class RelativeBiasAttention(nn.Module):
    """Attention whose scores get a bias read from a table by fixed indices (Swin's relative positions)."""

    def __init__(self, tokens: int = 6) -> None:
        super().__init__()
        self.qkv, self.out = nn.Linear(WIDTH, 3 * WIDTH), nn.Linear(WIDTH, WIDTH)
        self.table = nn.Parameter(torch.randn(2 * tokens - 1))
        offsets = torch.arange(tokens)[:, None] - torch.arange(tokens)[None, :] + tokens - 1
        self.register_buffer("index", offsets.flatten(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        n = x.shape[1]
        scores = q @ k.transpose(-2, -1) / WIDTH**0.5 + self.table[self.index].view(n, n)
        return x + self.out(torch.softmax(scores, dim=-1) @ v)


def test_a_relative_position_table_read_by_indexing_is_a_position_table():
    net = nn.Sequential(nn.Linear(4, WIDTH), RelativeBiasAttention(), nn.Linear(WIDTH, 3))
    report = initialize(net, "zero", example_inputs=torch.randn(2, 6, 4), strict=True)
    table = report["1.table"]
    assert table.role == "position" and table.rule == "zeros" and "relative-position bias" in table.reason
    assert not initialize(net, "kaiming", example_inputs=torch.randn(2, 6, 4)).unknown


class PreparedTokens(nn.Module):
    """A position table interpolated to the input's size before it is added, and a cls token that gets its own
    position before it is concatenated (ViTMAE)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(4, WIDTH)
        self.positions = nn.Parameter(torch.randn(1, WIDTH, 3))
        self.cls_token, self.cls_position = (
            nn.Parameter(torch.randn(1, 1, WIDTH)),
            nn.Parameter(torch.randn(1, 1, WIDTH)),
        )
        self.head = nn.Linear(WIDTH, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        h = h + F.interpolate(self.positions, size=h.shape[1], mode="linear").transpose(1, 2)
        cls = (self.cls_token + self.cls_position).expand(len(h), -1, -1)
        return self.head(torch.cat([cls, h], dim=1)[:, 0])


def test_tables_and_tokens_prepared_before_they_meet_the_stream():
    report = initialize(PreparedTokens(), "zero", example_inputs=torch.randn(2, 6, 4), strict=True)
    assert report["positions"].role == "position" and report["positions"].rule == "zeros"
    assert report["cls_token"].role == "token" and report["cls_position"].role == "token"


class AttentionPooling(nn.Module):
    """A learned query attending over the sequence (SigLIP's pooling head), with torch's MultiheadAttention."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(4, WIDTH)
        self.probe = nn.Parameter(torch.randn(1, 1, WIDTH))
        self.attention = nn.MultiheadAttention(WIDTH, 2, batch_first=True)
        self.head = nn.Linear(WIDTH, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        pooled, _ = self.attention(self.probe.expand(len(h), -1, -1), h, h, need_weights=False)
        return self.head(pooled[:, 0])


def test_a_learned_query_is_a_token():
    report = initialize(AttentionPooling(), "zero", example_inputs=torch.randn(2, 6, 4), strict=True)
    assert report["probe"].role == "token" and "learned query" in report["probe"].reason


def test_weight_norm_per_tap_writes_an_identity_kernel_exactly():
    """Weight norm over the taps (dim=2, wav2vec2-conformer): an identity kernel is 0 off its centre tap, where
    the magnitude stays 0 and the direction is set to 1, so the computed kernel is the rule's exactly."""

    def block(norm: bool) -> nn.Module:
        conv = nn.Conv1d(WIDTH, WIDTH, 5, padding=2, groups=2)
        return nn.utils.parametrizations.weight_norm(conv, dim=2) if norm else conv

    normed, plain = nn.Sequential(block(True), nn.ReLU()), nn.Sequential(block(False), nn.ReLU())
    x = torch.randn(2, WIDTH, 9)
    initialize(normed, "zero", example_inputs=x, strict=True)
    initialize(plain, "zero", example_inputs=x, strict=True)
    assert torch.isfinite(normed[0].weight).all() and torch.equal(normed[0].weight, plain[0].weight)


class TwoHeads(nn.Module):
    """A cls head and a distillation head whose logits are averaged (DeiT with its teacher's token)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem, self.head, self.head_dist = nn.Linear(4, WIDTH), nn.Linear(WIDTH, 3), nn.Linear(WIDTH, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.stem(x))
        return (self.head(h) + self.head_dist(h)) / 2


def test_heads_summed_into_the_output_are_each_an_output_layer():
    model = TwoHeads()
    report = initialize(model, "zero", example_inputs=torch.randn(2, 4), strict=True)
    assert report["head.weight"].role == report["head_dist.weight"].role == "classifier"
    assert model(torch.randn(5, 4)).abs().max() == 0


class MaskedFrames(nn.Module):
    """Frames chosen by a mask are replaced by a learned mask embedding (wav2vec 2.0's pretraining)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj, self.head = nn.Linear(4, WIDTH), nn.Linear(WIDTH, 3)
        self.mask_embed = nn.Parameter(torch.rand(WIDTH))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.proj(x)
        if mask is not None:
            h[mask] = self.mask_embed.to(h.dtype)
        return self.head(torch.relu(h))


def test_a_vector_written_into_the_stream_by_index_is_a_token():
    model, x = MaskedFrames(), torch.randn(2, 6, 4)
    mask = torch.zeros(2, 6, dtype=torch.bool)
    mask[:, ::2] = True
    report = initialize(model, "zero", example_inputs=(x, mask), strict=True)
    assert report["mask_embed"].role == "token" and "mask embedding" in report["mask_embed"].reason
    assert model.mask_embed.abs().min() > 0  # a Hadamard row: masked frames are not silent


class SandwichMoE(nn.Module):
    """x + LN(routed(LN x) + shared(LN x)): a norm after the sum of two expert paths (AFMoE's sandwich norm)."""

    def __init__(self) -> None:
        super().__init__()
        self.pre, self.post = nn.LayerNorm(WIDTH), nn.LayerNorm(WIDTH)
        self.routed = nn.Sequential(nn.Linear(WIDTH, 2 * WIDTH), nn.ReLU(), nn.Linear(2 * WIDTH, WIDTH))
        self.shared = nn.Sequential(nn.Linear(WIDTH, 2 * WIDTH), nn.ReLU(), nn.Linear(2 * WIDTH, WIDTH))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pre(x)
        return x + self.post(self.routed(h) + self.shared(h))


def test_a_norm_after_a_sum_of_layers_carries_the_branch_zero():
    net = nn.Sequential(nn.Linear(4, WIDTH), SandwichMoE(), SandwichMoE(), nn.Linear(WIDTH, 3))
    report = initialize(net, "zero", example_inputs=torch.randn(2, 4), strict=True)
    for block in ("1", "2"):
        assert (
            report[f"{block}.post.weight"].role == "branch_last_norm" and report[f"{block}.post.weight"].rule == "zeros"
        )
        assert report[f"{block}.routed.2.weight"].role == report[f"{block}.shared.2.weight"].role == "branch"
    assert all(kept(net, torch.randn(5, 4)).values())


class PositionsThenBlocks(nn.Module):
    """An encoder that adds convolutional positions to its input, normalises, then runs its blocks (wav2vec
    2.0's): a stack of blocks, whose own add is a branch, not a block."""

    def __init__(self) -> None:
        super().__init__()
        self.positions = nn.Conv1d(WIDTH, WIDTH, 3, padding=1)
        self.norm = nn.LayerNorm(WIDTH)
        self.blocks = nn.Sequential(ParallelBlock(), ParallelBlock())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.positions(x.transpose(1, 2)).transpose(1, 2)
        return self.blocks(self.norm(x))


def test_an_encoder_holding_blocks_is_not_itself_a_block():
    model = nn.Sequential(nn.Linear(4, WIDTH), PositionsThenBlocks(), nn.Linear(WIDTH, 3))
    initialize(model, "zero", example_inputs=torch.randn(2, 5, 4), strict=True)
    promises = {p.promise: p for p in zero_start_promises(model, torch.randn(3, 7, 4))}
    assert promises["residual branches add 0"].kept and promises["residual branches add 0"].checked == 3
    assert promises["blocks are the identity"].kept  # the encoder (LN of an unnormalised input) is not counted
    assert promises["blocks are the identity"].checked == 2


class ResampledPositionGrid(nn.Module):
    """A learned grid of positions resampled to the image's grid by weighted sums of its rows
    (``F.embedding_bag``, Kimi-K2.5's bicubic resampling), added to the patches."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Linear(12, WIDTH)
        self.grid = nn.Parameter(torch.empty(4, 4, WIDTH))
        self.fc, self.head = nn.Linear(WIDTH, WIDTH), nn.Linear(WIDTH, 3)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        count = patches.shape[1]
        indices = (torch.arange(count * 2) % 16).view(count, 2) + 0 * patches[0, :, :1].long()
        weights = torch.full((count, 2), 0.5)
        pos = F.embedding_bag(indices, self.grid.flatten(0, 1), per_sample_weights=weights, mode="sum")
        x = self.patch(patches) + pos
        return self.head(x + self.fc(x))


def test_a_position_grid_resampled_by_embedding_bag_is_a_position_table():
    report = initialize(ResampledPositionGrid(), "zero", example_inputs=torch.randn(2, 6, 12), strict=True)
    assert report["grid"].role == "position"


class HeadBiasAddedByHand(nn.Module):
    """An output bias held by the head and tied to its Linear's bias, added by hand after a product with the
    Linear's weight (MobileBERT's prediction head): it is the Linear's bias, not a table added to the stream."""

    def __init__(self, vocab: int = 32) -> None:
        super().__init__()
        self.embed, self.fc = nn.Embedding(vocab, WIDTH), nn.Linear(WIDTH, WIDTH)
        self.bias = nn.Parameter(torch.zeros(vocab))
        self.decoder = nn.Linear(WIDTH, vocab)
        self.decoder.bias = self.bias

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)
        out = (x + self.fc(x)) @ self.decoder.weight.t()
        out += self.decoder.bias
        return out


@pytest.mark.parametrize("scheme", ["zero", "kaiming", "xavier"])
def test_a_bias_tied_to_a_layer_and_added_by_hand_takes_the_layer_rule(scheme):
    report = initialize(HeadBiasAddedByHand(), scheme, example_inputs=torch.arange(16).view(2, 8))
    assert report["bias"].role != "position" and report["bias"].rule in ("zeros", "library")
