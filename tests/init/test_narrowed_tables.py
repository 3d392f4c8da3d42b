"""Token tables whose rows a layer narrows (issue 30, RemBERT): embedded at a wide width, normalised, projected by
ZerO's partial identity to a narrower stream of post-norm blocks. Rows constant on the narrow width are left out of
the table, so no token enters the stream as a constant vector (which LayerNorm maps to 0); a table whose rows
also reach the stream unnarrowed (a pre-norm model with a narrower key projection) is filled as before."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from detinit import initialize
from detinit.diagnostics.promises import zero_start_promises
from detinit.init.tensor.embedding import embedding_collisions, embedding_row_indices, zero_embedding_

VOCAB, WIDE, NARROW = 300, 64, 16


@pytest.mark.parametrize("dim, width", [(8, 4), (64, 16), (256, 64), (96, 32), (64, 12)])
def test_rows_read_at_a_narrower_width_are_never_constant_there(dim: int, width: int) -> None:
    table = zero_embedding_(torch.empty(1000, dim), read_width=width)
    head = table[:, :width]
    assert bool((head.amax(dim=1) > head.amin(dim=1)).all())  # no token constant on the narrow width
    if width & (width - 1) == 0:  # a power of two: balanced there, one magnitude
        assert int(head.sign().sum(dim=1).abs().max()) == 0
        assert torch.equal(head.abs(), head.abs()[:1].expand_as(head))
    rows = embedding_row_indices(dim, read_width=width)
    distinct = len(rows)
    assert torch.equal(table[distinct:], table[: 1000 - distinct])  # token i has row rows[i % period]
    assert len(torch.unique(table[:distinct], dim=0)) == distinct
    assert embedding_collisions(1000, dim, read_width=width) == 1000 - distinct


def test_without_a_read_width_the_fill_is_unchanged() -> None:
    assert torch.equal(zero_embedding_(torch.empty(300, 64), read_width=64), zero_embedding_(torch.empty(300, 64)))


@pytest.mark.parametrize("width", [0, 65, 2.5])
def test_a_bad_read_width_names_the_parameter(width: object) -> None:
    with pytest.raises(ValueError, match=r"read_width must be (None or an int >= 1|an int from 1 to embedding_dim 64)"):
        zero_embedding_(torch.empty(10, 64), read_width=width)  # type: ignore[arg-type]


class PostNormBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up, self.down = nn.Linear(NARROW, 2 * NARROW), nn.Linear(2 * NARROW, NARROW)
        self.norm = nn.LayerNorm(NARROW)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.down(torch.relu(self.up(x))))


class NarrowedEmbeddingEncoder(nn.Module):
    """RemBERT's front: a wide table, its LayerNorm, a projection to the narrow stream, post-norm blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens = nn.Embedding(VOCAB, WIDE)
        self.embedding_norm = nn.LayerNorm(WIDE, eps=1e-12)
        self.project = nn.Linear(WIDE, NARROW)
        self.blocks = nn.Sequential(PostNormBlock(), PostNormBlock())
        self.head = nn.Linear(NARROW, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.project(self.embedding_norm(self.tokens(ids)))))


def test_every_token_enters_the_narrow_stream_balanced_and_the_blocks_are_the_identity() -> None:
    model = NarrowedEmbeddingEncoder()
    example = torch.randint(0, VOCAB, (2, 8))
    report = initialize(model, "zero", example_inputs=example)
    table = next(r for r in report.records if r.name == "tokens.weight")
    assert table.rule == "hadamard" and "rows constant on the first 16 features" in table.reason
    every_token = torch.arange(VOCAB).view(3, -1)
    with torch.no_grad():
        stream = model.project(model.embedding_norm(model.tokens(every_token)))
    assert float(stream.mean(dim=-1).abs().max()) < 1e-6
    assert float((stream.pow(2).mean(dim=-1) - 1).abs().max()) < 1e-5  # every token at the post-norm fixed point
    blocks = next(p for p in zero_start_promises(model, every_token) if p.promise == "blocks are the identity")
    assert blocks.kept and blocks.checked == 2, (blocks.error, blocks.where)


def test_before_the_fix_some_tokens_were_constant_on_the_narrow_width() -> None:
    """The mechanism the refill removes: the default rows, cut to their first 16 features, are constant for
    every row number divisible by 16 (LayerNorm then maps the token to 0)."""
    head = zero_embedding_(torch.empty(VOCAB, WIDE))[:, :NARROW]
    constant = (head.amax(dim=1) == head.amin(dim=1)).nonzero().flatten().tolist()
    assert constant == [i for i in range(VOCAB) if (1 + i % 63) % 16 == 0]  # token i has row 1 + i mod 63
    assert len(constant) == 15


class PreNormWithNarrowKeys(nn.Module):
    """A pre-norm model whose first layer after the table's norm is a narrower key projection: the rows also
    stay on the residual stream unnarrowed, so nothing is refilled."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens = nn.Embedding(VOCAB, WIDE)
        self.norm = nn.LayerNorm(WIDE)
        self.key = nn.Linear(WIDE, NARROW)
        self.back = nn.Linear(NARROW, WIDE)
        self.head = nn.Linear(WIDE, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.tokens(ids)
        return self.head(x + self.back(self.key(self.norm(x))))


def test_rows_also_carried_unnarrowed_keep_the_default_fill() -> None:
    model = PreNormWithNarrowKeys()
    initialize(model, "zero", example_inputs=torch.randint(0, VOCAB, (2, 8)))
    assert torch.equal(model.tokens.weight, zero_embedding_(torch.empty(VOCAB, WIDE)))
