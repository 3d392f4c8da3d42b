"""ZerO and the Transformer baselines on every attention layout: fused qkv, separate projections,
nn.MultiheadAttention, torch's Transformer layers, embeddings."""

import math

import pytest
import torch
from torch import nn

from detinit import initialize
from detinit.init.roles.vocabulary import check_role, fused_parts
from detinit.init.tensor.embedding import embedding_collisions, zero_embedding_
from detinit.init.tensor.zero import hadamard_scale, zero_

SCHEMES = ["zero", "partial_identity", "kaiming", "xavier", "orthogonal", "fixup", "gpt2", "tfixup"]


# ---------------------------------------------------------------- embeddings
@pytest.mark.parametrize("vocab,dim", [(5, 8), (64, 64), (65, 128), (300, 128), (50, 48), (200, 96)])
@pytest.mark.parametrize("constant_token", [False, True])
def test_zero_embedding_rows(vocab, dim, constant_token):
    w = zero_embedding_(torch.empty(vocab, dim, dtype=torch.float64), constant_token=constant_token)
    if vocab == dim:
        assert torch.equal(w, torch.eye(dim, dtype=torch.float64))
        return
    size = 1 << (dim - 1).bit_length()
    c = hadamard_scale(dim)
    assert set(w.abs().unique().tolist()) == {c}  # every entry +-c: no token is the zero vector
    h = torch.tensor([[(-1.0) ** bin(i & j).count("1") for j in range(dim)] for i in range(size)], dtype=torch.float64)
    first = 0 if constant_token else 1
    assert torch.equal(w, c * h[first + torch.arange(vocab) % (size - first)])
    distinct = len({tuple(row.tolist()) for row in w})
    assert vocab - distinct == embedding_collisions(vocab, dim, constant_token)
    if constant_token and vocab < dim:  # literally Algorithm 1 applied to E^T (a d x V expanding layer)
        assert torch.equal(w.T, zero_(torch.empty(dim, vocab, dtype=torch.float64)))


@pytest.mark.parametrize("vocab", [10, 127])
def test_zero_embedding_rows_survive_layer_norm(vocab):
    """Balanced rows: LayerNorm maps each token to a +-1 vector, and distinct tokens stay orthogonal."""
    w = zero_embedding_(torch.empty(vocab, 128, dtype=torch.float64))
    normed = torch.nn.functional.layer_norm(w, (128,), eps=0.0)
    assert torch.allclose(normed.abs(), torch.ones_like(normed))
    assert torch.allclose(normed @ normed.T / 128, torch.eye(vocab, dtype=torch.float64))
    literal = zero_embedding_(torch.empty(vocab, 128, dtype=torch.float64), constant_token=True)
    assert torch.nn.functional.layer_norm(literal, (128,))[0].abs().max() == 0  # row 0 is constant: LN gives 0


def test_zero_embedding_norms_and_errors():
    paper = zero_embedding_(torch.empty(10, 16), norm="paper")
    assert paper.abs().max().item() == pytest.approx(hadamard_scale(16, "paper"))
    with pytest.raises(ValueError, match="embedding table"):
        zero_embedding_(torch.empty(16))
    with pytest.raises(ValueError, match="norm="):
        zero_embedding_(torch.empty(4, 4), norm="bad")


def test_embedding_roles_under_zero():
    model = nn.ModuleDict({"tok": nn.Embedding(96, 128), "pos": nn.Embedding(64, 128)})
    report = initialize(model, "zero", roles={"pos": "position"}, strict=True)
    assert report["pos.weight"].rule == "zeros" and model["pos"].weight.abs().sum() == 0
    assert report["tok.weight"].rule == "hadamard"
    big = initialize(nn.Embedding(300, 128), "zero")
    assert "173 tokens share a row" in big["weight"].reason


# ---------------------------------------------------------------- fused roles
def test_fused_parts_and_role_validation():
    assert fused_parts("attn_kv", 8) == [("attn_key", 0, 4), ("attn_value", 4, 8)]
    assert fused_parts("branch", 8) is None
    with pytest.raises(ValueError, match="cannot be split into 3 equal blocks"):
        fused_parts("attn_qkv", 10)
    with pytest.raises(ValueError, match="blocks of 8,1,1"):
        fused_parts("attn_qkv:8,1,1", 12)
    assert check_role("attn_qkv:8,2,2", "here") == "attn_qkv:8,2,2"
    for bad in ("attn_qkv:8,2", "attn_qkv:8,x,2", "attn_q", "branch:3"):
        with pytest.raises(ValueError, match="here"):
            check_role(bad, "here")


class NanoAttention(nn.Module):
    """A hand-written attention with nanoGPT's names, no detinit hooks: roles come from roles=."""

    def __init__(self, width=32, kv_width=None):
        super().__init__()
        kv_width = kv_width or width
        self.c_attn = nn.Linear(width, width + 2 * kv_width)
        self.c_proj = nn.Linear(width, width)


def test_hand_written_fused_qkv_with_roles_argument():
    attn = NanoAttention()
    roles = {"c_attn": "attn_qkv", "c_proj": "attn_out"}
    report = initialize(attn, "zero", roles=roles, strict=True)
    eye = torch.eye(32)
    assert all(torch.equal(block, eye) for block in attn.c_attn.weight.split(32))
    assert attn.c_proj.weight.abs().sum() == 0
    assert "rows 0:32 query" in report["c_attn.weight"].reason
    initialize(attn, "zero", roles=roles, attention="kv_zero")
    q, k, v = attn.c_attn.weight.split(32)
    assert torch.equal(q, eye) and k.abs().sum() == 0 and v.abs().sum() == 0
    assert torch.equal(attn.c_proj.weight, eye)
    gqa = NanoAttention(32, 8)  # grouped-query attention: 8-wide keys and values
    initialize(gqa, "zero", roles={"c_attn": "attn_qkv:32,8,8", "c_proj": "attn_out"}, strict=True)
    q, k, v = gqa.c_attn.weight.split([32, 8, 8])
    assert torch.equal(q, eye) and torch.equal(k, torch.eye(8, 32)) and torch.equal(v, torch.eye(8, 32))
    with pytest.raises(ValueError, match="grouped-query"):  # 48 rows would split 16/16/16: refused
        initialize(gqa, "zero", roles={"c_attn": "attn_qkv"})


def test_fused_role_on_a_convolution_is_refused():
    with pytest.raises(ValueError, match="Conv1d is not supported"):
        initialize(nn.Sequential(nn.Conv1d(4, 12, 1)), "zero", roles={"0": "attn_qkv"})


def test_random_schemes_use_per_block_fans_on_fused_projections():
    attn = NanoAttention(512)
    initialize(attn, "xavier", roles={"c_attn": "attn_qkv", "c_proj": "attn_out"}, seed=0)
    for block in attn.c_attn.weight.split(512):  # Glorot for a 512 -> 512 map, not 512 -> 1536
        assert block.std().item() == pytest.approx(math.sqrt(2 / 1024), rel=0.02)


# ---------------------------------------------------------------- nn.MultiheadAttention and torch layers
@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("kdim", [None, 8])
def test_multihead_attention_has_no_unknown_parameters(scheme, kdim):
    mha = nn.MultiheadAttention(16, 2, kdim=kdim, vdim=kdim, add_bias_kv=True)
    report = initialize(mha, scheme, strict=True)
    assert not report.unknown
    assert report["bias_k"].rule == "zeros" and mha.bias_k.abs().sum() == 0
    assert report["out_proj.weight"].role == "attn_out"


def test_multihead_attention_under_zero():
    mha = nn.MultiheadAttention(16, 4)
    report = initialize(mha, "zero")
    assert all(torch.equal(block, torch.eye(16)) for block in mha.in_proj_weight.split(16))
    assert mha.out_proj.weight.abs().sum() == 0 and report["in_proj_weight"].rule == "identity"
    separate = nn.MultiheadAttention(16, 4, kdim=8, vdim=8)
    initialize(separate, "zero", attention="kv_zero")
    assert torch.equal(separate.q_proj_weight, torch.eye(16))
    assert separate.k_proj_weight.abs().sum() == 0 and separate.v_proj_weight.abs().sum() == 0
    assert torch.equal(separate.out_proj.weight, torch.eye(16))


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("attention", ["identity", "kv_zero"])
def test_torch_transformer_layers_are_the_identity_under_zero(norm_first, attention):
    enc = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True, norm_first=norm_first)
    dec = nn.TransformerDecoderLayer(32, 4, 64, dropout=0.0, batch_first=True, norm_first=norm_first)
    x, memory = torch.randn(2, 5, 32), torch.randn(2, 7, 32)
    for layer in (enc, dec):
        report = initialize(layer, "zero", strict=True, attention=attention)
        assert report["linear2.weight"].rule == "zeros" and report["linear1.weight"].rule == "hadamard"
    expected = x if norm_first else nn.functional.layer_norm(nn.functional.layer_norm(x, (32,)), (32,))
    assert torch.allclose(enc(x), expected, atol=1e-6)
    out = dec(x, memory)
    if norm_first:
        assert torch.equal(out, x)


# ---------------------------------------------------------------- GPT-2 and T-Fixup
def _stack(depth=4, width=256):
    return nn.ModuleList(nn.TransformerEncoderLayer(width, 4, 4 * width, batch_first=True) for _ in range(depth))


def test_gpt2_scales_residual_outputs_by_the_number_of_branches():
    model = _stack()
    report = initialize(model, "gpt2", seed=0)
    assert model[0].linear1.weight.std().item() == pytest.approx(0.02, rel=0.03)
    for w in (model[0].linear2.weight, model[1].self_attn.out_proj.weight):
        assert w.std().item() == pytest.approx(0.02 / math.sqrt(8), rel=0.03)  # 2 branches x 4 blocks
    assert "L=8" in report["0.linear2.weight"].reason


@pytest.mark.parametrize("stack,factor", [("decoder", (9 * 4) ** -0.25), ("encoder", 0.67 * 4**-0.25)])
def test_tfixup_scales_value_output_and_mlp(stack, factor):
    model = nn.ModuleDict({"emb": nn.Embedding(1000, 256), "layers": _stack()})
    initialize(model, "tfixup", stack=stack, seed=0)
    xavier = math.sqrt(2 / 512)
    q, k, v = model["layers"][0].self_attn.in_proj_weight.split(256)
    assert q.std().item() == pytest.approx(xavier, rel=0.03) and k.std().item() == pytest.approx(xavier, rel=0.03)
    assert v.std().item() == pytest.approx(xavier * factor, rel=0.03)
    assert model["layers"][2].self_attn.out_proj.weight.std().item() == pytest.approx(xavier * factor, rel=0.03)
    assert model["layers"][1].linear1.weight.std().item() == pytest.approx(math.sqrt(2 / 1280) * factor, rel=0.03)
    assert model["emb"].weight.std().item() == pytest.approx(256**-0.5 * factor, rel=0.03)


def test_tfixup_needs_attention_layers():
    with pytest.raises(ValueError, match="no attention layers"):
        initialize(nn.Sequential(nn.Linear(4, 4)), "tfixup")
    with pytest.raises(ValueError, match="stack="):
        initialize(_stack(1, 8), "tfixup", stack="both")
