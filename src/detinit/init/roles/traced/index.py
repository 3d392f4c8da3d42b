"""A recorded forward pass indexed for the passes of :func:`detinit.init.roles.traced.trace_roles`: which
parameter each value is, which nodes are a layer's matrix product, which module owns a parameter.

The passes read the graph only through this index; what they find goes in :attr:`GraphIndex.result`.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrize import ParametrizationList, is_parametrized

from ..trace import Graph, Node
from .result import TracedRoles

# function -> (weight argument, bias argument, how the weight is stored: "out_in" as nn.Linear, "in_out" as x @ W)
MATRIX_FUNCS: dict[str, tuple[tuple[int | str, ...], tuple[int | str, ...], str]] = {
    "linear": ((1, "weight"), (2, "bias"), "out_in"),
    "addmm": ((2, "mat2"), (0, "input"), "in_out"),
    "matmul": ((1, "other"), (), "in_out"),
    "__matmul__": ((1, "other"), (), "in_out"),
    "mm": ((1, "mat2"), (), "in_out"),
    "bmm": ((1, "mat2"), (), "in_out"),
    "baddbmm": ((2, "batch2"), (0, "input"), "in_out"),  # a stack of matrices plus a bias (RecurrentGemma's gates)
    "_grouped_mm": ((1, "mat_b"), (), "in_out"),  # experts: a stack of matrices, one per group of rows
    **{f"conv{d}d": ((1, "weight"), (2, "bias"), "out_in") for d in (1, 2, 3)},
    **{f"conv_transpose{d}d": ((1, "weight"), (2, "bias"), "in_out") for d in (1, 2, 3)},
    # attention in one call (WavLM, nn.MultiheadAttention): its last matrix, the output projection, makes the result
    "multi_head_attention_forward": ((11, "out_proj_weight"), (12, "out_proj_bias"), "out_in"),
}
LEFT_MATMUL_FUNCS = frozenset({"matmul", "__matmul__"})
NORM_FUNCS = frozenset({"layer_norm", "group_norm", "batch_norm", "instance_norm", "rms_norm"})
ADD_FUNCS = frozenset({"add", "__add__", "__radd__", "add_", "__iadd__"})
MUL_FUNCS = frozenset({"mul", "__mul__", "__rmul__", "mul_", "__imul__", "multiply"})
DIV_FUNCS = frozenset({"div", "__truediv__", "true_divide"})
# functions that move or reshape a tensor without mixing in anything else
SHAPE_FUNCS = frozenset(
    {
        "view", "reshape", "expand", "expand_as", "unsqueeze", "squeeze", "flatten", "unflatten", "permute",
        "transpose", "t", "contiguous", "to", "float", "half", "bfloat16", "double", "type_as", "type",
        "__getitem__", "__get__", "repeat", "clone", "narrow", "movedim", "dropout", "reshape_as", "view_as",
    }
)  # fmt: skip
SOFTMAX_FUNCS = frozenset({"softmax", "_softmax", "log_softmax"})
RESCALE_IN_PLACE = frozenset({"mul_", "div_", "__imul__", "__itruediv__"})
CAT_FUNCS = frozenset({"cat", "concat", "concatenate"})


def parametrized_tensor(name: str) -> tuple[str, str]:
    """The module that holds a parametrized tensor, and the tensor's name, for the parametrization module
    ``name``: ``("conv", "conv.weight")`` for ``conv.parametrizations.weight``.

    >>> parametrized_tensor("conv.parametrizations.weight"), parametrized_tensor("parametrizations.weight")
    (('conv', 'conv.weight'), ('', 'weight'))
    """
    owner, _, tensor = f".{name}".rpartition(".parametrizations.")
    owner = owner[1:]
    return owner, f"{owner}.{tensor}" if owner else tensor


def _swaps_last_two(node: Node, dims: int) -> bool:
    if node.name in ("t", "__get__"):
        return True
    if node.name != "transpose":
        return False
    swapped = {d % dims for d in (node.scalars.get(1), node.scalars.get(2)) if isinstance(d, int)}
    return swapped == {dims - 2, dims - 1}


def number_arguments(node: Node) -> list[float]:
    """The numbers a recorded call was given besides its tensors (``w + 1.0``: ``[1.0]``), booleans left out."""
    return [float(v) for v in node.scalars.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]


class GraphIndex:
    """One recorded graph and the model it ran, with the lookups every pass needs."""

    def __init__(self, model: nn.Module, graph: Graph) -> None:
        self.model, self.graph = model, graph
        self.result = TracedRoles()  # what the passes find
        self.modules = dict(model.named_modules(remove_duplicate=False))  # a shared module under each name
        self.owner = {}  # parameter name -> the module that owns it directly
        for mname, module in self.modules.items():
            for pname, _ in module.named_parameters(recurse=False, remove_duplicate=False):
                self.owner[f"{mname}.{pname}" if mname else pname] = mname
        self.names_of: dict[int, list[str]] = {}  # id(param) -> every name it has (tied weights)
        for name, p in model.named_parameters(remove_duplicate=False):
            self.names_of.setdefault(id(p), []).append(name)
        self.canonical = {name: names[0] for names in self.names_of.values() for name in names}
        self.norm_outputs: dict[int, int] = {}  # output value of a norm module call -> its input value (pass 1)
        self.norm_call_of: dict[int, str] = {}  # output value -> norm module name (pass 1)
        self.values_of: dict[str, list[int]] = {}  # parameter -> the values that are it
        for v in graph.values:
            if v.param is not None:
                self.values_of.setdefault(self.canonical.get(v.param, v.param), []).append(v.index)
        self._matrix_uses: dict[int, tuple[str, str, str | None] | None] = {}  # node -> matrix_use, once
        self.folded: dict[str, tuple[int, int]] = {}  # an einsum's weight -> (in, out) features of its matrix
        self.offsets: dict[str, float] = {}  # a scale held as ``c + w`` (x-transformers' LayerScale) -> c
        self.parametrized: dict[int, str] = {}  # value a parametrization computed -> its tensor ("conv.weight")
        for call in graph.calls:
            if isinstance(self.modules.get(call.name), ParametrizationList) and call.outputs:
                owner, tensor = parametrized_tensor(call.name)
                self.parametrized[call.outputs[0]], self.owner[tensor] = tensor, owner
        self.residual_sums: list | None = None  # pass 4's sums, found once (residuals.residual_sums)

    def param_source(self, value: int) -> tuple[str, bool] | None:
        """The parameter a value is (or a transposed/reshaped view of), and whether it was transposed."""
        flipped = False
        while True:
            v = self.graph.values[value]
            if v.param is not None:
                return self.canonical.get(v.param, v.param), flipped
            if value in self.parametrized:  # a weight computed by a parametrization (weight norm)
                return self.parametrized[value], flipped
            node = self.graph.producer(value)
            if node is not None and node.name in RESCALE_IN_PLACE and len(node.inputs) == 1:
                value = node.inputs[0]  # a weight rescaled in place by a constant (RWKV's, for inference)
                continue
            if node is None or node.name not in SHAPE_FUNCS:
                return None
            source = node.inputs.get(0)
            if source is None or (len(node.inputs) != 1 and node.name != "__getitem__"):
                return None  # W[expert] selects one matrix of a stack: the stack is the parameter
            before, after = self.graph.values[source].shape, v.shape
            if len(before) == len(after) >= 2 and before[:-2] == after[:-2]:
                if before[-2:] == after[-2:][::-1] and before[-1] != before[-2]:
                    flipped = not flipped
                elif before == after and _swaps_last_two(node, len(before)):
                    flipped = not flipped  # square: t(), .T, mT, transpose(-2, -1) flip it
            value = source

    def scaled_input(self, value: int) -> tuple[Node, int] | None:
        """``(the product, x)`` where ``value`` is ``x * s`` and ``x`` is the one factor that depends on the model's
        input (``s`` a number, a parameter, or a value computed from parameters alone); ``None`` otherwise."""
        node = self.graph.producer(value)
        tainted = self.graph.tainted_inputs(node) if node is not None else []
        if node is None or node.name not in MUL_FUNCS or len(tainted) != 1:
            return None
        return node, tainted[0]

    def scaled_by_parameter(self, value: int) -> tuple[int, str] | None:
        """``(x, parameter)`` where ``value`` is ``x * s`` (:meth:`scaled_input`, ``s`` a parameter or a reshape of
        one); ``None`` otherwise."""
        scaled = self.scaled_input(value)
        if scaled is None:
            return None
        node, x = scaled
        others = [v for v in node.inputs.values() if v != x]
        source = self.param_source(others[0]) if len(others) == 1 else None
        return None if source is None else (x, source[0])

    def offset_param_source(self, value: int) -> tuple[str, float] | None:
        """The parameter ``w`` and the constant ``c`` where ``value`` is ``w + c`` (through reshapes of ``w``: a
        scale held with an offset, ``gamma + 1``), ``c`` a number; ``None`` otherwise."""
        node = self.graph.producer(value)
        if node is None or node.name not in ADD_FUNCS or len(node.inputs) != 1 or self.graph.tainted_inputs(node):
            return None
        numbers = number_arguments(node)
        source = self.param_source(next(iter(node.inputs.values())))
        return None if source is None or len(numbers) != 1 else (source[0], numbers[0])

    def matrix_use(self, node: Node) -> tuple[str, str, str | None] | None:
        """``(weight parameter, stored orientation, bias parameter)`` if ``node`` is a layer's matrix product."""
        if node.index not in self._matrix_uses:
            self._matrix_uses[node.index] = self._find_matrix_use(node)
        return self._matrix_uses[node.index]

    def _find_matrix_use(self, node: Node) -> tuple[str, str, str | None] | None:
        if node.name == "einsum":
            return self._einsum_use(node)
        spec = MATRIX_FUNCS.get(node.name)
        if spec is None:
            return None
        weight_keys, bias_keys, stored = spec
        weight = next((node.inputs[k] for k in weight_keys if k in node.inputs), None)
        if node.name in LEFT_MATMUL_FUNCS and (weight is None or self._computed(weight)):
            weight, stored = node.inputs.get(0), "out_in"  # W @ x: the weight on the left (Zamba's x_proj_weight)
            if weight is None or 1 not in node.inputs or not self.graph.values[node.inputs[1]].tainted:
                return None
        if weight is None or self._computed(weight) or len(self.graph.values[weight].shape) < 2:
            return None  # a vector times the input (v @ x, a learned query's scores) is no layer
        source = self.param_source(weight)
        if source is None:
            return None
        name, flipped = source
        if self.parameter(name).dim() < 2:
            return None  # a vector viewed as a row (Inkling's learned query over block states) is no layer
        if flipped:
            stored = "in_out" if stored == "out_in" else "out_in"
        bias_value = next((node.inputs[k] for k in bias_keys if k in node.inputs), None)
        bias = self.param_source(bias_value) if bias_value is not None else None
        return name, stored, bias[0] if bias else None

    def _einsum_use(self, node: Node) -> tuple[str, str, str | None] | None:
        """An ``einsum`` of the input with a parameter that is a matrix over groups of dims: the parameter's
        subscripts are the contracted ones then the output's (stored ``in, out``), or the reverse, each group in
        the order the input and the output hold it (``"ibh,hnd->ibnd"``: ``h`` in, ``n d`` out)."""
        equation = node.scalars.get(0)
        operands = [node.inputs.get(1), node.inputs.get(2)]
        if not isinstance(equation, str) or "..." in equation or None in operands or len(node.inputs) != 2:
            return None
        terms, _, out = equation.replace(" ", "").partition("->")
        subscripts = terms.split(",")
        if len(subscripts) != 2 or not out:
            return None
        sides = [(v, sub, self.param_source(v)) for v, sub in zip(operands, subscripts)]
        sides = [side for side in sides if side[2] is not None]
        if len(sides) != 1:  # one parameter times a computed tensor (the input, or XLNet's position encoding)
            return None
        weight, w, source = sides[0]
        x = next(sub for v, sub in zip(operands, subscripts) if v != weight)
        contracted = [c for c in w if c in x and c not in out]
        produced = [c for c in w if c in out and c not in x]
        if len(contracted) + len(produced) != len(w) or not contracted or not produced:
            return None  # a dim shared with the input and output (heads as a batch) or summed away: no matrix
        in_order, out_order = [c for c in x if c in contracted], [c for c in out if c in produced]
        if w == "".join(in_order + out_order):
            stored = "in_out"
        elif w == "".join(out_order + in_order):
            stored = "out_in"
        else:
            return None
        if source[1] or self.parameter(source[0]).dim() != len(w):
            return None
        shape = self.graph.values[weight].shape
        size = {c: n for c, n in zip(w, shape)}
        self.folded[source[0]] = (math.prod(size[c] for c in in_order), math.prod(size[c] for c in out_order))
        return source[0], stored, None

    def _computed(self, value: int) -> bool:
        """Whether ``value`` depends on the input other than as one matrix of a parameter's stack picked by a
        routed index (``W[expert]``, the expert chosen by the router: OpenAI's privacy filter)."""
        if not self.graph.values[value].tainted:
            return False
        while (node := self.graph.producer(value)) is not None and node.name in SHAPE_FUNCS:
            data = node.inputs.get(0)
            if node.name == "__getitem__" and data is not None and self.graph.values[data].param is not None:
                index = node.inputs.get(1)
                picked = index is not None and self.graph.values[index].shape == ()
                return not (picked and len(self.graph.values[data].shape) == 3)
            if data is None or len(node.inputs) != 1:
                return True
            value = data
        return True

    def layer_module(self, param: str, node: Node) -> str:
        """The module a layer's weight belongs to (for a tied weight: the name used where ``node`` ran)."""
        for name in self.names_of.get(id(self.parameter(param)), [param]):
            if self.owner.get(name) == node.module:
                return node.module
        return self.owner[param]

    def parameter(self, name: str) -> torch.Tensor:
        """A parameter by name, or the tensor a parametrization computes (``conv.weight`` under weight norm)."""
        owner, _, attribute = name.rpartition(".")
        module = self.model.get_submodule(owner)
        if is_parametrized(module, attribute):
            return getattr(module, attribute)
        return self.model.get_parameter(name)

    def first_uses(self, param: str) -> list[tuple[Node, int]]:
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

    def stream_input(self, node: Node) -> int:
        tainted = self.graph.tainted_inputs(node)
        return tainted[0] if tainted else -1

    def is_layer_output(self, value: int) -> bool:
        producer = self.graph.producer(value)
        return producer is not None and self.matrix_use(producer) is not None
