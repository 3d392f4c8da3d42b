"""Parameters no scheme knows, kept at their library's own initialisation where that is deterministic:
:func:`adopt_library_init_`.

Some parameters are not weights a scheme fills but constants of a layer's dynamics: a state-space layer's
``A_log = log(1..N)`` and skip ``D = 1`` (Mamba), a learned temperature ``log(1 / 0.07)``, a layer scale
``1e-5``. Their library sets them to the same values on every seed. Where a model carries its library's
initialiser (Hugging Face's ``model._init_weights(module)``), each module holding such a parameter is
initialised by it twice, from two seeds of a forked RNG, with the parameter first set to NaN (so a library
that skips it is not mistaken for one that sets it): a parameter that comes out finite and equal both times
gets rule ``library`` with those values. Everything the probe wrote is put back; the global RNG is untouched.
A parameter the library draws at random stays unknown.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..schemes.rule import ParamRule
from .plan import Entry, ModulePlan
from .report import UNKNOWN

LIBRARY = "library"


def adopt_library_init_(model: nn.Module, plans: list[ModulePlan], entries: list[Entry]) -> None:
    """Give each unknown parameter whose library initialises it deterministically the rule ``library``;
    ``plans`` and ``entries`` are updated in place."""
    init = getattr(model, "_init_weights", None)
    if not callable(init):
        return
    for plan in plans:
        unknown = [name for name, i in plan.entries.items() if entries[i].rule == UNKNOWN]
        if not unknown or any(plan.params[n].is_meta for n in unknown):
            continue
        for name, values in _deterministic_values(init, plan.module, unknown).items():
            index = plan.entries[name]
            why = f"{type(model).__name__}'s own initialisation, the same on every seed"
            plan.rules[name] = ParamRule(LIBRARY, why, _copy_fill(values))
            entries[index] = entries[index]._replace(rule=LIBRARY, why=why)


def _deterministic_values(
    init: Callable[[nn.Module], object], module: nn.Module, names: list[str]
) -> dict[str, torch.Tensor]:
    saved = [t.detach().clone() for t in _state(module)]
    draws: list[dict[str, torch.Tensor]] = []
    devices = sorted({t.device.index or 0 for t in saved if t.device.type == "cuda"})
    try:
        for seed in (0, 1):
            with torch.no_grad():
                for name in names:
                    module._parameters[name].fill_(float("nan"))
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                try:
                    init(module)
                except Exception:  # noqa: BLE001 (a library initialiser that cannot run alone teaches nothing)
                    return {}
            draws.append({n: module._parameters[n].detach().clone() for n in names})
    finally:
        with torch.no_grad():
            for tensor, value in zip(_state(module), saved):
                tensor.copy_(value)
    first, second = draws
    return {n: first[n] for n in names if torch.isfinite(first[n]).all() and torch.equal(first[n], second[n])}


def _state(module: nn.Module) -> list[torch.Tensor]:
    return [*module.parameters(), *module.buffers()]


def _copy_fill(values: torch.Tensor) -> Callable[[torch.Tensor, torch.Generator], object]:
    def fill(tensor: torch.Tensor, generator: torch.Generator) -> None:
        tensor.copy_(values)

    return fill
