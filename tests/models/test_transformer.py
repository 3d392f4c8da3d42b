"""The GPT decoder and ViT encoder: layouts agree, ZerO's invariants at init, which parameters learn first."""

import math

import pytest
import torch
import torch.nn.functional as F

from detinit import check_zero_one, initialize
from detinit.diagnostics import feature_diversity
from detinit.models import GPT, ViT, create_model

VOCAB, CONTEXT = 29, 16


def _gpt(layout="fused", init="zero", **kwargs):
    options = {"depth": 2, "width": 32, "heads": 4, "layout": layout, **kwargs}
    init_options = options.pop("init_options", {})
    return create_model("gpt", vocab_size=VOCAB, context=CONTEXT, init=init, init_options=init_options, **options)


def _tokens(batch=3):
    return torch.randint(0, VOCAB, (batch, CONTEXT), generator=torch.Generator().manual_seed(1))


def _copy_fused_to(model_from: GPT, model_to: GPT) -> None:
    """Give ``model_to`` (any layout) the weights of ``model_from`` (fused layout)."""
    state = {k: v for k, v in model_from.state_dict().items() if ".attn." not in k}
    model_to.load_state_dict(state, strict=False)
    with torch.no_grad():
        for a, b in zip(model_from.blocks, model_to.blocks):
            w, bias = a.attn.qkv.weight, a.attn.qkv.bias
            if b.attn.layout == "torch":
                b.attn.mha.in_proj_weight.copy_(w)
                b.attn.mha.in_proj_bias.copy_(bias)
                b.attn.mha.out_proj.load_state_dict(a.attn.proj.state_dict())
            else:
                for lin, wi, bi in zip((b.attn.query, b.attn.key, b.attn.value), w.split(32), bias.split(32)):
                    lin.weight.copy_(wi)
                    lin.bias.copy_(bi)
                b.attn.proj.load_state_dict(a.attn.proj.state_dict())


@pytest.mark.parametrize("layout", ["separate", "torch"])
def test_attention_layouts_compute_the_same_function(layout):
    reference = _gpt("fused", init="xavier")
    other = _gpt(layout, init="kaiming")
    _copy_fused_to(reference, other)
    x = _tokens()
    assert torch.allclose(reference(x), other(x), atol=1e-5)


@pytest.mark.parametrize("layout", ["fused", "separate", "torch"])
@pytest.mark.parametrize("attention", ["identity", "kv_zero"])
def test_zero_gpt_at_init(layout, attention):
    model = _gpt(layout, init_options={"attention": attention})
    assert not model.init_report.unknown
    assert check_zero_one(model).ok
    x = _tokens()
    h = model.tok(x) + model.pos(torch.arange(CONTEXT))
    assert torch.equal(model.pos.weight, torch.zeros_like(model.pos.weight))
    for block in model.blocks:  # every block is the identity
        assert torch.equal(block(h), h)
    logits = model(x)
    assert torch.equal(logits, torch.zeros_like(logits))
    loss = F.cross_entropy(logits.flatten(0, 1), x.flatten())
    assert loss.item() == pytest.approx(math.log(VOCAB), rel=1e-6)


def _moving(model, x):
    model.zero_grad()
    F.cross_entropy(model(x).flatten(0, 1), x.roll(-1, 1).flatten()).backward()
    return {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().max() > 0}


@pytest.mark.parametrize("attention", ["identity", "kv_zero"])
def test_zero_gpt_learns_from_the_head_inwards(attention):
    """Step 0: only the head has a gradient. Step 1: the embeddings and the zero branch ends join."""
    model = _gpt("separate", init_options={"attention": attention})
    x = _tokens(8)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    assert _moving(model, x) == {"head.weight"}
    opt.step()
    step1 = _moving(model, x)
    zero_ends = {"attn.proj", "mlp.proj"} if attention == "identity" else {"attn.value", "mlp.proj"}
    expected = {"head.weight", "tok.weight", "pos.weight", "norm.weight", "norm.bias"}
    for i in range(2):
        expected |= {f"blocks.{i}.{layer}.{p}" for layer in zero_ends for p in ("weight", "bias")}
        expected.add(f"blocks.{i}.attn.proj.bias")  # every bias on the residual stream moves
    assert step1 == expected
    opt.step()
    step2 = _moving(model, x)
    assert "blocks.1.mlp.fc.weight" in step2 and "blocks.0.attn.key.weight" in step2
    # kv_zero: the query's gradient is proportional to the keys, still 0 until W_K has moved
    assert ("blocks.0.attn.query.weight" in step2) == (attention == "identity")
    opt.step()
    assert "blocks.0.attn.query.weight" in _moving(model, x)


def test_kv_zero_attention_starts_uniform():
    """W_K = 0: every position attends equally to itself and all earlier positions."""
    model = _gpt("fused", init_options={"attention": "kv_zero"})
    attn = model.blocks[0].attn
    with torch.no_grad():  # make the values visible: V = x, still W_K = 0
        attn.qkv.weight[64:].copy_(torch.eye(32))
    x = torch.randn(2, CONTEXT, 32)
    causal_mean = x.cumsum(1) / torch.arange(1, CONTEXT + 1).view(1, -1, 1)
    assert torch.allclose(attn(x), causal_mean, atol=1e-5)  # W_O = I


def test_norm_free_gates_under_zero_and_rezero():
    zero = _gpt(init="zero", norm="none", gate=True)
    rezero = _gpt(init="rezero", norm="none", gate=True)

    def gates(m):
        return [p.item() for n, p in m.named_parameters() if n.endswith(("gate1.weight", "gate2.weight"))]

    assert gates(zero) == [1.0] * 4 and gates(rezero) == [0.0] * 4
    x = _tokens()
    assert torch.equal(zero(x), torch.zeros(3, CONTEXT, VOCAB))
    assert torch.allclose(rezero(x), rezero.head(rezero.tok(x) + rezero.pos(torch.arange(CONTEXT))))


def test_tied_head_shares_the_hadamard_embedding():
    model = _gpt(tie_weights=True)
    assert model.head.weight is model.tok.weight
    assert model.tok.weight.abs().min() > 0 and len(model.init_report.records) == len(list(model.parameters()))
    assert model(_tokens()).abs().max() == 0  # the output's zero is on the final norm (classifier_norm)


def test_sinusoidal_and_no_positions():
    for position in ("sinusoidal", "none"):
        model = _gpt(position=position)
        assert not hasattr(model, "pos") and model(_tokens()).shape == (3, CONTEXT, VOCAB)


def test_gpt_bad_input_is_reported():
    model = _gpt()
    with pytest.raises(ValueError, match="exceeds the model's context 16"):
        model(torch.zeros(1, CONTEXT + 1, dtype=torch.long))
    with pytest.raises(ValueError, match="integer tokens"):
        model(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="divisible by heads"):
        GPT(VOCAB, CONTEXT, width=30, heads=4)
    with pytest.raises(ValueError, match="layout="):
        GPT(VOCAB, CONTEXT, layout="flash")


def test_vit_encoder_under_zero():
    model = create_model("vit", num_classes=10, in_chans=1, image_size=28, patch=4, depth=2, width=32, heads=4)
    report = model.init_report
    assert report["embed.weight"].rule == "hadamard" and not report.unknown  # 16 pixels -> 32 features
    images = torch.randn(2, 1, 28, 28)
    assert torch.equal(model(images), torch.zeros(2, 10))
    assert not any(block.attn.causal for block in model.blocks)
    features = feature_diversity(model, images)  # channels are the last dim of (batch, tokens, width)
    assert [r.channels for r in features] == [32] * 4 and all(r.channel_variance == 0 for r in features)
    with pytest.raises(ValueError, match="divisible by patch"):
        ViT(image_size=28, patch=5)


def test_gpt2_small_shape():
    model = GPT(50257, 1024, depth=12, width=768, heads=12, tie_weights=True)
    assert sum(p.numel() for p in model.parameters()) == 124_439_808  # GPT-2 small with a tied head
    report = initialize(model, "zero")
    assert report["tok.weight"].rule == "hadamard" and "49234 tokens share a row" in report["tok.weight"].reason


def test_gpt_refuses_token_ids_outside_its_vocabulary() -> None:
    """Checked on the tokens' device without a host sync (``torch._assert_async``): an error naming the range on CPU,
    a device-side assert on CUDA, instead of the embedding's bare "index out of range in self"."""
    model = create_model("gpt", vocab_size=16, context=8, depth=1, width=16, heads=2)
    for bad in (16, -1):
        with pytest.raises(RuntimeError, match=r"GPT: token ids must lie in \[0, 16\)"):
            model(torch.tensor([[0, bad]]))
    assert model(torch.tensor([[0, 15]])).shape == (1, 2, 16)
