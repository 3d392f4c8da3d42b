r"""ReLU variants: torch's, and the one of the official ZerO code.

:class:`ZeroReLU` computes :math:`\max(x, 0)` like ``nn.ReLU`` but passes the
gradient where the input is exactly 0 (derivative 1 at 0, as the official
ZerO ``Zero_Relu``); ``torch.relu`` uses derivative 0 there. Under ZerO many
pre-activations are exactly 0 at initialisation, so the choice decides which
layers get a gradient in the first steps. It is ``x.clamp(min=0)``, whose
backward mask is ``x >= 0``: no custom autograd function is needed, so it
works with ``torch.compile`` and on every device.
"""

from __future__ import annotations

import torch
from torch import nn

from ..contract import checked_arguments

RELU_KINDS = ("torch", "zero")


class ZeroReLU(nn.Module):
    """ReLU whose derivative at exactly 0 is 1; ``inplace`` as :class:`torch.nn.ReLU`'s (a drop-in replacement).

    >>> x = torch.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    >>> ZeroReLU()(x).sum().backward(); x.grad
    tensor([0., 1., 1.])
    """

    @checked_arguments()
    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp_(min=0) if self.inplace else x.clamp(min=0)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


@checked_arguments()
def make_relu(kind: str = "torch") -> nn.Module:
    """``"torch"`` -> ``nn.ReLU()``, ``"zero"`` -> :class:`ZeroReLU`."""
    if kind == "torch":
        return nn.ReLU()
    if kind == "zero":
        return ZeroReLU()
    raise ValueError(f"make_relu: kind (a model's relu=) {kind!r} is not supported; choose one of {RELU_KINDS}")
