"""Zero-padding of channels: the parameter-free skip of dimension-increasing layers."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..contract import checked_arguments


class ChannelPad(nn.Module):
    """Pad ``in_channels`` to ``out_channels`` with zero channels on the right, optionally subsampling.

    Inputs are ``(N, C, ...)``: channels on dim 1, any number of spatial dims (none for a batch of vectors).

    ``y[:, :C_in] = x[:, :, ::stride, ::stride]``, ``y[:, C_in:] = 0``: the
    partial identity :math:`I^*(C_{out}, C_{in})` as a skip path (the ZerO
    stem's ``ChannelPaddingSkip``, ResNet "option A" shortcuts).

    >>> ChannelPad(3, 8)(torch.ones(1, 3, 2, 2))[0, :, 0, 0]
    tensor([1., 1., 1., 0., 0., 0., 0., 0.])
    """

    @checked_arguments()
    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        if not 0 < in_channels <= out_channels:
            raise ValueError(
                f"ChannelPad: needs 0 < in_channels <= out_channels, got in_channels={in_channels}, "
                f"out_channels={out_channels}"
            )
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"ChannelPad: expected inputs (N, {self.in_channels}, ...) with channels on dim 1, got shape "
                f"{tuple(x.shape)}"
            )
        if self.stride > 1:
            x = x[(slice(None), slice(None)) + (slice(None, None, self.stride),) * (x.dim() - 2)]
        pad = [0, 0] * (x.dim() - 2) + [0, self.out_channels - self.in_channels]
        return F.pad(x, pad)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}" + (f", stride={self.stride}" if self.stride > 1 else "")
