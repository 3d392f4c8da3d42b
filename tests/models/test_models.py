"""Every registered model: builds, runs forward/backward on 1- and 3-channel inputs, and the registry."""

import math

import pytest
import torch

from detinit import create_model, list_models
from detinit.models import model_entry

SMALL = {  # constructor arguments that keep CPU tests fast
    "constnet": {"depth": 10, "widen": 1},
    "leakynet": {"depth": 10, "widen": 1},
    "deep_mlp": {"depth": 3, "width": 32},
    "mnist_mlp": {"hidden": 64},
    "vit": {"depth": 2, "width": 32, "heads": 4},
}
LANGUAGE = {"gpt", "gpt2_small"}  # token models: tests/models/test_transformer.py
IMAGE_MODELS = [n for n in list_models() if n not in LANGUAGE]
IMAGENET = {"resnet18", "resnet34", "resnet50", "zero_resnet18_imagenet", "zero_resnet50_imagenet"}
HEAVY = {"constnet_16_10", "constnet_28_10"}  # only forward on a tiny batch


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_forward_backward_every_model(name):
    kwargs = dict(SMALL.get(name, {}))
    size = 64 if name in IMAGENET else 32
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    if "mlp" in name or name == "vit":
        kwargs.update(in_chans=3, image_size=size)
    for init in (None, "kaiming"):
        model = create_model(name, num_classes=7, init=init, **kwargs)
        out = model(x)
        assert out.shape == (2, 7) and torch.isfinite(out).all()
        if name in HEAVY:
            break
        out.square().sum().backward()
        assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
        assert model.init_report.unknown == []


@pytest.mark.parametrize("name", [n for n in IMAGE_MODELS if n not in HEAVY and n not in IMAGENET])
def test_one_channel_28x28(name):
    model = create_model(name, num_classes=10, in_chans=1, **SMALL.get(name, {}))
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_parameter_counts_of_paper_configurations():
    # ConstNet WRN-16-10, 10 classes: the official code reports 17,115,390 = 17,115,354 used here
    # + 36 per-block scalars (a scale and two biases in each of 12 blocks) it registers but never uses.
    assert sum(p.numel() for p in create_model("constnet_16_10").parameters()) == 17_115_390 - 36
    bn = create_model("constnet_16_10")
    assert sum(p.numel() for m in bn.modules() if isinstance(m, torch.nn.BatchNorm2d) for p in m.parameters()) == 7_712
    r18 = sum(p.numel() for p in create_model("resnet18", stem="cifar").parameters())
    assert r18 == 11_173_962  # "about 11.2 M"
    z18 = sum(p.numel() for p in create_model("zero_resnet18").parameters())
    assert 11.1e6 < z18 < 11.2e6
    assert sum(p.numel() for p in create_model("resnet20", shortcut="pad").parameters()) == 269_722  # He et al.: 0.27 M
    assert sum(p.numel() for p in create_model("resnet50", num_classes=1000).parameters()) == 25_557_032


def test_registry_errors_and_defaults():
    with pytest.raises(ValueError, match=r"unknown model 'resnet21'; available: .*Did you mean .*resnet20"):
        create_model("resnet21")
    with pytest.raises(ValueError, match=r"create_model\('resnet20'\).*widen"):
        create_model("resnet20", widen=3)
    with pytest.raises(ValueError, match=r"norm='ln' is not supported; choose one of \('bn', 'none'\)"):
        create_model("zero_resnet20", norm="ln")
    with pytest.raises(ValueError, match="depth must be 6n\\+2"):
        from detinit.models.resnet import _cifar_resnet

        _cifar_resnet(21)
    with pytest.raises(ValueError, match="depth must be 3n\\+4"):
        create_model("constnet", depth=15)
    with pytest.raises(ValueError, match="in_chans=128 must not exceed the stem width 16"):
        create_model("zero_resnet20", in_chans=128)
    assert model_entry("zero_resnet18").default_init == "zero"
    assert model_entry("constnet_16_10").default_init == "constnet"
    assert math.isfinite(create_model("resnet20", init="xavier", seed=3)(torch.zeros(1, 3, 8, 8)).sum().item())
