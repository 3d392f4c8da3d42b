"""Diagnostics: what an initialisation does to a network."""

from .gradient_flow import StepGradients, gradient_at_init

__all__ = ["StepGradients", "gradient_at_init"]
