"""The hook protocol (detinit.hooks): every hook of the example model has the effect the table promises."""

import pytest
import torch
from torch import nn

from detinit import initialize
from detinit.diagnostics import dead_channels, signal_propagation
from detinit.hooks import ExampleNet, channel_dim, declared_roles, is_residual_gate
from detinit.init.schemes import Scheme


def test_every_hook_of_the_example_model_is_read():
    net = ExampleNet(in_features=4, width=8, hidden=16, depth=2, classes=3)
    report = initialize(net, "zero", strict=True, branch_zero="end")  # the gate's hook reads residual_gate_value
    assert report["blocks.1.fc2.weight"].role == "branch_last"
    assert "ExampleBlock.detinit_roles()" in report["blocks.1.fc2.weight"].reason
    assert report["head.weight"].role == "classifier" and "get_classifier" in report["head.weight"].reason
    assert report["blocks.0.gate.weight"].rule == "hook" and net.blocks[0].gate.weight.item() == 1.0
    x = torch.randn(5, 4)
    assert torch.equal(net.forward_features(x), net.stem(x))  # every block the identity under ZerO
    assert torch.equal(net(x), torch.zeros(5, 3))
    rows = signal_propagation(net, x, torch.zeros(5, dtype=torch.long))
    assert [r.name for r in rows] == ["blocks.0", "blocks.1"]  # blocks are the modules declaring roles
    assert channel_dim(net) == 1 and channel_dim(nn.Linear(2, 2)) == 1
    assert declared_roles(net.blocks[0]) == {"fc1": "branch", "fc2": "branch_last"} and declared_roles(net) is None


@pytest.mark.parametrize("scheme, gate", [("skipinit", 0.0), ("rezero", 0.0), ("fixup", 1.0), ("kaiming", 1.0)])
def test_the_init_hook_gets_the_scheme_object(scheme, gate):
    net = ExampleNet()
    seen = []
    original = type(net.blocks[0].gate).detinit_init_

    def spy(self, scheme_obj, generator):
        seen.append(scheme_obj)
        return original(self, scheme_obj, generator)

    net.blocks[0].gate.detinit_init_ = spy.__get__(net.blocks[0].gate)
    report = initialize(net, scheme, seed=0)
    assert len(seen) == 1 and isinstance(seen[0], Scheme) and seen[0].name == scheme
    assert net.blocks[0].gate.weight.item() == gate == seen[0].residual_gate_value
    assert is_residual_gate(net.blocks[0].gate) and report["blocks.0.gate.weight"].rule == "hook"


def test_gated_schemes_refuse_a_model_without_residual_gates():
    with pytest.raises(ValueError, match="gate"):
        initialize(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)), "rezero")


def test_the_channel_dim_attribute_moves_where_diagnostics_look_for_channels():
    class TokenNet(ExampleNet):
        detinit_channel_dim = -1  # activations (batch, tokens, channels)

    net = TokenNet(in_features=4, width=8)
    initialize(net, "zero")
    x = torch.randn(2, 7, 4)  # 7 tokens
    rows = dead_channels(net, x)
    assert [r.channels for r in rows] == [8, 8]  # channels, not tokens
