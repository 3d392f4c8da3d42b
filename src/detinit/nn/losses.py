"""Cross-entropy for classifiers and for language models alike.

A classifier gives logits ``(N, C)`` for targets ``(N,)``; a language model
gives ``(B, T, V)`` for targets ``(B, T)``, one prediction per token. Both are
scored per prediction after flattening the leading dimensions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..contract import checked_arguments


@checked_arguments()
def flatten_predictions(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, C)`` logits and ``(N,)`` targets; sequence outputs are flattened to one row per token. Logits are
    floating point, targets class indices (an integer dtype).

    >>> flatten_predictions(torch.zeros(2, 5, 7), torch.zeros(2, 5, dtype=torch.long))[0].shape
    torch.Size([10, 7])
    """
    if logits.dim() < 2 or logits.shape[:-1] != targets.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} do not match targets {tuple(targets.shape)}: expected logits (N, C) for "
            "targets (N,), or (B, T, V) for targets (B, T)"
        )
    if not (logits.is_floating_point() and not targets.is_floating_point() and not targets.is_complex()):
        raise ValueError(
            f"logits ({logits.dtype}) and targets ({targets.dtype}): expected floating-point logits and integer "
            "class indices as targets (torch.long)"
        )
    if targets.dim() > 1:
        return logits.flatten(0, -2), targets.flatten()
    return logits, targets


@checked_arguments()
def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, **kwargs: object) -> torch.Tensor:
    """``F.cross_entropy`` per example (classifiers) or per token (language models). Shapes are checked here
    (:func:`flatten_predictions`); a class index out of range is left to ``F.cross_entropy``, whose error names
    it on a CPU (checking it here would synchronise a GPU every step).

    >>> round(cross_entropy(torch.zeros(2, 3, 4), torch.zeros(2, 3, dtype=torch.long)).item(), 4)  # ln 4
    1.3863
    """
    return F.cross_entropy(*flatten_predictions(logits, targets), **kwargs)  # type: ignore[arg-type]
