r"""Roles found from the computation: :func:`trace_roles`.

One forward pass on an example input is recorded (:mod:`detinit.init.roles.trace`)
and read for the structure the schemes need, whatever the modules are called
or whichever library wrote them:

* **Layers.** A parameter used as the matrix of ``F.linear``, ``torch.addmm``
  (Hugging Face's ``Conv1D``, weight stored ``(in, out)``), ``x @ W`` or a
  convolution is a layer's weight; one used by ``F.embedding`` a table.
* **The output layer**: walking back from the model's output (``logits``
  where the output has them) through functions without parameters to the
  first layer: role ``"classifier"``. If its weight is tied to the token
  embedding, the norm before it becomes ``"classifier_norm"``: schemes that
  start the output at 0 put that zero on the norm's scale, since a zero
  weight would also zero every token.
* **Residual adds**: an add of two tensors that both depend on the input
  values, one computed from the other (:math:`x + f(x)`; when neither is,
  as with a projection shortcut, the side with more layers is the branch).
  Walking back from the branch: a norm on the way is ``"branch_last_norm"``,
  a parameter multiplying the branch elementwise is a ``"layer_scale"``, and
  the first layer is ``"branch_last"`` (``"attn_out"`` in an attention
  branch); a norm after a sum of layers (routed plus shared experts, then a
  sandwich norm) carries the branch's zero alone. The branch's other layers are ``"branch"``, one block per add,
  which gives Fixup its ``L`` and ``m``.
* **Attention**: ``F.scaled_dot_product_attention``, ``matmul -> softmax -> matmul``, or
  ``matmul -> f -> matmul`` with ``f`` any elementwise kernel (sigmoid, ReLU, YOSO's ``acos``). The layers
  the query, key and value come from (through reshapes, rotary embeddings, head splits) get
  ``"attn_query"`` / ``"attn_key"`` / ``"attn_value"``; a layer feeding
  several of them is fused, and autograd says which of its output rows feed
  which (``"attn_qkv:512,128,128"`` for grouped-query attention). The first
  layer after the attention is ``"attn_out"``.
* **Positions and tokens**: an embedding whose indices do not depend on the
  input (``arange`` positions, T5's relative buckets, BERT's token types) is
  ``"position"``; a parameter added to the input stream is a position table,
  one concatenated to it a ``"token"`` (cls, distillation, register tokens), as is one written into it
  at chosen positions (a mask embedding).
* **Embedding norms**: a norm whose input is a token table's rows (plus
  positions) is listed, so that ZerO can make its output a fixed point of the
  post-norm blocks after it (:mod:`detinit.init.apply.embedding_norm`).
* **Norms of unknown classes** (``LlamaRMSNorm``, ``T5LayerNorm``): a module
  whose direct parameters are vectors and whose output does not change when
  its input is scaled by 2 is a ``"norm"``.

Parts of a model the example never reaches (a multimodal model's vision tower on a text example) are traced
on their own example where their library describes them (:mod:`detinit.init.roles.traced.submodels`).

Declared roles (``detinit_roles``, ``get_classifier``, torch's Transformer
layers) and ``roles=`` win over traced ones (:func:`detinit.init.roles.declared.collect_roles`).

>>> import torch
>>> from torch import nn
>>> class Block(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.fc1, self.fc2 = nn.Linear(8, 8), nn.Linear(8, 8)
...     def forward(self, x):
...         return x + self.fc2(torch.relu(self.fc1(x)))
>>> net = nn.Sequential(nn.Linear(4, 8), Block(), nn.Linear(8, 3))
>>> traced = trace_roles(net, torch.ones(2, 4))
>>> {name: r.role for name, r in traced.modules.items()}
{'1.fc2': 'branch_last', '1.fc1': 'branch', '2': 'classifier'}
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..trace import record_forward
from .attention import find_attention
from .embedding_norms import find_embedding_norms
from .index import GraphIndex
from .layers import find_layers
from .norms import find_norms
from .output import find_classifier
from .residuals import find_residuals
from .result import TracedParam, TracedRole, TracedRoles

# in this order: each pass reads what the ones before it found (the walks need the norms; the residual pass
# keeps attention's attn_out; the output pass needs the embedding tables)
PASSES: tuple[Callable[[GraphIndex], None], ...] = (
    find_norms,
    find_layers,
    find_attention,
    find_residuals,
    find_embedding_norms,
    find_classifier,
)


def trace_roles(model: nn.Module, example_inputs: object, *, output_layers: bool = True) -> TracedRoles:
    """Record one forward pass of ``model`` on ``example_inputs`` and find the roles of its layers
    (``output_layers=False``: all but the output layers, for a part of a model whose output is not the model's).

    ``example_inputs`` is a tensor, a tuple of positional arguments or a dict
    of keyword arguments. Raises :class:`~detinit.init.roles.trace.TraceError` if the
    model cannot run on it.
    """
    graph = record_forward(model, example_inputs)
    index = GraphIndex(model, graph)
    index.result.forward_writes = list(graph.written)
    index.result.finite_outputs = list(graph.finite_outputs)
    for find in PASSES:
        if output_layers or find is not find_classifier:
            find(index)
    gather_under_first_names(model, index.result)
    return index.result


def gather_under_first_names(model: nn.Module, result: TracedRoles) -> None:
    """Put what was found for a module registered under several names (one norm, activation or rotary module
    reused by several layers; U-Nets that hold a block both in a list and in their skip structure) under its
    first name, the one ``named_modules()`` gives and the schemes look it up by: the recording names a module
    by one of its names, and one module is one role, never two (a block would count its one last layer twice).
    Its own parameters' uses are given under every name. Parameters tied across modules keep their own entries
    (:mod:`detinit.init.apply.tied` settles those)."""
    aliases: dict[int, list[str]] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        aliases.setdefault(id(module), []).append(name)
    for names in (found for found in aliases.values() if len(found) > 1):
        for table in (result.modules, result.norms):
            known = next((table[n] for n in names if n in table), None)
            for name in names[1:]:
                table.pop(name, None)  # type: ignore[arg-type]
            if known is not None:
                table[names[0]] = known  # type: ignore[index]
        module = model.get_submodule(names[0])
        for pname, _ in module.named_parameters(recurse=False, remove_duplicate=False):
            full = [f"{n}.{pname}" if n else pname for n in names]
            use = next((result.params[f] for f in full if f in result.params), None)
            for f in full:
                if use is not None:
                    result.params.setdefault(f, use)
            if any(f in result.used for f in full):
                result.used.update(full)
            if any(f in result.tables for f in full):
                result.tables.update(full)


__all__ = ["PASSES", "TracedParam", "TracedRole", "TracedRoles", "gather_under_first_names", "trace_roles"]
