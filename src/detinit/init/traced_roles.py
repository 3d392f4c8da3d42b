r"""Roles found from the computation: :func:`trace_roles`.

One forward pass on an example input is recorded (:mod:`detinit.init.trace`)
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
  branch). The branch's other layers are ``"branch"``, one block per add,
  which gives Fixup its ``L`` and ``m``.
* **Attention**: ``F.scaled_dot_product_attention``, or
  ``matmul -> softmax -> matmul``. The layers the query, key and value come
  from (through reshapes, rotary embeddings, head splits) get
  ``"attn_query"`` / ``"attn_key"`` / ``"attn_value"``; a layer feeding
  several of them is fused, and autograd says which of its output rows feed
  which (``"attn_qkv:512,128,128"`` for grouped-query attention). The first
  layer after the attention is ``"attn_out"``.
* **Positions and tokens**: an embedding whose indices do not depend on the
  input (``arange`` positions, T5's relative buckets, BERT's token types) is
  ``"position"``; a parameter added to the input stream is a position table,
  one concatenated to it a ``"token"`` (cls, distillation, register tokens).
* **Norms of unknown classes** (``LlamaRMSNorm``, ``T5LayerNorm``): a module
  whose direct parameters are vectors and whose output does not change when
  its input is scaled by 2 is a ``"norm"``.

Declared roles (``detinit_roles``, ``get_classifier``, torch's Transformer
layers) and ``roles=`` win over traced ones (:func:`detinit.init.declared_roles.collect_roles`).

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

from dataclasses import dataclass, field

import torch
from torch import nn

from .layers import MATRIX_LAYER_TYPES, NORM_TYPES
from .trace import Graph, Node, record_forward, run_model

# function -> (weight argument, bias argument, how the weight is stored: "out_in" as nn.Linear, "in_out" as x @ W)
MATRIX_FUNCS: dict[str, tuple[tuple[int | str, ...], tuple[int | str, ...], str]] = {
    "linear": ((1, "weight"), (2, "bias"), "out_in"),
    "addmm": ((2, "mat2"), (0, "input"), "in_out"),
    "matmul": ((1, "other"), (), "in_out"),
    "__matmul__": ((1, "other"), (), "in_out"),
    "mm": ((1, "mat2"), (), "in_out"),
    **{f"conv{d}d": ((1, "weight"), (2, "bias"), "out_in") for d in (1, 2, 3)},
    **{f"conv_transpose{d}d": ((1, "weight"), (2, "bias"), "in_out") for d in (1, 2, 3)},
}
NORM_FUNCS = frozenset({"layer_norm", "group_norm", "batch_norm", "instance_norm", "rms_norm"})
ADD_FUNCS = frozenset({"add", "__add__", "__radd__", "add_", "__iadd__"})
MUL_FUNCS = frozenset({"mul", "__mul__", "__rmul__", "mul_", "__imul__", "multiply"})
# functions that move or reshape a tensor without mixing in anything else
SHAPE_FUNCS = frozenset(
    {
        "view", "reshape", "expand", "expand_as", "unsqueeze", "squeeze", "flatten", "unflatten", "permute",
        "transpose", "t", "contiguous", "to", "float", "half", "bfloat16", "double", "type_as", "type",
        "__getitem__", "__get__", "repeat", "clone", "narrow", "movedim", "dropout",
    }
)  # fmt: skip
SOFTMAX_FUNCS = frozenset({"softmax", "_softmax", "log_softmax"})


@dataclass(frozen=True)
class TracedRole:
    """A role found from the computation, the evidence, and the residual block (one per add)."""

    role: str
    evidence: str
    block: str | None = None


@dataclass(frozen=True)
class TracedParam:
    """How a parameter outside the layer types detinit knows is used.

    ``kind`` is ``"matrix"`` (``in_features``, ``out_features``, ``stored``:
    ``"out_in"`` or ``"in_out"``), ``"bias"``, ``"table"`` (an ``F.embedding``
    weight), ``"scale"`` / ``"offset_scale"`` / ``"shift"`` (a norm's
    parameters; ``offset_scale`` multiplies as ``1 + w``), ``"position"``,
    ``"token"`` or ``"layer_scale"``.
    """

    kind: str
    evidence: str
    in_features: int = 0
    out_features: int = 0
    stored: str = "out_in"


@dataclass
class TracedRoles:
    """What :func:`trace_roles` found: module roles, parameter uses and the norms of unknown classes."""

    modules: dict[str, TracedRole] = field(default_factory=dict)
    params: dict[str, TracedParam] = field(default_factory=dict)
    norms: dict[str, str] = field(default_factory=dict)  # module -> how it was found
    used: set[str] = field(default_factory=set)  # parameters the forward pass read
    notes: list[str] = field(default_factory=list)


class _Analysis:
    """The passes of :func:`trace_roles` over one recorded graph."""

    def __init__(self, model: nn.Module, graph: Graph) -> None:
        self.model, self.graph = model, graph
        self.result = TracedRoles()
        self.modules = dict(model.named_modules())
        self.owner = {}  # parameter name -> the module that owns it directly
        for mname, module in self.modules.items():
            for pname, _ in module.named_parameters(recurse=False, remove_duplicate=False):
                self.owner[f"{mname}.{pname}" if mname else pname] = mname
        self.names_of: dict[int, list[str]] = {}  # id(param) -> every name it has (tied weights)
        for name, p in model.named_parameters(remove_duplicate=False):
            self.names_of.setdefault(id(p), []).append(name)
        self.canonical = {name: names[0] for names in self.names_of.values() for name in names}
        self.norm_outputs: dict[int, int] = {}  # output value of a norm module call -> its input value
        self.norm_call_of: dict[int, str] = {}  # output value -> norm module name
        self.tables: set[str] = set()  # parameters read by F.embedding
        self.values_of: dict[str, list[int]] = {}  # parameter -> the values that are it
        for v in graph.values:
            if v.param is not None:
                self.values_of.setdefault(self.canonical.get(v.param, v.param), []).append(v.index)
        self._matrix_uses: dict[int, tuple[str, str, str | None] | None] = {}  # node -> matrix_use, once

    # ----- helpers -------------------------------------------------------------------------------------
    def param_source(self, value: int) -> tuple[str, bool] | None:
        """The parameter a value is (or a transposed/reshaped view of), and whether it was transposed."""
        flipped = False
        while True:
            v = self.graph.values[value]
            if v.param is not None:
                return self.canonical.get(v.param, v.param), flipped
            node = self.graph.producer(value)
            if node is None or node.name not in SHAPE_FUNCS or len(node.inputs) != 1:
                return None
            (source,) = node.inputs.values()
            before, after = self.graph.values[source].shape, v.shape
            if len(before) == 2 and len(after) == 2 and before == after[::-1] and before[0] != before[1]:
                flipped = not flipped
            elif len(before) == 2 and before == after and node.name in ("t", "transpose", "__get__"):
                flipped = not flipped  # square: t()/T flip it
            value = source

    def matrix_use(self, node: Node) -> tuple[str, str, str | None] | None:
        """``(weight parameter, stored orientation, bias parameter)`` if ``node`` is a layer's matrix product."""
        if node.index not in self._matrix_uses:
            self._matrix_uses[node.index] = self._find_matrix_use(node)
        return self._matrix_uses[node.index]

    def _find_matrix_use(self, node: Node) -> tuple[str, str, str | None] | None:
        spec = MATRIX_FUNCS.get(node.name)
        if spec is None:
            return None
        weight_keys, bias_keys, stored = spec
        weight = next((node.inputs[k] for k in weight_keys if k in node.inputs), None)
        if weight is None or self.graph.values[weight].tainted:
            return None
        source = self.param_source(weight)
        if source is None:
            return None
        name, flipped = source
        if flipped:
            stored = "in_out" if stored == "out_in" else "out_in"
        bias_value = next((node.inputs[k] for k in bias_keys if k in node.inputs), None)
        bias = self.param_source(bias_value) if bias_value is not None else None
        return name, stored, bias[0] if bias else None

    def layer_module(self, param: str, node: Node) -> str:
        """The module a layer's weight belongs to (for a tied weight: the name used where ``node`` ran)."""
        for name in self.names_of.get(id(self.model.get_parameter(param)), [param]):
            if self.owner.get(name) == node.module:
                return node.module
        return self.owner[param]

    def set_role(self, module: str, role: str, evidence: str, block: str | None = None, *, over: bool = False) -> None:
        if over or module not in self.result.modules:
            self.result.modules[module] = TracedRole(role, evidence, block)

    # ----- passes --------------------------------------------------------------------------------------
    def find_norms(self) -> None:
        """Norm modules: torch's norm classes, and modules of other classes whose output is scale-invariant."""
        for call in self.graph.calls:
            module = self.modules[call.name]
            if not call.inputs or not call.outputs:
                continue
            if isinstance(module, NORM_TYPES) or self._scale_invariant(call.name, module, call.inputs[0]):
                self.norm_outputs[call.outputs[0]] = call.inputs[0]
                self.norm_call_of[call.outputs[0]] = call.name

    def _scale_invariant(self, name: str, module: nn.Module, input_value: int) -> bool:
        if name in self.result.norms:
            return True
        params = list(module.parameters(recurse=False))
        if not params or any(p.dim() != 1 for p in params) or any(True for _ in module.children()):
            return False
        x = self.graph.tensors[input_value]
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
        self.result.norms[name] = evidence
        for pname, p in module.named_parameters(recurse=False):
            full = f"{name}.{pname}" if name else pname
            self.result.params[full] = TracedParam(self._norm_param_kind(full), evidence)
        return True

    def _norm_param_kind(self, param: str) -> str:
        """``scale`` if the first thing done with it is a product, ``shift`` a sum with the stream,
        ``offset_scale`` a sum with a number (``1 + w``, as Gemma's RMSNorm)."""
        for node, _ in self._first_uses(param):
            if node.name in MUL_FUNCS:
                return "scale"
            if node.name in ADD_FUNCS:
                return "shift" if self.graph.tainted_inputs(node) else "offset_scale"
        return "scale"

    def _first_uses(self, param: str) -> list[tuple[Node, int]]:
        """The first nodes that read ``param``, looking through reshapes of it."""
        starts = self.values_of.get(param, [])
        found, stack, seen = [], list(starts), set(starts)
        while stack:
            value = stack.pop()
            for index in self.graph.consumers.get(value, []):
                node = self.graph.nodes[index]
                if node.name in SHAPE_FUNCS and len(node.inputs) == 1:
                    for out in node.outputs:
                        if out not in seen:
                            seen.add(out)
                            stack.append(out)
                else:
                    found.append((node, value))
        return sorted(found, key=lambda item: item[0].index)

    def find_layers(self) -> None:
        """Every parameter the pass read, and how: layer weights (Conv1D-style too), tables, positions, tokens."""
        for node in self.graph.nodes:
            for param in self.graph.param_inputs(node).values():
                self.result.used.add(self.canonical.get(param, param))
            use = self.matrix_use(node)
            if use is not None:
                weight, stored, bias = use
                w = self.model.get_parameter(weight)
                out_f, in_f = (w.shape[0], w.shape[1]) if stored == "out_in" else (w.shape[1], w.shape[0])
                if w.dim() == 2 and weight not in self.result.params:
                    how = f"{node.name}, weight stored ({'out, in' if stored == 'out_in' else 'in, out'})"
                    self.result.params[weight] = TracedParam("matrix", how, in_f, out_f, stored)
                    if bias is not None:
                        self.result.params.setdefault(bias, TracedParam("bias", f"bias of {node.name}"))
            if node.name == "embedding" and 1 in node.inputs:
                table = self.param_source(node.inputs[1])
                if table is None:
                    continue
                self.tables.add(table[0])
                self.result.params.setdefault(table[0], TracedParam("table", "F.embedding table"))
                indices = node.inputs.get(0)
                if indices is not None and not self.graph.values[indices].tainted:
                    module = self.layer_module(table[0], node)
                    self.set_role(module, "position", "embedding indices do not depend on the input (positions)")
        for param in self.result.used:
            if param in self.result.params or self._in_known_layer(param):
                continue
            kind = self._stream_use(param)
            if kind is not None:
                self.result.params[param] = kind

    def _in_known_layer(self, param: str) -> bool:
        module = self.modules[self.owner[param]]
        return isinstance(module, MATRIX_LAYER_TYPES + NORM_TYPES + (nn.Embedding, nn.MultiheadAttention))

    def _stream_use(self, param: str) -> TracedParam | None:
        """A parameter added to the input stream (a position table) or concatenated to it (a token)."""
        for node, _ in self._first_uses(param):
            if node.name in ADD_FUNCS and self.graph.tainted_inputs(node):
                return TracedParam("position", f"added to the input stream ({node.name} in {node.module or 'model'})")
            if node.name in ("cat", "concat", "concatenate") and self.graph.tainted_inputs(node):
                return TracedParam("token", f"concatenated to the input stream (cat in {node.module or 'model'})")
        return None

    def walk_back(self, value: int) -> tuple[list[tuple[str, str]], tuple[Node, str] | None]:
        """Walk back from ``value`` through functions without parameters.

        Returns the norms and scales met on the way (``("norm", module)`` /
        ``("scale", parameter)``) and the first layer ``(node, weight)``,
        or ``None`` where the walk met a function mixing several inputs.
        """
        met: list[tuple[str, str]] = []
        for _ in range(10_000):
            if value in self.norm_call_of:
                met.append(("norm", self.norm_call_of[value]))
                value = self.norm_outputs[value]
                continue
            node = self.graph.producer(value)
            if node is None:
                return met, None
            use = self.matrix_use(node)
            if use is not None:
                return met, (node, use[0])
            params = self.graph.param_inputs(node)
            tainted = self.graph.tainted_inputs(node)
            if node.name in NORM_FUNCS and tainted:
                met.append(("norm", node.module))
                value = tainted[0]
                continue
            if node.name in MUL_FUNCS and len(tainted) == 2 and not params:
                a, b = tainted  # x * gate(x), as squeeze-excitation: the branch goes on through x
                if self.graph.is_ancestor(a, of=b):
                    value = a
                elif self.graph.is_ancestor(b, of=a):
                    value = b
                else:
                    return met, None
                continue
            if node.name in MUL_FUNCS and len(tainted) == 1:
                other = [v for v in node.inputs.values() if v != tainted[0]]
                source = self.param_source(other[0]) if other else None
                if source is not None:
                    met.append(("scale", source[0]))
                value = tainted[0]
                continue
            if params or len(tainted) != 1:
                return met, None
            value = tainted[0]
        return met, None

    def layers_feeding(self, value: int) -> list[tuple[Node, str]]:
        """The layers a value is computed from through functions without parameters (rotary embeddings, head splits)."""
        found: dict[int, tuple[Node, str]] = {}
        stack, seen = [value], {value}
        while stack:
            v = stack.pop()
            if v in self.norm_call_of:
                continue
            node = self.graph.producer(v)
            if node is None:
                continue
            use = self.matrix_use(node)
            if use is not None:
                found[node.index] = (node, use[0])
                continue
            if self.graph.param_inputs(node) or node.name in NORM_FUNCS:
                continue
            for u in self.graph.tainted_inputs(node):
                if u not in seen:
                    seen.add(u)
                    stack.append(u)
        return list(found.values())

    def layers_fed(self, value: int) -> list[tuple[Node, str]]:
        """The first layers after ``value`` (stopping at residual adds and norms)."""
        found: dict[int, tuple[Node, str]] = {}
        stack, seen = [value], {value}
        while stack:
            v = stack.pop()
            for index in self.graph.consumers.get(v, []):
                node = self.graph.nodes[index]
                use = self.matrix_use(node)
                if use is not None:
                    found[node.index] = (node, use[0])
                    continue
                if self.graph.param_inputs(node) or node.name in NORM_FUNCS:
                    continue
                if node.name in ADD_FUNCS and len(self.graph.tainted_inputs(node)) > 1:
                    continue
                for out in node.outputs:
                    if out not in seen:
                        seen.add(out)
                        stack.append(out)
        return list(found.values())

    def find_classifier(self) -> None:
        graph = self.graph
        if not graph.outputs:
            return
        keys = graph.output_keys
        index = keys.index("logits") if "logits" in keys else 0
        met, layer = self.walk_back(graph.outputs[index])
        if layer is None or met:
            return
        node, weight = layer
        module = self.layer_module(weight, node)
        evidence = f"last layer before the output {keys[index] or 'tensor'!r}"
        self.set_role(module, "classifier", evidence, over=True)
        if weight in self.tables:
            before, _ = self.walk_back(self._stream_input(node))
            norms = [name for kind, name in before if kind == "norm"]
            if norms:
                self.set_role(norms[0], "classifier_norm", f"norm before the classifier {module}, whose weight is tied "
                              "to the token embedding", over=True)  # fmt: skip

    def _stream_input(self, node: Node) -> int:
        tainted = self.graph.tainted_inputs(node)
        return tainted[0] if tainted else -1

    def find_attention(self) -> None:
        for node in self.graph.nodes:
            qkv_out = self._attention_at(node)
            if qkv_out is None:
                continue
            (q, k, v), out = qkv_out
            sources = {name: self.layers_feeding(val) for name, val in (("query", q), ("key", k), ("value", v))}
            if any(len(s) != 1 for s in sources.values()):
                self.result.notes.append(
                    f"attention in {node.module or 'the model'}: query/key/value do not each come from one layer; "
                    "their layers keep the default role"
                )
                continue
            layers = {name: s[0] for name, s in sources.items()}
            self._attention_roles(node, layers, {"query": q, "key": k, "value": v})
            for out_node, weight in self.layers_fed(out):
                module = self.layer_module(weight, out_node)
                self.set_role(module, "attn_out", f"first layer after the attention in {node.module}", over=True)

    def _attention_at(self, node: Node) -> tuple[tuple[int, int, int], int] | None:
        """``((query, key, value), output)`` values if ``node`` computes attention."""
        if node.name == "scaled_dot_product_attention":
            args = [node.inputs.get(i, node.inputs.get(k)) for i, k in ((0, "query"), (1, "key"), (2, "value"))]
            if any(a is None for a in args):
                return None
            return (args[0], args[1], args[2]), node.outputs[0]
        if node.name not in SOFTMAX_FUNCS:
            return None
        scores = self._stream_input(node)
        while scores >= 0:
            producer = self.graph.producer(scores)
            if producer is None or self.graph.param_inputs(producer):
                return None
            tainted = self.graph.tainted_inputs(producer)
            if producer.name in ("matmul", "__matmul__", "bmm") and len(tainted) == 2:
                q, k = tainted
                break
            if len(tainted) != 1:
                return None
            scores = tainted[0]
        else:
            return None
        probs = node.outputs[0]
        for _ in range(20):
            consumers = [self.graph.nodes[i] for i in self.graph.consumers.get(probs, [])]
            if len(consumers) != 1:
                return None
            consumer = consumers[0]
            tainted = self.graph.tainted_inputs(consumer)
            if consumer.name in ("matmul", "__matmul__", "bmm") and len(tainted) == 2 and tainted[0] == probs:
                return (q, k, tainted[1]), consumer.outputs[0]
            if len(tainted) != 1 or self.graph.param_inputs(consumer):
                return None
            probs = consumer.outputs[0]
        return None

    def _attention_roles(self, node: Node, layers: dict[str, tuple[Node, str]], values: dict[str, int]) -> None:
        where = f"attention in {node.module or 'the model'}"
        by_layer: dict[int, list[str]] = {}
        for name, (layer_node, _) in layers.items():
            by_layer.setdefault(layer_node.index, []).append(name)
        for names in by_layer.values():
            layer_node, weight = layers[names[0]]
            module = self.layer_module(weight, layer_node)
            if len(names) == 1:
                self.set_role(module, f"attn_{names[0]}", f"{names[0]} of the {where}", over=True)
                continue
            sizes = self._fused_rows(layer_node, [values[n] for n in names])
            if sizes is None:
                self.result.notes.append(
                    f"{module}: fused {'/'.join(names)} projection whose blocks are not contiguous rows in that order; "
                    "it keeps the default role"
                )
                continue
            role = "attn_qkv" if len(names) == 3 else "attn_kv" if names == ["key", "value"] else None
            if role is None:
                continue
            self.set_role(module, f"{role}:{','.join(map(str, sizes))}", f"fused {'/'.join(names)} of the {where}; "
                          "rows found by autograd", over=True)  # fmt: skip

    def _fused_rows(self, layer: Node, values: list[int]) -> list[int] | None:
        """Output rows of a fused projection feeding each value, as contiguous block sizes in order."""
        out = self.graph.tensors[layer.outputs[0]]
        if not out.requires_grad:
            return None
        generator = torch.Generator(device=out.device).manual_seed(0)
        starts, sizes, end = [], [], 0
        for value in values:
            target = self.graph.tensors[value]
            cotangent = torch.randn(target.shape, generator=generator, device=target.device, dtype=target.dtype)
            (grad,) = torch.autograd.grad(target, out, cotangent, retain_graph=True, allow_unused=True)
            if grad is None:
                return None
            rows = grad.abs().reshape(-1, grad.shape[-1]).sum(0).nonzero().flatten().tolist()
            if not rows or rows != list(range(rows[0], rows[-1] + 1)):
                return None
            starts.append(rows[0])
            sizes.append(len(rows))
            end = max(end, rows[-1] + 1)
        if starts != sorted(starts) or starts[0] != 0 or end != out.shape[-1]:
            return None
        if any(a + n != b for a, n, b in zip(starts, sizes, starts[1:])):
            return None
        return sizes

    def find_residuals(self) -> None:
        graph = self.graph
        count = 0
        for node in graph.nodes:
            if node.name not in ADD_FUNCS:
                continue
            tainted = graph.tainted_inputs(node)
            if len(tainted) != 2 or len(node.inputs) != 2:
                continue
            a, b = tainted
            if graph.values[a].shape != graph.values[b].shape:
                continue
            sides = self._branch_side(a, b)
            if sides is None:
                continue
            branch, inside = sides
            if not any(self._is_layer_output(v) for v in inside):
                continue  # x + f(x) without a layer in f: an activation (GELU's x + 0.044715 x^3), not a residual
            count += 1
            block = f"traced residual add #{count} in {node.module or 'the model'}"
            met, layer = self.walk_back(branch)
            last_module = None
            if layer is not None:
                layer_node, weight = layer
                last_module = self.layer_module(weight, layer_node)
                role = self.result.modules.get(last_module)
                kind = "attn_out" if role is not None and role.role == "attn_out" else "branch_last"
                self.set_role(last_module, kind, f"last layer of the branch of {block}", block, over=True)
            for kind, name in met:
                if kind == "norm" and layer is not None:
                    self.set_role(name, "branch_last_norm", f"norm after the last layer of the branch of {block}",
                                  block, over=True)  # fmt: skip
                elif kind == "scale" and layer is not None:
                    self.result.params[name] = TracedParam("layer_scale", f"scales the branch of {block}")
                    self.set_role(
                        self.owner[name], "layer_scale", f"holds the layer scale of {block}", block, over=True
                    )
            for value in sorted(inside):  # in the order computed
                producer = graph.producer(value)
                use = self.matrix_use(producer) if producer is not None else None
                if use is None:
                    continue
                module = self.layer_module(use[0], producer)
                if module != last_module and module not in self.result.modules:
                    self.set_role(module, "branch", f"inside the branch of {block}", block)

    def _branch_side(self, a: int, b: int) -> tuple[int, set[int]] | None:
        """Which operand of ``a + b`` is the residual branch, and the values computed on the branch alone:
        the operand computed from the other, else the one with more layers since they parted."""
        only_a, only_b, shared = self.graph.exclusive_ancestors(a, b)
        if a not in only_a:  # a is an ancestor of b
            return b, only_b
        if b not in only_b:
            return a, only_a
        layers_a = sum(1 for v in only_a if self._is_layer_output(v))
        layers_b = sum(1 for v in only_b if self._is_layer_output(v))
        if layers_a == layers_b or not shared:
            return None
        return (a, only_a) if layers_a > layers_b else (b, only_b)

    def _is_layer_output(self, value: int) -> bool:
        producer = self.graph.producer(value)
        return producer is not None and self.matrix_use(producer) is not None


def trace_roles(model: nn.Module, example_inputs: object) -> TracedRoles:
    """Record one forward pass of ``model`` on ``example_inputs`` and find the roles of its layers.

    ``example_inputs`` is a tensor, a tuple of positional arguments or a dict
    of keyword arguments. Raises :class:`~detinit.init.trace.TraceError` if the
    model cannot run on it.
    """
    graph = record_forward(model, example_inputs)
    analysis = _Analysis(model, graph)
    analysis.find_norms()
    analysis.find_layers()
    analysis.find_attention()
    analysis.find_residuals()
    analysis.find_classifier()
    return analysis.result
