"""Building blocks: fast Hadamard transform, channel padding, ZerO's ReLU, scalar gates."""

from .activations import RELU_KINDS, ZeroReLU, make_relu
from .channel_pad import ChannelPad
from .gates import ScalarBias, ScalarGate
from .hadamard_transform import HadamardTransform, fwht, power_of_two_blocks

__all__ = [
    "RELU_KINDS",
    "ChannelPad",
    "HadamardTransform",
    "ScalarBias",
    "ScalarGate",
    "ZeroReLU",
    "fwht",
    "make_relu",
    "power_of_two_blocks",
]
