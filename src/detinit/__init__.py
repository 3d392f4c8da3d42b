"""detinit: train deep networks from deterministic initialisations.

>>> import torch, detinit
>>> net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
>>> report = detinit.initialize(net, "zero", roles={"2": "classifier"})
>>> bool(detinit.check_zero_one(net))
True
"""

from . import init, models, nn
from .init import check_zero_one, initialize
from .models import create_model, list_models

__version__ = "0.1.0"

__all__ = ["__version__", "check_zero_one", "create_model", "init", "initialize", "list_models", "models", "nn"]
