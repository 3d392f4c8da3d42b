"""Parts of a model its example input never reaches, traced on their own: :func:`trace_unreached_parts`.

A multimodal model traced on text alone never runs its vision or audio tower (a Llava's CLIP encoder, a
Gemma 3's SigLIP with its attention-pooling ``probe``), so nothing is known about their layers; a speech model
with a CTC head never reads its encoder's mask embedding, which only the encoder's own input reaches. Where
such a part is itself a model its library describes (a Hugging Face ``PreTrainedModel`` with its own config and
``main_input_name``), it is traced on its own example input (:func:`~detinit.init.roles.example_inputs.example_for`)
and what that finds is merged under its name. Its output is not the model's output, so the tower's own output
layer is not a ``"classifier"``; and the norm settling that needs the whole model's forward pass
(:mod:`detinit.init.apply.embedding_norm`) is not asked of it.

>>> import torch
>>> from torch import nn
>>> class Towers(nn.Module):  # the text path never calls the vision tower
...     def __init__(self):
...         super().__init__()
...         self.text, self.vision = nn.Linear(4, 4), nn.Linear(4, 4)
...     def forward(self, x):
...         return self.text(x)
>>> model = Towers()
>>> traced = trace_roles(model, torch.ones(2, 4))
>>> trace_unreached_parts(model, traced)  # a plain module says nothing of its inputs: nothing to trace
[]
"""

from __future__ import annotations

import inspect
import re

import torch
from torch import nn

from ..example_inputs import Example, embedded_candidates, example_for, feature_vectors, runs_on, text_config
from ..trace import TraceError
from . import trace_roles
from .result import TracedRoles

OUTPUT_ROLES = ("classifier", "classifier_norm")
ENCODER_STATES = "encoder_hidden_states"
SEGMENTS = "token_type_ids"
UNREACHED = "parameters no trace reached"  # the report's note on them says so
# config keys naming the width of the encoder states a decoder's cross-attention reads, the likeliest first
CROSS_WIDTHS = ("cross_attention_hidden_size", "encoder_hidden_size", "d_model", "hidden_size")


def trace_unreached_parts(model: nn.Module, traced: TracedRoles, example: object = None) -> list[str]:
    """Trace what the forward pass behind ``traced`` (on ``example``) never read, and merge what is found into
    ``traced`` (in place; what the whole model's trace found wins); return the names of the parts traced
    (``""`` for the whole model traced again):

    * a decoder that takes ``encoder_hidden_states`` the example lacks (a BART decoder as a causal LM: its
      cross-attention runs only beside an encoder) is traced again, whole, with encoder states added
      (:data:`CROSS_WIDTHS`: the first width its config names that it runs on), and a model that takes
      ``token_type_ids`` with segment ids (XLNet's segment embedding is read only then);
    * a member of a ``ModuleList`` / ``ModuleDict`` none of whose parameters was read (an expert no token of
      the example was routed to) takes the roles of a member that was, of the same class and structure
      (:func:`copy_roles_to_unread_copies`);
    * each outermost submodule its library describes whose parameters were never read, or whose own parameter
      was not (a wav2vec 2.0 inside a CTC head: its mask embedding is read only where its own input masks
      frames), on its own example input, under its name;
    * each plain container of layers that was never read, inside a module that was, and whose forward takes
      one tensor (a multimodal model's projector, fed its tower's features): on vectors of a width its layers
      take. A container inside an unread block is not traced alone: it would lose the role the block gives it
      (an MLP is a residual branch), and is better left to the report's note."""
    parts: list[str] = []
    if isinstance(example, dict) and _trace_with_optional_inputs(model, traced, example):
        parts.append("")
    copy_roles_to_unread_copies(model, traced)
    reached = _reached(model, traced)
    hits = {""}  # modules with a parameter the traces read
    for name, module in model.named_modules():
        if not name or any(name.startswith(done + ".") for done in parts if done):
            continue
        own = list(module.parameters())
        direct = [p for p in module._parameters.values() if p is not None]
        hit = any(id(p) in reached for p in own)
        if hit:
            hits.add(name)
        if not own or (hit and all(id(p) in reached for p in direct)):
            continue
        found = example_for(module)
        if found is None and not hit and name.rpartition(".")[0] in hits and _is_container(module):
            found = _one_tensor_example(module)  # outermost: a part of an untraced block would lose its role
        if found is None or found.inputs is None:
            continue
        try:
            part = trace_roles(module, found.inputs, output_layers=False)
        except TraceError as err:
            traced.notes.append(f"{name} is not reached by the example input and could not be traced alone: {err}")
            continue
        traced.merge(part, prefix=f"{name}.")
        parts.append(name)
    return parts


def copy_roles_to_unread_copies(model: nn.Module, traced: TracedRoles) -> list[str]:
    """Give each member of a ``ModuleList`` or ``ModuleDict`` that no trace read (a mixture of experts held as
    one module per expert, ``experts[e](x[rows_e])``: the experts no token of the example was routed to) the
    roles of the first member that was read and has its class and parameter names and shapes, merged into
    ``traced`` (in place) with its parameters counted as read; the report says which took whose. Returns the
    names of the members given roles.

    >>> class Experts(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.experts = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))
    ...     def forward(self, x):
    ...         return self.experts[1](x)  # the router sent every token to expert 1
    >>> model = Experts()
    >>> traced = trace_roles(model, torch.ones(2, 4))
    >>> copy_roles_to_unread_copies(model, traced), traced.modules["experts.0"].role
    (['experts.0', 'experts.2'], 'classifier')
    """
    reached = _reached(model, traced)
    copied: list[tuple[str, str]] = []
    for name, container in model.named_modules():
        if not isinstance(container, (nn.ModuleList, nn.ModuleDict)):
            continue
        members = [(f"{name}.{key}" if name else key, m) for key, m in container.named_children()]
        read = [(n, m) for n, m in members if any(id(p) in reached for p in m.parameters())]
        for member, module in members:
            params = list(module.parameters())
            if not params or any(id(p) in reached for p in params):
                continue
            source = next((n for n, m in read if _same_structure(m, module)), None)
            if source is not None:
                _copy_roles(traced, source, member, _blocks_shared(traced, [n for n, _ in read]))
                copied.append((member, source))
    if copied:
        shown = ", ".join(f"{member} as {source}" for member, source in copied[:3])
        more = f" and {len(copied) - 3} more" if len(copied) > 3 else ""
        traced.notes.append(
            f"{len(copied)} members of module lists no example input reached (experts no token was routed to) "
            f"take the roles of a traced member of the same structure: {shown}{more}"
        )
    return [member for member, _ in copied]


def _blocks_shared(traced: TracedRoles, members: list[str]) -> set[str]:
    """The residual blocks that modules under two or more of ``members`` belong to."""
    owners: dict[str, set[str]] = {}
    for name, role in traced.modules.items():
        member = next((m for m in members if name == m or name.startswith(m + ".")), None)
        if member is not None and role.block is not None:
            owners.setdefault(role.block, set()).add(member)
    return {block for block, found in owners.items() if len(found) > 1}


def _same_structure(a: nn.Module, b: nn.Module) -> bool:
    """Whether two modules are of one class with the same parameter names, shapes and dtypes."""
    shapes = [[(n, p.shape, p.dtype) for n, p in m.named_parameters()] for m in (a, b)]
    return type(a) is type(b) and shapes[0] == shapes[1]


def _copy_roles(traced: TracedRoles, source: str, member: str, shared: set[str]) -> None:
    """Copy what was found under ``source.`` to ``member.`` (module roles, parameter uses, norms, reads). A
    residual block in ``shared`` (one that several members that ran are branches of: experts summed into one
    add) takes the copy as one more branch; any other block the copy gets its own (a skipped member of a list of
    blocks each added on its own)."""

    def renamed(name: str) -> str | None:
        if name == source:
            return member
        return member + name[len(source) :] if name.startswith(source + ".") else None

    def own_block(block: str | None) -> str | None:
        if block is None or block in shared:
            return block
        inside = re.sub(rf" in {re.escape(source)}(?=$|[. ])", f" in {member}", block)
        return inside if inside != block else f"{block}, as copied to {member}"

    for name, role in list(traced.modules.items()):
        if (new := renamed(name)) is not None:
            why = f"{role.evidence} (as its copy {source}, which the example reached)"
            traced.set_role(new, role.role, why, own_block(role.block))
    for name, param in list(traced.params.items()):
        if (new := renamed(name)) is not None:
            traced.params.setdefault(new, param)
    for name, how in list(traced.norms.items()):
        if (new := renamed(name)) is not None:
            traced.norms.setdefault(new, how)
    for group in (traced.used, traced.tables):
        group |= {new for name in group if (new := renamed(name)) is not None}


def _reached(model: nn.Module, traced: TracedRoles) -> set[int]:
    """The parameters (by id: a tied one under any of its names) a trace read."""
    return {id(p) for name, p in model.named_parameters(remove_duplicate=False) if name in traced.used}


def _trace_with_optional_inputs(model: nn.Module, traced: TracedRoles, example: dict[str, object]) -> bool:
    """Where some parameter was not read, trace ``model`` again with an optional input its forward takes and
    the example lacks, and merge what that finds: encoder states (``encoder_hidden_states``, of the first
    width in :data:`CROSS_WIDTHS` it runs on) for a decoder's cross-attention, segment ids
    (``token_type_ids``: the second half of each row in segment 1) for XLNet's segment embedding. Whether any
    more was read."""
    try:
        accepted = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False
    first = next(model.parameters(), None)
    if first is None or all(id(p) in _reached(model, traced) for p in model.parameters()):
        return False
    found = False
    for key, candidates in ((ENCODER_STATES, _encoder_states), (SEGMENTS, _segments)):
        if key not in accepted or key in example:
            continue
        for value in candidates(model, example, first):
            try:
                whole = trace_roles(model, {**example, key: value})
            except TraceError:
                continue
            if whole.used - traced.used:
                traced.merge(whole, prefix="")
                found = True
                break
    return found


def _encoder_states(model: nn.Module, example: dict[str, object], first: torch.Tensor) -> list[torch.Tensor]:
    config = text_config(getattr(model, "config", None))
    return [s.to(first.dtype) for s in embedded_candidates(config, CROSS_WIDTHS, first.device)]


def _segments(model: nn.Module, example: dict[str, object], first: torch.Tensor) -> list[torch.Tensor]:
    ids = example.get("input_ids")
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2:
        return []
    types = getattr(getattr(model, "config", None), "type_vocab_size", 2)
    segments = torch.zeros_like(ids)
    segments[:, ids.shape[1] // 2 :] = 1 if not isinstance(types, int) or types > 1 else 0
    return [segments]


def _is_container(module: nn.Module) -> bool:
    """Whether ``module`` holds more than one submodule with parameters (a projector, not a lone layer)."""
    return sum(next(c.parameters(), None) is not None for c in module.children()) > 1


def _one_tensor_example(module: nn.Module) -> Example | None:
    """An input for a plain module whose forward takes one tensor (a multimodal model's projector, fed the
    vision or audio tower's features): 2 x 8 vectors of the first width its layers take (a ``Linear``'s
    ``in_features``, a norm's ``normalized_shape``) that it runs on; ``None`` where none does."""
    try:
        parameters = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):
        return None
    required = [
        p for p in parameters if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(required) != 1:
        return None
    widths = [getattr(m, "in_features", None) or getattr(m, "normalized_shape", (None,))[-1] for m in module.modules()]
    first = next(module.parameters())
    for features in feature_vectors(widths, first.device):
        features = features.to(first.dtype)
        if runs_on(module, {required[0].name: features}):
            return Example({required[0].name: features}, f"{required[0].name}: {tuple(features.shape)} features")
    return None


def unreached_note(model: nn.Module, traced: TracedRoles) -> str | None:
    """What the report says of parameters no trace read (a decoder's cross-attention traced without an
    encoder, a tower no input reaches): how many, in which outermost modules, and what that means."""
    ids = _reached(model, traced)
    reached: set[str] = {""}
    unreached: list[str] = []
    for name, param in model.named_parameters():
        if id(param) in ids:
            parts = name.split(".")
            reached.update(".".join(parts[:i]) for i in range(1, len(parts)))
        else:
            unreached.append(name)
    if not unreached:
        return None
    tops: list[str] = []
    for name in unreached:
        parts = name.split(".")
        top = next((".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) not in reached), name)
        if top not in tops:
            tops.append(top)
    more = f" and {len(tops) - 4} more" if len(tops) > 4 else ""
    return (
        f"{len(unreached)} {UNREACHED} ({', '.join(tops[:4])}{more}): their roles come from their "
        "module types alone, so no branch end or output layer is known there; pass example_inputs= that run "
        "them (or roles=) for ZerO's promises to hold there"
    )
