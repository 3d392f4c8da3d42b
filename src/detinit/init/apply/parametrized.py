r"""Weights computed by a parametrization (``torch.nn.utils.parametrize``: weight norm, spectral norm, orthogonal):
the rule is decided for the weight the layer uses, and written through the parametrization.

A layer under weight norm holds no ``weight`` parameter but ``parametrizations.weight.original0`` (the
magnitude :math:`g`) and ``original1`` (the direction :math:`v`), and computes :math:`W = g\,v / \|v\|`. The
resolver decides :math:`W`'s rule as for any layer of that shape and role (:func:`parametrized_tensors`);
:func:`write_parametrized_` fills a tensor :math:`W` with it and assigns it to the layer, which sets the
originals through the parametrization's ``right_inverse`` (:math:`g = \|W\|`, :math:`v = W`).

A zero :math:`W` has no direction (:math:`v / \|v\|` would be :math:`0/0`). As norm-aware ZerO puts a branch's
zero on the norm after its last layer, the zero goes on the magnitude: the direction is set from the all-ones
tensor and the original whose zero makes :math:`W = 0` (:math:`g`) is set to 0, so the layer computes exactly 0
and :math:`g` gets a gradient from the first step. The same holds slice by slice where the magnitude is per
slice (weight norm over the kernel's taps, an identity kernel being 0 off its centre tap). A rule that cannot
be written so is refused, naming the parameter.

>>> from torch import nn
>>> conv = nn.utils.parametrizations.weight_norm(nn.Conv1d(4, 4, 3))
>>> write = ParametrizedWrite(conv, "weight", ParamRule("zeros", "", lambda w, g: w.zero_()), "conv.weight")
>>> write_parametrized_([write], torch.Generator())
>>> bool(conv.weight.abs().max() == 0), float(conv.parametrizations.weight.original1.abs().min())
(True, 1.0)
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.nn.utils.parametrize import is_parametrized

from ..schemes.rule import ParamRule


class ParametrizedWrite(NamedTuple):
    """A parametrized tensor of ``module`` (``tensor``: ``"weight"``), its rule and its full name."""

    module: nn.Module
    tensor: str
    rule: ParamRule
    name: str


def parametrized_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors a parametrization computes for ``module``, by attribute name (empty for most modules)."""
    if not is_parametrized(module):
        return {}
    with torch.no_grad():
        return {name: getattr(module, name).detach() for name in module.parametrizations}


def original_reason(write: ParametrizedWrite) -> str:
    """What the report says of a parametrization's original parameters."""
    return f"set through the parametrization of {write.name}, which gets {write.rule.rule}: {write.rule.reason}"


@torch.no_grad()
def write_parametrized_(writes: list[ParametrizedWrite], generator: torch.Generator) -> None:
    """Fill each parametrized tensor with its rule and assign it through its parametrization, in order."""
    for write in writes:
        current = getattr(write.module, write.tensor)
        target = torch.empty_like(current)
        write.rule.fill(target, generator)
        if target.abs().max() == 0:
            _zero_on_the_magnitude(write, target)
        else:
            setattr(write.module, write.tensor, target.clone())  # right_inverse may keep the very tensor
            if not torch.isfinite(getattr(write.module, write.tensor)).all():
                _zero_slices_on_the_magnitude(write)
        now = getattr(write.module, write.tensor)
        if not torch.isfinite(now).all() or not torch.allclose(now, target, rtol=1e-5, atol=1e-6):
            raise ValueError(
                f"initialize: {write.name} is computed by a parametrization "
                f"({', '.join(type(p).__name__ for p in write.module.parametrizations[write.tensor])}) that cannot "
                f"give rule {write.rule.rule!r}; give the layer a role with another rule (roles=) or remove the "
                "parametrization before initialising"
            )


def _zero_on_the_magnitude(write: ParametrizedWrite, target: torch.Tensor) -> None:
    """``W = 0`` through a magnitude-direction parametrization: direction from all ones, magnitude 0."""
    setattr(write.module, write.tensor, torch.ones_like(target))
    for original in write.module.parametrizations[write.tensor].parameters(recurse=False):
        kept = original.detach().clone()
        original.zero_()
        now = getattr(write.module, write.tensor)
        if torch.isfinite(now).all() and now.abs().max() == 0:
            return
        original.copy_(kept)


def _zero_slices_on_the_magnitude(write: ParametrizedWrite) -> None:
    """A target with some zero slices under a per-slice magnitude (weight norm over ``dim``: an identity
    kernel's off-centre taps): those slices get direction 1 and keep magnitude 0."""
    originals = list(write.module.parametrizations[write.tensor].parameters(recurse=False))
    if len(originals) != 2:
        return
    magnitude, direction = sorted(originals, key=lambda t: t.numel())
    if direction.shape != getattr(write.module, write.tensor).shape or magnitude.numel() == direction.numel():
        return
    zero = (magnitude == 0).expand_as(direction)
    direction[zero] = 1.0
