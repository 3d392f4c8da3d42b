"""Parameters no scheme knows, set from their library's own initialisation: :func:`adopt_library_init_`.

Some parameters are not weights a scheme fills but constants of a layer's dynamics: a state-space layer's
``A_log = log(1..N)`` and skip ``D = 1`` (Mamba), a learned temperature ``log(1 / 0.07)``, a layer scale
``1e-5``. Where a model carries its library's initialiser (Hugging Face's ``model._init_weights(module)``),
each module holding such a parameter is initialised by it from :data:`PROBE_DRAWS` seeds of a forked RNG, with
the parameter first set to NaN (so a library that skips it is not mistaken for one that sets it). Everything
the probe wrote is put back; the global RNG is untouched. A parameter that comes out finite

- and the same on every seed gets rule ``library``: those values;
- and different (the library draws it: a linear-attention head's decay ``A_log = log U(0.01, 16)``, a
  learned query token ``N(0, 0.02)``) gets, under a deterministic scheme, rule ``library_quantiles``: the
  quantiles ``(i + 1/2) / n`` of the library's distribution (estimated from the pooled draws), ascending
  along the tensor, so every run starts the same with the spread the library intends (heads with time scales
  from the shortest to the longest), where the tensor is a vector (one dimension longer than 1: a matrix in
  ascending order would be near rank one, so a drawn matrix stays unknown); under a random scheme rule
  ``library_draw``: the library's own draw, seeded from the scheme's generator.

One the initialiser leaves alone, or one in a module with no initialiser of its library (a plain PyTorch
library's), keeps its constructor's value where that is a single constant (rule ``constructed``: Apertus'
activation parameters ``alpha_p``, a bias table of zeros, x-transformers' dynamic-tanh scale ``0.5``); any other
stays unknown.

>>> import torch
>>> class Decay(torch.nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.rate = torch.nn.Parameter(torch.empty(4))
...     def _init_weights(self, module):
...         module.rate.data.uniform_(0.0, 1.0)
>>> from detinit import initialize
>>> model = Decay()
>>> initialize(model, "zero").records[0].rule
'library_quantiles'
>>> rate = model.rate.tolist()
>>> rate == sorted(rate) and 0 < rate[0] < 0.25 and 0.75 < rate[3] < 1
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from ..schemes.rule import ParamRule
from .plan import Entry, ModulePlan
from .report import UNKNOWN

LIBRARY = "library"
LIBRARY_QUANTILES = "library_quantiles"
LIBRARY_DRAW = "library_draw"
CONSTRUCTED = "constructed"
PROBE_DRAWS = 8  # seeds the library's initialiser is run with; the first two tell a constant from a draw

Init = Callable[[nn.Module], object]


def adopt_library_init_(model: nn.Module, plans: list[ModulePlan], entries: list[Entry], random: bool) -> None:
    """Give each unknown parameter its library's initialisation (module docstring): rule ``library`` where it is
    deterministic, else ``library_draw`` (``random``: the scheme draws at random) or ``library_quantiles``.
    ``plans`` and ``entries`` are updated in place."""
    inits = _innermost_inits(model)
    for plan in plans:
        unknown = [name for name, i in plan.entries.items() if entries[i].rule == UNKNOWN]
        if not unknown or any(plan.params[n].is_meta for n in unknown):
            continue
        if id(plan.module) not in inits:  # no initialiser of its library: what its constructor set, if constant
            for name in unknown:
                _keep_constructed_constant(plan, entries, name, type(plan.module).__name__, initialiser=False)
            continue
        owner, init = inits[id(plan.module)]
        draws = _draws(init, plan.module, unknown, range(PROBE_DRAWS))
        for name in unknown:
            values = [d[name] for d in draws]
            if not values or not all(torch.isfinite(v).all() for v in values):
                _keep_constructed_constant(plan, entries, name, owner)
                continue
            if torch.equal(values[0], values[1]):
                rule, why, fill = LIBRARY, f"{owner}'s own initialisation, the same on every seed", _copy(values[0])
            elif random:
                why = f"{owner}'s own initialisation draws it: drawn so, seeded from the scheme's generator"
                rule, fill = LIBRARY_DRAW, _library_draw(init, plan.module, name)
            elif sum(size > 1 for size in values[0].shape) > 1:
                continue  # a matrix in ascending order would be near rank one: no deterministic stand-in
            else:
                why = f"{owner}'s own initialisation draws it: the quantiles of that distribution, in order"
                rule, fill = LIBRARY_QUANTILES, _copy(_quantiles(values))
            _give(plan, entries, name, ParamRule(rule, why, fill))


def _innermost_inits(model: nn.Module) -> dict[int, tuple[str, Init]]:
    """For each module (by id), the class name and ``_init_weights`` of the innermost module holding it that has
    one: a composite model's language model (MiniCPM-V's Qwen3.5) knows its own layers."""
    found: dict[str, tuple[str, Init]] = {}
    by_id: dict[int, tuple[str, Init]] = {}
    for name, module in model.named_modules():
        init = getattr(module, "_init_weights", None)
        if callable(init):
            found[name] = (type(module).__name__, init)
        elif name:
            parent = name.rpartition(".")[0]
            if parent in found:
                found[name] = found[parent]
        if name in found:
            by_id.setdefault(id(module), found[name])
    return by_id


def _keep_constructed_constant(
    plan: ModulePlan, entries: list[Entry], name: str, owner: str, *, initialiser: bool = True
) -> None:
    """A parameter the library's initialiser leaves alone, or that no initialiser of its library and no rule
    knows (``initialiser=False``: a plain PyTorch library's dynamic-tanh ``alpha = 0.5``, a head scale of ones),
    keeps the constructor's value where that is one constant (Apertus' activation ``alpha_p``, a zero bias
    table): rule ``constructed``. A tensor of several values (a trained one) stays unknown."""
    tensor = plan.params[name]
    if tensor.numel() == 0 or not torch.isfinite(tensor).all() or not bool((tensor == tensor.flatten()[0]).all()):
        return
    value = float(tensor.flatten()[0])
    leaves = "its initialiser leaves it" if initialiser else "no rule and no initialiser of its library knows it"
    why = f"{owner}'s constructor sets it to one constant ({value:.4g}); {leaves}"
    _give(plan, entries, name, ParamRule(CONSTRUCTED, why, _copy(tensor.detach().clone())))


def _give(plan: ModulePlan, entries: list[Entry], name: str, rule: ParamRule) -> None:
    """Plan ``rule`` for the parameter ``name`` of ``plan``'s module, and say so in its entry."""
    plan.rules[name] = rule
    index = plan.entries[name]
    entries[index] = entries[index]._replace(rule=rule.rule, why=rule.reason)


def _draws(init: Init, module: nn.Module, names: list[str], seeds: Iterable[int]) -> list[dict[str, torch.Tensor]]:
    """``names``' values after ``init(module)`` from each seed (none where the initialiser cannot run alone),
    each parameter set to NaN before; the module's state and the global RNG are left as they were."""
    saved = [t.detach().clone() for t in _state(module)]
    draws: list[dict[str, torch.Tensor]] = []
    devices = sorted({t.device.index or 0 for t in saved if t.device.type == "cuda"})
    try:
        for seed in seeds:
            with torch.no_grad():
                for name in names:
                    module._parameters[name].fill_(float("nan"))
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                try:
                    init(module)
                except Exception:  # noqa: BLE001 (a library initialiser that cannot run alone teaches nothing)
                    return []
            draws.append({n: module._parameters[n].detach().clone() for n in names})
    finally:
        with torch.no_grad():
            for tensor, value in zip(_state(module), saved):
                tensor.copy_(value)
    return draws


def _quantiles(draws: list[torch.Tensor]) -> torch.Tensor:
    """The quantiles ``(i + 1/2) / n``, ``i = 0..n-1``, of the pooled draws of an ``n``-element tensor, in
    ascending order and the tensor's shape."""
    pooled = torch.cat([d.flatten().double() for d in draws]).sort().values
    n = draws[0].numel()
    at = ((torch.arange(n, dtype=torch.float64) + 0.5) * pooled.numel() / n).long().clamp_(max=pooled.numel() - 1)
    return pooled[at].reshape(draws[0].shape).to(draws[0].dtype)


def _state(module: nn.Module) -> list[torch.Tensor]:
    return [*module.parameters(), *module.buffers()]


def _copy(values: torch.Tensor) -> Callable[[torch.Tensor, torch.Generator], object]:
    def fill(tensor: torch.Tensor, generator: torch.Generator) -> None:
        tensor.copy_(values)

    return fill


def _library_draw(init: Init, module: nn.Module, name: str) -> Callable[[torch.Tensor, torch.Generator], object]:
    def fill(tensor: torch.Tensor, generator: torch.Generator) -> None:
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
        for draw in _draws(init, module, [name], [seed]):  # none only where the initialiser stopped running
            tensor.copy_(draw[name])

    return fill
