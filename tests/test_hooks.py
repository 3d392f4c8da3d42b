"""The hook protocol (detinit.hooks): every hook of the example model has the effect the table promises."""

import pytest
import torch
from torch import nn

from detinit import hooks, initialize
from detinit.diagnostics import dead_channels, feature_diversity, signal_propagation
from detinit.diagnostics.inspect import inspect_model
from detinit.hooks import ExampleGate, ExampleNet, channel_dim, declared_roles, is_residual_gate
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


def _plain() -> nn.Module:  # a model whose own forward does not call forward_features
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


READERS = {  # hook -> (the module to carry it, the call that reads it), on a fresh model
    hooks.ROLES_HOOK: lambda: (net := ExampleNet(), lambda: initialize(net, "zero")),
    hooks.INIT_HOOK: lambda: (net := ExampleNet(), lambda: initialize(net, "zero")),  # moved onto a layer below
    hooks.BUFFERS_HOOK: lambda: (net := ExampleNet(), lambda: initialize(net, "zero")),
    hooks.CLASSIFIER_HOOK: lambda: (net := ExampleNet(), lambda: initialize(net, "zero")),
    hooks.FEATURES_HOOK: lambda: (
        net := _plain(),
        lambda: inspect_model(net, torch.randn(3, 4), torch.zeros(3, dtype=torch.long)),
    ),
}


def test_every_method_hook_has_a_reader_here():
    assert set(READERS) == set(hooks.METHOD_HOOKS)


@pytest.mark.parametrize("hook", hooks.METHOD_HOOKS)
@pytest.mark.parametrize("value", [{"fc1": "branch"}, "head", 3])
def test_a_hook_given_as_data_is_refused_naming_it(hook, value):
    """A method hook set to data (a dict where a method belongs) was skipped without a word: now refused."""
    if hook == hooks.INIT_HOOK:  # on a module with parameters of its own (on one without, it is refused anyway)
        net = ExampleNet()
        holder, read = net.blocks[0].fc1, lambda: initialize(net, "zero")
    else:
        holder, read = READERS[hook]()
    holder.__dict__[hook] = value
    with pytest.raises(TypeError, match=rf"{type(holder).__name__}.{hook} is a {type(value).__name__}, not a method"):
        read()


@pytest.mark.parametrize("value", ["x", 1.5, True, None.__class__])
def test_a_channel_dim_that_is_not_an_int_is_refused(value):
    net = ExampleNet()
    net.detinit_channel_dim = value
    with pytest.raises(TypeError, match=r"ExampleNet.detinit_channel_dim is .*; it must be an int"):
        feature_diversity(net, torch.randn(3, 4))
    net.detinit_channel_dim = 5
    with pytest.raises(ValueError, match=r"channel_dim=5 \(the argument, or the model's detinit_channel_dim\)"):
        signal_propagation(net, torch.randn(3, 4))


class _Flag(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@pytest.mark.parametrize("flag", ["no", 1, None.__class__])
def test_a_gate_flag_must_be_a_bool_and_a_gate_must_set_itself(flag):
    net = ExampleNet()
    gate = _Flag()
    gate.is_residual_gate = flag
    net.blocks[0].gate = gate
    with pytest.raises(TypeError, match=r"_Flag.is_residual_gate is .*; it must be True or False"):
        initialize(net, "skipinit")
    gate.is_residual_gate = True  # without detinit_init_: skipinit would leave the branch on
    with pytest.raises(TypeError, match="_Flag says is_residual_gate = True but has no detinit_init_"):
        initialize(net, "skipinit")
    gate.is_residual_gate = False
    assert not is_residual_gate(gate) and is_residual_gate(ExampleGate())


def test_init_hook_reasons_name_only_the_module_s_own_parameters():
    gate = ExampleGate()
    gate.detinit_init_ = lambda scheme, generator: {"weight": "ok", "bias": "not a parameter of the gate"}
    with pytest.raises(ValueError, match=r"returned reasons for bias, which is not among the module's own param"):
        initialize(gate, "zero")


def test_an_init_hook_on_a_module_without_parameters_is_refused():
    net = ExampleNet()
    net.detinit_init_ = lambda scheme, generator: None  # the root holds no parameter of its own: never called
    with pytest.raises(ValueError, match=r"ExampleNet.detinit_init_\(\) would never be called: ExampleNet \(the mod"):
        initialize(net, "zero")


def test_roles_name_sub_modules_not_the_block_itself():
    net = ExampleNet()
    net.blocks[0].detinit_roles = lambda: {"": "branch", "fc2": "branch_last"}
    with pytest.raises(ValueError, match=r"naming sub-modules of the block \(not the block itself, ''\)"):
        initialize(net, "zero")


def test_forward_features_must_return_one_tensor():
    net = _plain()
    net.forward_features = lambda x: (x, x)
    with pytest.raises(ValueError, match=r"Sequential.forward_features\(x\) returned a tuple; it must return"):
        inspect_model(net, torch.randn(3, 4), torch.zeros(3, dtype=torch.long))


@pytest.mark.parametrize("module", [5, "x", None])
def test_the_hook_lookups_take_modules_only(module):
    with pytest.raises(TypeError, match="find_hook: module must be a torch.nn.Module"):
        declared_roles(module)
