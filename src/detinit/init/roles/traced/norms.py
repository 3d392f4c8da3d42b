"""Pass 1: norm modules, torch's norm classes and modules of other classes whose output does not change
when their input is scaled (``LlamaRMSNorm``, ``T5LayerNorm``); which of their parameters scales and which
shifts. Fills :attr:`GraphIndex.norm_outputs` for the walks of the later passes."""

from __future__ import annotations

import torch
from torch import nn

from ..layers import NORM_TYPES
from ..trace import run_model
from .index import ADD_FUNCS, MUL_FUNCS, GraphIndex
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
    if name in ix.result.norms:
        return True
    params = list(module.parameters(recurse=False))
    if not params or any(p.dim() != 1 for p in params) or any(True for _ in module.children()):
        return False
    x = ix.graph.tensors[input_value]
    if not torch.is_floating_point(x) or x.numel() == 0:
        return False
    rms = x.detach().float().pow(2).mean().sqrt()
    if rms == 0:
        return False
    x = x.detach() / rms.to(x.dtype)  # unit scale, so that a norm's epsilon does not count
    try:
        with torch.no_grad():
            base, doubled = run_model(module, x), run_model(module, 2.0 * x)
    except Exception:  # noqa: BLE001 -- a module that needs other arguments is not a norm
        return False
    if not isinstance(base, torch.Tensor) or not isinstance(doubled, torch.Tensor) or base.shape != x.shape:
        return False
    peak = base.abs().max()
    if peak == 0 or not torch.allclose(base, doubled, rtol=1e-3, atol=1e-4 * float(peak)):
        return False
    evidence = f"{type(module).__name__}: output unchanged when its input doubles"
    ix.result.norms[name] = evidence
    for pname, p in module.named_parameters(recurse=False):
        full = f"{name}.{pname}" if name else pname
        ix.result.params[full] = TracedParam(_norm_param_kind(ix, full), evidence)
    return True


def _norm_param_kind(ix: GraphIndex, param: str) -> str:
    """``scale`` if the first thing done with it is a product, ``shift`` a sum with the stream,
    ``offset_scale`` a sum with a number (``1 + w``, as Gemma's RMSNorm)."""
    for node, _ in ix.first_uses(param):
        if node.name in MUL_FUNCS:
            return "scale"
        if node.name in ADD_FUNCS:
            return "shift" if ix.graph.tainted_inputs(node) else "offset_scale"
    return "scale"
