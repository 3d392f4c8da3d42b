"""Multi-layer perceptrons: the ZerO MNIST notebook's network and deep MLPs for depth sweeps."""

from __future__ import annotations

import torch
from torch import nn

from ..contract import checked_arguments
from ..nn import make_relu
from .registry import OFFICIAL_ZERO, register_model


class MLP(nn.Module):
    """``Flatten -> [Linear -> ReLU] x len(hidden) -> Linear``.

    Args:
        in_features: inputs after flattening (e.g. 784 for 1x28x28).
        hidden: widths of the hidden layers.
        num_classes: outputs.
        bias: use biases (the ZerO notebook's MLP has none).
        relu: ``"torch"`` or ``"zero"``.
        zero_classifier: declare the output layer a classifier (0 under
            ZerO / ConstNet / Fixup). The ZerO notebook initialises it with
            Algorithm 1 like every other layer, hence the default ``False``.

    >>> MLP(784, [784, 256, 256], 10)(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    @checked_arguments()
    def __init__(
        self,
        in_features: int = 784,
        hidden: list[int] | tuple[int, ...] = (784, 1024, 1024),
        num_classes: int = 10,
        bias: bool = False,
        relu: str = "torch",
        zero_classifier: bool = False,
    ) -> None:
        super().__init__()
        widths = [in_features, *hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b, bias=bias), make_relu(relu)]
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(widths[-1], num_classes, bias=bias)
        self.zero_classifier = zero_classifier

    def get_classifier(self) -> nn.Module | None:
        return self.fc if self.zero_classifier else None

    def hidden_linears(self) -> list[nn.Linear]:
        """The hidden Linear layers in order (for rank diagnostics)."""
        return [m for m in self.body if isinstance(m, nn.Linear)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))


def _in_features(in_features: int | None, in_chans: int, image_size: int) -> int:
    return in_features if in_features is not None else in_chans * image_size * image_size


@register_model("mnist_mlp", "zero", "ZerO notebook MLP 784-784-n-n-10, bias-free (n = hidden=...)", OFFICIAL_ZERO)
def mnist_mlp(
    hidden: int = 1024, in_chans: int = 1, image_size: int = 28, in_features: int | None = None, **kwargs: object
) -> MLP:
    """``in_features`` defaults to ``in_chans * image_size**2`` (784 for MNIST)."""
    d = _in_features(in_features, in_chans, image_size)
    return MLP(d, [d, hidden, hidden], **kwargs)  # type: ignore[arg-type]


@register_model("deep_mlp", "kaiming", "MLP of `depth` hidden layers of `width` units, for depth sweeps")
def deep_mlp(
    depth: int = 10,
    width: int = 256,
    in_chans: int = 1,
    image_size: int = 28,
    in_features: int | None = None,
    **kwargs: object,
) -> MLP:
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    return MLP(_in_features(in_features, in_chans, image_size), [width] * depth, **kwargs)  # type: ignore[arg-type]
