"""Execution modes: which are chosen where, what ZerO keeps exactly under bf16, graphs without breaks,
and the modes a run records and resumes in."""

import json
from copy import deepcopy

import pytest
import torch
import torch._dynamo
from torch import nn

from detinit import initialize
from detinit.models import create_model
from detinit.nn import HadamardTransform
from detinit.train import ConfigError, TrainConfig, train
from detinit.train import modes as modes_module
from detinit.train.modes import FP32, MODE_NAMES, Modes, auto_modes, resolve_modes, stem_layer

UNSET = {"amp": None, "channels_last": None, "compile": None}


def test_the_mode_names_are_the_benchmarks_and_fp32_is_all_off():
    assert list(MODE_NAMES) == ["fp32", "fp32+cl", "fp32+compile", "bf16", "bf16+cl", "bf16+cl+compile"]
    assert MODE_NAMES["fp32"] == FP32 == Modes() and MODE_NAMES["bf16+cl"] == Modes(amp=True, channels_last=True)


def test_convolutional_nets_get_channels_last_and_nothing_gets_bf16_unless_asked():
    conv, gpt = create_model("resnet20"), create_model("gpt", vocab_size=32, context=8)
    assert auto_modes(conv) == Modes(channels_last=True)
    assert auto_modes(gpt) == FP32
    assert auto_modes(conv, sharded=True) == FP32  # FSDP shards have no NHWC layout


def test_set_keys_win_and_a_resumed_run_keeps_the_modes_it_started_with():
    conv = create_model("resnet20")
    assert resolve_modes({"amp": False, "channels_last": None, "compile": True}, conv) == Modes(
        channels_last=True, compile=True
    )
    started = {"amp": True, "channels_last": False, "compile": False}
    assert resolve_modes(UNSET, conv, started) == Modes(amp=True)
    assert resolve_modes(UNSET, conv, {}) == FP32  # a run started before the modes existed ran in fp32
    assert resolve_modes({**UNSET, "channels_last": True}, conv, {}) == Modes(channels_last=True)


@pytest.mark.parametrize("native", [True, False])
def test_amp_native_asks_for_bf16_only_where_the_device_computes_it(monkeypatch, native):
    """``amp: native`` follows the device's probe on a fresh run and what the run started in on a resume, so
    a run moved to another machine never changes its arithmetic mid-run."""
    monkeypatch.setattr(modes_module, "native_bf16", lambda device: native)
    conv, asked = create_model("resnet20"), {**UNSET, "amp": "native"}
    assert resolve_modes(asked, conv, device=torch.device("cpu")) == Modes(amp=native, channels_last=True)
    started = {"amp": not native, "channels_last": False, "compile": False}
    assert resolve_modes(asked, conv, started, device=torch.device("cpu")) == Modes(amp=not native)


def test_amp_takes_native_and_nothing_else():
    assert TrainConfig.from_dict({"amp": "native"}).amp == "native"
    with pytest.raises(ConfigError, match=r"amp must be true, false, null .* or 'native' .* got 'yes'"):
        TrainConfig.from_dict({"amp": "yes"})


def test_zero_logits_and_identity_layers_stay_exact_under_bf16_autocast():
    """ZerO's promises made of zeros and ones hold exactly in bf16: zero logits, a zero branch adds exactly 0,
    an identity layer passes its input rounded once to bf16 (ones times a bf16 value, summed with zeros)."""
    modes = Modes(amp=True, channels_last=True)
    x = torch.randn(4, 1, 28, 28)
    net = modes.prepare(create_model("zero_resnet20", num_classes=10, in_chans=1).eval())
    with modes.autocast(x.device):
        assert torch.count_nonzero(net(modes.inputs(x))) == 0
    linear, conv = nn.Linear(32, 32), nn.Conv2d(8, 8, 3, padding=1).to(memory_format=torch.channels_last)
    initialize(linear, "zero")
    initialize(conv, "zero")
    v, image = torch.randn(5, 32), modes.inputs(torch.randn(2, 8, 6, 6))
    with modes.autocast(x.device):
        assert torch.equal(linear(v), v.bfloat16()) and torch.equal(conv(image), image.bfloat16())


def test_under_amp_the_stem_alone_runs_in_fp32():
    model = Modes(amp=True).apply_(create_model("resnet20", num_classes=10, in_chans=1))
    stem = stem_layer(model)
    dtypes = {}
    for name in ("stem.0", "stages.0.0.conv1", "fc"):
        module = dict(model.named_modules())[name]
        module.register_forward_hook(lambda m, args, out, name=name: dtypes.update({name: out.dtype}))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(torch.randn(2, 1, 12, 12))
    assert stem is model.stem[0] and dtypes == {
        "stem.0": torch.float32,
        "stages.0.0.conv1": torch.bfloat16,
        "fc": torch.bfloat16,
    }
    assert list(model.state_dict()) == list(create_model("resnet20", num_classes=10, in_chans=1).state_dict())
    assert isinstance(stem, nn.Conv2d) and type(stem).__name__ == "Conv2d"
    copy = deepcopy(model)  # the diagnostics work on copies: a copy computes with its own weights
    with torch.no_grad():
        copy.stem[0].weight.zero_()
    x = torch.randn(2, 1, 12, 12)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.count_nonzero(copy.stem[0](x)) == 0 and torch.count_nonzero(model.stem[0](x)) > 0
    assert stem_layer(create_model("gpt", vocab_size=32, context=8)) is None  # it reads token ids
    vit = create_model("vit", num_classes=10, in_chans=1, image_size=16)
    assert stem_layer(vit) is vit.embed  # the patch embedding reads the pixels
    torch._dynamo.reset()
    assert torch._dynamo.explain(model)(torch.randn(2, 1, 12, 12)).graph_break_count == 0


@pytest.mark.parametrize(
    "name, kwargs, shape",
    [
        ("zero_resnet20", {"num_classes": 10, "in_chans": 1}, (2, 1, 16, 16)),
        ("zero_resnet18", {"num_classes": 10, "in_chans": 3}, (2, 3, 16, 16)),
        ("constnet_16_1", {"num_classes": 10, "in_chans": 3}, (2, 3, 16, 16)),
        ("leakynet", {"num_classes": 10, "in_chans": 3}, (2, 3, 16, 16)),
        ("mnist_mlp", {"num_classes": 10, "in_chans": 1}, (2, 1, 28, 28)),
        ("resnet20", {"num_classes": 10, "in_chans": 1, "norm": "none"}, (2, 1, 16, 16)),
        ("gpt", {"vocab_size": 32, "context": 8}, (2, 8)),
        ("vit", {"num_classes": 10, "in_chans": 1, "image_size": 16}, (2, 1, 16, 16)),
    ],
)
def test_the_papers_models_compile_as_one_graph(name, kwargs, shape):
    model = create_model(name, **kwargs)
    x = torch.randint(0, 32, shape) if name == "gpt" else torch.randn(shape)
    torch._dynamo.reset()
    explained = torch._dynamo.explain(model)(x)
    assert explained.graph_break_count == 0 and explained.graph_count == 1, explained.break_reasons


def test_the_hadamard_transform_compiles_as_one_graph():
    torch._dynamo.reset()
    explained = torch._dynamo.explain(HadamardTransform(24))(torch.randn(2, 24, 4, 4))
    assert explained.graph_break_count == 0 and explained.graph_count == 1, explained.break_reasons


def test_a_run_records_the_modes_it_ran_in(tiny_config, tmp_path):
    train(tiny_config(model="resnet20", model_args={}, amp=False, channels_last=False), tmp_path / "a")
    assert json.loads((tmp_path / "a" / "run.json").read_text())["modes"] == {
        "amp": False,
        "channels_last": False,
        "compile": False,
    }
    train(tiny_config(model="resnet20", model_args={}), tmp_path / "b")
    recorded = json.loads((tmp_path / "b" / "run.json").read_text())["modes"]
    assert recorded == {"amp": False, "channels_last": True, "compile": False}
