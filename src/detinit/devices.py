"""Devices given by name: one check of what a caller may pass as ``device=`` (``initialize``, the batch loaders)."""

from __future__ import annotations

import torch


def parse_device(device: object, where: str = "initialize") -> torch.device:
    """``device`` as a ``torch.device`` that can hold values here, or a ``ValueError`` naming ``where`` and what is
    supported: not a device, the meta device (no values), or CUDA on a machine without it.

    >>> parse_device("cpu")
    device(type='cpu')
    >>> parse_device("meta", "Batches")
    Traceback (most recent call last):
    ...
    ValueError: Batches: device='meta' holds no values; give the device to put them on ('cpu', 'cuda')
    """
    try:
        parsed = torch.device(device)  # type: ignore[arg-type]
    except (RuntimeError, TypeError):
        raise ValueError(
            f"{where}: device={device!r} is not a device; give a torch.device or a string such as 'cpu', 'cuda' "
            "or 'cuda:1'"
        ) from None
    if parsed.type == "meta":
        raise ValueError(f"{where}: device='meta' holds no values; give the device to put them on ('cpu', 'cuda')")
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{where}: device={device!r}, but CUDA is not available here; use device='cpu'")
    return parsed
