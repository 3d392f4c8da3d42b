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
