"""What the diagnostics check of the tensors and models they are given, before any work: a matrix to take
ranks of, an activation batch to take channel statistics of, a channel dimension that exists, a model that
runs on the inputs. Each failure is a ``ValueError`` naming the diagnostic, the argument and its shape.

>>> check_activations("participation_ratio", "y", torch.zeros(0, 4))
Traceback (most recent call last):
    ...
ValueError: participation_ratio: y of shape (0, 4) holds no values; it needs a batch of activations (N, C, ...)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def check_matrix(fn: str, matrix: object) -> torch.Tensor:
    """``matrix`` as given, if it is a tensor of 2 or more dimensions, none of them empty (a weight is read
    as ``(dim0, rest)``)."""
    if not isinstance(matrix, torch.Tensor):
        raise TypeError(f"{fn}: matrix must be a tensor, got {type(matrix).__name__}")
    if not matrix.is_floating_point():
        raise ValueError(
            f"{fn}: matrix of dtype {matrix.dtype} is not supported; it needs a real floating-point weight"
        )
    if matrix.dim() < 2 or matrix.numel() == 0:
        raise ValueError(
            f"{fn}: matrix of shape {tuple(matrix.shape)} is not supported; it needs 2 or more dimensions, none "
            "of them 0 (a weight is read as (dim0, rest))"
        )
    return matrix


def check_activations(fn: str, name: str, y: object, channel_dim: int = 1) -> torch.Tensor:
    """``y`` as given, if it is a non-empty tensor of 2 or more dimensions with a ``channel_dim``."""
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{fn}: {name} must be a tensor, got {type(y).__name__}")
    if y.dim() < 2:
        raise ValueError(f"{fn}: {name} of shape {tuple(y.shape)} has no channel dimension; it needs (N, C, ...)")
    if not -y.dim() <= channel_dim < y.dim():
        raise ValueError(
            f"{fn}: channel_dim={channel_dim} (the argument, or the model's detinit_channel_dim) does not exist in "
            f"{name} of shape {tuple(y.shape)}; use a dim in [{-y.dim()}, {y.dim() - 1}]"
        )
    if y.numel() == 0:
        raise ValueError(
            f"{fn}: {name} of shape {tuple(y.shape)} holds no values; it needs a batch of activations (N, C, ...)"
        )
    return y


def check_initial(fn: str, weights: dict[str, torch.Tensor], initial: dict[str, object] | None) -> None:
    """``initial`` (weights at init by module name, :func:`~detinit.diagnostics.initial_weights`) names only
    layers of ``weights`` (the model's, by module name) and holds each at its shape: a reference taken of another
    model would give every ``rank_update`` of the wrong layers, or none."""
    for name, w0 in (initial or {}).items():
        if name not in weights:
            known = ", ".join(list(weights)[:6]) + (", ..." if len(weights) > 6 else "")
            raise ValueError(
                f"{fn}: initial names {name!r}, which is no Linear or conv layer of the model ({known}); "
                "take it with initial_weights(model) of this model"
            )
        if not isinstance(w0, torch.Tensor) or w0.shape != weights[name].shape:
            shape = tuple(w0.shape) if isinstance(w0, torch.Tensor) else type(w0).__name__
            raise ValueError(
                f"{fn}: initial[{name!r}] has shape {shape}, the layer's weight {tuple(weights[name].shape)}; "
                "take it with initial_weights(model) of this model"
            )


def check_batch(fn: str, name: str, inputs: object) -> None:
    """Refuse a tensor batch that holds no examples: every diagnostic measures its examples, and a model runs on
    none without a word."""
    if isinstance(inputs, torch.Tensor) and inputs.numel() == 0:
        raise ValueError(f"{fn}: {name} of shape {tuple(inputs.shape)} is an empty batch; pass at least one example")


def run_forward(fn: str, model: nn.Module, inputs: object) -> object:
    """``model(inputs)``; an error of the model's forward is re-raised naming the diagnostic, the model and the
    inputs' shape (a diagnostic is often called with a probe batch of another dataset); an empty batch is refused
    first (:func:`check_batch`)."""
    shape = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__
    check_batch(fn, "inputs", inputs)
    try:
        return model(inputs)
    except (RuntimeError, TypeError, ValueError, IndexError) as err:
        raise ValueError(
            f"{fn}: {type(model).__name__} could not run on inputs of shape {shape} ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}); pass inputs its forward accepts"
        ) from err


def run_loss(
    fn: str, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], logits: object, targets: object
) -> torch.Tensor:
    """``loss_fn(logits, targets)``; an error (targets of another batch size, a class past the logits' count) is
    re-raised naming the diagnostic and both shapes, and a loss that is not one number (a string, a loss per
    example) is refused naming what ``loss_fn`` returned."""
    try:
        loss = loss_fn(logits, targets)  # type: ignore[arg-type]
    except (RuntimeError, TypeError, ValueError, IndexError) as err:
        shapes = [tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__ for t in (logits, targets)]
        raise ValueError(
            f"{fn}: the loss could not be computed from the model's outputs of shape {shapes[0]} and targets of "
            f"shape {shapes[1]} ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); pass "
            "targets of the inputs' batch, each a class index below the number of outputs"
        ) from err
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1 or not loss.is_floating_point():
        got = f"a tensor of shape {tuple(loss.shape)} ({loss.dtype})" if isinstance(loss, torch.Tensor) else repr(loss)
        raise ValueError(
            f"{fn}: loss_fn returned {got[:80]}; it must return one floating-point number as a tensor (reduce a "
            "loss per example with .mean())"
        )
    return loss
