"""Recording module outputs with forward hooks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from .. import hooks
from ..init.roles.layers import MATRIX_LAYER_TYPES
from ._checks import check_activations, run_forward


def probe_points(model: nn.Module, at: str = "auto") -> list[tuple[str, nn.Module]]:
    """Where to measure: ``"blocks"`` (modules declaring ``detinit_roles``, i.e. residual blocks),
    ``"layers"`` (every Linear / conv), or ``"auto"`` (blocks if the model has any, else layers)."""
    if at not in ("auto", "blocks", "layers"):
        raise ValueError(f"at={at!r} is not supported; choose 'auto', 'blocks' or 'layers'")
    blocks = [(n, m) for n, m in model.named_modules() if n and hooks.declared_roles(m) is not None]
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, MATRIX_LAYER_TYPES)]
    if at == "blocks" or (at == "auto" and blocks):
        if not blocks:
            raise ValueError(
                f"{type(model).__name__} has no residual blocks (modules with detinit_roles); use at='layers'"
            )
        return blocks
    return layers


@contextmanager
def record_outputs(points: list[tuple[str, nn.Module]], retain_grad: bool = False) -> Iterator[dict[str, torch.Tensor]]:
    """Collect each point's output (last call wins) while the block runs."""
    outputs: dict[str, torch.Tensor] = {}
    handles = []
    for name, module in points:

        def hook(mod: nn.Module, inputs: object, output: torch.Tensor, name: str = name) -> None:
            if isinstance(output, torch.Tensor):
                if retain_grad and output.requires_grad:
                    output.retain_grad()
                outputs[name] = output

        handles.append(module.register_forward_hook(hook))
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def channel_outputs(
    fn: str, model: nn.Module, inputs: torch.Tensor, at: str = "auto", channel_dim: int | None = None
) -> list[tuple[str, torch.Tensor]]:
    """Run ``model`` on ``inputs``; each probe point's output (2-D or more) with its channels moved to dim 1.

    Channels are on ``channel_dim``, by default the model's ``detinit_channel_dim`` attribute
    (Transformers: -1, outputs ``(N, T, C)``) or 1.
    """
    dim = channel_dim if channel_dim is not None else hooks.channel_dim(model)
    points = probe_points(model, at)
    with record_outputs(points) as outputs:
        run_forward(fn, model, inputs)
    found = [(n, outputs[n]) for n, _ in points if n in outputs and outputs[n].dim() >= 2]
    return [(n, check_activations(fn, f"the output of {n!r}", y, dim).movedim(dim, 1)) for n, y in found]
