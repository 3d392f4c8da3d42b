"""The schemes by name: :data:`SCHEMES`, :func:`get_scheme`, :func:`list_schemes`.

Scheme names are stable strings for configs and the CLI. Adding a scheme is one module with a
:class:`~detinit.init.schemes.base.Scheme` subclass and one ``SCHEMES.add`` line here (or in the
user's own code: the registry is public).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable

from ...registry import Registry
from .base import Scheme
from .constnet import ConstNetScheme
from .fixup import FixupScheme
from .idinit import IDInitScheme
from .random import GatedScheme, RandomScheme
from .transformer import GPT2Scheme, TFixupScheme
from .zero import ZerOScheme

SCHEMES: Registry[Callable[..., Scheme]] = Registry("scheme")
SCHEMES.add("zero", lambda **kw: ZerOScheme(hadamard=True, **kw), "ZerO: identity, partial identity, Hadamard; zeros")
SCHEMES.add(
    "partial_identity", lambda **kw: ZerOScheme(hadamard=False, **kw), "ZerO without Hadamard: partial identity only"
)
SCHEMES.add("constnet", ConstNetScheme, "ConstNet: channel averaging (ConstAvg), zeros for branch ends")
SCHEMES.add("idinit", IDInitScheme, "IDInit (Pan et al. 2025): padded identity, branch ends at eps x identity")
SCHEMES.add("kaiming", lambda **kw: RandomScheme("kaiming", **kw), "He et al. 2015")
SCHEMES.add("xavier", lambda **kw: RandomScheme("xavier", **kw), "Glorot & Bengio 2010")
SCHEMES.add("orthogonal", lambda **kw: RandomScheme("orthogonal", **kw), "Saxe et al. 2014")
SCHEMES.add("fixup", FixupScheme, "Fixup (Zhang et al. 2019): scaled branches, zero branch ends")
SCHEMES.add("skipinit", lambda **kw: GatedScheme("skipinit", **kw), "SkipInit: Kaiming, residual gates at 0")
SCHEMES.add("rezero", lambda **kw: GatedScheme("rezero", **kw), "ReZero: Xavier, residual gates at 0")
SCHEMES.add("gpt2", GPT2Scheme, "GPT-2: N(0, 0.02), branch ends / sqrt(number of branches)")
SCHEMES.add("tfixup", TFixupScheme, "T-Fixup (Huang et al. 2020): Xavier, value / output / MLP scaled by depth")


_BOUND = ("hadamard", "kind", "name")  # what the registry's builders fix for a scheme name (zero, kaiming, skipinit)


def _takes(build: Callable[..., Scheme]) -> str:
    """The options a scheme builder takes, in words: its class's keyword parameters, less those the builder binds."""
    parameters = inspect.signature(type(build())).parameters.values()
    named = [p.name for p in parameters if p.kind is not p.VAR_KEYWORD and p.name not in _BOUND]
    extra = any(p.kind is p.VAR_KEYWORD for p in parameters)
    return ", ".join(named + ["the options of the scheme it gates"] * extra) or "no options"


def list_schemes() -> list[str]:
    """Names accepted by :func:`get_scheme` and :func:`detinit.initialize`."""
    return sorted(SCHEMES.names())


def get_scheme(name: str | Scheme, **options: object) -> Scheme:
    """Build a scheme by name, e.g. ``get_scheme("zero", norm="paper")``.

    >>> get_scheme("kaiming", mode="fan_out").options()
    {'zero_init_last': False, 'distribution': 'normal', 'mode': 'fan_out'}
    """
    if isinstance(name, Scheme):
        if options:
            raise ValueError("options can only be given with a scheme name, not a Scheme instance")
        return name
    build = SCHEMES.get(name)
    try:
        scheme = build(**options)
    except TypeError as err:  # an option the scheme does not take
        unknown = re.findall(r"unexpected keyword argument '(\w+)'", str(err)) or sorted(options)
        raise ValueError(f"scheme {name!r} does not accept options {unknown}; it takes {_takes(build)}") from None
    ignored = scheme.ignored_options(options)
    if ignored:
        why = "; ".join(f"{key}={options[key]!r} {reason}" for key, reason in ignored.items())
        raise ValueError(f"scheme {name!r}: {why}; drop the option")
    return scheme
