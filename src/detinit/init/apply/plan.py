"""What :func:`detinit.initialize` plans before it writes anything: a :class:`Site` per parameter (what is
known about it), an :class:`Entry` per parameter (its report line, with the role's source and the
evidence as fields) and a :class:`ModulePlan` per module (the rules its parameters will get)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from torch import nn

from ..roles.layers import NORM_TYPES, WEIGHT_LAYER_TYPES
from ..roles.recurrent import RECURRENT_TYPES
from ..roles.traced.result import TracedParam
from ..roles.vocabulary import NORM_ROLES, LayerInfo
from ..schemes.rule import ParamRule
from .report import ParamRecord


class Site(NamedTuple):
    """One parameter and everything the resolver may read about it (a tuple: one is built per parameter).

    ``module_kind`` is how its module was classified (:func:`module_kind`); ``params`` are the module's
    direct parameters; ``norm_kinds`` says which is a norm's scale or shift
    for a norm of a class found by tracing (``None`` otherwise) and ``norm_evidence`` how it was found;
    ``traced`` is how the traced forward pass used the parameter, if it was traced.
    """

    module: nn.Module
    module_kind: str
    param_name: str
    param: nn.Parameter
    layer: LayerInfo
    params: Mapping[str, nn.Parameter]
    norm_kinds: Mapping[str, str] | None = None
    norm_evidence: str = ""
    traced: TracedParam | None = None


class Entry(NamedTuple):
    """A parameter's line of the report while it is built: the rule's reason, the evidence of a traced use,
    the role's source and a note on a tied weight are kept apart and joined once, in :meth:`record`
    (a tuple: one is built per parameter, changed with ``_replace``)."""

    name: str
    module_type: str
    shape: tuple[int, ...]
    role: str
    rule: str
    why: str
    evidence: str = ""
    source: str = ""
    note: str = ""

    def record(self) -> ParamRecord:
        reason = self.why
        if self.evidence:
            reason += f" [{self.evidence}]"
        if self.source:
            reason += f" [{self.source}]"
        return ParamRecord(self.name, self.module_type, self.shape, self.role, self.rule, reason + self.note)


class ModulePlan:
    """What will happen to one module's direct parameters (``params``, as planned): the rules found for them
    (``rules``) and the index of each one's :class:`Entry`; ``hooked``: the module's ``detinit_init_`` hook
    goes first. (A slotted class: one is built per module.)"""

    __slots__ = ("entries", "hooked", "module", "params", "rules")

    def __init__(self, module: nn.Module, params: dict[str, nn.Parameter], hooked: bool) -> None:
        self.module = module
        self.params = params
        self.hooked = hooked
        self.rules: dict[str, ParamRule] = {}
        self.entries: dict[str, int] = {}


def direct_parameters(module: nn.Module) -> dict[str, nn.Parameter]:
    """The parameters ``module`` holds itself, by name, read straight from it (``named_parameters``'
    generator costs more, once per module). A parameter registered under two names appears twice;
    :func:`detinit.initialize` records and writes it once (it tracks ids)."""
    return {name: param for name, param in module._parameters.items() if param is not None}


def module_kind(module: nn.Module, layer: LayerInfo, traced_norm: bool) -> str:
    """How the resolver reads a module's parameters, decided once per module: ``"attention"``
    (``nn.MultiheadAttention``), ``"norm"`` (torch's norms, one found by tracing, or a module given a norm
    role), ``"recurrent"``, ``"layer"`` (Linear, conv, Embedding), ``"activation"`` (PReLU), or ``"traced"``
    (any other class: only what the trace found). A norm role on a module that is not one is refused."""
    kind = _CLASS_KINDS.get(type(module))
    if kind is None:
        kind = _CLASS_KINDS[type(module)] = _class_kind(module)
    if kind == "attention":
        return kind
    is_norm = kind == "norm" or traced_norm
    if layer.role in NORM_ROLES and not is_norm and layer.role != "norm":
        raise ValueError(
            f"role {layer.role!r} is for a normalisation layer; {type(module).__name__} is not one (BatchNorm, "
            "InstanceNorm, GroupNorm, LayerNorm, RMSNorm, or a module whose output does not change when its input "
            "is scaled)"
        )
    return "norm" if is_norm or layer.role in NORM_ROLES else kind


def _class_kind(module: nn.Module) -> str:
    """What a module's class alone says of it (:func:`module_kind`, before roles and tracing)."""
    if isinstance(module, nn.MultiheadAttention):
        return "attention"
    if isinstance(module, NORM_TYPES):
        return "norm"
    if isinstance(module, RECURRENT_TYPES):
        return "recurrent"
    if isinstance(module, nn.PReLU):
        return "activation"
    return "layer" if isinstance(module, WEIGHT_LAYER_TYPES) else "traced"


_CLASS_KINDS: dict[type, str] = {}  # a class's kind, found once per process (isinstance on a tuple of types is slow)
