"""Batch-level normalisation and augmentation on tensors (seeded, vectorised).

``random_crop_flip``: reflect-pad by ``pad`` pixels, crop back to the original
size at a random offset per image, and flip horizontally with probability 1/2
-- the CIFAR recipe of both papers -- for a whole batch with two gathers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..contract import checked_arguments
from ..values import is_number


@checked_arguments()
def to_float(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """``uint8`` images to ``(x / 255 - mean) / std`` per channel; float images to ``(x - mean) / std``."""
    check_normalisation("to_float", mean, std)
    if images.dim() < 2 or images.shape[1] != len(mean):
        raise ValueError(
            f"to_float: images of shape {tuple(images.shape)} and {len(mean)} channel means: give one mean and std "
            "per channel of images (N, C, ...)"
        )
    x = images.float()
    if images.dtype == torch.uint8:
        x = x / 255.0
    shape = (1, -1) + (1,) * (images.dim() - 2)
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(shape)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(shape)
    return (x - m) / s


def check_normalisation(where: str, mean: object, std: object, channels: int | None = None) -> None:
    """Refuse channel means and standard deviations that are not finite numbers, one of each per channel (of
    ``channels``, where given), every std > 0.

    >>> check_normalisation("demo", (0.5, 0.5, 0.5), (0.2, 0.2, 0.2), channels=1)
    Traceback (most recent call last):
    ...
    ValueError: demo: mean (0.5, 0.5, 0.5) and std (0.2, 0.2, 0.2) must be finite numbers, one of each per channel \
(1), each std > 0
    """
    numbers = isinstance(mean, (tuple, list)) and isinstance(std, (tuple, list))
    if (
        not numbers
        or len(mean) != len(std)  # type: ignore[arg-type]
        or (channels is not None and len(mean) != channels)  # type: ignore[arg-type]
        or not all(is_number(v) for v in mean)  # type: ignore[union-attr]
        or not all(is_number(v, 0.0, open_low=True) for v in std)  # type: ignore[union-attr]
    ):
        per = f"per channel ({channels})" if channels is not None else "per channel"
        shown = [tuple(v) if isinstance(v, (tuple, list)) else v for v in (mean, std)]
        raise ValueError(
            f"{where}: mean {shown[0]} and std {shown[1]} must be finite numbers, one of each {per}, each std > 0"
        )


@checked_arguments(at_least={"pad": 0})
def random_crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = 4, flip: bool = True) -> torch.Tensor:
    """Random ``pad``-pixel reflect-padded crops and horizontal flips of a batch ``(N, C, H, W)``.

    >>> x = torch.arange(16.0).view(1, 1, 4, 4)
    >>> random_crop_flip(x, torch.Generator().manual_seed(0), pad=0, flip=False).equal(x)
    True
    """
    if x.dim() != 4:
        raise ValueError(f"random_crop_flip expects (N, C, H, W), got shape {tuple(x.shape)}")
    n, _, h, w = x.shape
    out = x
    if pad > 0:
        padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
        rows = dy[:, None] + torch.arange(h, device=x.device)[None, :]  # (N, H)
        cols = dx[:, None] + torch.arange(w, device=x.device)[None, :]  # (N, W)
        out = padded.gather(2, rows[:, None, :, None].expand(-1, x.shape[1], -1, padded.shape[3]))
        out = out.gather(3, cols[:, None, None, :].expand(-1, x.shape[1], h, -1))
    if flip:
        mirror = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        out = torch.where(mirror[:, None, None, None], out.flip(3), out)
    return out
