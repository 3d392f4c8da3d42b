r"""ConstNet and LeakyNet (Blumenfeld, Gilboa & Soudry 2020).

Both compute the functions of the official networks (``BeyondSigProp`` at
commit 1523e8a: ``model.py`` and ``remodel.py``); ``tests/models/
test_official_function.py`` pins them against a reference written from that code.

**ConstNet**: a pre-activation Wide-ResNet with one 3x3 conv per block.
``n = (depth - 4) / 3`` blocks per stage, widths ``[16, 16k, 32k, 64k]``,
strides 1/2/2::

    a = relu(BN(x)); out = conv3x3(a); out = dropout(out, p)
    out = x + out                 if the shape is unchanged
    out = conv1x1_stride(a) + out otherwise

The shortcut reads ``a = relu(BN(x))``: the official block applies an in-place
ReLU to ``BN(x)`` before its 1x1 shortcut reads it (as in every pre-activation
WRN). Head: relu -> average pool over the whole map -> Linear. Under the
``constnet`` scheme the stem and the 1x1 shortcuts average channels, the
residual convs and the classifier are 0: every channel at every depth is the
same function of the input. ``norm="none"`` is the official no-BN mode:
``a = relu(x + b0)``, ``out = gate * dropout(conv(a) + b1)``. The per-block
scalars the official BN mode registers but never uses are left out: WRN-16-10
has 17,115,354 parameters here, 36 fewer than the official 17,115,390.

Differences from the official code, on purpose: each stage runs once (the
official ``NetworkBlock.forward`` runs its layers twice and returns the
second result: the same output, but BatchNorm's running statistics are
updated twice per step and dropout draws two masks); ``in_chans`` may differ
from 3; the head pools over the whole final map, which is the official
``avg_pool2d(8)`` on 32 x 32 inputs and also works on other sizes.

**LeakyNet** (official ``remodel.py``, ``LRNet``): the same widths without skip
connections; layer ``k`` (from 0) computes ``leaky_relu(conv(x + b), alpha)``
and, when BatchNorm is on, normalises only after the odd layers (phase -1),
so that a pair of layers is one unit: ``BN(lrelu(conv_odd(lrelu(conv_even(x)))))``.
An init string such as ``"1_iiii_iiii_iiii"`` gives one letter per conv
(stem first): ``1`` averaging, ``i`` identity, ``k`` noisy identity
(c = 0.99), ``h`` random (c = 0), any other letter noisy averaging
(c = 0.99). Odd layers have phase -1 and their averaging / identity part is
divided by ``alpha``, so a pair of identity layers computes exactly ``-x``:
``lrelu(-lrelu(x)/alpha) = -x``. The stem has no activation after it. The
official model registers a BatchNorm and two scalar biases in every layer but
uses the BatchNorm of odd layers and the first bias only; the unused ones are
left out here.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..contract import checked_arguments
from ..init.schemes import ConstNetScheme, Scheme
from ..init.tensor.constnet import const_avg_noise_
from ..nn import ScalarBias, ScalarGate
from ._layers import CNN_NORMS, check_choice, conv1x1, conv3x3
from .registry import register_model


def _wrn_widths(depth: int, widen: int) -> tuple[int, list[int]]:
    if (depth - 4) % 3 or depth < 7:
        raise ValueError(f"ConstNet/LeakyNet depth must be 3n+4 with n >= 1, got depth={depth}")
    if widen < 1:
        raise ValueError(f"widen factor must be >= 1, got {widen}")
    return (depth - 4) // 3, [16, 16 * widen, 32 * widen, 64 * widen]


class ConstNetBlock(nn.Module):
    """One-conv pre-activation residual block of ConstNet (official ``BasicBlock``).

    ``a = relu(pre(x))``; the branch is ``conv(a)`` (BatchNorm mode) or
    ``gate * dropout(conv(a) + b1)`` (``norm="none"``, ``pre`` adds ``b0``);
    the skip is ``x``, or the 1x1 ``shortcut(a)`` when the shape changes.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, norm: str, dropout: float) -> None:
        super().__init__()
        self.pre = nn.BatchNorm2d(in_ch) if norm == "bn" else ScalarBias()
        self.conv = conv3x3(in_ch, out_ch, stride)
        # no-BN mode only: the branch's scalar bias b1 and gate (Fixup's scalars)
        self.bias, self.gate = (None, None) if norm == "bn" else (ScalarBias(), ScalarGate())
        self.dropout = dropout
        self.shortcut = conv1x1(in_ch, out_ch, stride) if in_ch != out_ch or stride != 1 else None

    def detinit_roles(self) -> dict[str, str]:
        return {"conv": "branch_last"}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.pre(x))
        out = self.conv(a)
        if self.bias is not None:
            out = self.bias(out)
        out = _dropout(out, self.dropout, self.training)
        if self.gate is not None:
            out = self.gate(out)
        return out + (self.shortcut(a) if self.shortcut is not None else x)


def _dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    return F.dropout(x, p=p, training=training) if p > 0 else x


def _global_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """Mean over the whole map, computed as the official ``F.avg_pool2d(out, 8)`` computes it
    on 32 x 32 inputs (bitwise), for any map size."""
    return F.avg_pool2d(x, x.shape[-2:]).flatten(1)


class ConstNet(nn.Module):
    """ConstNet Wide-ResNet of depth ``depth`` and widen factor ``widen``."""

    @checked_arguments(ranges={"dropout": (0.0, 1.0)})
    def __init__(
        self,
        depth: int = 16,
        widen: int = 10,
        num_classes: int = 10,
        in_chans: int = 3,
        dropout: float = 0.0,
        norm: str = "bn",
    ) -> None:
        super().__init__()
        check_choice("norm", norm, CNN_NORMS)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout={dropout!r} must lie in [0, 1)")
        n, widths = _wrn_widths(depth, widen)
        self.conv1 = conv3x3(in_chans, widths[0])
        stages, in_ch = [], widths[0]
        for i, out_ch in enumerate(widths[1:]):
            stride = 1 if i == 0 else 2
            blocks = [
                ConstNetBlock(in_ch if j == 0 else out_ch, out_ch, stride if j == 0 else 1, norm, dropout)
                for j in range(n)
            ]
            stages.append(nn.Sequential(*blocks))
            in_ch = out_ch
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(in_ch, num_classes)
        self.num_features = in_ch

    def get_classifier(self) -> nn.Module:
        return self.fc

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return _global_avg_pool(F.relu(self.stages(self.conv1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))


def _register_constnet(depth: int, widen: int) -> None:
    def build(**kwargs: object) -> ConstNet:
        return ConstNet(depth, widen, **kwargs)  # type: ignore[arg-type]

    register_model(f"constnet_{depth}_{widen}", "constnet", f"ConstNet WRN-{depth}-{widen}")(build)


for _d, _k in ((16, 10), (10, 2), (16, 4), (16, 1), (28, 10)):
    _register_constnet(_d, _k)


@register_model("constnet", "constnet", "ConstNet WRN with depth= and widen= arguments")
def constnet(depth: int = 16, widen: int = 10, **kwargs: object) -> ConstNet:
    return ConstNet(depth, widen, **kwargs)  # type: ignore[arg-type]


class LeakyConv(nn.Conv2d):
    """A 3x3 conv that knows its LeakyNet init letter, phase and leak."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, letter: str, phase: int, alpha: float) -> None:
        super().__init__(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.letter, self.phase, self.alpha = letter, phase, alpha

    @torch.no_grad()
    def detinit_init_(self, scheme: Scheme, generator: torch.Generator) -> dict[str, str] | None:
        """Under ``constnet`` apply the init letter; other schemes use the standard rules."""
        if not isinstance(scheme, ConstNetScheme):
            return None
        identity = self.letter in "ik"
        c = {"1": 1.0, "i": 1.0, "h": 0.0}.get(self.letter, 0.99)
        gain = math.sqrt(2.0) * (1.0 + self.alpha)  # official: multiplies the variance
        factor = float(self.phase) * c
        if self.phase == -1 and self.alpha > 0:
            factor /= self.alpha
        if c < 1.0:
            const_avg_noise_(self.weight, c, self.in_channels * 9, gain=gain, generator=generator)
        else:
            self.weight.zero_()
        if identity:
            if self.out_channels < self.in_channels:
                raise ValueError(f"LeakyNet identity layer needs out >= in channels, got {tuple(self.weight.shape)}")
            rows = torch.arange(self.out_channels)
            self.weight[rows, rows % self.in_channels, 1, 1] += factor
            what = "identity"
        else:
            self.weight[:, :, 1, 1] += factor / self.in_channels
            what = "averaging"
        noise = "" if c == 1.0 else f", noise (1-c) with c={c}"
        return {"weight": f"LeakyNet '{self.letter}': {what} x {factor:g}{noise}"}


class LeakyLayer(nn.Module):
    """``leaky_relu(conv(x + b))``, dropout, then BatchNorm where the layer has one
    (the odd layers, phase -1, in BatchNorm mode)."""

    def __init__(self, conv: LeakyConv, with_bn: bool, dropout: float) -> None:
        super().__init__()
        self.bias, self.conv = ScalarBias(), conv
        self.bn = nn.BatchNorm2d(conv.out_channels) if with_bn else nn.Identity()
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.leaky_relu(self.conv(self.bias(x)), self.conv.alpha)
        return self.bn(_dropout(out, self.dropout, self.training))


class LeakyNet(nn.Module):
    """LeakyNet: skip-free WRN-shaped net of leaky-ReLU layers, initialised by an init string."""

    @checked_arguments(ranges={"alpha": (0.0, 1.0), "dropout": (0.0, 1.0)})
    def __init__(
        self,
        depth: int = 16,
        widen: int = 1,
        num_classes: int = 10,
        in_chans: int = 3,
        init_string: str | None = None,
        alpha: float = 0.01,
        norm: str = "bn",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_choice("norm", norm, CNN_NORMS)
        n, widths = _wrn_widths(depth, widen)
        letters = (init_string or "1" + "i" * 3 * n).replace("_", "")
        if len(letters) != 3 * n + 1:
            raise ValueError(
                f"init_string={init_string!r} has {len(letters)} letters; depth {depth} needs {3 * n + 1} "
                f"(one for the stem, then {n} per stage), e.g. '1_{'i' * n}_{'i' * n}_{'i' * n}'"
            )
        self.init_string, self.alpha = letters, alpha
        self.conv1 = LeakyConv(in_chans, widths[0], 1, letters[0], 1, alpha)
        layers, in_ch, k = [], widths[0], 0
        for i, out_ch in enumerate(widths[1:]):
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                phase = -1 if k % 2 else 1
                conv = LeakyConv(in_ch, out_ch, stride, letters[k + 1], phase, alpha)
                layers.append(LeakyLayer(conv, norm == "bn" and phase == -1, dropout))
                in_ch, k = out_ch, k + 1
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(in_ch, num_classes)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.leaky_relu(self.layers(self.conv1(x)), self.alpha)
        return self.fc(_global_avg_pool(out))


@register_model("leakynet", "constnet", "LeakyNet (no skips, leaky ReLU) with an init string")
def leakynet(depth: int = 16, widen: int = 1, **kwargs: object) -> LeakyNet:
    return LeakyNet(depth, widen, **kwargs)  # type: ignore[arg-type]
