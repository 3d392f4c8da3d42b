"""A shard's rows alone: every row-block fill is bitwise the same rows of its whole-tensor fill."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from detinit import initialize
from detinit.init.apply import execute, readout
from detinit.init.roles.layers import Matrix
from detinit.init.roles.vocabulary import LayerInfo
from detinit.init.schemes import get_scheme
from detinit.init.tensor.constnet import const_avg_, const_avg_rows_
from detinit.init.tensor.embedding import zero_embedding_
from detinit.init.tensor.row_fills import RowFill, rows_of
from detinit.init.tensor.zero import partial_identity_, zero_, zero_unfolded_
from detinit.init.tensor.zero_rows import partial_identity_rows_, zero_embedding_rows_, zero_rows_, zero_unfolded_rows_
from detinit.models.registry import create_model

DTYPES = (torch.float32, torch.float64, torch.bfloat16)


def _assert_every_block_matches(whole: torch.Tensor, rows, blocks) -> None:
    """``rows(out, start, total)`` against ``whole[start : stop]`` for each ``(start, stop)`` in ``blocks``."""
    for start, stop in blocks:
        out = torch.full((stop - start, *whole.shape[1:]), float("nan"), dtype=whole.dtype)
        rows(out, start, len(whole))
        assert torch.equal(out, whole[start:stop]), (tuple(whole.shape), start, stop)


@st.composite
def _blocks(draw, total: int) -> list[tuple[int, int]]:
    """The whole tensor, two halves as torch.chunk cuts them, and a few arbitrary blocks."""
    half = -(-total // 2)
    cuts = [(0, total), (0, half), (half, total)] if half < total else [(0, total)]
    for _ in range(3):
        start = draw(st.integers(0, total - 1))
        cuts.append((start, draw(st.integers(start + 1, total))))
    return cuts


@st.composite
def _layer(draw, max_rows: int = 300):
    """``(shape, groups, transposed)`` of a Linear, a conv or a ConvTranspose weight."""
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    per_group_rows = draw(st.integers(1, max_rows // groups))
    per_group_cols = draw(st.integers(1, 70))
    kernel = draw(st.sampled_from([(), (1,), (3,), (1, 1), (3, 3), (2, 3), (3, 1, 2)]))
    transposed = bool(kernel) and draw(st.booleans())
    groups = groups if kernel else 1
    return (groups * per_group_rows, per_group_cols, *kernel), groups, transposed


@given(_layer(), st.sampled_from(DTYPES), st.sampled_from(["orthonormal", "paper"]),
       st.sampled_from(["first", "spanning"]), st.data())  # fmt: skip
def test_zero_and_partial_identity_rows_are_the_whole_fill(layer, dtype, norm, columns, data) -> None:
    """Across groups, taps, ConvTranspose layouts, the 64-row tiles of the Hadamard factors and uneven cuts."""
    shape, groups, transposed = layer
    blocks = data.draw(_blocks(shape[0]))
    geometry = {"groups": groups, "transposed": transposed}
    whole = zero_(torch.empty(shape, dtype=dtype), norm=norm, columns=columns, **geometry)
    _assert_every_block_matches(
        whole, lambda out, s, t: zero_rows_(out, s, t, norm=norm, columns=columns, **geometry), blocks
    )
    whole = partial_identity_(torch.empty(shape, dtype=dtype), **geometry)
    _assert_every_block_matches(whole, lambda out, s, t: partial_identity_rows_(out, s, t, **geometry), blocks)
    whole = const_avg_(torch.empty(shape, dtype=dtype), **geometry)
    _assert_every_block_matches(whole, lambda out, s, t: const_avg_rows_(out, s, t, **geometry), blocks)


@given(st.integers(1, 3), st.integers(1, 200), st.integers(1, 5), st.sampled_from([(3, 3), (5,), (2, 3), (1, 1)]),
       st.sampled_from(DTYPES), st.sampled_from(["first", "spanning"]), st.data())  # fmt: skip
def test_unfolded_rows_are_the_whole_fill(groups, per_group, in_channels, kernel, dtype, columns, data) -> None:
    """Shifted copies (P <= QK) and Hadamard blocks over the patch (P > QK), per group."""
    shape = (groups * per_group, in_channels, *kernel)
    whole = zero_unfolded_(torch.empty(shape, dtype=dtype), groups=groups, columns=columns)
    rows = lambda out, s, t: zero_unfolded_rows_(out, s, t, groups=groups, columns=columns)  # noqa: E731
    _assert_every_block_matches(whole, rows, data.draw(_blocks(shape[0])))


@given(st.integers(1, 700), st.integers(1, 40), st.booleans(), st.sampled_from(DTYPES), st.data())
def test_embedding_rows_are_the_whole_fill(vocab, dim, constant_token, dtype, data) -> None:
    """Tokens past the period repeat rows from any start; ``vocab == dim`` is the identity."""
    for tokens in (vocab, dim):
        whole = zero_embedding_(torch.empty(tokens, dim, dtype=dtype), constant_token=constant_token)
        rows = lambda out, s, t: zero_embedding_rows_(out, s, t, constant_token=constant_token)  # noqa: E731
        _assert_every_block_matches(whole, rows, data.draw(_blocks(tokens)))


def test_rows_outside_the_tensor_or_its_groups_are_refused() -> None:
    with pytest.raises(ValueError, match=r"block of shape \(3, 4\) starting at row 8 is not inside a tensor of 10"):
        zero_rows_(torch.empty(3, 4), 8, 10)
    with pytest.raises(ValueError, match=r"total=10 rows are not divisible by groups=3"):
        partial_identity_rows_(torch.empty(2, 4, 3), 0, 10, groups=3)
    with pytest.raises(
        ValueError, match=r"zero_embedding_rows_: expected an embedding table or rows of one .* got shape \(2, 4, 1\)"
    ):
        zero_embedding_rows_(torch.empty(2, 4, 1), 0, 10)
    with pytest.raises(TypeError, match="only real floating-point tensors"):
        zero_rows_(torch.empty(2, 4, dtype=torch.int64), 0, 4)
    with pytest.raises(ValueError, match=r"const_avg_rows_: got a 1-D block of shape \(4,\); expected a 2-D Linear"):
        const_avg_rows_(torch.empty(4), 0, 4)


@pytest.mark.parametrize(
    "fill", [zero_rows_, partial_identity_rows_, const_avg_rows_], ids=lambda f: f.__name__
)  # fmt: skip
def test_row_forms_refuse_what_their_whole_fills_refuse(fill) -> None:
    """The layout contract of the whole fills (:func:`detinit.init.tensor.layout.check_layout`) on a block; a
    2-D block may be transposed (rows of an (in, out) weight: Hugging Face's Conv1D), and may hold no rows."""
    with pytest.raises(ValueError, match=r"a 2-D \(Linear\) weight of shape \(2, 4\) takes groups=1; got groups=2"):
        fill(torch.empty(2, 4), 0, 4, groups=2)
    assert fill(torch.empty(0, 4), 2, 4).shape == (0, 4)
    with pytest.raises(ValueError, match=r"block of shape \(2, 4, 0\) has a zero-sized dimension"):
        fill(torch.empty(2, 4, 0), 0, 4)
    with pytest.raises(ValueError, match="transposed must be True or False"):
        fill(torch.empty(2, 4, 3), 0, 4, transposed="yes")


def _recorded_fills(monkeypatch, build) -> list[tuple[str, torch.Tensor, object]]:
    """``(name, parameter, fill)`` for every parameter :func:`detinit.initialize` writes while ``build()`` runs,
    with the last fill written to it."""
    seen: list[tuple[torch.Tensor, object]] = []
    write = execute.write_

    def recording(param, fill, generator):
        seen.append((param, fill))
        return write(param, fill, generator)

    monkeypatch.setattr(execute, "write_", recording)
    monkeypatch.setattr(readout, "write_", recording)
    model = build()
    names = {id(p): n for n, p in model.named_parameters()}
    last = {id(p): (names[id(p)], p, fill) for p, fill in seen}  # a zero output layer may be rewritten (readout)
    return list(last.values())


class _Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.tok = nn.Embedding(70, 24, padding_idx=3)
        self.attn = nn.MultiheadAttention(24, 4)
        self.lstm = nn.LSTM(24, 40, proj_size=16)
        self.head = nn.Linear(16, 5)

    def detinit_roles(self) -> dict[str, str]:
        return {"head": "classifier"}


def _hugging_face(name: str) -> nn.Module:
    """A tiny Hugging Face model under ZerO, its roles traced (GPT-2 stores its weights (in, out))."""
    pytest.importorskip("transformers")
    from tests.init.test_hugging_face import build

    model = build(name)
    initialize(model, "zero")
    return model


DETERMINISTIC_MODELS = {
    "resnet20 zero": lambda: create_model("resnet20", init="zero"),
    "resnet20 partial_identity": lambda: create_model("resnet20", init="partial_identity"),
    "zero_resnet20 (paper)": lambda: create_model("zero_resnet20"),
    "constnet_16_1": lambda: create_model("constnet_16_1"),
    "gpt zero, tied, sinusoidal": lambda: create_model("gpt", init="zero", tie_weights=True, position="sinusoidal"),
    "gpt zero kv_zero": lambda: create_model("gpt", init="zero", init_options={"attention": "kv_zero"}),
    "vit zero": lambda: create_model("vit", init="zero"),
    "embedding, attention, lstm": lambda: (m := _Recurrent(), initialize(m, "zero"))[0],
    **{f"hugging face {name}": (lambda name=name: _hugging_face(name)) for name in ("gpt2", "llama", "vit", "t5")},
}  # fmt: skip


@pytest.mark.parametrize("build", DETERMINISTIC_MODELS.values(), ids=DETERMINISTIC_MODELS.keys())
def test_every_deterministic_rule_fills_a_shard_alone(monkeypatch, build) -> None:
    """Every parameter of the papers' networks, ResNets, the GPT and ViT under ZerO / ConstNet, torch's
    embedding (with padding), attention and LSTM layers, and Hugging Face models (GPT-2's Conv1D weights
    stored (in, out) included) gets a fill that writes any block of its rows alone,
    and each block is bitwise the rows the plain initialisation wrote (so FSDP2 ranks compute only their
    shards; tests/init/test_sharded.py runs them sharded)."""
    recorded = _recorded_fills(monkeypatch, build)
    assert recorded
    whole_only = [name for name, _, fill in recorded if rows_of(fill) is None]
    assert whole_only == []
    for name, param, fill in recorded:
        if param.dim() == 0:
            continue
        total = param.shape[0]
        for start, stop in {(0, total), (0, -(-total // 2)), (total // 3, total), (total // 2, total // 2 + 1)}:
            out = torch.full((stop - start, *param.shape[1:]), float("nan"), dtype=param.dtype)
            fill.rows(out, start, total, torch.Generator())
            assert torch.equal(out, param.detach()[start:stop]), (name, start, stop)


def test_random_rules_keep_the_whole_draw() -> None:
    """Random fills have no row-block form: a shard of a random init is the block of the whole draw."""
    rule = get_scheme("kaiming").matrix_rule(Matrix.linear(4, 4), LayerInfo(role="default"))
    assert not isinstance(rule.fill, RowFill) and rows_of(rule.fill) is None
