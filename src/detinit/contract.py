"""The argument contract of a public function or constructor, read from its annotations: each argument a
caller gives is checked before any work, and a bad one is a ``ValueError`` naming the function, the
argument, the value and what is allowed -- never a ``ZeroDivisionError`` from deep inside, never a silent
zero-width model or a NaN-filled weight. Model constructors, registered model builders and the tensor
fills of :mod:`detinit.init` carry it (:func:`checked_arguments`).

=========================  =====================================================================
annotation                 allowed
=========================  =====================================================================
``int``                    an ``int`` (not a ``bool``) >= 1 (sizes, counts); ``at_least`` lowers it
                           (``None``: any int, a dimension index); named ``seed``: in [0, 2**32),
                           unless ``at_least`` names it (a derived seed)
``float``                  a finite ``int`` or ``float``, in ``ranges[name]`` where one is given
``bool``                   ``True`` or ``False``
``str``                    a ``str`` (which ones: the function's own check)
``list[int]``, tuples      a list or tuple of ``int`` >= 1
``nn.Module``              an instance (a model): not a name, a path or a list
``torch.Tensor``           an instance: not a list or a numpy array
``Collection[str]``        a list, tuple or set of str (one str is not a collection of names)
``Callable[...]``          a callable
``str | Path``, ``Path``   a path: a non-empty ``str`` or an ``os.PathLike``
``dict[...]``, ``Mapping``  a mapping (a ``dict``), not a list of pairs or a str
a class of the module      an instance of it (``TrainConfig``, ``ArrayDataset``, ``Study``; a union alias
                           such as ``Dataset`` allows any of its members)
``type[X]`` (X a class)     a class derived from ``X`` (a block class of a ResNet)
``list[X]`` (X a class)     a list of instances of ``X`` (``InitReport.records``, ``Study.runs``)
``X | None``               ``None`` or what ``X`` allows
=========================  =====================================================================

Other annotations (a generator, a dtype, a block class, a union of these) are left to the function.
A class is looked up by its name in the decorated function's module, so ``@checked_arguments()`` on a
function taking ``dataset: TokenDataset`` refuses a dataset's name.

>>> from torch import nn
>>> class Net(nn.Module):
...     @checked_arguments(ranges={"dropout": (0.0, 1.0)})
...     def __init__(self, width: int = 8, dropout: float = 0.0) -> None:
...         super().__init__()
>>> Net(width=0)
Traceback (most recent call last):
    ...
detinit.contract.ArgumentError: Net: width=0 is not supported; width must be an int >= 1
>>> Net(dropout=float("nan"))
Traceback (most recent call last):
    ...
detinit.contract.ArgumentError: Net: dropout=nan is not supported; dropout must be a number in [0, 1]
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import os
import sys
import types
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import torch
from torch import nn

from .values import SEEDS, interval, is_int, is_number, is_seed

F = TypeVar("F", bound=Callable[..., Any])


class ArgumentError(TypeError, ValueError):
    """An argument its contract refuses: a ``ValueError`` (a value out of range) and a ``TypeError`` (a value of
    the wrong type, such as a numpy array for a tensor), so callers catching either see it."""


Rule = tuple[Callable[[object], bool], str]  # (accepts the value, what is allowed in words)


def _sizes(value: object, low: int) -> bool:
    return isinstance(value, (list, tuple)) and all(is_int(v, low) for v in value)


def _is_path(value: object) -> bool:
    return isinstance(value, os.PathLike) or (isinstance(value, str) and value != "")


def _class_rule(kind: str, namespace: Mapping[str, Any] | None) -> Rule | None:
    """``isinstance`` of the class (or union alias) named ``kind`` in ``namespace`` (``issubclass`` for
    ``type[X]``), ``None`` if it names none."""
    if kind.startswith("type[") and kind.endswith("]"):
        base = (namespace or {}).get(kind[5:-1])
        if not isinstance(base, type):
            return None
        return (lambda v: isinstance(v, type) and issubclass(v, base)), f"a subclass of {base.__name__}"
    found = (namespace or {}).get(kind)
    if found is Any or getattr(found, "_is_protocol", False):  # a Protocol (duck typing): isinstance cannot say
        return None
    if isinstance(found, types.GenericAlias) and isinstance(found.__origin__, type):  # FactorCache = dict[...]
        found = found.__origin__
    if isinstance(found, type) and not issubclass(found, (int, float, str, bool)):
        return (lambda v: isinstance(v, found)), f"a {found.__name__}"
    if isinstance(found, types.UnionType) and all(isinstance(member, type) for member in found.__args__):
        names = " or ".join(member.__name__ for member in found.__args__)
        return (lambda v: isinstance(v, found)), f"a {names}"
    return None


def _list_of(rule: Rule) -> Rule:
    """``list[X]`` for a class ``X``: a list whose every item ``rule`` accepts (``"a list of ParamRecord"``)."""
    accepts, what = rule
    return (lambda v: isinstance(v, list) and all(accepts(x) for x in v)), f"a list of {what.removeprefix('a ')}"


def annotation_rule(
    annotation: str,
    low: int | None = 1,
    bounds: tuple[float, float] | None = None,
    *,
    seed: bool = False,
    namespace: Mapping[str, Any] | None = None,
) -> Rule | None:
    """The rule for an annotation written as text (``from __future__ import annotations``), ``None`` where
    the contract does not know it; ``namespace`` (the function's module globals) resolves class names.

    >>> accepts, what = annotation_rule("int | None")
    >>> accepts(None), accepts(0), what
    (True, False, 'None or an int >= 1')
    >>> accepts, what = annotation_rule("str | Path")
    >>> accepts("runs/a"), accepts(""), accepts(3), what
    (True, False, False, 'a path (a non-empty str or a Path)')
    """
    kinds = [part.strip() for part in annotation.split("|")]
    if set(kinds) - {"None"} == {"str", "Path"}:  # a path, given either way
        kinds = [k for k in kinds if k != "str"]
    optional = "None" in kinds
    kinds = [k for k in kinds if k != "None"]
    lo, hi = bounds if bounds is not None else (-math.inf, math.inf)
    number = f"a number in {interval(lo, hi)}" if bounds is not None else "a finite number"
    integer: Rule = (lambda v: is_int(v, low), "an int" if low is None else f"an int >= {low}")
    rules: dict[str, Rule] = {
        "int": (is_seed, SEEDS) if seed else integer,
        "float": (lambda v: is_number(v, lo, hi), number),
        "bool": (lambda v: isinstance(v, bool), "True or False"),
        "str": (lambda v: isinstance(v, str), "a str"),
        "Path": (_is_path, "a path (a non-empty str or a Path)"),
        "list[int]": (lambda v: _sizes(v, low), f"a list of ints >= {low}"),
        "tuple[int, ...]": (lambda v: _sizes(v, low), f"a list of ints >= {low}"),
        "list[str]": (lambda v: isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v), "a list of str"),
        "nn.Module": (lambda v: isinstance(v, nn.Module), "an nn.Module"),
        "torch.Tensor": (lambda v: isinstance(v, torch.Tensor), "a torch.Tensor"),
        "Collection[str]": (
            lambda v: isinstance(v, (list, tuple, set, frozenset)) and all(isinstance(x, str) for x in v),
            "a list or set of str (not one str)",
        ),
    }
    if kinds and kinds[0].startswith("Callable"):
        rules[kinds[0]] = (callable, "a callable")
    for kind in kinds:
        if kind.startswith(("dict[", "Mapping[")) or kind in ("dict", "Mapping"):
            rules[kind] = (lambda v: isinstance(v, Mapping), "a mapping (a dict)")
        elif kind not in rules and kind.startswith("list[") and (rule := _class_rule(kind[5:-1], namespace)):
            rules[kind] = _list_of(rule)
        elif kind not in rules and (rule := _class_rule(kind, namespace)) is not None:
            rules[kind] = rule
    if not kinds or any(k not in rules for k in kinds):
        return None  # a generator, a dtype, a block class, a union of these: the function's own job
    members = [rules[k] for k in kinds]
    accepts = members[0][0] if len(members) == 1 else (lambda v: any(rule(v) for rule, _ in members))
    what = " or ".join(dict.fromkeys(words for _, words in members))  # "list[int] | tuple[int, ...]": one
    if optional:
        return (lambda v: v is None or accepts(v)), f"None or {what}"
    return accepts, what


def _named_rule(
    name: str,
    annotation: str,
    at_least: Mapping[str, int] | None,
    ranges: Mapping[str, tuple[float, float]] | None,
    namespace: Mapping[str, Any] | None,
) -> Rule | None:
    """The rule of an argument or field ``name``: its annotation's, with the bounds given for it, an ``int``
    named ``seed`` (or ``*_seed``) a seed unless ``at_least`` bounds it."""
    low, bounds = (at_least or {}).get(name, 1), (ranges or {}).get(name)
    seed = (name == "seed" or name.endswith("_seed")) and name not in (at_least or {})
    return annotation_rule(annotation, low, bounds, seed=seed, namespace=namespace)


def _check_value(owner: str, name: str, value: object, rule: Rule | None) -> None:
    """An :class:`ArgumentError` naming ``owner``, ``name``, the value and what the rule allows, if it refuses."""
    if rule is not None and not rule[0](value):
        shown = repr(value) if len(repr(value)) <= 80 else f"{repr(value)[:60]}... ({type(value).__name__})"
        raise ArgumentError(f"{owner}: {name}={shown} is not supported; {name} must be {rule[1]}")


def checked_arguments(
    *, at_least: Mapping[str, int] | None = None, ranges: Mapping[str, tuple[float, float]] | None = None
) -> Callable[[F], F]:
    """Decorate a function (a model's ``__init__``, a builder, a fill) to check the arguments a caller gives
    against their annotations first; an argument it does not take is a ``TypeError`` listing those it does.

    ``at_least={"name": 0}`` lowers an ``int``'s bound (``None`` lifts it); ``ranges={"name": (lo, hi)}`` bounds a
    ``float``.
    Checking costs a dictionary lookup per given argument (fills run once per parameter). The decorated
    function's ``check_arguments(*args, **kwargs)`` runs the check alone, without the call (a config checks its
    model's arguments before a run directory is written).
    """

    def wrap(fn: F) -> F:
        signature = inspect.signature(fn)
        passed_on = (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)  # the callee checks those
        params = [p for p in signature.parameters.values() if p.kind not in passed_on]
        positional = [p.name for p in params if p.kind != inspect.Parameter.KEYWORD_ONLY]
        is_method = bool(positional) and positional[0] == "self"
        rules: dict[str, Rule] = {}
        namespace = getattr(inspect.unwrap(fn), "__globals__", {})  # where its annotations' class names live
        for p in params:
            if isinstance(p.annotation, str):
                rule = _named_rule(p.name, p.annotation, at_least, ranges, namespace)
                if rule is not None:
                    rules[p.name] = rule
        known, known_set = [p.name for p in params], {p.name for p in params}
        takes_any = len(params) < len(signature.parameters)  # a **kwargs passed on

        def check(*args: Any, **kwargs: Any) -> None:
            if is_method and not args:  # checked before the object exists: the class that defines the method
                owner, args = fn.__qualname__.split(".")[0], (None,)
            else:
                owner = type(args[0]).__name__ if is_method else fn.__name__
            takes = ", ".join(name for name in known if name != "self")
            unknown = [key for key in kwargs if key not in known_set] if not takes_any else []
            if unknown:  # a TypeError, as Python's own; create_model names the model
                raise TypeError(f"{owner}: got an unexpected keyword argument {unknown[0]!r}; it takes {takes}")
            if len(args) > len(positional):
                raise TypeError(f"{owner}: takes at most {len(positional)} positional arguments, got {len(args)}")
            given = [*zip(positional, args), *kwargs.items()]
            for name, value in given:
                _check_value(owner, name, value, rules.get(name))

        @functools.wraps(fn)
        def checked(*args: Any, **kwargs: Any) -> Any:
            check(*args, **kwargs)
            return fn(*args, **kwargs)

        checked.check_arguments = check  # type: ignore[attr-defined]  # the check alone (a config's early look)
        return checked  # type: ignore[return-value]

    return wrap


def check_fields(obj: object, at_least: Mapping[str, int] | None = None) -> None:
    """Check a dataclass's fields against their annotations, as :func:`checked_arguments` checks a call's
    arguments: for a public dataclass a user may build by hand (a study, a run, a report), called from its
    ``__post_init__``. A field whose annotation the contract does not know is left to the class.

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Run:
    ...     name: str
    ...     workers: int = 1
    ...     def __post_init__(self) -> None:
    ...         check_fields(self)
    >>> Run("a", workers=0)
    Traceback (most recent call last):
    ...
    detinit.contract.ArgumentError: Run: workers=0 is not supported; workers must be an int >= 1
    """
    namespace = vars(sys.modules[type(obj).__module__])
    for item in dataclasses.fields(obj):  # type: ignore[arg-type]
        if isinstance(item.type, str):
            rule = _named_rule(item.name, item.type, at_least, None, namespace)
            _check_value(type(obj).__name__, item.name, getattr(obj, item.name), rule)
