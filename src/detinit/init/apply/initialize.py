"""Apply a scheme to any ``nn.Module``: :func:`initialize`, as plan -> resolve -> execute -> report.

1. **plan**: the roles of the model's layers (declared by blocks, given in ``roles=``, traced from one
   forward pass: :mod:`detinit.init.roles`) and a :class:`~detinit.init.apply.plan.Site` per parameter;
2. **resolve**: each parameter's rule, decided in one place (:func:`detinit.init.apply.resolve.resolve`);
   a module with a ``detinit_init_(scheme, generator)`` hook initialises its own parameters instead
   (it returns ``{param: reason}``, or ``None`` to take the resolved rules);
3. **execute**: every rule written, in module order, a shard's rows alone for a sharded parameter
   (:mod:`detinit.init.apply.execute`, :mod:`detinit.init.apply.sharded`); then a token table whose rows a
   layer narrows leaves out the rows constant at the narrower width (:mod:`detinit.init.apply.narrowed_tables`),
   a norm reading the token
   embedding is scaled to the post-norm fixed point (:mod:`detinit.init.apply.embedding_norm`), and last a
   zero output layer reading a feature constant over the batch gets rows orthogonal to that feature, as the
   settled model computes it (:mod:`detinit.init.apply.readout`);
4. **report**: one :class:`~detinit.init.apply.report.ParamRecord` per parameter, built at the end.

A parameter no rule covers gets its library's own initialisation where the model carries one (Mamba's
``A_log``; where the library draws it, the quantiles of its distribution under a deterministic scheme:
:mod:`detinit.init.apply.library`); any other is reported as unknown and left unchanged
(``strict=True`` raises instead, before anything is written); one with ``requires_grad=False`` is left
unchanged and reported as ``frozen``. A parameter shared by several modules (tied weights) is written once,
and the modules must agree on its rule (:mod:`detinit.init.apply.tied`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import replace

import torch
from torch import nn
from torch.nn.parameter import is_lazy
from torch.nn.utils.parametrize import ParametrizationList

from ... import hooks
from ..roles.declared import collect_roles
from ..roles.entries import normed_blocks
from ..roles.trace import eval_mode, finite_output_keys, parameters_kept, run_model
from ..roles.traced import TracedRoles, trace_roles
from ..roles.traced.index import parametrized_tensor
from ..roles.traced.submodels import trace_unreached_parts, unreached_note
from ..roles.vocabulary import ATTENTION_ROLES, LayerInfo, RoleSource, default_layer_info, layer_infos
from ..schemes import ParamRule, Policy, Scheme, get_scheme
from . import checks
from .embedding_norm import settle_embedding_norms_, settle_stream_tables_
from .end_gain import install_end_gains_, remove_end_gains_
from .execute import execute
from .finite import NON_FINITE_NOTE, non_finite_output_note
from .library import adopt_library_init_
from .narrowed_tables import settle_narrowed_tables_
from .parametrized import ParametrizedWrite, original_reason, parametrized_tensors, write_parametrized_
from .plan import Entry, ModulePlan, direct_parameters, module_kind
from .readout import escape_constant_readouts_
from .report import FROZEN, UNKNOWN, InitReport
from .resolve import RuleCache, resolve_module
from .scaled_sums import complete_scaled_sums_
from .sharded import materialize_, reset_buffers_
from .tied import TAKE, check_tied


@torch.no_grad()
def initialize(
    model: nn.Module,
    scheme: str | Scheme = "zero",
    *,
    roles: Mapping[str, str] | None = None,
    strict: bool = False,
    generator: torch.Generator | None = None,
    seed: int = 0,
    example_inputs: object | None = None,
    trace: bool | None = None,
    device: torch.device | str | None = None,
    **options: object,
) -> InitReport:
    """Initialise every parameter of ``model`` in place with ``scheme``.

    Args:
        model: any module.
        scheme: a name from :func:`detinit.init.list_schemes` (``"zero"``,
            ``"partial_identity"``, ``"constnet"``, ``"kaiming"``, ``"xavier"``,
            ``"orthogonal"``, ``"fixup"``, ``"skipinit"``, ``"rezero"``) or a
            :class:`~detinit.init.schemes.Scheme`.
        roles: extra or overriding roles, ``{"fc": "classifier"}``. A residual role given here
            (``"branch"``, ``"branch_last"``, ...) belongs to the block traced or declared for its
            module, else to its parent module, which is how Fixup counts each block's layers.
        strict: raise ``ValueError`` if any parameter has no rule, or if a model its library describes
            (Hugging Face, timm) could not be traced, so that ZerO's promises would not hold (nothing is
            written then; without ``strict`` the report's ``notes`` and a warning say so).
        generator: random draws of random schemes (and ``constnet`` with
            ``c < 1`` or ``s > 0``) come from it, in module order; default a CPU
            generator seeded with ``seed``. The global RNG is never used.
        seed: seed of the default generator.
        example_inputs: an input to run the model on once to find the roles of its layers from the
            computation (:mod:`detinit.init.roles.traced`): a tensor, a tuple of positional arguments or a
            dict of keyword arguments. The run is in eval mode and changes nothing.
        trace: ``None`` (default) traces when ``example_inputs`` is given, or when the model declares no
            roles (no ``detinit_roles``) and its library describes its input (Hugging Face, timm:
            :func:`~detinit.init.roles.example_inputs.infer_example_inputs`); ``True`` always traces (an error
            without an input); ``False`` never does. Declared roles and ``roles=`` win over traced ones.
        device: for a model built on the meta device (``with torch.device("meta"): model = ...``): the
            device to materialise it on (:func:`~detinit.init.apply.sharded.materialize_`). Every parameter is
            then filled there, with no second copy, bitwise as if the model had been built there; norm
            running statistics are reset and constant buffers recomputed. A meta parameter no rule
            covers (or a frozen one) is refused, since it would be left as uninitialised memory.
        **options: scheme options, e.g. ``norm="paper"`` for ``"zero"``.

    Returns:
        An :class:`~detinit.init.apply.report.InitReport`: print it for a table.

    A scheme's default rule that turns the model's finite output into inf or NaN (ZerO's ``W_Q = W_K`` under
    an attention kernel undefined where a query equals its key, YOSO's ``acos``) is replaced by the scheme's
    fallback options where it has some (:meth:`~detinit.init.schemes.Scheme.finite_fallback`; ZerO:
    ``attention="kv_zero"``) and the output is finite with them; the report's notes and a warning say so. A
    scheme given as an instance, or with the option given, is kept as it is.

    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> report = initialize(model, "zero", roles={"2": "classifier"})
    >>> print(*[r.rule for r in report.records])
    hadamard zeros zeros zeros
    """
    given = dict(
        roles=roles, strict=strict, generator=generator, seed=seed, example_inputs=example_inputs, trace=trace,
        device=device,
    )  # fmt: skip
    state = generator.get_state() if isinstance(generator, torch.Generator) else None  # checked inside
    report, messages, scheme_obj, example, finite = _initialize_once(model, scheme, **given, **options)
    fallback = scheme_obj.finite_fallback(options) if isinstance(scheme, str) and _output_lost(report) else None
    if fallback and any(r.role in ATTENTION_ROLES for r in report.records):
        if state is not None:
            generator.set_state(state)  # the retry draws what the first try drew
        retry, retry_messages, *_ = _initialize_once(model, scheme, **given, **options, **fallback)
        if _finite_again(model, example, finite):
            used = ", ".join(f"{k}={v!r}" for k, v in fallback.items())
            lost = report.notes[-1].split(". A rule of this scheme")[0]
            note = (
                f"{lost}. The scheme's default rule put that module's inputs where its computation is undefined, "
                f"so {used} was used instead, with which the output is finite; give the option explicitly to keep "
                "the default"
            )
            report, messages = replace(retry, notes=[*retry.notes, note]), [*retry_messages, note]
        else:  # no better: the default again, as asked
            if state is not None:
                generator.set_state(state)
            report, messages, *_ = _initialize_once(model, scheme, **given, **options)
    for message in messages:
        warnings.warn(message, stacklevel=2)
    return report


def _output_lost(report: InitReport) -> bool:
    return bool(report.notes) and report.notes[-1].startswith(NON_FINITE_NOTE)


def _finite_again(model: nn.Module, example: object, finite_before: list[str]) -> bool:
    """Whether every output that was finite before the first initialisation is finite now (the retry's own trace
    ran on the first one's weights, whose output was not)."""
    with torch.no_grad(), eval_mode(model):
        now = set(finite_output_keys(run_model(model, example)))
    return all(key in now for key in finite_before)


def _initialize_once(
    model: nn.Module,
    scheme: str | Scheme,
    *,
    roles: Mapping[str, str] | None,
    strict: bool,
    generator: torch.Generator | None,
    seed: int,
    example_inputs: object | None,
    trace: bool | None,
    device: torch.device | str | None,
    **options: object,
) -> tuple[InitReport, list[str], Scheme, object, list[str]]:
    """:func:`initialize` once with these options: the report, the warnings to give, the scheme, the example it
    ran and the keys of the outputs that were finite on it before."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"initialize: model must be an nn.Module, got {type(model).__name__}")
    checks.check_arguments(roles, strict, generator, seed)
    checks.check_has_parameters(model)
    scheme_obj = get_scheme(scheme, **options)
    remove_end_gains_(model)  # a second initialize starts from plain parameters
    named = list(model.named_modules())  # walked once: the plan and the checks share it
    modules = [m for _, m in named]
    checks.check_gates(scheme_obj, model, modules)
    if device is not None:
        checks.check_materialisable(model, device, example_inputs, trace)
        trace = False  # a meta-device model cannot run
    else:
        checks.refuse_meta_without_device(model)
    found = checks.example_to_trace(model, modules, example_inputs, trace)
    example = found.inputs
    warning = checks.untraced_warning(model, found)
    if warning is not None and strict:
        raise ValueError(f"initialize(strict=True): {warning}")
    traced = trace_roles(model, example) if example is not None else TracedRoles()
    if example is not None:
        trace_unreached_parts(model, traced, example)
        traced.notes.append(unreached_note(model, traced) or "")
    role_sources = collect_roles(model, roles, traced.modules, named=named)
    checks.check_scheme_applies(scheme_obj, model, modules, role_sources)

    opened, mixed = _normed_start(named, role_sources, scheme_obj.policy)
    plans, entries, parametrized = _plan(named, scheme_obj, role_sources, traced, device is None, opened, mixed)
    checks.check_options_apply(model, options, plans, entries)
    if device is None:  # a meta-device model has no values to probe
        adopt_library_init_(model, plans, entries, random=scheme_obj.policy.uses_generator)
    unknown = [e for e in entries if e.rule == UNKNOWN]
    if strict and unknown:
        raise ValueError(
            "initialize(strict=True): no rule for "
            + ", ".join(f"{e.name} ({e.module_type})" for e in unknown)
            + f"; scheme {scheme_obj.name!r} knows Linear, ConvNd, ConvTransposeNd, Embedding, "
            + "MultiheadAttention, RNN / LSTM / GRU, norm layers and what tracing finds (example_inputs=); "
            + "give the module a detinit_init_ hook or initialise it yourself"
        )
    unknown_note = checks.unknown_note(model, unknown)
    if device is not None:
        checks.refuse_unfilled_meta(model, entries)
        materialize_(model, device)
    else:
        reset_buffers_(modules)
    gen = generator if generator is not None else torch.Generator().manual_seed(seed)
    execute(plans, entries, scheme_obj, gen, materialised=device is not None)
    write_parametrized_(parametrized, gen)
    with parameters_kept(model, traced.forward_writes):  # what the forward pass writes, it does not keep
        _settle(model, example, traced, entries, scheme_obj)
    if scheme_obj.policy.end_gain != 1.0 or scheme_obj.policy.output_gain != 1.0:
        _install_end_gains(model, plans, entries, scheme_obj.policy)
    non_finite = (
        non_finite_output_note(model, example, traced.finite_outputs, traced.forward_writes)
        if traced.finite_outputs
        else None
    )
    seed_used = seed if generator is None and scheme_obj.policy.uses_generator else None
    notes = [warning] if warning is not None else ([found.note] if found.note else [])
    notes += [note for note in (*traced.notes, unknown_note, non_finite) if note]
    records = [e.record() for e in entries]
    report = InitReport(scheme_obj.name, scheme_obj.options(), seed_used, records, notes, list(opened.values()))
    messages = [message for message in (warning, non_finite) if message is not None]
    return report, messages, scheme_obj, example, traced.finite_outputs


def _normed_start(
    named: list[tuple[str, nn.Module]], role_sources: Mapping[str, RoleSource], policy: Policy
) -> tuple[dict[str, str], dict[str, str]]:
    """``(opened, mixed)``: the entry blocks the scheme starts on and the blocks whose square branch layers mix, by
    block label -> module (:mod:`detinit.init.roles.entries`; ZerO's ``open_blocks`` and ``branch_mixing``)."""
    found: dict[str, tuple[dict[str, str], dict[str, str]]] = {}  # scope -> (ended, entries), each found once
    for scope in {policy.opens_entry_blocks, policy.mixes_normed_branches} - {""}:
        found[scope] = normed_blocks(named, role_sources, batch_norm_only=scope == "batch_norm")
    opened = found[policy.opens_entry_blocks][1] if policy.opens_entry_blocks else {}
    mixed = found[policy.mixes_normed_branches][0] if policy.mixes_normed_branches else {}
    return opened, mixed


def _settle(model: nn.Module, example: object, traced: TracedRoles, entries: list[Entry], scheme: Scheme) -> None:
    """What is settled after the fills by running the model: token tables whose norm sees a narrowed or
    summed input, and the readouts of a constant feature (:mod:`.narrowed_tables`, :mod:`.embedding_norm`,
    :mod:`.readout`)."""
    if scheme.policy.settles_embedding_norm and traced.narrowed_tables:
        settle_narrowed_tables_(model, entries, traced.narrowed_tables, **_table_options(scheme))
    if example is not None and scheme.policy.settles_embedding_norm and traced.embedding_norms:
        _mark_settled(entries, settle_embedding_norms_(model, example, traced.embedding_norms))
    if example is not None and scheme.policy.settles_embedding_norm and traced.stream_tables:
        _mark_settled(entries, settle_stream_tables_(model, example, traced.stream_tables))
    if example is not None and scheme.policy.completes_scaled_sums and traced.scaled_sums:
        _mark_settled(entries, complete_scaled_sums_(model, example, traced.scaled_sums), rule="scaled_identity")
    if example is not None and scheme.policy.escapes_constant_readout:  # last: it reads the settled feature
        _escape_constant_readouts(model, example, entries)


def _plan(
    named: list[tuple[str, nn.Module]],
    scheme: Scheme,
    role_sources: Mapping[str, RoleSource],
    traced: TracedRoles,
    parametrizations: bool = True,
    opened: Mapping[str, str] | None = None,
    mixed: Mapping[str, str] | None = None,
) -> tuple[list[ModulePlan], list[Entry], list[ParametrizedWrite]]:
    """A :class:`ModulePlan` per module owning parameters and an :class:`Entry` per parameter (a tied one once),
    each parameter's rule resolved, and the tensors computed by parametrizations with theirs
    (:mod:`detinit.init.apply.parametrized`; ``parametrizations=False`` leaves their originals unknown). One
    pass, a module at a time: a deep model has many small layers, and what is done per parameter here costs as
    much as filling it. ``opened``: the entry blocks the scheme starts on, ``mixed``: the blocks whose square branch
    layers mix their channels (:mod:`detinit.init.roles.entries`)."""
    infos, default_info = (
        layer_infos(role_sources, frozenset(opened or ()), frozenset(mixed or ())),
        default_layer_info(role_sources),
    )
    plans: list[ModulePlan] = []
    entries: list[Entry] = []
    writes: dict[str, ParametrizedWrite] = {}  # "conv.weight" under weight norm -> its rule
    seen: dict[int, tuple[int, nn.Module]] = {}  # id(param) -> its entry and the module that holds it first
    cache: RuleCache = {}  # layer-weight rules, built once per geometry
    for mname, module in named:
        direct = direct_parameters(module)
        computed = parametrized_tensors(module) if parametrizations else {}
        if not direct and not computed:
            if hooks.callable_hook(module, hooks.INIT_HOOK) is not None:
                name = type(module).__name__
                raise ValueError(
                    f"{name}.{hooks.INIT_HOOK}() would never be called: {name} ({mname or 'the model'}) has no "
                    "parameters of its own, and the hook initialises only the module's direct parameters; define it "
                    "on the modules that hold them"
                )
            continue
        layer = infos.get(mname, default_info)
        source = role_sources.get(mname)
        why_role = f"role {layer.role} from {source.source}" if source is not None else ""
        for pname, param in direct.items():
            if is_lazy(param):  # isinstance(param, UninitializedParameter), without Parameter's slow metaclass check
                full = f"{mname}.{pname}" if mname else pname
                raise ValueError(
                    f"initialize: {full} of {type(module).__name__} is a lazy, uninitialised "
                    "parameter; run one forward pass before initialising"
                )
        hooked = hooks.callable_hook(module, hooks.INIT_HOOK) is not None
        rules = _resolve_module(mname, module, {**direct, **computed}, layer, traced, scheme, cache)
        for tensor in computed:
            name = f"{mname}.{tensor}" if mname else tensor
            if tensor in rules:
                writes[name] = ParametrizedWrite(module, tensor, rules[tensor], name)
        through = writes.get(parametrized_tensor(mname)[1]) if isinstance(module, ParametrizationList) else None
        plan = ModulePlan(module, direct, hooked)
        module_type = type(module).__name__
        for pname, param in direct.items():
            full = f"{mname}.{pname}" if mname else pname
            if id(param) in seen:  # shared parameter: written once, by the rule both modules agree on
                first, first_module = seen[id(param)]
                table = isinstance(module, nn.Embedding) or isinstance(first_module, nn.Embedding)
                table = table or entries[first].name in traced.tables
                rule = rules.get(pname) if param.requires_grad else None
                verdict = check_tied(
                    entries, first, full, module_type, layer.role, rule, role_sources, scheme, table=table
                )
                if verdict == TAKE:  # the first module knew no rule for it, or it is the output layer of a table
                    plan.rules[pname], plan.entries[pname] = rule, first
                    holder = next((p for p in plans if p.module is seen[id(param)][1]), plan)
                    first_name = next(n for n, t in holder.params.items() if t is param)
                    if first_name != pname or holder is not plan:
                        holder.rules.pop(first_name, None)
                    taken = _entry(entries[first].name, module_type, param, layer, rule, hooked, False, why_role)
                    entries[first] = taken._replace(note=f"; the rule of {full}, tied to it")
                continue
            seen[id(param)] = (len(entries), module)
            rule = rules.get(pname)
            frozen = not param.requires_grad
            if rule is not None and not frozen:
                plan.rules[pname] = rule
            plan.entries[pname] = len(entries)
            entries.append(_entry(full, module_type, param, layer, rule, hooked, frozen, why_role))
            if through is not None and rule is None and not frozen:
                entries[-1] = entries[-1]._replace(rule=f"via_{through.rule.rule}", why=original_reason(through))
        plans.append(plan)
    return plans, entries, list(writes.values())


def _resolve_module(
    mname: str,
    module: nn.Module,
    direct: dict[str, nn.Parameter],
    layer: LayerInfo,
    traced: TracedRoles,
    scheme: Scheme,
    cache: RuleCache,
) -> dict[str, ParamRule]:
    """The rules of one module's direct parameters (:func:`~detinit.init.apply.resolve.resolve_module`), with
    what tracing found about them; a parameter with no rule is left out."""
    prefix = f"{mname}." if mname else ""
    if mname in traced.norms:
        norm_kinds = {p: traced.params[prefix + p].kind for p in direct}
        kind = module_kind(module, layer, True)
        return resolve_module(
            module, kind, direct, layer, scheme, cache, traced.params, prefix, norm_kinds, traced.norms[mname]
        )
    kind = module_kind(module, layer, False)
    return resolve_module(module, kind, direct, layer, scheme, cache, traced.params, prefix)


def _entry(
    name: str,
    module_type: str,
    param: nn.Parameter,
    layer: LayerInfo,
    rule: ParamRule | None,
    hooked: bool,
    frozen: bool,
    source: str,
) -> Entry:
    """The report entry of a parameter before anything is written; ``source`` says where its module's role
    came from."""
    shape = tuple(param.shape)
    role = rule.role if rule is not None and rule.role else layer.role  # a traced position, token, layer scale
    if frozen:
        return Entry(name, module_type, shape, role, FROZEN, "requires_grad=False: left unchanged", "", source)
    if hooked:
        return Entry(name, module_type, shape, role, "hook", f"{module_type}.detinit_init_()", "", source)
    if rule is None:
        why = f"no rule for {module_type}.{name.rsplit('.', 1)[-1]}: left unchanged"
        return Entry(name, module_type, shape, role, UNKNOWN, why, "", source)
    return Entry(name, module_type, shape, role, rule.rule, rule.reason, rule.evidence, source)


def _escape_constant_readouts(model: nn.Module, example: object, entries: list[Entry]) -> None:
    """Zero output layers whose input is the same for every example get rows ``e_j +- e_j+1`` orthogonal to it
    (:mod:`detinit.init.apply.readout`); their entries say so."""
    zero_outputs = {e.name.removesuffix(".weight"): i for i, e in enumerate(entries)
                    if e.role == "classifier" and e.rule == "zeros" and e.name.endswith(".weight")}  # fmt: skip
    for name, reason in escape_constant_readouts_(model, example, zero_outputs).items():
        index = zero_outputs[name.removesuffix(".weight")]
        entry = entries[index]
        entries[index] = entry._replace(
            rule="orthogonal_pairs", why=reason, evidence="", note=entry.note if entry.source else ""
        )


def _install_end_gains(model: nn.Module, plans: list[ModulePlan], entries: list[Entry], policy: Policy) -> None:
    """Compute the scales that start a branch or a tied output at 0 through an :class:`~.end_gain.EndGain`
    (:mod:`.end_gain`): slope ``end_gain`` (``output_gain`` for a tied output's norm) at 0; the report says so."""
    ends = {plan.entries[p] for plan in plans for p, rule in plan.rules.items() if rule.end and p in plan.entries}
    gains, where = {}, {}
    for index in sorted(ends):
        entry = entries[index]
        output = entry.role == "classifier_norm"
        gain = policy.output_gain if output else policy.end_gain
        if gain != 1.0 and entry.rule not in (FROZEN, "hook", UNKNOWN):
            reach = policy.end_reach * (math.sqrt(math.prod(entry.shape)) if output else 1.0)
            gains[entry.name], where[entry.name] = (gain, reach), index
    refused = install_end_gains_(model, gains, skip_refused=True)
    for name, (gain, reach) in gains.items():
        option = "output_gain" if entries[where[name]].role == "classifier_norm" else "end_gain"
        note = (
            f"; no {option}: it {refused[name]}"
            if name in refused
            else f"; computed as f(theta), slope {gain:g} at 0, boost up to {reach:.3g} ({option})"
        )
        entries[where[name]] = entries[where[name]]._replace(note=entries[where[name]].note + note)


def _table_options(scheme: Scheme) -> dict[str, object]:
    """The options of a scheme's token-table fill (ZerO's ``norm`` and ``constant_token``)."""
    options = scheme.options()
    return {key: options[key] for key in ("norm", "constant_token") if key in options}


def _mark_settled(entries: list[Entry], settled: dict[str, str], rule: str = "fixed_point") -> None:
    """The entries of the parameters settled after the fills (an embedding norm or a stream table scaled,
    :mod:`detinit.init.apply.embedding_norm`; a scaled sum's layer, :mod:`.scaled_sums`) say so."""
    for index, entry in enumerate(entries):
        if entry.name in settled:
            entries[index] = entry._replace(rule=rule, why=settled[entry.name], evidence="")
