"""detinit: train deep networks from deterministic initialisations.

>>> import torch, detinit
>>> net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
>>> report = detinit.initialize(net, "zero", roles={"2": "classifier"})
>>> bool(detinit.check_zero_one(net))
True
"""

from . import init
from .init import check_zero_one, initialize

__version__ = "0.1.0"

__all__ = ["__version__", "check_zero_one", "init", "initialize"]
