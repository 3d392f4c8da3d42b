"""Architectures of both papers and the usual baselines, behind a registry.

>>> from detinit.models import create_model
>>> net = create_model("zero_resnet20", num_classes=10, in_chans=1)
>>> bool(net(torch.zeros(2, 1, 28, 28)).abs().sum() == 0)
True
"""

import torch  # noqa: F401  (used by the doctest above)

from . import constnet, mlp, resnet, transformer, zero_resnet  # noqa: F401  (registers the models)
from .constnet import ConstNet, LeakyNet
from .for_data import data_kwargs_for
from .mlp import MLP
from .registry import create_model, list_models, model_entry, register_model
from .resnet import ResNet
from .transformer import GPT, ViT
from .zero_resnet import ZerOResNet

__all__ = [
    "MLP",
    "GPT",
    "ConstNet",
    "LeakyNet",
    "ResNet",
    "ViT",
    "ZerOResNet",
    "create_model",
    "data_kwargs_for",
    "list_models",
    "model_entry",
    "register_model",
]
