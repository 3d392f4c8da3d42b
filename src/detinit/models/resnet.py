"""Standard ResNets (He et al. 2016) with and without BatchNorm, for every scheme.

* ``resnet20/32/56/110``: the CIFAR family (3 stages, widths 16/32/64,
  ``(depth - 2) / 6`` basic blocks per stage) -- runs on a CPU;
* ``resnet18/34/50``: the ImageNet family, with ``stem="imagenet"`` (7x7/2 conv
  + max-pool, default) or ``stem="cifar"`` (3x3/1 conv, for 32x32 inputs).

``norm="none"`` removes every BatchNorm and adds Fixup's scalar biases
(0 at init) before each conv and activation and a scalar multiplier per
branch (:class:`detinit.nn.ScalarGate`: 1 under Fixup, 0 under SkipInit and
ReZero). ``gate=True`` adds the multiplier to BN networks too.

Blocks declare their roles (``branch`` / ``branch_last``, and with BatchNorm
``branch_last_norm`` for the norm after the branch's last conv), the model its
classifier (``get_classifier``), so :func:`detinit.initialize` gives the
ZerO / Fixup / zero-init-last rules without guessing from names. Under
``zero`` this is ZerO applied to a standard ResNet (the TMLR reading):
branch ends and the classifier at 0, identity / partial identity /
Hadamard elsewhere. With BatchNorm the branch's zero is the last norm's scale
(``bn2`` / ``bn3``) and the conv before it gets its Algorithm-1/2 matrix;
``variant="paper"`` zeroes the conv itself, as the paper's rules read literally.
"""

from __future__ import annotations

import torch
from torch import nn

from ..contract import checked_arguments
from ..nn import ChannelPad, ScalarGate, make_relu
from ._layers import CNN_NORMS, bias_if_free, build_stages, check_choice, conv1x1, conv3x3
from .registry import register_model

SHORTCUTS = ("conv", "pad")
STEMS = ("cifar", "imagenet")


def _norm(norm: str, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if norm == "bn" else nn.Identity()


def _shortcut(in_ch: int, out_ch: int, stride: int, norm: str, kind: str) -> nn.Module:
    if stride == 1 and in_ch == out_ch:
        return nn.Identity()
    if kind == "pad":
        return ChannelPad(in_ch, out_ch, stride)
    return nn.Sequential(conv1x1(in_ch, out_ch, stride), _norm(norm, out_ch))


class BasicBlock(nn.Module):
    """Post-activation basic block: ``relu(x + gate * conv-bn-relu-conv-bn(x))``."""

    expansion = 1

    def __init__(self, in_ch: int, planes: int, stride: int, norm: str, gate: bool, relu: str, shortcut: str) -> None:
        super().__init__()
        self.bias1a, self.bias1b, self.bias2a, self.bias2b = (bias_if_free(norm) for _ in range(4))
        self.conv1, self.bn1, self.act1 = conv3x3(in_ch, planes, stride), _norm(norm, planes), make_relu(relu)
        self.conv2, self.bn2 = conv3x3(planes, planes), _norm(norm, planes)
        self.gate = ScalarGate() if gate else nn.Identity()
        self.shortcut = _shortcut(in_ch, planes, stride, norm, shortcut)
        self.act2 = make_relu(relu)

    def detinit_roles(self) -> dict[str, str]:
        roles = {"conv1": "branch", "conv2": "branch_last"}
        return roles | ({"bn2": "branch_last_norm"} if isinstance(self.bn2, nn.BatchNorm2d) else {})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_in = self.bias1a(x)
        out = self.act1(self.bias1b(self.bn1(self.conv1(x_in))))
        out = self.bias2b(self.gate(self.bn2(self.conv2(self.bias2a(out)))))
        return self.act2(out + self.shortcut(x_in))


class Bottleneck(nn.Module):
    """Post-activation bottleneck: 1x1 reduce, 3x3 (strided), 1x1 expand (x4)."""

    expansion = 4

    def __init__(self, in_ch: int, planes: int, stride: int, norm: str, gate: bool, relu: str, shortcut: str) -> None:
        super().__init__()
        out_ch = planes * self.expansion
        self.bias1a, self.bias1b, self.bias2a, self.bias2b, self.bias3a, self.bias3b = (
            bias_if_free(norm) for _ in range(6)
        )
        self.conv1, self.bn1, self.act1 = conv1x1(in_ch, planes), _norm(norm, planes), make_relu(relu)
        self.conv2, self.bn2, self.act2 = conv3x3(planes, planes, stride), _norm(norm, planes), make_relu(relu)
        self.conv3, self.bn3 = conv1x1(planes, out_ch), _norm(norm, out_ch)
        self.gate = ScalarGate() if gate else nn.Identity()
        self.shortcut = _shortcut(in_ch, out_ch, stride, norm, shortcut)
        self.act3 = make_relu(relu)

    def detinit_roles(self) -> dict[str, str]:
        roles = {"conv1": "branch", "conv2": "branch", "conv3": "branch_last"}
        return roles | ({"bn3": "branch_last_norm"} if isinstance(self.bn3, nn.BatchNorm2d) else {})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_in = self.bias1a(x)
        out = self.act1(self.bias1b(self.bn1(self.conv1(x_in))))
        out = self.act2(self.bias2b(self.bn2(self.conv2(self.bias2a(out)))))
        out = self.bias3b(self.gate(self.bn3(self.conv3(self.bias3a(out)))))
        return self.act3(out + self.shortcut(x_in))


class ResNet(nn.Module):
    """A configurable ResNet; see the module docstring for the variants.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers: blocks per stage.
        widths: planes per stage (the first is also the stem width).
        num_classes: output classes.
        in_chans: input channels.
        stem: ``"cifar"`` or ``"imagenet"``.
        norm: ``"bn"`` or ``"none"`` (Fixup-style scalar biases and gates).
        gate: add a :class:`ScalarGate` per branch (default: ``norm == "none"``).
        relu: ``"torch"`` or ``"zero"`` (:class:`detinit.nn.ZeroReLU`).
        shortcut: ``"conv"`` (1x1 projection) or ``"pad"`` (subsample + zero channels).
    """

    @checked_arguments()
    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: list[int],
        widths: list[int],
        num_classes: int = 10,
        in_chans: int = 3,
        stem: str = "cifar",
        norm: str = "bn",
        gate: bool | None = None,
        relu: str = "torch",
        shortcut: str = "conv",
    ) -> None:
        super().__init__()
        check_choice("stem", stem, STEMS)
        check_choice("norm", norm, CNN_NORMS)
        check_choice("shortcut", shortcut, SHORTCUTS)
        if len(layers) != len(widths):
            raise ValueError(f"layers {layers} and widths {widths} must have the same length")
        gate = norm == "none" if gate is None else gate
        if stem == "cifar":
            conv = conv3x3(in_chans, widths[0])
            pool: nn.Module = nn.Identity()
        else:
            conv = nn.Conv2d(in_chans, widths[0], 7, stride=2, padding=3, bias=False)
            pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.stem = nn.Sequential(conv, _norm(norm, widths[0]), bias_if_free(norm), make_relu(relu), pool)
        self.stages, in_ch = build_stages(
            lambda c, p, s: block(c, p, s, norm, gate, relu, shortcut), layers, widths, block.expansion
        )
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), bias_if_free(norm))
        self.fc = nn.Linear(in_ch, num_classes)
        self.num_features = in_ch

    def get_classifier(self) -> nn.Module:
        return self.fc

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.stages(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))


def _cifar_resnet(depth: int):
    if (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
    n = (depth - 2) // 6

    def build(**kwargs: object) -> ResNet:
        return ResNet(BasicBlock, [n, n, n], [16, 32, 64], **kwargs)  # type: ignore[arg-type]

    return build


for _depth in (20, 32, 56, 110):
    register_model(f"resnet{_depth}", "kaiming", f"CIFAR ResNet-{_depth} (He et al. 2016), widths 16/32/64")(
        _cifar_resnet(_depth)
    )


@register_model("resnet18", "kaiming", "ResNet-18, basic blocks [2,2,2,2], widths 64-512")
def resnet18(stem: str = "imagenet", **kwargs: object) -> ResNet:
    return ResNet(BasicBlock, [2, 2, 2, 2], [64, 128, 256, 512], stem=stem, **kwargs)  # type: ignore[arg-type]


@register_model("resnet34", "kaiming", "ResNet-34, basic blocks [3,4,6,3], widths 64-512")
def resnet34(stem: str = "imagenet", **kwargs: object) -> ResNet:
    return ResNet(BasicBlock, [3, 4, 6, 3], [64, 128, 256, 512], stem=stem, **kwargs)  # type: ignore[arg-type]


@register_model("resnet50", "kaiming", "ResNet-50, bottlenecks [3,4,6,3], widths 64-512 (x4)")
def resnet50(stem: str = "imagenet", **kwargs: object) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3], [64, 128, 256, 512], stem=stem, **kwargs)  # type: ignore[arg-type]
