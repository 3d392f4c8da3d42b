"""Recurrent layers (detinit.init.roles.recurrent): a rule per gate block, ZerO's zeros-and-identity recurrences."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from detinit import initialize
from detinit.init.roles.recurrent import gate_blocks

SCHEMES = ("zero", "partial_identity", "constnet", "kaiming", "xavier", "orthogonal", "gpt2")
LAYERS = {
    "rnn_tanh_2x_bidirectional": lambda: nn.RNN(5, 8, num_layers=2, bidirectional=True),
    "rnn_relu": lambda: nn.RNN(5, 8, nonlinearity="relu"),
    "lstm_2x": lambda: nn.LSTM(5, 8, num_layers=2),
    "lstm_proj_bidirectional": lambda: nn.LSTM(5, 8, proj_size=3, bidirectional=True, batch_first=True),
    "gru_3x": lambda: nn.GRU(5, 8, num_layers=3, bias=False),
    "rnn_cell": lambda: nn.RNNCell(5, 8),
    "lstm_cell": lambda: nn.LSTMCell(5, 8),
    "gru_cell": lambda: nn.GRUCell(5, 8),
}


def _sequence(steps: int = 6, batch: int = 3, width: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.randn(steps, batch, width, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_every_parameter_of_every_recurrent_layer_has_a_rule(layer: str, scheme: str) -> None:
    module = LAYERS[layer]()
    before = {n: p.clone() for n, p in module.named_parameters()}
    report = initialize(module, scheme, strict=True)
    assert {r.name for r in report.records} == set(before)
    assert all(r.rule not in ("unknown", "kept") for r in report.records)
    if scheme in ("zero", "partial_identity", "constnet"):  # deterministic: two runs agree bitwise
        again = LAYERS[layer]()
        initialize(again, scheme, strict=True)
        assert all(torch.equal(p, dict(again.named_parameters())[n]) for n, p in module.named_parameters())


def test_zero_lstm_follows_its_closed_form() -> None:
    r"""ZerO on LSTM(4, 4): i = o = 1/2, f = sigmoid(1), g = tanh(x), so c_t = sigmoid(1) c_{t-1} + tanh(x_t) / 2 and
    h_t = tanh(c_t) / 2 exactly."""
    lstm = nn.LSTM(4, 4).double()
    initialize(lstm, "zero", strict=True)
    x = _sequence()
    out, (_, c_last) = lstm(x)
    c = torch.zeros_like(x[0])
    expected = []
    for x_t in x:
        c = torch.sigmoid(torch.tensor(1.0, dtype=torch.float64)) * c + 0.5 * torch.tanh(x_t)
        expected.append(0.5 * torch.tanh(c))
    torch.testing.assert_close(out, torch.stack(expected), rtol=0, atol=1e-15)
    torch.testing.assert_close(c_last[0], c, rtol=0, atol=1e-15)


def test_zero_gru_is_a_running_average_of_its_candidates() -> None:
    """ZerO on GRU(4, 4): r = z = 1/2 and W_hn = 0, so h_t = tanh(x_t) / 2 + h_{t-1} / 2."""
    gru = nn.GRU(4, 4).double()
    initialize(gru, "zero", strict=True)
    x = _sequence()
    out, _ = gru(x)
    h = torch.zeros_like(x[0])
    for t, x_t in enumerate(x):
        h = 0.5 * torch.tanh(x_t) + 0.5 * h
        torch.testing.assert_close(out[t], h, rtol=0, atol=1e-15)


def test_zero_relu_rnn_is_an_irnn_that_sums_its_inputs() -> None:
    """ZerO on RNN(4, 4, relu): W_ih = W_hh = I (IRNN), so on non-negative inputs h_T = sum_t x_t."""
    rnn = nn.RNN(4, 4, nonlinearity="relu").double()
    initialize(rnn, "zero", strict=True)
    x = _sequence().abs()
    out, _ = rnn(x)
    torch.testing.assert_close(out[-1], x.sum(0), rtol=1e-15, atol=0)


def test_zero_expanding_recurrent_layers_have_distinct_hidden_units() -> None:
    """4 inputs, 16 hidden units: the candidate block is a Hadamard block, so no two units start alike."""
    for layer in (nn.RNN(4, 16), nn.LSTM(4, 16), nn.GRU(4, 16)):
        initialize(layer.double(), "zero", strict=True)
        out, _ = layer(_sequence(steps=8, batch=32))
        units = out.reshape(-1, 16)
        gaps = torch.cdist(units.T, units.T) + torch.eye(16, dtype=torch.float64)
        assert gaps.min() > 1e-3, type(layer).__name__


def test_constnet_recurrent_units_are_identical_at_init() -> None:
    """ConstNet's claim carries over: every hidden unit computes the same thing at init, up to the rounding of
    the matrix kernels (which sum a row's equal terms in an order that may differ per row)."""
    for layer in (nn.RNN(4, 16), nn.LSTM(4, 16), nn.GRU(4, 16)):
        initialize(layer.double(), "constnet", strict=True)
        out, _ = layer(_sequence())
        spread = (out - out[..., :1]).abs().max()
        assert out.std() > 0.1 and spread < 1e-14, (type(layer).__name__, spread)


def test_forget_gate_bias_is_one_for_every_scheme() -> None:
    for scheme in ("zero", "kaiming", "orthogonal"):
        lstm = nn.LSTM(3, 5, num_layers=2)
        initialize(lstm, scheme)
        for name, bias in lstm.named_parameters():
            if name.startswith("bias_ih"):
                assert torch.equal(bias, torch.tensor([0.0] * 5 + [1.0] * 5 + [0.0] * 10)), (scheme, name)
            elif name.startswith("bias_hh"):
                assert not bias.any(), (scheme, name)


def test_random_schemes_fill_each_gate_block_on_its_own() -> None:
    """Recurrent blocks orthogonal per gate (W W^T = I); input blocks with per-gate fans: Xavier's variance is
    2 / (fan_in + fan_out) with fan_out = hidden size, not 4 x hidden size."""
    lstm = nn.LSTM(64, 256).double()
    initialize(lstm, "xavier", seed=3)
    eye = torch.eye(256, dtype=torch.float64)
    for block in gate_blocks(lstm, "weight_hh_l0"):
        w = lstm.weight_hh_l0[block.start : block.stop]
        torch.testing.assert_close(w @ w.T, eye, rtol=0, atol=1e-12)
    for block in gate_blocks(lstm, "weight_ih_l0"):
        std = lstm.weight_ih_l0[block.start : block.stop].std().item()
        assert abs(std / math.sqrt(2 / (64 + 256)) - 1) < 0.02, block.gate
    again = nn.LSTM(64, 256).double()
    initialize(again, "xavier", seed=3)
    assert torch.equal(again.weight_hh_l0, lstm.weight_hh_l0)


def test_lstm_projection_gets_the_linear_rule() -> None:
    lstm = nn.LSTM(5, 8, proj_size=3)
    report = initialize(lstm, "zero", strict=True)
    assert torch.equal(lstm.weight_hr_l0, torch.eye(3, 8))
    assert {r.name: r.rule for r in report.records}["weight_hr_l0"] == "partial_identity"
    assert [b.cols for b in gate_blocks(lstm, "weight_hh_l0")] == [3] * 4


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_a_recurrent_branch_end_starts_at_zero_and_still_learns(cell: str) -> None:
    """An LSTM / GRU / RNN ending a residual branch: its candidate input block is 0 under ZerO, so its output
    is exactly 0 at init, and that block's gradient is not (no saddle)."""

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell](6, 6, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.rnn(x)[0]

    block = Block().double()
    initialize(block, "zero", roles={"rnn": "branch_last"}, strict=True)
    x = _sequence(batch=5, width=6).transpose(0, 1)
    out = block(x)
    assert torch.equal(out, x)
    (out * torch.linspace(-1, 1, 6, dtype=torch.float64)).sum().backward()
    assert block.rnn.weight_ih_l0.grad.abs().max() > 1e-3


def test_zero_lstm_classifier_learns_a_sequence_task() -> None:
    """Sign of the sum of a sequence's first feature, read by an LSTM under ZerO (roles traced): the output is
    0 at init, and 30 Adam steps bring the loss to at most 0.8x its first value."""

    class Reader(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm, self.head = nn.LSTM(4, 16, batch_first=True), nn.Linear(16, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.lstm(x)[0][:, -1])

    x = torch.randn(64, 10, 4, generator=torch.Generator().manual_seed(0))
    y = (x[..., 0].sum(1) > 0).long()
    model = Reader()
    report = initialize(model, "zero", strict=True, example_inputs=x[:2])
    assert {r.name: r.role for r in report.records}["head.weight"] == "classifier"
    assert not model(x).any()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = nn.functional.cross_entropy(model(x), y)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] <= 0.8 * losses[0], losses


def test_roles_a_recurrent_layer_cannot_take_are_refused() -> None:
    with pytest.raises(ValueError, match=r"role 'attn_query' on LSTM is not supported; .*default, branch"):
        initialize(nn.Sequential(nn.LSTM(4, 4)), "zero", roles={"0": "attn_query"})
    with pytest.raises(ValueError, match="is for a normalisation layer; GRU is not one"):
        initialize(nn.Sequential(nn.GRU(4, 4)), "zero", roles={"0": "classifier_norm"})
