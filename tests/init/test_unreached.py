"""Parameters the tracing example never reaches: traced another way where the model says how (a decoder's
cross-attention with encoder states, a projector on its tower's features), and named in the report where not."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from detinit import initialize
from detinit.diagnostics.promises import zero_start_promises
from detinit.init.roles.traced.submodels import UNREACHED


class _Adapter(nn.Module):
    """A residual adapter: x + fc2(relu(fc1(x)))."""

    def __init__(self, width: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(width, 2 * width), nn.Linear(2 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(torch.relu(self.fc1(x)))


class _TwoPaths(nn.Module):
    """A text path the example runs, an adapter and a lone layer it never calls."""

    def __init__(self):
        super().__init__()
        self.text, self.head = nn.Linear(8, 8), nn.Linear(8, 3)
        self.adapter, self.spare = _Adapter(8), nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.text(x))


def test_a_container_no_input_reaches_is_traced_on_vectors_of_its_width():
    model = _TwoPaths()
    report = initialize(model, "zero", example_inputs=torch.ones(2, 8))
    assert report["adapter.fc2.weight"].role == "branch_last" and model.adapter.fc2.weight.abs().max() == 0
    x = torch.randn(5, 8)
    assert torch.equal(model.adapter(x), x)  # its block is the identity, as if it had been traced in place


def test_the_report_names_what_no_trace_reached():
    report = initialize(_TwoPaths(), "zero", example_inputs=torch.ones(2, 8))
    notes = [note for note in report.notes if UNREACHED in note]
    assert len(notes) == 1 and notes[0].startswith(f"2 {UNREACHED} (spare)")  # the lone layer's weight and bias
    full = initialize(
        nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)), "zero", example_inputs=torch.ones(1, 4)
    )
    assert not any(UNREACHED in note for note in full.notes)


class _RowQuery(nn.Module):
    """A learned vector viewed as one row and multiplied with the input (a learned query over states)."""

    def __init__(self):
        super().__init__()
        self.query = nn.Parameter(torch.zeros(8))
        self.out = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = torch.matmul(self.query.view(1, -1), x.transpose(-1, -2))  # (1, tokens)
        return self.out(torch.matmul(torch.softmax(scores, -1), x))


def test_a_vector_viewed_as_a_row_is_no_layer():
    report = initialize(_RowQuery(), "zero", example_inputs=torch.ones(2, 5, 8))  # it was read as a (1, 8) layer
    assert report["query"].rule == "zeros"  # no matrix rule: a term of the attention scores, uniform at the start
    assert "attention scores" in report["query"].reason
    assert report["out.weight"].role == "classifier"


def test_a_decoder_alone_has_its_cross_attention_traced_with_encoder_states():
    transformers = pytest.importorskip("transformers")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    config = transformers.BartConfig(
        vocab_size=64, d_model=32, encoder_layers=1, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=32,
    )  # fmt: skip
    model = transformers.BartForCausalLM(config)
    report = initialize(model, "zero", strict=True)
    assert not any(UNREACHED in note for note in report.notes)
    for layer in range(2):
        assert report[f"model.decoder.layers.{layer}.encoder_attn.out_proj.weight"].rule == "zeros"
    ids = torch.randint(3, 64, (2, 6))
    ids[:, 0] = config.bos_token_id
    inputs = {"input_ids": ids, "encoder_hidden_states": torch.randn(2, 5, 32), "use_cache": False}
    carriers = {r.name.rsplit(".", 1)[0] for r in report.records if r.role == "classifier_norm"}  # the tied head's
    with torch.no_grad():
        promises = zero_start_promises(model, inputs, carries_output_zero=carriers)
    assert all(p.kept is not False for p in promises), [str(p) for p in promises]


class _QKNormAttention(nn.Module):
    """x + o(attention(q_norm(q(x)), k_norm(k(x)), v(x))): query/key norms between projections and scores."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(width, width) for _ in range(4))
        self.q_norm, self.k_norm = nn.LayerNorm(width), nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k = self.q_norm(self.q(x)), self.k_norm(self.k(x))
        return x + self.o(torch.nn.functional.scaled_dot_product_attention(q, k, self.v(x)))


def test_query_and_key_norms_after_the_projections_keep_the_attention_roles():
    model = nn.Sequential(_QKNormAttention(), nn.Linear(8, 3))
    report = initialize(model, "zero", example_inputs=torch.randn(2, 5, 8))
    roles = {name: report[f"0.{name}.weight"].role for name in "qkvo"}
    assert roles == {"q": "attn_query", "k": "attn_key", "v": "attn_value", "o": "attn_out"}
    assert not any("do not each come from one layer" in note for note in report.notes)


class _PatchTower(nn.Module):
    """A vision tower in the processor's patch layout: ``(patches, channels x temporal x patch^2)`` with the
    grid they came from; refuses a grid that is not a whole number of merge windows."""

    def __init__(self):
        super().__init__()
        from types import SimpleNamespace

        self.config = SimpleNamespace(
            model_type="patch_tower", patch_size=2, temporal_patch_size=2, in_channels=3, spatial_merge_size=2
        )
        self.embed, self.fc, self.head = nn.Linear(3 * 2 * 2 * 2, 8), nn.Linear(8, 8), nn.Linear(8, 4)

    def forward(self, hidden_states: torch.Tensor, grid_thw: torch.Tensor) -> torch.Tensor:
        t, h, w = grid_thw[0].tolist()
        if hidden_states.shape[0] != t * h * w or h % 2 or w % 2:
            raise ValueError("patches and grid disagree")
        x = self.embed(hidden_states)
        return self.head(x + self.fc(x))


def test_a_tower_taking_patches_with_their_grid_is_traced_on_one_image():
    model = _PatchTower()
    report = initialize(model, "zero")
    assert any("grid_thw [[1, 4, 4]]" in note for note in report.notes)
    assert report["fc.weight"].role == "branch_last" and model.fc.weight.abs().max() == 0
