"""Record one forward pass as a data-flow graph: :func:`record_forward`.

Roles found from the computation (:mod:`detinit.init.roles.traced`) need to
know, for one forward pass on an example input, which function produced each
tensor from which tensors, which parameters each function read, and which
module was running at the time. A :class:`torch.overrides.TorchFunctionMode`
sees every call of a torch function or ``Tensor`` method made from Python
(``F.linear``, ``torch.addmm``, ``x + y``, ``x.view(...)``,
``F.scaled_dot_product_attention``) with its arguments, the parameters
included, so any eager model can be recorded: Hugging Face and timm models
need no symbolic tracing and no export. Forward hooks on every module give
the module each call ran in, and the tensors each module call took and
returned.

Each tensor becomes a :class:`Value` (a new one for each in-place update);
each call a :class:`Node`. A value is *tainted* when it depends on the
example input's values: the residual stream is, positions built with
``arange``, attention masks built from shapes and parameters are not.

>>> import torch
>>> from torch import nn
>>> net = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
>>> graph = record_forward(net, (torch.ones(2, 4),))
>>> [n.name for n in graph.nodes]
['linear', 'relu']
>>> graph.param_inputs(graph.nodes[0])
{1: '0.weight', 2: '0.bias'}
"""

from __future__ import annotations

import heapq
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

# functions whose output depends on the input's shape, not its values
SHAPE_ONLY = frozenset(
    {"size", "ones_like", "zeros_like", "full_like", "empty_like", "new_ones", "new_zeros", "new_full", "new_empty"}
)


IN_PLACE_OPERATORS = frozenset(
    {"__iadd__", "__isub__", "__imul__", "__itruediv__", "__ior__", "__iand__", "__setitem__"}
)


class TraceError(RuntimeError):
    """The model could not be run on the example input."""


@dataclass
class Value:
    """One tensor (one version of it, for tensors updated in place)."""

    index: int
    producer: int | None  # index of the node that produced it; None for inputs, parameters, constants
    tainted: bool  # depends on the example input's values
    param: str | None = None  # the parameter's name, for parameters
    shape: tuple[int, ...] = ()


@dataclass
class Node:
    """One call of a torch function: its name, argument values, output values and module."""

    index: int
    name: str
    inputs: dict[int | str, int]  # argument position (or keyword) -> value index, tensors only
    outputs: list[int]
    module: str  # the innermost module running ("" for the model itself)
    scalars: dict[int | str, object] = field(default_factory=dict)  # non-tensor arguments, by position


@dataclass
class ModuleCall:
    """One call of a module: the values it took and returned."""

    name: str
    inputs: list[int]
    outputs: list[int]
    first_node: int
    last_node: int


@dataclass
class Graph:
    """The recorded forward pass."""

    values: list[Value]
    nodes: list[Node]
    calls: list[ModuleCall]
    tensors: list[torch.Tensor]  # tensors[value.index] is the tensor of that value
    outputs: list[int]  # the values the model returned, flattened
    output_keys: list[str]  # the key path of each output value ("logits", "0", ...)
    consumers: dict[int, list[int]] = field(default_factory=dict)  # value -> nodes reading it
    written: list[str] = field(default_factory=list)  # parameters the forward pass wrote in place
    finite_outputs: list[str] = field(default_factory=list)  # keys of the floating outputs that were finite

    def __post_init__(self) -> None:
        for node in self.nodes:
            for value in node.inputs.values():
                self.consumers.setdefault(value, []).append(node.index)

    def param_inputs(self, node: Node) -> dict[int | str, str]:
        """``{argument position: parameter name}`` of the parameters a node read."""
        return {key: self.values[v].param for key, v in node.inputs.items() if self.values[v].param is not None}

    def tainted_inputs(self, node: Node) -> list[int]:
        """The input values of ``node`` that depend on the example input."""
        return [v for v in node.inputs.values() if self.values[v].tainted]

    def producer(self, value: int) -> Node | None:
        index = self.values[value].producer
        return None if index is None else self.nodes[index]

    def is_ancestor(self, value: int, of: int) -> bool:
        """Whether ``of`` was computed from ``value`` (or is it), walking back only through values numbered above
        ``value``: a node's inputs are numbered before its outputs."""
        seen, stack = {of}, [of]
        while stack:
            current = stack.pop()
            if current == value:
                return True
            node = self.producer(current)
            if node is None:
                continue
            for v in node.inputs.values():
                if v >= value and v not in seen:
                    seen.add(v)
                    stack.append(v)
        return False

    def exclusive_ancestors(self, a: int, b: int) -> tuple[set[int], set[int], bool]:
        """The values ``a`` was computed from (itself included) that ``b`` was not, those of ``b`` that ``a`` was
        not, and whether the two share any, without walking the history they share.

        Values are numbered in the order they were computed (a node's inputs before its outputs), so a walk
        back in decreasing number, marking each value with the sides it is reached from, sees all of a value's
        consumers before the value: its mark is final when it is taken. Once every value left to take is
        reached from both sides, all of their ancestors are shared too, and the walk stops. The two sides of a
        residual add share everything before the block, so this costs the block, not the model (two whole
        walks back per add made tracing quadratic in depth; docs/benchmarks.md has the timings).

        >>> g = Graph([Value(0, None, True), Value(1, 0, True), Value(2, 1, True)],
        ...           [Node(0, "relu", {0: 0}, [1], ""), Node(1, "neg", {0: 0}, [2], "")], [], [], [], [])
        >>> g.exclusive_ancestors(1, 2)
        ({1}, {2}, True)
        """
        side_a, side_b, both = 1, 2, 3
        marks = {a: side_a}
        marks[b] = marks.get(b, 0) | side_b
        heap = [-v for v in marks]  # a max-heap of value numbers
        heapq.heapify(heap)
        undecided = sum(mark != both for mark in marks.values())  # values in the heap not yet known shared
        only_a: set[int] = set()
        only_b: set[int] = set()
        shared = False
        while heap and undecided:
            value = -heapq.heappop(heap)
            mark = marks[value]
            if mark == both:
                shared = True
            else:
                undecided -= 1
                (only_a if mark == side_a else only_b).add(value)
            node = self.producer(value)
            if node is None:
                continue
            for v in node.inputs.values():
                old = marks.get(v)
                if old is None:
                    marks[v] = mark
                    heapq.heappush(heap, -v)
                    undecided += mark != both
                elif old | mark != old:  # v is still in the heap: it is numbered below the value taken
                    marks[v] = old | mark
                    undecided -= old | mark == both
        return only_a, only_b, shared or bool(heap)


class _Recorder(TorchFunctionMode):
    def __init__(self, params: dict[int, str]) -> None:
        super().__init__()
        self.values: list[Value] = []
        self.nodes: list[Node] = []
        self.calls: list[ModuleCall] = []
        self.tensors: list[torch.Tensor] = []  # keeps every tensor alive, so ids are never reused
        self.latest: dict[int, int] = {}  # id(tensor) -> its latest value
        self.params = params
        self.stack: list[str] = [""]
        self.open_calls: list[ModuleCall] = []

    def value_of(self, tensor: torch.Tensor, tainted: bool = False) -> int:
        found = self.latest.get(id(tensor))
        if found is not None:
            return found
        return self._new_value(tensor, None, tainted, self.params.get(id(tensor)))

    def _new_value(self, tensor: torch.Tensor, producer: int | None, tainted: bool, param: str | None = None) -> int:
        index = len(self.values)
        shape = tuple(tensor.shape) if not tensor.is_nested else ()
        self.values.append(Value(index, producer, tainted, param, shape))
        self.tensors.append(tensor)
        self.latest[id(tensor)] = index
        return index

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        before = self._keep_before_in_place(name, args)
        out = func(*args, **kwargs)
        if before is not None:  # the value the in-place call overwrote keeps what it held
            self.tensors[before[0]] = before[1]
        inputs: dict[int | str, int] = {}
        scalars: dict[int | str, object] = {}
        for key, arg in list(enumerate(args)) + list(kwargs.items()):
            flat, _ = tree_flatten(arg)
            tensors = [t for t in flat if isinstance(t, torch.Tensor)]
            if isinstance(arg, torch.Tensor):
                inputs[key] = self.value_of(arg)
            elif tensors:  # a list of tensors (cat, stack): positions i.0, i.1, ...
                for j, t in enumerate(tensors):
                    inputs[f"{key}.{j}"] = self.value_of(t)
            elif isinstance(arg, (int, float, bool, str)):
                scalars[key] = arg  # a string: an einsum's equation
        flat_out, _ = tree_flatten(out if name != "__setitem__" else args[0])  # x[i] = v returns None, writes x
        tensors_out = [t for t in flat_out if isinstance(t, torch.Tensor)]
        if not tensors_out:
            return out
        tainted = name not in SHAPE_ONLY and any(self.values[v].tainted for v in inputs.values())
        index = len(self.nodes)
        outputs = [self._new_value(t, index, tainted) for t in tensors_out]
        self.nodes.append(Node(index, name, inputs, outputs, self.stack[-1], scalars))
        return out

    def _keep_before_in_place(self, name: str, args: tuple) -> tuple[int, torch.Tensor] | None:
        """For a call that writes its first argument in place (``add_``, ``+=``, ``relu_``), the value it
        overwrites and a copy of what that value holds, so that a residual ``out += shortcut`` can still be
        read as its two sides."""
        in_place = name in IN_PLACE_OPERATORS or (name.endswith("_") and not name.startswith("_"))
        first = args[0] if args else None
        if not in_place or not isinstance(first, torch.Tensor) or id(first) not in self.latest:
            return None
        return self.latest[id(first)], first.detach().clone()

    def pre_hook(self, name: str):
        def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
            for pname, param in module._parameters.items():  # FSDP2 swaps in gathered copies for the forward
                if param is not None and id(param) not in self.params:  # from here on the copy is the parameter
                    self.params[id(param)] = f"{name}.{pname}" if name else pname
                    self._new_value(param, None, False, self.params[id(param)])
            flat, _ = tree_flatten((args, kwargs))
            inputs = [self.value_of(t) for t in flat if isinstance(t, torch.Tensor)]
            self.stack.append(name)
            self.open_calls.append(ModuleCall(name, inputs, [], len(self.nodes), -1))

        return hook

    def post_hook(self, name: str):
        def hook(module: nn.Module, args: tuple, kwargs: dict, output: object) -> None:
            flat, _ = tree_flatten(output)
            call = self.open_calls.pop()
            call.outputs = [self.value_of(t) for t in flat if isinstance(t, torch.Tensor)]
            call.last_node = len(self.nodes)
            self.calls.append(call)
            self.stack.pop()

        return hook


def flatten_output(output: object) -> Iterator[tuple[str, torch.Tensor]]:
    """``(key path, tensor)`` for every tensor the model returned (mappings, dataclasses, tuples)."""
    if isinstance(output, torch.Tensor):
        yield "", output
    elif isinstance(output, Mapping):
        for key, item in output.items():
            for sub, t in flatten_output(item):
                yield f"{key}.{sub}".rstrip("."), t
    elif isinstance(output, (tuple, list)):
        for i, item in enumerate(output):
            for sub, t in flatten_output(item):
                yield f"{i}.{sub}".rstrip("."), t


def finite_output_keys(output: object) -> list[str]:
    """The key paths of the floating-point tensors of a model's output that hold only finite numbers.

    >>> finite_output_keys({"logits": torch.zeros(2), "loss": torch.tensor(float("nan")), "ids": torch.ones(1).long()})
    ['logits']
    """
    return [key for key, t in flatten_output(output) if t.is_floating_point() and bool(torch.isfinite(t).all())]


def run_model(model: nn.Module, example: object, written: list[str] | None = None) -> object:
    """Call ``model`` on an example input: a tensor, a tuple of positional arguments or a dict of keywords.

    An FSDP2-sharded model is sharded again afterwards (:func:`reshard_`). ``written`` collects the names of
    the parameters the forward pass wrote in place (HF RWKV rescales its output weights for inference), found
    by their version counters: :func:`~detinit.initialize` keeps its own values of those across its later runs
    (:func:`parameters_kept`)."""
    versions = [(name, p, p._version) for name, p in model.named_parameters()] if written is not None else []
    try:
        if isinstance(example, Mapping):
            return model(**example)
        if isinstance(example, tuple):
            return model(*example)
        return model(example)
    finally:
        reshard_(model)
        if written is not None:
            written.extend(name for name, p, version in versions if p._version != version)


@contextmanager
def parameters_kept(model: nn.Module, names: Sequence[str]) -> Iterator[None]:
    """Restore the parameters ``names`` of ``model`` on exit, whatever the block's forward passes wrote into
    them (a copy of those alone is kept: they are the few a forward pass is known to write)."""
    kept = {name: model.get_parameter(name).detach().clone() for name in names}
    try:
        yield
    finally:
        with torch.no_grad():
            for name, value in kept.items():
                model.get_parameter(name).copy_(value)


def reshard_(model: nn.Module) -> None:
    """Put back the shards of every FSDP2 unit of ``model`` as its parameters.

    After a forward pass FSDP2 keeps the root unit's gathered parameters (a backward pass would need them
    next): an initialisation would then write those copies, which the next reshard drops."""
    fsdp = sys.modules.get("torch.distributed.fsdp")  # not imported: no module can be sharded
    if fsdp is None:
        return
    for module in model.modules():
        if isinstance(module, fsdp.FSDPModule):
            module.reshard()


@torch.no_grad()
def run_with_hooks(model: nn.Module, example: object, handles: Sequence[torch.utils.hooks.RemovableHandle]) -> None:
    """Run ``model`` once on ``example`` (eval mode, no gradients), then remove ``handles``, the hooks registered to
    watch that pass (whether it ran or raised)."""
    try:
        with eval_mode(model):
            run_model(model, example)
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Every module of ``model`` in eval mode while the block runs; each module's own flag restored after.

    >>> net = nn.Sequential(nn.Dropout(), nn.Dropout().eval())
    >>> with eval_mode(net):
    ...     [m.training for m in net.modules()]
    [False, False, False]
    >>> [m.training for m in net.modules()]
    [True, True, False]
    """
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes.items():  # parents first: each child's own flag is set last
            m.train(training)


def record_forward(model: nn.Module, example: object) -> Graph:
    """Run ``model`` once on ``example`` in eval mode and return the recorded :class:`Graph`.

    The model's training flags are restored afterwards; nothing else is
    changed (eval mode leaves BatchNorm's running statistics alone). Gradients
    are enabled so that :mod:`detinit.init.roles.traced` can ask autograd
    which output rows of a fused projection feed the query, key and value.
    """
    params = {id(p): name for name, p in model.named_parameters(remove_duplicate=False)}
    written: list[str] = []
    recorder = _Recorder(params)
    for t in tree_flatten(example)[0]:
        if isinstance(t, torch.Tensor):
            recorder.value_of(t, tainted=True)
    names = {id(m): name for name, m in model.named_modules(remove_duplicate=False)}
    handles = []
    for module in model.modules():
        name = names[id(module)]
        handles.append(module.register_forward_pre_hook(recorder.pre_hook(name), with_kwargs=True))
        handles.append(module.register_forward_hook(recorder.post_hook(name), with_kwargs=True))
    try:
        with eval_mode(model), torch.enable_grad(), recorder:
            output = run_model(model, example, written)
    except Exception as err:
        shapes = [tuple(t.shape) for t in tree_flatten(example)[0] if isinstance(t, torch.Tensor)]
        given = f" of shape {shapes[0]}" if len(shapes) == 1 else f" (tensors of shapes {shapes})" if shapes else ""
        raise TraceError(
            f"could not run {type(model).__name__} on the example input{given} to find its layers' roles "
            f"({type(err).__name__}: {err}); pass example_inputs= that the model's forward accepts, or "
            "trace=False and give roles= yourself"
        ) from err
    finally:
        for h in handles:
            h.remove()
    keyed = list(flatten_output(output))
    outputs = [recorder.value_of(t) for _, t in keyed]
    graph = Graph(recorder.values, recorder.nodes, recorder.calls, recorder.tensors, outputs, [k for k, _ in keyed])
    graph.written = written
    graph.finite_outputs = finite_output_keys(output)
    return graph
