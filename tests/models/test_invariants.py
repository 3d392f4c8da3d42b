"""The papers' claims at initialisation, asserted on the models."""

import math

import pytest
import torch
import torch.nn.functional as F

from detinit import check_zero_one, create_model, initialize, list_models
from detinit.models.constnet import ConstNetBlock, LeakyNet
from detinit.nn import ScalarBias, ScalarGate

ZERO_MODELS = [n for n in list_models("zero_resnet*")]
SIZE = {"zero_resnet18_imagenet": 64, "zero_resnet50_imagenet": 64}


def batch(channels=3, size=32, n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, channels, size, size, generator=g), torch.randint(0, 10, (n,), generator=g)


@pytest.mark.parametrize("norm", ["bn", "none"])
@pytest.mark.parametrize("name", ZERO_MODELS + ["resnet20", "resnet56", "resnet18"])
def test_zero_output_is_exactly_zero_and_only_the_classifier_gets_gradient(name, norm):
    model = create_model(name, init="zero", norm=norm, num_classes=10)
    x, y = batch(size=SIZE.get(name, 32))
    out = model(x)
    assert torch.equal(out, torch.zeros_like(out))
    F.cross_entropy(out, y).backward()
    moving = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert moving == {"fc.weight", "fc.bias"}
    assert check_zero_one(model), str(check_zero_one(model))


@pytest.mark.parametrize("name", ZERO_MODELS)
def test_zero_resnets_pass_the_official_two_value_check(name):
    # the official code's check: every trainable tensor holds at most two distinct values
    assert check_zero_one(create_model(name), mode="official")


def test_body_starts_moving_at_step_one():
    model = create_model("zero_resnet20", num_classes=10)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = batch()
    moving_by_step = []
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        moving_by_step.append({n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0})
        opt.step()
    assert moving_by_step[0] == {"fc.weight", "fc.bias"}
    assert any("stages.2.2.conv2" in n for n in moving_by_step[1])  # the last block's last conv
    assert len(moving_by_step[2]) > len(moving_by_step[1])


def test_zero_resnet_shortcut_is_partial_identity_then_hadamard():
    model = create_model("zero_resnet20")
    conv = model.stages[1][0].shortcut[0]
    assert torch.equal(conv.weight[:, :, 0, 0], torch.eye(32, 16))
    assert model.init_report["stages.1.0.shortcut.0.weight"].rule == "partial_identity"


@pytest.mark.parametrize(
    "name,args",
    [
        ("constnet_10_2", {}),
        ("constnet", {"depth": 16, "widen": 1}),
        ("constnet", {"depth": 10, "widen": 1, "norm": "none"}),
    ],
)
def test_constnet_channels_identical_at_every_depth_and_first_loss_is_log_k(name, args):
    model = create_model(name, num_classes=10, **args)
    outputs = []
    for m in model.modules():
        if isinstance(m, ConstNetBlock):
            m.register_forward_hook(lambda mod, inp, out: outputs.append(out))
    x, y = batch()
    logits = model(x)
    assert len(outputs) == 3 * ((args.get("depth", 10) - 4) // 3)
    for out in outputs:
        assert (out - out[:, :1]).abs().max() == 0  # max channel difference exactly 0
    assert math.isclose(F.cross_entropy(logits, y).item(), math.log(10), rel_tol=1e-6)
    assert check_zero_one(model)


def test_constnet_stem_and_shortcuts_average():
    model = create_model("constnet_10_2", in_chans=3)
    assert torch.allclose(model.conv1.weight[:, :, 1, 1], torch.full((16, 3), 1 / 3))
    sc = model.stages[1][0].shortcut.weight
    assert torch.allclose(sc, torch.full_like(sc, 1 / sc.shape[1]))
    nonzero = sum(int((p != 0).sum()) for n, p in model.named_parameters() if "conv" in n or "shortcut" in n)
    total = sum(p.numel() for n, p in model.named_parameters() if "conv" in n or "shortcut" in n)
    assert nonzero / total < 0.05  # almost every conv weight is 0


def test_constnet_partially_random_and_he_baseline():
    model = create_model("constnet_10_2", init="constnet", init_options={"s": 0.5}, seed=1)
    conv = model.stages[2][0].conv.weight
    expected_std = 0.5 * math.sqrt(2 / (conv.shape[0] * 9))  # s x He (fan_out)
    assert math.isclose(conv.std().item(), expected_std, rel_tol=0.05)
    he = create_model("constnet_10_2", init="kaiming", init_options={"mode": "fan_out"})
    x, _ = batch()
    out = he.stages(he.conv1(x))
    assert (out - out[:, :1]).abs().max() > 0.1  # random init: channels differ


def test_leakynet_identity_pairs_compute_minus_x():
    net = LeakyNet(depth=16, widen=1, norm="none", alpha=0.1)
    initialize(net, "constnet")
    x = torch.randn(3, 16, 8, 8, dtype=torch.float64)
    net = net.double()
    pair = net.layers[:2]
    torch.testing.assert_close(pair(x), -x)
    torch.testing.assert_close(net.layers[:4](x), x)
    assert net.layers[1].conv.weight[0, 0, 1, 1].item() == pytest.approx(-1 / 0.1)
    report = initialize(net, "constnet")
    assert "LeakyNet 'i': identity x -10" in report["layers.1.conv.weight"].reason


def test_leakynet_init_string_letters():
    net = LeakyNet(depth=10, widen=1, init_string="1_hh_1x_ik", norm="none")
    report = initialize(net, "constnet", seed=0)
    assert "averaging x 1" in report["conv1.weight"].reason
    assert "noise (1-c) with c=0.0" in report["layers.0.conv.weight"].reason
    assert report["layers.2.conv.weight"].reason == "LeakyNet '1': averaging x 1"
    assert report["layers.3.conv.weight"].reason == "LeakyNet 'x': averaging x -99, noise (1-c) with c=0.99"
    assert report["layers.5.conv.weight"].reason == "LeakyNet 'k': identity x -99, noise (1-c) with c=0.99"
    with pytest.raises(ValueError, match="init_string='1_ii' has 3 letters; depth 10 needs 7"):
        LeakyNet(depth=10, init_string="1_ii")


@pytest.mark.parametrize("name,blocks,m", [("resnet20", 9, 2), ("resnet50", 16, 3)])
def test_fixup_scaling_matches_formula(name, blocks, m):
    model = create_model(name, norm="none", init="fixup", num_classes=10)
    report = model.init_report
    scale = blocks ** (-1 / (2 * m - 2))
    last = "stages.2.2" if name == "resnet20" else "stages.3.2"
    conv = dict(model.named_modules())[f"{last}.conv1"]
    fan_in = conv.weight[0].numel()
    assert math.isclose(conv.weight.std().item(), scale * math.sqrt(2 / fan_in), rel_tol=0.05)
    assert f"{blocks}^(-1/{2 * m - 2})" in report[f"{last}.conv1.weight"].reason
    last_conv = "conv2" if m == 2 else "conv3"
    assert not dict(model.named_parameters())[f"{last}.{last_conv}.weight"].any()
    assert not model.fc.weight.any()
    gates = [mod.weight.item() for mod in model.modules() if isinstance(mod, ScalarGate)]
    biases = [mod.bias.item() for mod in model.modules() if isinstance(mod, ScalarBias)]
    assert len(gates) == blocks and set(gates) == {1.0} and set(biases) == {0.0}


@pytest.mark.parametrize("scheme", ["skipinit", "rezero"])
def test_skipinit_rezero_gate_every_branch_off(scheme):
    model = create_model("resnet20", norm="none", init=scheme)
    gates = [m.weight.item() for m in model.modules() if isinstance(m, ScalarGate)]
    assert len(gates) == 9 and set(gates) == {0.0}
    assert "gated off" in model.init_report["stages.0.0.gate.weight"].reason
    with pytest.raises(ValueError, match="no residual gates"):
        create_model("resnet20", norm="bn", init=scheme)
    gated_bn = create_model("resnet20", norm="bn", gate=True, init=scheme)
    assert {m.weight.item() for m in gated_bn.modules() if isinstance(m, ScalarGate)} == {0.0}
