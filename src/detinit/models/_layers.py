"""Small constructors shared by the model files."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..nn import ScalarBias

CNN_NORMS = ("bn", "none")  # the norm= choices of the CNNs: BatchNorm or none (Fixup-style scalars)


def check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    """Raise a ``ValueError`` naming the argument and the allowed values."""
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not supported; choose one of {allowed}")


def conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)


def norm_or_bias(norm: str, channels: int) -> nn.Module:
    """BatchNorm in ``"bn"`` mode; a Fixup scalar bias in ``"none"`` mode."""
    return nn.BatchNorm2d(channels) if norm == "bn" else ScalarBias()


def bias_if_free(norm: str) -> nn.Module:
    """A Fixup scalar bias in ``"none"`` mode, nothing in ``"bn"`` mode."""
    return ScalarBias() if norm == "none" else nn.Identity()


def build_stages(
    make_block: Callable[[int, int, int], nn.Module], layers: list[int], widths: list[int], expansion: int
) -> tuple[nn.Sequential, int]:
    """ResNet stages: ``layers[i]`` blocks of ``widths[i]`` planes, stride 2 at the start of every stage
    but the first. ``make_block(in_channels, planes, stride)`` builds one block. Returns the stages and
    the output channels."""
    stages, in_ch = [], widths[0]
    for i, (n, planes) in enumerate(zip(layers, widths)):
        blocks = []
        for j in range(n):
            blocks.append(make_block(in_ch, planes, 2 if i > 0 and j == 0 else 1))
            in_ch = planes * expansion
        stages.append(nn.Sequential(*blocks))
    return nn.Sequential(*stages), in_ch
