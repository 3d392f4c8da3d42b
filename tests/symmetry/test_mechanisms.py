"""Symmetry breaking: deterministic ConstNet training stays symmetric, every mechanism breaks it."""

import math

import pytest
import torch
import torch.nn.functional as F

from detinit import create_model
from detinit.diagnostics import feature_diversity
from detinit.symmetry import MECHANISMS, breaking, make_mechanism


def train_asymmetry(name, steps=20, **knobs):
    """Max relative channel difference after steps 1, 5, 10, 20 of SGD on a fixed batch."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 3, 16, 16, generator=g), torch.randint(0, 10, (32,), generator=g)
    model = create_model("constnet_10_2", num_classes=10)
    opt = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9, weight_decay=5e-4)
    trajectory = []
    with breaking(name, model, seed=0, **knobs):
        for step in range(1, steps + 1):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            if step in (1, 5, 10, 20):
                model.eval()
                trajectory.append(max(r.max_channel_difference for r in feature_diversity(model, x)))
                model.train()
    return trajectory


def test_deterministic_training_stays_exactly_symmetric():
    assert train_asymmetry("none") == [0.0, 0.0, 0.0, 0.0]


def test_rounding_breaks_symmetry_from_float_epsilon_and_grows():
    traj = train_asymmetry("rounding")
    assert traj[0] == 0.0  # step 0: the residual convs get zero gradients, and 0 * (1 + noise) = 0
    assert 0 < traj[1] < 1e-5 and traj[3] > traj[1]  # starts at rounding level, then grows


@pytest.mark.parametrize(
    "name,knobs",
    [
        ("dropout", {"p": 0.01}),
        ("weight_noise", {"s": 0.01}),
        ("activation_noise", {"sigma": 1e-3}),
        ("gradient_noise", {"sigma": 1e-4}),
    ],
)
def test_each_mechanism_breaks_symmetry_within_ten_steps(name, knobs):
    traj = train_asymmetry(name, steps=10, **knobs)
    assert traj[-1] > 1e-5, traj


def test_rounding_perturbs_gradients_at_machine_epsilon():
    lin = torch.nn.Linear(256, 256)
    x = torch.randn(64, 256)
    lin(x).square().sum().backward()
    clean = lin.weight.grad.clone()
    lin.zero_grad()
    with breaking("rounding", lin, seed=1):
        lin(x).square().sum().backward()
    rel = (lin.weight.grad / clean - 1).flatten()
    assert math.isclose(rel.std().item(), torch.finfo(torch.float32).eps, rel_tol=0.1)
    lin.zero_grad()
    lin(x).square().sum().backward()  # detached: no more perturbation
    assert torch.equal(lin.weight.grad, clean)


def test_none_sets_and_restores_determinism_flags():
    before = torch.are_deterministic_algorithms_enabled()
    model = torch.nn.Linear(2, 2)
    with breaking("none", model):
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
        assert not torch.backends.cudnn.benchmark
    assert torch.are_deterministic_algorithms_enabled() == before


def test_gpu_is_refused_on_cpu_with_a_pointer_to_rounding():
    with pytest.raises(ValueError, match="'gpu'.*does not exist on device 'cpu'.*Use 'rounding'"):
        with breaking("gpu", torch.nn.Linear(2, 2)):
            pass


def test_dropout_only_in_training_and_hooks_removed():
    model = create_model("constnet_10_2")
    x = torch.randn(2, 3, 8, 8)
    model.eval()
    with breaking("dropout", model, p=0.5):
        assert torch.equal(model(x), model(x))  # eval: no effect
    model.train()
    with breaking("dropout", model, p=0.5) as mech:
        assert len(mech._handles) == 6  # one per residual conv (3 stages x 2 blocks)
    assert all(not m._forward_hooks for m in model.modules())


def test_bad_names_and_knobs():
    assert set(MECHANISMS) == {
        "none",
        "gpu",
        "rounding",
        "dropout",
        "weight_noise",
        "activation_noise",
        "gradient_noise",
    }
    with pytest.raises(ValueError, match="unknown symmetry mechanism 'atomic'"):
        make_mechanism("atomic")
    with pytest.raises(ValueError, match=r"'dropout' takes knobs \(p\), got \['sigma'\]"):
        make_mechanism("dropout", sigma=1.0)
    with pytest.raises(ValueError, match="p=1.5 must be < 1|p=1.5"):
        make_mechanism("dropout", p=1.5)
    with pytest.raises(ValueError, match="sigma=-1"):
        make_mechanism("activation_noise", sigma=-1)
    with pytest.raises(ValueError, match="declares no residual-branch layers"):
        with breaking("dropout", torch.nn.Sequential(torch.nn.Linear(2, 2))):
            pass
    with pytest.raises(ValueError, match=r"layers \['nope'\] are not modules"):
        with breaking("dropout", torch.nn.Sequential(torch.nn.Linear(2, 2)), layers=["nope"]):
            pass
