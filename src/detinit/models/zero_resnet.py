r"""ZerO's ResNets with extra skips and fixed Hadamard transforms ("AugSkip").

As in the official ICLR-era code (``cifar/augskip_resnet.py`` and
``imagenet/augskip_resnet.py`` of jiaweizzhao/ZerO-initialization):

* **Stem**: ``out = conv1(x) + T(x)`` with ``conv1`` at 0 and ``T`` a fixed
  zero-padding of the input channels to the stem width followed by a
  normalised Hadamard transform (ImageNet stem: 7x7/2 conv, ``T`` applied to
  the max-pooled image, then max-pool).
* **Basic block** (pre-activation): ``out = bn1(relu(x))``;
  ``sc = shortcut(out)`` if the shape changes else ``x``;
  ``out = conv1(out) + sc``; ``out = conv2(bn2(relu(out))) + out``.
  ``conv1`` and ``conv2`` start at 0.
* **Bottleneck**: ``conv1`` (1x1) partial identity, ``conv2`` (3x3) and
  ``conv3`` (1x1) at 0, an extra skip adds ``conv1``'s output to ``conv2``'s
  (subsampled when strided).
* **Shape-changing shortcut**: a 1x1 conv set to the partial identity followed
  by a fixed Hadamard transform (:class:`detinit.nn.HadamardTransform`; the
  official code only had power-of-two widths, other widths get the
  block-diagonal transform).
* **Head**: relu -> bn -> global average pool -> Linear at 0.
* ``norm="none"``: BatchNorms become Fixup-style scalar biases (0) and each
  last branch gets a scalar multiplier (1), as the official no-BN ResNet-50.
* ``relu="zero"`` (default): the official ReLU that passes the gradient at 0.

At initialisation under ``zero`` the network outputs exactly 0 and only the
classifier receives a gradient at step 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..contract import checked_arguments
from ..nn import ChannelPad, HadamardTransform, ScalarGate, make_relu
from ._layers import CNN_NORMS, bias_if_free, build_stages, check_choice, conv1x1, conv3x3, norm_or_bias
from .registry import OFFICIAL_ZERO, register_model

STEMS = ("cifar", "imagenet")


def hadamard_shortcut(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    """1x1 conv (partial identity under ZerO) followed by a fixed Hadamard transform."""
    return nn.Sequential(conv1x1(in_ch, out_ch, stride), HadamardTransform(out_ch))


class ZerOBasicBlock(nn.Module):
    """Pre-activation basic block with an extra skip around ``conv1``."""

    expansion = 1

    def __init__(self, in_ch: int, planes: int, stride: int, norm: str, gate: bool, relu: str) -> None:
        super().__init__()
        self.act1, self.pre1 = make_relu(relu), norm_or_bias(norm, in_ch)
        self.conv1, self.post1 = conv3x3(in_ch, planes, stride), bias_if_free(norm)
        self.act2, self.pre2 = make_relu(relu), norm_or_bias(norm, planes)
        self.conv2, self.gate, self.post2 = (
            conv3x3(planes, planes),
            (ScalarGate() if gate else nn.Identity()),
            bias_if_free(norm),
        )
        self.shortcut = hadamard_shortcut(in_ch, planes, stride) if stride != 1 or in_ch != planes else None

    def detinit_roles(self) -> dict[str, str]:
        roles = {"conv1": "branch_last", "conv2": "branch_last"}
        return roles | ({"shortcut.0": "pre_hadamard"} if self.shortcut is not None else {})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pre1(self.act1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.post1(self.conv1(out)) + skip
        return self.post2(self.gate(self.conv2(self.pre2(self.act2(out))))) + out


class ZerOBottleneck(nn.Module):
    """Pre-activation bottleneck with an extra skip from ``conv1`` to ``conv2``'s output."""

    expansion = 4

    def __init__(self, in_ch: int, planes: int, stride: int, norm: str, gate: bool, relu: str) -> None:
        super().__init__()
        out_ch = planes * self.expansion
        self.act1, self.pre1 = make_relu(relu), norm_or_bias(norm, in_ch)
        self.conv1, self.post1 = conv1x1(in_ch, planes), bias_if_free(norm)
        self.act2, self.pre2 = make_relu(relu), norm_or_bias(norm, planes)
        self.conv2, self.post2 = conv3x3(planes, planes, stride), bias_if_free(norm)
        self.act3, self.pre3 = make_relu(relu), norm_or_bias(norm, planes)
        self.conv3, self.gate, self.post3 = (
            conv1x1(planes, out_ch),
            (ScalarGate() if gate else nn.Identity()),
            bias_if_free(norm),
        )
        self.stride = stride
        self.downsample = hadamard_shortcut(in_ch, out_ch, stride) if stride != 1 or in_ch != out_ch else None

    def detinit_roles(self) -> dict[str, str]:
        roles = {"conv2": "branch_last", "conv3": "branch_last"}
        return roles | ({"downsample.0": "pre_hadamard"} if self.downsample is not None else {})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.pre1(self.act1(x))
        identity = self.downsample(a) if self.downsample is not None else x
        out = self.post1(self.conv1(a))
        skip2 = out[:, :, :: self.stride, :: self.stride] if self.stride > 1 else out
        out = self.post2(self.conv2(self.pre2(self.act2(out)))) + skip2
        return self.post3(self.gate(self.conv3(self.pre3(self.act3(out))))) + identity


class ZerOResNet(nn.Module):
    """ZerO's AugSkip pre-activation ResNet; see the module docstring.

    Args:
        block: :class:`ZerOBasicBlock` or :class:`ZerOBottleneck`.
        layers: blocks per stage.
        widths: planes per stage (``widths[0]`` is the stem width).
        num_classes: output classes.
        in_chans: input channels (``in_chans <= widths[0]``).
        stem: ``"cifar"`` (3x3/1) or ``"imagenet"`` (7x7/2 + max-pool).
        norm: ``"bn"`` or ``"none"``.
        gate: scalar multiplier per block (default ``norm == "none"``).
        relu: ``"zero"`` (official, gradient 1 at 0) or ``"torch"``.
    """

    @checked_arguments()
    def __init__(
        self,
        block: type[ZerOBasicBlock] | type[ZerOBottleneck],
        layers: list[int],
        widths: list[int],
        num_classes: int = 10,
        in_chans: int = 3,
        stem: str = "cifar",
        norm: str = "bn",
        gate: bool | None = None,
        relu: str = "zero",
    ) -> None:
        super().__init__()
        check_choice("stem", stem, STEMS)
        check_choice("norm", norm, CNN_NORMS)
        if len(layers) != len(widths):
            raise ValueError(f"layers {layers} and widths {widths} must have the same length")
        if in_chans > widths[0]:
            raise ValueError(f"in_chans={in_chans} must not exceed the stem width {widths[0]} (the skip pads channels)")
        gate = norm == "none" if gate is None else gate
        self.imagenet_stem = stem == "imagenet"
        if self.imagenet_stem:
            self.conv1 = nn.Conv2d(in_chans, widths[0], 7, stride=2, padding=3, bias=False)
        else:
            self.conv1 = conv3x3(in_chans, widths[0])
        self.stem_skip = nn.Sequential(ChannelPad(in_chans, widths[0]), HadamardTransform(widths[0]))
        self.act = make_relu(relu)
        self.norm1 = norm_or_bias(norm, widths[0])
        self.stages, in_ch = build_stages(
            lambda c, p, s: block(c, p, s, norm, gate, relu), layers, widths, block.expansion
        )
        self.norm2 = norm_or_bias(norm, in_ch)
        self.fc = nn.Linear(in_ch, num_classes)
        self.num_features = in_ch

    def detinit_roles(self) -> dict[str, str]:
        return {"conv1": "branch_last"}  # added to the fixed Hadamard skip

    def get_classifier(self) -> nn.Module:
        return self.fc

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if self.imagenet_stem:
            out = self.conv1(x) + self.stem_skip(F.max_pool2d(x, 3, stride=2, padding=1))
            out = F.max_pool2d(self.norm1(self.act(out)), 3, stride=2, padding=1)
        else:
            out = self.norm1(self.act(self.conv1(x) + self.stem_skip(x)))
        out = self.norm2(self.act(self.stages(out)))
        return out.mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))


_WIDTHS = [64, 128, 256, 512]


@register_model("zero_resnet18", "zero", "ZerO AugSkip pre-act ResNet-18 (CIFAR stem)", OFFICIAL_ZERO)
def zero_resnet18(**kwargs: object) -> ZerOResNet:
    return ZerOResNet(ZerOBasicBlock, [2, 2, 2, 2], _WIDTHS, **kwargs)  # type: ignore[arg-type]


@register_model("zero_resnet34", "zero", "ZerO AugSkip pre-act ResNet-34 (CIFAR stem)", OFFICIAL_ZERO)
def zero_resnet34(**kwargs: object) -> ZerOResNet:
    return ZerOResNet(ZerOBasicBlock, [3, 4, 6, 3], _WIDTHS, **kwargs)  # type: ignore[arg-type]


@register_model("zero_resnet50", "zero", "ZerO AugSkip bottleneck ResNet-50 (CIFAR stem)", OFFICIAL_ZERO)
def zero_resnet50(**kwargs: object) -> ZerOResNet:
    return ZerOResNet(ZerOBottleneck, [3, 4, 6, 3], _WIDTHS, **kwargs)  # type: ignore[arg-type]


@register_model("zero_resnet18_imagenet", "zero", "ZerO AugSkip ResNet-18, ImageNet stem", OFFICIAL_ZERO)
def zero_resnet18_imagenet(**kwargs: object) -> ZerOResNet:
    return ZerOResNet(ZerOBasicBlock, [2, 2, 2, 2], _WIDTHS, stem="imagenet", **kwargs)  # type: ignore[arg-type]


@register_model(
    "zero_resnet50_imagenet", "zero", "ZerO AugSkip ResNet-50, ImageNet stem (official ImageNet model)", OFFICIAL_ZERO
)
def zero_resnet50_imagenet(**kwargs: object) -> ZerOResNet:
    kwargs.setdefault("num_classes", 1000)
    return ZerOResNet(ZerOBottleneck, [3, 4, 6, 3], _WIDTHS, stem="imagenet", **kwargs)  # type: ignore[arg-type]


@register_model(
    "zero_resnet20",
    "zero",
    "ZerO AugSkip pre-act ResNet-20 (3 stages, 16/32/64): the CPU-sized ZerO net",
    OFFICIAL_ZERO,
)
def zero_resnet20(**kwargs: object) -> ZerOResNet:
    return ZerOResNet(ZerOBasicBlock, [3, 3, 3], [16, 32, 64], **kwargs)  # type: ignore[arg-type]
