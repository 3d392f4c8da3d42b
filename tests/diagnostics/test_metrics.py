"""Diagnostics on cases with a known answer, and on every registered model at init."""

import math
import re

import pytest
import torch

from detinit import create_model, initialize, list_models
from detinit.diagnostics import (
    channel_variance,
    dead_channels,
    diversity_score,
    effective_rank,
    feature_diversity,
    gradient_at_init,
    jacobian_singular_values,
    max_channel_difference,
    mean_row_correlation,
    numerical_rank,
    participation_ratio,
    rank_table,
    signal_propagation,
    stable_rank,
    weight_symmetry,
)


def test_identical_channels():
    base = torch.randn(50, 1, 4, 4)
    y = base.expand(50, 8, 4, 4)
    assert participation_ratio(y) == pytest.approx(1.0)
    assert channel_variance(y) == 0.0 and max_channel_difference(y) == 0.0
    w = torch.zeros(8, 8, 3, 3)
    w[:, :, 1, 1] = 0.125  # ConstAvg
    assert mean_row_correlation(w, "forward") == 1.0 and mean_row_correlation(w, "backward") == 1.0
    assert mean_row_correlation(w, "all") == 1.0


def test_uncorrelated_channels_have_participation_ratio_near_c():
    y = torch.randn(20000, 8, dtype=torch.float64)
    assert participation_ratio(y) == pytest.approx(8.0, rel=0.01)
    assert abs(mean_row_correlation(torch.randn(200, 5000, dtype=torch.float64))) < 0.01


def test_correlation_formula_against_numpy():
    import numpy as np

    w = torch.randn(6, 5, 3, 3, dtype=torch.float64)
    for rows, a in [
        ("forward", w.reshape(6, -1)),
        ("backward", w.transpose(0, 1).reshape(5, -1)),
        ("all", w.reshape(30, -1)),
    ]:
        c = np.corrcoef(a.numpy())
        n = c.shape[0]
        assert mean_row_correlation(w, rows) == pytest.approx((c.sum() - n) / (n * (n - 1)))


def test_orthogonal_weights_have_full_stable_rank():
    q = torch.linalg.qr(torch.randn(64, 64, dtype=torch.float64))[0]
    assert stable_rank(q) == pytest.approx(64.0)
    assert effective_rank(q) == pytest.approx(64.0)
    assert numerical_rank(q) == 64
    low = torch.randn(64, 3, dtype=torch.float64) @ torch.randn(3, 64, dtype=torch.float64)
    assert numerical_rank(low) == 3 and stable_rank(low) <= 3 + 1e-9


def test_rank_of_w_minus_identity():
    lin = torch.nn.Linear(32, 32, bias=False)
    initialize(lin, "zero")
    with torch.no_grad():
        lin.weight += torch.outer(torch.randn(32), torch.randn(32))  # identity + rank-1 update
    conv = torch.nn.Conv2d(16, 16, 3)
    initialize(conv, "zero")
    model = torch.nn.Sequential(lin, torch.nn.Linear(32, 10), conv)
    rows = {r.name: r for r in rank_table(model)}
    assert rows["0"].rank_w_minus_i == 1 and rows["1"].rank_w_minus_i is None
    assert rows["2"].rank_w_minus_i == 0 and rows["0"].tol_w_minus_i > 0


def test_linear_jacobian_singular_values_equal_the_matrix_ones():
    torch.manual_seed(0)
    lin = torch.nn.Linear(20, 30, bias=True).double()
    s = jacobian_singular_values(lin, torch.randn(1, 20, dtype=torch.float64), num_steps=20)
    torch.testing.assert_close(s, torch.linalg.svdvals(lin.weight.detach()))
    # few Lanczos steps: the largest singular value converges first
    mlp = torch.nn.Sequential(torch.nn.Linear(100, 100), torch.nn.Tanh(), torch.nn.Linear(100, 100)).double()
    x = torch.randn(1, 100, dtype=torch.float64)
    exact = torch.linalg.svdvals(torch.autograd.functional.jacobian(lambda v: mlp(v).reshape(-1), x).reshape(100, 100))
    approx = jacobian_singular_values(mlp, x, num_steps=30)
    assert approx[0].item() == pytest.approx(exact[0].item(), rel=1e-6)
    with pytest.raises(ValueError, match="batch size 1"):
        jacobian_singular_values(mlp, torch.randn(2, 100))


def test_zero_linear_stack_is_a_dynamical_isometry():
    layers = [torch.nn.Linear(64, 64, bias=False) for _ in range(8)] + [torch.nn.Linear(64, 128, bias=False)]
    net = torch.nn.Sequential(*layers).double()
    initialize(net, "zero")  # identities, then an orthonormal Hadamard block: J^T J = I
    s = jacobian_singular_values(net, torch.randn(1, 64, dtype=torch.float64), num_steps=64)
    torch.testing.assert_close(s, torch.ones_like(s))  # Lanczos stops at the first invariant subspace
    initialize(net, "zero", norm="paper")  # the paper's scale is sqrt(2) larger
    s = jacobian_singular_values(net, torch.randn(1, 64, dtype=torch.float64), num_steps=8)
    torch.testing.assert_close(s, torch.full_like(s, 2**0.5))


def test_signal_propagation_rows():
    model = create_model("resnet20", init="kaiming")
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    rows = signal_propagation(model, x, y)
    assert [r.name for r in rows][:2] == ["stages.0.0", "stages.0.1"] and len(rows) == 9
    assert all(r.var > 0 and r.grad_rms > 0 for r in rows)
    ones = signal_propagation(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1)), torch.ones(2, 3, 2, 2))
    assert len(ones) == 1 and math.isnan(ones[0].grad_rms)


def test_weight_symmetry_and_diversity_of_constnet_and_kaiming():
    sym = weight_symmetry(create_model("constnet_10_2"), max_rows=500)
    assert all(r.backward == 1.0 for r in sym) and diversity_score(sym) == -math.inf
    rnd = weight_symmetry(create_model("constnet_10_2", init="kaiming"), max_rows=500)
    assert math.isfinite(diversity_score(rnd)) and all(abs(r.forward) < 0.2 for r in rnd if r.name != "fc")


@pytest.mark.parametrize(
    "name",
    [
        n
        for n in list_models()
        if n not in {"constnet_16_10", "constnet_28_10", "resnet50", "zero_resnet50_imagenet", "gpt", "gpt2_small"}
    ],
)
def test_every_model_at_init_runs_every_diagnostic(name):
    small = {
        "constnet": {"depth": 10, "widen": 1},
        "leakynet": {"depth": 10},
        "deep_mlp": {"depth": 2, "width": 16},
        "mnist_mlp": {"hidden": 32},
        "vit": {"depth": 2, "width": 32, "heads": 4},
    }
    size = 8 if "mlp" in name else 32
    model = create_model(
        name,
        num_classes=5,
        in_chans=3,
        **small.get(name, {}),
        **({"image_size": size} if "mlp" in name or name == "vit" else {}),
    )
    x, y = torch.randn(4, 3, size, size), torch.randint(0, 5, (4,))
    assert signal_propagation(model, x, y)
    assert feature_diversity(model, x)
    assert rank_table(model) and weight_symmetry(model, max_rows=200)
    assert len(gradient_at_init(model, x, y, steps=2)) == 2
    assert jacobian_singular_values(model, x[:1], num_steps=3).numel() >= 1


def _mlp() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))


@pytest.mark.parametrize(
    "loss_fn, returned",
    [
        (lambda a, b: a.sum(1), r"a tensor of shape \(2,\)"),
        (lambda a, b: "x", "'x'"),
        (lambda a, b: a.sum().long(), r"a tensor of shape \(\) \(torch.int64\)"),
    ],
)
def test_gradient_at_init_refuses_a_loss_that_is_not_one_number(loss_fn, returned):
    with pytest.raises(ValueError, match=rf"gradient_at_init: loss_fn returned {returned}"):
        gradient_at_init(_mlp(), torch.ones(2, 8), torch.zeros(2).long(), loss_fn=loss_fn)


def test_targets_the_loss_cannot_take_are_named_with_both_shapes():
    """A class past the outputs' count (torch: a bare IndexError) and targets of another batch."""
    for targets in (torch.tensor([0, 5]), torch.zeros(3).long()):
        shape = re.escape(str(tuple(targets.shape)))
        with pytest.raises(ValueError, match=rf"outputs of shape \(2, 4\) and targets of shape {shape}"):
            gradient_at_init(_mlp(), torch.ones(2, 8), targets)
    with pytest.raises(
        ValueError, match=r"signal_propagation: the loss could not be computed .* targets of shape \(3,\)"
    ):
        signal_propagation(_mlp(), torch.ones(2, 8), torch.zeros(3).long())


@pytest.mark.parametrize("diagnostic", [dead_channels, feature_diversity, signal_propagation], ids=lambda f: f.__name__)
def test_an_empty_batch_is_refused_naming_the_diagnostic(diagnostic):
    with pytest.raises(ValueError, match=rf"{diagnostic.__name__}: inputs of shape \(0, 8\) is an empty batch"):
        diagnostic(_mlp(), torch.ones(0, 8))
