r"""A residual sum scaled by a constant, made the identity: :func:`complete_scaled_sums_`.

Some blocks scale their whole sum, :math:`y = s\,(x + f(x))` (Inkling2's short convolutions,
:math:`s = 1/\sqrt{k + 1}`, which a random :math:`f` with unit-variance taps keeps at unit variance). ZerO's
zero branch leaves :math:`y = s\,x`: every such block shrinks the stream by :math:`s`. Where the branch is one
square layer reading :math:`x` itself (found by :mod:`detinit.init.roles.traced.residuals`), that layer at

.. math:: W = (1/s - 1)\, I

makes the block the identity: :math:`s\,(x + (1/s - 1)\,x) = x`. A convolution's identity sits on the tap that
maps each position to itself, which depends on how the block pads and crops (a causal convolution padded by
:math:`k - 1` and cropped to the first :math:`L` outputs: the last tap; a centred one: the centre). The tap is
found by running the model on its example with each candidate (the centre first) and keeping, for each block,
the first that makes it the identity (relative error :math:`\le 10^{-5}`); a layer for which none does is left
at ZerO's 0. The weight is deterministic and the same for every seed; it holds :math:`1/s - 1` (1.236 for
:math:`s = 1/\sqrt 5`), not only zeros and ones, which the report says.

>>> import math, torch
>>> from torch import nn
>>> class Short(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.conv = nn.Conv1d(4, 4, 3, groups=4, padding=2, bias=False)
...     def forward(self, x):  # x: (batch, channels, length); causal: crop to the first L outputs
...         return (x + self.conv(x)[..., : x.shape[-1]]) / math.sqrt(4)
>>> net = nn.Sequential(Short())
>>> _ = nn.init.zeros_(net[0].conv.weight)
>>> x = torch.randn(2, 4, 5)
>>> done = complete_scaled_sums_(net, x, [("0.conv", "0", 0.5)])
>>> net[0].conv.weight[0, 0].tolist(), torch.allclose(net(x), x)
([0.0, 0.0, 1.0], True)
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from ..roles.trace import run_with_hooks

TOLERANCE = 1e-5  # relative error of a block that counts as the identity


def complete_scaled_sums_(model: nn.Module, example: object, found: list[tuple[str, str, float]]) -> dict[str, str]:
    """For each ``(layer, block, s)`` of ``found`` whose layer is 0 and square, set the layer to ``(1/s - 1) I`` on
    the tap that makes ``block`` (a module whose first argument is the skip) the identity on ``example``.
    Returns ``{weight name: reason}`` for the layers set."""
    todo, modules = {}, dict(model.named_modules())
    for layer_name, block_name, factor in found:
        for what, name in (("layer", layer_name), ("block", block_name)):
            if not isinstance(name, str) or name not in modules:
                raise ValueError(f"complete_scaled_sums_: {what} {name!r} is not a module of {type(model).__name__}")
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not math.isfinite(factor) or not factor:
            why = f"the scale s of the sum {layer_name!r} ends must be a finite number other than 0, got {factor!r}"
            raise ValueError(f"complete_scaled_sums_: {why}")
        layer = model.get_submodule(layer_name)
        weight = layer._parameters.get("weight")
        bias = layer._parameters.get("bias")
        if weight is None or weight.dim() < 2 or bool(weight.any()) or (bias is not None and bool(bias.any())):
            continue  # not ZerO's zero branch: another scheme, or a rule given by the user
        if _square(layer) and layer_name not in todo:
            todo[layer_name] = (weight, model.get_submodule(block_name), block_name, 1.0 / factor - 1.0)
    candidates = {name: _taps(entry[0]) for name, entry in todo.items()}
    settled: dict[str, str] = {}
    with torch.no_grad():
        for step in range(max((len(c) for c in candidates.values()), default=0)):
            trying = {name: c[step] for name, c in candidates.items() if name not in settled and step < len(c)}
            for name, tap in trying.items():
                _identity_at_(todo[name][0], tap, todo[name][3])
            errors = _block_errors(model, example, {name: todo[name][1] for name in trying})
            for name, tap in trying.items():
                weight, _, block_name, gain = todo[name]
                if errors.get(name, float("inf")) <= TOLERANCE:
                    settled[name] = (
                        f"{gain:.7g} x identity{_where(weight, tap)}: its block {block_name} scales its sum by "
                        f"{1 / (1 + gain):.4g}, so this makes the block the identity (ZerO's 0 would leave it "
                        f"{1 / (1 + gain):.4g} x its input)"
                    )
                else:
                    weight.zero_()
    return {f"{name}.weight": why for name, why in settled.items()}


def _square(layer: nn.Module) -> bool:
    weight = layer.weight
    groups = getattr(layer, "groups", 1)
    return not getattr(layer, "transposed", False) and weight.shape[0] == weight.shape[1] * groups


def _taps(weight: torch.Tensor) -> list[tuple[int, ...]]:
    """The kernel positions, the centre first, then by distance from it."""
    kernel = weight.shape[2:]
    centre = tuple((k - 1) // 2 for k in kernel)
    taps = list(itertools.product(*(range(k) for k in kernel)))
    return sorted(taps, key=lambda t: (sum(abs(a - c) for a, c in zip(t, centre)), t))


def _identity_at_(weight: torch.Tensor, tap: tuple[int, ...], gain: float) -> None:
    """``weight`` 0 but ``gain`` from each output channel to the same channel (of its group) at ``tap``."""
    out_channels, per_group = weight.shape[0], weight.shape[1]
    rows = torch.arange(out_channels, device=weight.device)
    weight.zero_()[(rows, rows % per_group, *tap)] = gain


def _where(weight: torch.Tensor, tap: tuple[int, ...]) -> str:
    return f" on tap {tap if len(tap) > 1 else tap[0]} of {tuple(weight.shape[2:])}" if tap else ""


def _block_errors(model: nn.Module, example: object, blocks: dict[str, nn.Module]) -> dict[str, float]:
    """``{layer: ||block(x) - x|| / ||x||}`` on ``example``, for the first call of each block whose first argument
    and output are tensors of one shape."""
    errors: dict[str, float] = {}

    def hook(name: str):
        def measure(module: nn.Module, args: tuple, output: object) -> None:
            x = args[0] if args else None
            if name in errors or not isinstance(x, torch.Tensor) or not isinstance(output, torch.Tensor):
                return
            if output.shape == x.shape and x.is_floating_point():
                x, y = x.double(), output.double()
                errors[name] = float((y - x).norm() / x.norm().clamp_min(1e-30))

        return measure

    run_with_hooks(model, example, [block.register_forward_hook(hook(name)) for name, block in blocks.items()])
    return errors
