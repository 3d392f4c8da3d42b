r"""ZerO's zeros that learn fast: the scales that start a branch or a tied output at 0, computed through a
function with slope :math:`g` at 0 (options ``end_gain``, ``output_gain``, ``end_reach``).

Norm-aware ZerO starts each residual branch at 0 on the scale of the norm or layer scale that ends it (role
``branch_last_norm``) and a tied output layer at 0 on the scale of the norm before it (``classifier_norm``).
Those scales keep ZerO's promises at step 0 (identity blocks, logits 0), and they make it start slowly: each
gates a whole branch or the whole vocabulary, the gradient of every weight of a branch is proportional to
it, and it grows from 0 at the pace of the learning rate (docs/results.md, sections 7, 8 and 13).

Here such a scale :math:`w` is computed from a parameter :math:`\theta` by
:math:`w = w_0 + f(\theta)`, :math:`f(\theta) = \theta + r \tanh\big((g - 1)\,\theta / r\big)` (:class:`EndGain`,
through ``torch.nn.utils.parametrize``), with :math:`w_0` its start and :math:`\theta = 0`. The network at step 0 is
bitwise the same. Near 0 an optimiser over ``model.parameters()`` moves :math:`w` faster without being told,
:math:`g^2` times the learning rate under SGD (:math:`\Delta w \approx g\,\Delta\theta` and
:math:`\partial_\theta L = g\,\partial_w L`), :math:`g` times under Adam (:math:`\theta` moves by about
:math:`\eta` a step); the boost :math:`f(\theta) - \theta` saturates at :math:`\pm r` (the reach), after
which :math:`w` learns at the plain rate: a large gain cannot blow a scale up.

The state dict keeps the plain names and values (``bn2.weight`` is :math:`w`): it loads into the
model without the parametrization, and a plain state dict loads into the parametrized model.
:func:`remove_end_gains_` bakes the gains into plain parameters (before exporting a model to code that reads
``module.weight`` as an ``nn.Parameter``).

>>> from torch import nn
>>> net = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
>>> _ = nn.init.zeros_(net[1].weight)
>>> install_end_gains_(net, {"1.weight": (30.0, 1.0)})  # nothing refused
{}
>>> sorted(net.state_dict()), float(net(torch.randn(2, 4)).abs().max())
(['0.bias', '0.weight', '1.bias', '1.weight'], 0.0)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..roles.traced.index import parametrized_tensor

ORIGINAL = "parametrizations.{}.original"
PARAMETER_ORDER = "_detinit_parameter_order"  # the plain module's parameter names, in order (for its state dict)
HOOKS = "_detinit_end_gain_hooks"  # the state-dict hooks' handles


class EndGain(nn.Module):
    r"""The parametrization :math:`w = w_0 + f(\theta)`, :math:`f(\theta) = \theta + r \tanh\big((g - 1)\,
    \theta / r\big)`: slope :math:`g` at the start :math:`w_0` (``origin``), slope 1 once
    :math:`|\theta| \gg r / (g - 1)`; the boost :math:`f(\theta) - \theta` stays within :math:`\pm r` (the
    reach). At the start :math:`\theta = 0` and :math:`w = w_0` exactly; ``right_inverse`` solves
    :math:`f(\theta) = w - w_0` by Newton's method (:math:`f` is odd and increasing with slope in :math:`[1, g]`).

    >>> f = EndGain(30.0, 1.0)
    >>> round(float(f(torch.tensor(0.01))), 4), float(f.right_inverse(torch.tensor(0.0)))
    (0.2921, 0.0)
    """

    def __init__(self, gain: float, reach: float, origin: float = 0.0) -> None:
        super().__init__()
        for name, value, low in (("gain", gain, 1.0), ("reach", reach, 0.0), ("origin", origin, -math.inf)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low < value < math.inf:
                bound = "a finite number" + (f" > {low:g}" if low > -math.inf else "")
                raise ValueError(f"EndGain: {name}={value!r} is not supported; {name} must be {bound}")
        self.gain, self.reach, self.origin = float(gain), float(reach), float(origin)

    def forward(self, theta: torch.Tensor) -> torch.Tensor:
        boosted = theta + self.reach * torch.tanh(theta * ((self.gain - 1) / self.reach))
        return boosted + self.origin if self.origin else boosted

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        w = weight.detach().double() - self.origin
        theta = w / self.gain
        k = (self.gain - 1) / self.reach
        for _ in range(60):
            t = torch.tanh(theta * k)
            theta = theta - (theta + self.reach * t - w) / (1 + (self.gain - 1) * (1 - t * t))
        return theta.to(weight.dtype)

    def extra_repr(self) -> str:
        return f"gain={self.gain:g}, reach={self.reach:g}" + (f", origin={self.origin:g}" if self.origin else "")


def install_end_gains_(
    model: nn.Module, gains: Mapping[str, tuple[float, float]], *, skip_refused: bool = False
) -> dict[str, str]:
    r"""Compute each parameter of ``gains`` (full names, e.g. ``"layer1.0.bn2.weight"``, to ``(gain, reach)``)
    through an :class:`EndGain`. A parameter whose entries are all one value
    :math:`w_0` (a zero; -1 for a scale held as 1 + w) takes it as the origin and starts at :math:`\theta = 0`
    exactly; any other takes :math:`\theta = f^{-1}(w)`.

    A parameter another parametrization already computes, a sharded one, or one shared by several modules is
    refused (:func:`end_gain_refusals`): the gain would be applied twice, or to one of its users only. A refusal
    raises ``ValueError``; with ``skip_refused`` those parameters are left plain. Returns the refusals, by name.
    """
    _check_gains(model, gains)
    refused = end_gain_refusals(model, gains)
    if refused and not skip_refused:
        raise ValueError("; ".join(f"end_gain: {name} {why}" for name, why in refused.items()))
    for name, (gain, reach) in gains.items():
        if name in refused:
            continue
        owner, _, attr = name.rpartition(".")
        module = model.get_submodule(owner)
        value = module._parameters[attr]
        first = value.detach().reshape(-1)[:1]
        uniform = value.numel() > 0 and bool((value.detach() == first).all())
        origin = float(first) if uniform else 0.0  # a constant start (0, -1 for a scale 1 + w) is kept exactly
        if not parametrize.is_parametrized(module):
            setattr(module, PARAMETER_ORDER, tuple(module._parameters))
        parametrize.register_parametrization(module, attr, EndGain(gain, reach, origin))
        if not hasattr(module, HOOKS):  # once per module, removed with its last gain
            hooks = (
                module.register_state_dict_post_hook(_plain_state_dict),
                module.register_load_state_dict_pre_hook(_from_plain_state_dict),
            )
            setattr(module, HOOKS, hooks)
    return refused


def _check_gains(model: nn.Module, gains: object) -> None:
    """``gains`` maps names of ``model``'s parameters to ``(gain, reach)`` pairs, else an error naming the entry."""
    if not isinstance(gains, Mapping):
        raise TypeError(
            f"install_end_gains_: gains must be a mapping of parameter names to (gain, reach), got a "
            f"{type(gains).__name__}, e.g. {{'layer1.0.bn2.weight': (30.0, 1.0)}}"
        )
    modules = dict(model.named_modules())
    for name, pair in gains.items():
        owner, _, attr = name.rpartition(".") if isinstance(name, str) else ("", "", "")
        module = modules.get(owner)
        if module is None or (attr not in module._parameters and not parametrize.is_parametrized(module, attr)):
            raise ValueError(f"install_end_gains_: {name!r} is not a parameter of the {type(model).__name__}")
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(
                f"install_end_gains_: gains[{name!r}]={pair!r}; give a pair (gain, reach), e.g. (30.0, 1.0)"
            )
        EndGain(*pair)  # its numbers checked before any parameter is touched


def end_gain_refusals(model: nn.Module, names: Iterable[str]) -> dict[str, str]:
    """Why each parameter of ``names`` cannot take an :class:`EndGain` (those that can are left out)."""
    users: dict[int, int] = {}
    for module in model.modules():
        for p in module._parameters.values():
            if p is not None:
                users[id(p)] = users.get(id(p), 0) + 1
    refused = {}
    for name in names:
        owner, _, attr = name.rpartition(".")
        module = model.get_submodule(owner)
        param = module._parameters.get(attr)
        if parametrize.is_parametrized(module, attr):
            refused[name] = "is already computed by a parametrization; it cannot take a gain too"
        elif type(param).__name__ == "DTensor":
            refused[name] = "is sharded (a DTensor): initialise before sharding for the gain"
        elif users.get(id(param), 0) > 1:
            refused[name] = "is shared by several modules: a gain would reach one of them only"
    return refused


def remove_end_gains_(model: nn.Module) -> list[str]:
    """Bake every :class:`EndGain` of ``model`` into a plain parameter holding :math:`f(\theta)`; returns their
    names. Other parametrizations stay. The parameters are new objects: build the optimiser afterwards."""
    done = []
    for owner, module in list(model.named_modules()):
        for attr in gained_tensors(module):
            parametrize.remove_parametrizations(module, attr, leave_parametrized=True)
            done.append(f"{owner}.{attr}" if owner else attr)
        if gained_tensors(module) or not hasattr(module, HOOKS):
            continue
        for handle in getattr(module, HOOKS):
            handle.remove()
        delattr(module, HOOKS)
        order = getattr(module, PARAMETER_ORDER, None)
        if order is not None and not parametrize.is_parametrized(module):  # the plain module's order again
            params = module._parameters
            for name in [n for n in order if n in params] + [n for n in params if n not in order]:
                params[name] = params.pop(name)
            delattr(module, PARAMETER_ORDER)
    return done


def gained_tensors(module: nn.Module) -> list[str]:
    """The tensors of ``module`` computed by an :class:`EndGain` alone."""
    if not parametrize.is_parametrized(module):
        return []
    return [
        attr for attr, chain in module.parametrizations.items() if len(chain) == 1 and isinstance(chain[0], EndGain)
    ]


def plain_name(name: str) -> str:
    """``a.parametrizations.weight.original`` -> ``a.weight`` (the name the layer and the report use)."""
    if "parametrizations." not in name or not name.endswith(".original"):
        return name
    return parametrized_tensor(name.removesuffix(".original"))[1]


@contextmanager
def raw_state_dict() -> Iterator[None]:
    """Within it, ``state_dict()`` keeps the originals :math:`\theta` under their own names (a checkpoint that
    resumes bitwise: :math:`f^{-1}(f(\theta))` rounds differently from :math:`\theta`); ``load_state_dict``
    takes either form.

    >>> from torch import nn
    >>> net = nn.Sequential(nn.LayerNorm(2))
    >>> _ = install_end_gains_(net, {"0.weight": (30.0, 1.0)})
    >>> with raw_state_dict():
    ...     sorted(net.state_dict())
    ['0.bias', '0.parametrizations.weight.original']
    """
    global _RAW
    _RAW += 1
    try:
        yield
    finally:
        _RAW -= 1


_RAW = 0  # depth of raw_state_dict() contexts


def _plain_state_dict(module: nn.Module, state: dict[str, Any], prefix: str, metadata: Any) -> None:
    """State-dict post-hook: ``prefix + 'parametrizations.w.original'`` -> ``prefix + 'w'`` = ``f(theta)``, in the
    place the plain module's ``w`` has (its parameters in their registration order, then the rest)."""
    gained = gained_tensors(module)
    if _RAW or not any(prefix + ORIGINAL.format(attr) in state for attr in gained):
        return
    mine = {key: state.pop(key) for key in [k for k in state if k.startswith(prefix)]}  # this module's, at the end
    for attr in gained:
        key = prefix + ORIGINAL.format(attr)
        if key in mine:
            mine[prefix + attr] = module.parametrizations[attr][0](mine.pop(key).detach())
    order = [prefix + name for name in getattr(module, PARAMETER_ORDER, ())]
    for key in [k for k in order if k in mine] + [k for k in mine if k not in order]:
        state[key] = mine[key]


def _from_plain_state_dict(module: nn.Module, state: dict[str, Any], prefix: str, *args: Any) -> None:
    """Load pre-hook: a plain ``prefix + 'w'`` becomes the original ``w / g``."""
    for attr in gained_tensors(module):
        key = prefix + attr
        if key in state and prefix + ORIGINAL.format(attr) not in state:
            state[prefix + ORIGINAL.format(attr)] = module.parametrizations[attr][0].right_inverse(state.pop(key))
