"""ConstNet and LeakyNet compute the official networks' functions (BeyondSigProp, commit 1523e8a).

The references below are written from the official ``model.py`` / ``remodel.py`` as plain functional
code over the model's state dict, not from detinit's modules. Every parameter is set to random values
first, so that each path (shortcut input, BatchNorm placement, bias and dropout order) changes the
output; at ConstNet's own init many of them are 0 and would hide a difference.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from detinit.models import create_model


def randomise_(model: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            scale = 0.3 if p.dim() > 1 else 0.5
            p.copy_(
                torch.randn(p.shape, generator=g, dtype=p.dtype) * scale + (1.0 if name.endswith("gate.weight") else 0)
            )
        for name, b in model.named_buffers():
            if name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)
            elif name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g) * 0.1)


def batch_norm(x: torch.Tensor, sd: dict[str, torch.Tensor], prefix: str, training: bool) -> torch.Tensor:
    return F.batch_norm(
        x,
        sd[prefix + "running_mean"].clone(),
        sd[prefix + "running_var"].clone(),
        sd[prefix + "weight"],
        sd[prefix + "bias"],
        training=training,
    )


def official_constnet(sd: dict[str, torch.Tensor], x: torch.Tensor, n: int, bn: bool, p: float, training: bool):
    """model.py ``WideResNet.forward`` / ``BasicBlock.forward``: the block's ReLU is in place, so
    ``x_out`` is relu(BN(x)) (or relu(x + b0)) by the time the 1x1 ``conv_res`` reads it."""
    out = F.conv2d(x, sd["conv1.weight"], padding=1)
    for stage in range(3):
        for j in range(n):
            key = f"stages.{stage}.{j}."
            stride = 2 if stage > 0 and j == 0 else 1
            x_out = batch_norm(out, sd, key + "pre.", training) if bn else out + sd[key + "pre.bias"]
            x_out = F.relu(x_out)
            res = F.conv2d(x_out, sd[key + "conv.weight"], stride=stride, padding=1)
            if not bn:
                res = res + sd[key + "bias.bias"]
            if p > 0:
                res = F.dropout(res, p=p, training=training)
            if not bn:
                res = sd[key + "gate.weight"] * res
            if key + "shortcut.weight" in sd:
                out = F.conv2d(x_out, sd[key + "shortcut.weight"], stride=stride) + res
            else:
                out = out + res
    out = F.avg_pool2d(F.relu(out), 8).flatten(1)
    return F.linear(out, sd["fc.weight"], sd["fc.bias"])


def official_lrnet(sd: dict[str, torch.Tensor], x: torch.Tensor, layers: int, alpha: float, bn: bool, training: bool):
    """remodel.py ``LRNet.forward`` / ``BasicBlock.forward`` at 1523e8a: ``lrelu(conv(x + b0))``, BN only
    on the odd layers (phase -1), no activation after the stem."""
    out = F.conv2d(x, sd["conv1.weight"], padding=1)
    for k in range(layers):
        key = f"layers.{k}."
        w = sd[key + "conv.weight"]
        stride = 2 if out.shape[1] != w.shape[0] and k > 0 else 1
        out = F.leaky_relu(F.conv2d(out + sd[key + "bias.bias"], w, stride=stride, padding=1), alpha)
        if bn and k % 2 == 1:
            out = batch_norm(out, sd, key + "bn.", training)
    out = F.avg_pool2d(F.leaky_relu(out, alpha), 8).flatten(1)
    return F.linear(out, sd["fc.weight"], sd["fc.bias"])


@pytest.mark.parametrize("norm", ["bn", "none"])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_constnet_is_the_official_function(norm, training, dropout):
    model = create_model("constnet", depth=10, widen=2, norm=norm, dropout=dropout)
    randomise_(model)
    model.train(training)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    sd = {k: v.detach() for k, v in model.state_dict().items()}
    torch.manual_seed(7)  # the same dropout masks on both sides: the masks are drawn in the same order
    got = model(x)
    torch.manual_seed(7)
    want = official_constnet(sd, x, n=2, bn=norm == "bn", p=dropout, training=training)
    assert torch.equal(got, want)


def test_constnet_shortcut_reads_relu_of_the_normalised_input():
    """The first shape-changing block at ConstNet's own init: its output is shortcut(relu(BN(x))), which
    differs from shortcut(BN(x)) (the function detinit computed before) by O(1)."""
    model = create_model("constnet_10_2")
    block = model.stages[1][0]
    x = torch.randn(8, 32, 16, 16, generator=torch.Generator().manual_seed(0))
    bn_x = F.batch_norm(x, None, None, training=True)
    want = F.conv2d(F.relu(bn_x), block.shortcut.weight, stride=2)  # the residual conv is 0 at init
    assert torch.allclose(block(x), want, atol=1e-6)
    assert (block(x) - F.conv2d(bn_x, block.shortcut.weight, stride=2)).abs().max() > 0.5


@pytest.mark.parametrize("norm", ["bn", "none"])
@pytest.mark.parametrize("training", [True, False])
def test_leakynet_is_the_official_function(norm, training):
    model = create_model("leakynet", depth=10, widen=2, norm=norm, alpha=0.1)
    randomise_(model)
    model.train(training)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    sd = {k: v.detach() for k, v in model.state_dict().items()}
    want = official_lrnet(sd, x, layers=6, alpha=0.1, bn=norm == "bn", training=training)
    assert torch.equal(model(x), want)


def test_leakynet_normalises_after_odd_layers_only():
    model = create_model("leakynet", depth=16, widen=1)
    with_bn = [k for k, layer in enumerate(model.layers) if isinstance(layer.bn, torch.nn.BatchNorm2d)]
    assert with_bn == [1, 3, 5, 7, 9, 11]
    # an identity pair followed by BN is BN(-x) exactly at init (phase +1, then phase -1 divided by alpha)
    x = torch.randn(4, 16, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    pair = model.layers[:2].double().train()
    torch.testing.assert_close(pair(x), F.batch_norm(-x, None, None, training=True), rtol=1e-9, atol=1e-9)
