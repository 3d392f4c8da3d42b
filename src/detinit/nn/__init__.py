"""Building blocks: fast Hadamard transform, channel padding, ZerO's ReLU, scalar gates, a token-aware loss."""

from .activations import RELU_KINDS, ZeroReLU, make_relu
from .channel_pad import ChannelPad
from .gates import ScalarBias, ScalarGate
from .hadamard_transform import HadamardTransform, fwht, power_of_two_blocks
from .losses import cross_entropy, flatten_predictions

__all__ = [
    "RELU_KINDS",
    "ChannelPad",
    "HadamardTransform",
    "ScalarBias",
    "ScalarGate",
    "ZeroReLU",
    "cross_entropy",
    "flatten_predictions",
    "fwht",
    "make_relu",
    "power_of_two_blocks",
]
