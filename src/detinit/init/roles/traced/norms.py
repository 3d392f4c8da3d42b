"""Pass 1: norm modules, torch's norm classes and modules of other classes whose output does not change
when their input is scaled (``LlamaRMSNorm``, ``T5LayerNorm``); which of their parameters scales and which
shifts. Fills :attr:`GraphIndex.norm_outputs` for the walks of the later passes."""

from __future__ import annotations

import torch
from torch import nn

from ..layers import NORM_TYPES
from ..trace import Node, run_model
from .index import ADD_FUNCS, MUL_FUNCS, GraphIndex, number_arguments
from .result import TracedParam


def find_norms(ix: GraphIndex) -> None:
    """Norm modules: torch's norm classes, and modules of other classes whose output is scale-invariant."""
    for call in ix.graph.calls:
        module = ix.modules[call.name]
        if not call.inputs or not call.outputs:
            continue
        if isinstance(module, NORM_TYPES) or _scale_invariant(ix, call.name, module, call.inputs[0]):
            ix.norm_outputs[call.outputs[0]] = call.inputs[0]
            ix.norm_call_of[call.outputs[0]] = call.name


def _scale_invariant(ix: GraphIndex, name: str, module: nn.Module, input_value: int) -> bool:
    """Whether a module of another class is a norm: its own parameters vectors, its children (if any) without
    parameters (a ``LayerNorm(elementwise_affine=False)`` it scales itself), its output the same when its input
    doubles. Its parameters' kinds are read from their first uses."""
    if name in ix.result.norms:
        return True
    params = list(module.parameters(recurse=False))
    if not params or any(p.dim() != 1 for p in params):
        return False
    if any(next(child.parameters(), None) is not None for child in module.children()):
        return False  # children with parameters: a block, not a norm
    x = ix.graph.tensors[input_value]
    if not torch.is_floating_point(x) or x.numel() == 0:
        return False
    rms = x.detach().float().pow(2).mean().sqrt()
    if rms == 0:
        return False
    x = x.detach() / rms.to(x.dtype)  # unit scale, so that a norm's epsilon does not count
    invariant = _output_unchanged_when_doubled(module, x)
    if invariant is None:  # the output is 0: a scale built at 0 (``x * g``, or ``x * (g + 0)``), tried at 1
        ones = {n: torch.ones_like(p) for n, p in module.named_parameters(recurse=False)}
        invariant = _output_unchanged_when_doubled(module, x, ones)
    if not invariant:
        return False
    evidence = f"{type(module).__name__}: output unchanged when its input doubles"
    ix.result.norms[name] = evidence
    for pname, p in module.named_parameters(recurse=False):
        full = f"{name}.{pname}" if name else pname
        kind, offset = _norm_param_kind(ix, full)
        ix.result.params[full] = TracedParam(kind, evidence, offset=offset)
    return True


def _output_unchanged_when_doubled(
    module: nn.Module, x: torch.Tensor, params: dict[str, torch.Tensor] | None = None
) -> bool | None:
    """Whether ``module(2x) == module(x)`` (with ``params`` in place of its own, where given); ``None`` where
    its output is 0, which says nothing."""
    try:
        with torch.no_grad():
            if params is None:
                base, doubled = run_model(module, x), run_model(module, 2.0 * x)
            else:
                base, doubled = (torch.func.functional_call(module, params, (v,)) for v in (x, 2.0 * x))
    except Exception:  # noqa: BLE001 -- a module that needs other arguments is not a norm
        return False
    if not isinstance(base, torch.Tensor) or not isinstance(doubled, torch.Tensor) or base.shape != x.shape:
        return False
    peak = base.abs().max()
    if peak == 0:
        return None
    return torch.allclose(base, doubled, rtol=1e-3, atol=1e-4 * float(peak))


def _norm_param_kind(ix: GraphIndex, param: str) -> tuple[str, float | None]:
    """``scale`` if the first thing done with it is a product, ``shift`` a sum with the stream,
    ``offset_scale`` a sum with a constant ``c`` (the scale is ``c + w``: Gemma's RMSNorm has ``c = 1``), with
    ``c`` read from the recorded call; ``c = 0`` is a plain ``scale``."""
    for node, value in ix.first_uses(param):
        if node.name in MUL_FUNCS:
            return "scale", None
        if node.name in ADD_FUNCS:
            if ix.graph.tainted_inputs(node):
                return "shift", None
            offset = _added_constant(ix, node, value)
            return ("scale", None) if offset == 0 else ("offset_scale", offset)
    return "scale", None


def _added_constant(ix: GraphIndex, node: Node, param_value: int) -> float:
    """The constant ``c`` a parameter is added to in ``w + c`` (a number, or a one-element tensor that no
    parameter or input made); 1 where it cannot be read."""
    numbers = number_arguments(node)
    if len(numbers) == 1:
        return numbers[0]
    others = [v for v in node.inputs.values() if v != param_value]
    if len(others) == 1 and ix.param_source(others[0]) is None:
        tensor = ix.graph.tensors[others[0]]
        if tensor.numel() == 1 and not ix.graph.values[others[0]].tainted:
            return float(tensor)
    return 1.0
