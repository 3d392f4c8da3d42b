"""No dead channels at init: distinct Hadamard rows, Algorithm 1 on unfolded kernels, and the diagnostic."""

import pytest
import torch
import torch.nn.functional as F

from detinit.diagnostics import count_dead, dead_channels
from detinit.init.tensor.hadamard import ceil_log2
from detinit.init.tensor.zero import hadamard_columns, tap_order, zero_, zero_unfolded_
from detinit.models import create_model


def distinct_rows(w: torch.Tensor) -> int:
    return len({tuple(row.tolist()) for row in w})


@pytest.mark.parametrize("p,q", [(32, 16), (2048, 784), (512, 128), (96, 64), (1000, 512), (64, 27), (16, 9)])
def test_first_columns_repeat_rows_and_spanning_columns_do_not(p, q):
    # the top-left block only sees the low ceil(log2 Q) bits of the row index: rows repeat with that period
    assert distinct_rows(zero_(torch.empty(p, q))) == min(p, 2 ** ceil_log2(q))
    assert distinct_rows(zero_(torch.empty(p, q), columns="spanning")) == p  # Q >= log2 P: every row distinct


@pytest.mark.parametrize("p,q", [(32, 16), (512, 128), (64, 27)])
def test_spanning_columns_keep_the_isometry_of_power_of_two_layers(p, q):
    w = zero_(torch.empty(p, q, dtype=torch.float64), columns="spanning")
    torch.testing.assert_close(w.T @ w, torch.eye(q, dtype=torch.float64))
    assert {1 << b for b in range(ceil_log2(p))} <= set(hadamard_columns(p, q, "spanning").tolist())
    assert set(w.abs().unique().tolist()) == {p**-0.5}


def test_tap_order_is_centre_first_then_nearest():
    assert tap_order((3, 3))[:5].tolist() == [4, 1, 3, 5, 7]  # centre, then the four neighbours
    assert tap_order((4,)).tolist() == [1, 0, 2, 3]  # even kernel: the centre tap is (k - 1) // 2
    assert tap_order((1, 1)).tolist() == [0]


def test_unfolded_kernel_is_algorithm_2_when_not_expanding():
    for shape in [(16, 16, 3, 3), (16, 32, 3, 3), (8, 8, 5)]:
        torch.testing.assert_close(zero_unfolded_(torch.empty(shape)), zero_(torch.empty(shape)))


def test_unfolded_identity_outputs_shifted_copies():
    w = zero_unfolded_(torch.empty(32, 16, 3, 3))  # Q < P <= Q K
    x = torch.randn(2, 16, 9, 9, generator=torch.Generator().manual_seed(0))
    y = F.conv2d(x, w, padding=1)
    torch.testing.assert_close(y[:, :16], x)  # the centre tap: identity
    padded = F.pad(x, (1, 1, 1, 1))
    torch.testing.assert_close(y[:, 16:], padded[:, :, :-2, 1:-1])  # the next tap: the pixel above
    assert count_dead(y) == (0, 0)


def test_unfolded_hadamard_covers_the_patch_when_the_layer_outgrows_it():
    w = zero_unfolded_(torch.empty(16, 1, 3, 3), columns="spanning")  # P = 16 > Q K = 9
    matrix = w.reshape(16, 9).double()
    torch.testing.assert_close(matrix.T @ matrix, torch.eye(9, dtype=torch.float64))  # P = 2^m: isometry
    assert distinct_rows(matrix) == 16
    grouped = zero_unfolded_(torch.empty(8, 2, 3, 3), groups=2)  # per group: P = 4 > Q = 1
    torch.testing.assert_close(grouped[:4], grouped[4:])


CNNS = [("resnet20", 1, 28), ("resnet20", 3, 32), ("resnet56", 1, 28), ("resnet18", 3, 32), ("resnet50", 3, 32)]


@pytest.mark.parametrize("name,chans,size", CNNS)
def test_default_zero_has_no_dead_channels_and_the_paper_rules_have_many(name, chans, size):
    x = torch.randn(16, chans, size, size, generator=torch.Generator().manual_seed(0))
    kwargs = {"stem": "cifar"} if name in ("resnet18", "resnet50") else {}
    counts = {}
    for variant in ("detinit", "paper"):
        model = create_model(name, in_chans=chans, init="zero", init_options={"variant": variant}, **kwargs)
        rows = dead_channels(model.train(), x)  # block outputs, batch statistics: what the first steps see
        counts[variant] = (sum(r.zero for r in rows), sum(r.copies for r in rows))
    assert counts["detinit"] == (0, 0)
    assert sum(counts["paper"]) > 0.3 * sum(r.channels for r in rows)


@pytest.mark.parametrize(
    "name,kwargs,x",
    [
        ("gpt", {"vocab_size": 92, "context": 32, "depth": 2, "width": 128, "heads": 4}, torch.randint(0, 92, (8, 32))),
        ("vit", {"image_size": 28, "in_chans": 1, "num_classes": 10}, torch.randn(8, 1, 28, 28)),
    ],
)
def test_transformer_mlp_hidden_units_are_distinct(name, kwargs, x):
    counts = {}
    for variant in ("detinit", "paper"):
        model = create_model(name, init="zero", init_options={"variant": variant}, **kwargs)
        rows = {r.name: r for r in dead_channels(model.train(), x, at="layers")}
        counts[variant] = (rows["blocks.0.mlp.fc"].zero, rows["blocks.0.mlp.fc"].copies)
    # LayerNorm output sums to 0 over channels, so the constant Hadamard row gives the one zero unit
    assert counts["detinit"] == (1, 0)
    assert sum(counts["paper"]) > 100  # 128 -> 512 with the top-left block: four copies of each unit, or 0


@pytest.mark.parametrize(
    ("matrix", "kernel_size"), [(torch.eye(2, 5), (3,)), (torch.ones(6), (3,)), (torch.ones(2, 3, 3), (3,))]
)
def test_unfolded_kernel_refuses_a_matrix_that_is_no_kernel_unfolded(matrix, kernel_size):
    from detinit.init.tensor.zero import unfolded_kernel

    with pytest.raises(ValueError, match=r"unfolded_kernel: matrix of shape .* is not the unfolded form of a kernel"):
        unfolded_kernel(matrix, kernel_size)
