"""Shared test settings: hypothesis profile sized for 2 CPU cores."""

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _seed_global_rng():
    """Tests that draw data from the global RNG see the same numbers on every run."""
    torch.manual_seed(0)


@pytest.fixture
def tiny_config():
    """A factory of one-epoch configs of a 16-unit MLP on 64 synthetic 8x8 images (about a second a run)."""
    from detinit.train import TrainConfig

    def make(**changes):
        base = {
            "model": "mnist_mlp",
            "model_args": {"hidden": 16},
            "data": "synthetic",
            "data_args": {"num_examples": 64, "image_size": 8},
            "epochs": 1,
            "batch_size": 32,
            "diagnostics_every": 0,
            "progress": False,
            "tensorboard": False,
            "threads": 1,
        }
        return TrainConfig(**(base | changes))

    return make
