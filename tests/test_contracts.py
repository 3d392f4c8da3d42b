"""Issue 32, by class: every public boundary checks what it is given before any work, and a bad value is a
ValueError (or TypeError) that names the argument. The cases are generated from the registries and the
annotations, so a new model, model argument, scheme option or fill is covered without a new test."""

from __future__ import annotations

import inspect
import math
import re

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import detinit.init as init_api
from detinit import initialize
from detinit.contract import annotation_rule
from detinit.init.schemes import get_scheme, list_schemes
from detinit.init.tensor.layout import has_internal_overlap
from detinit.models import create_model, list_models
from detinit.models.registry import model_entry

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# values of the wrong type or range, by annotation
NOT_INT = st.one_of(st.integers(max_value=0), st.floats(allow_nan=True), st.booleans(), st.text(max_size=3))
NOT_NUMBER = st.one_of(st.just(math.nan), st.just(math.inf), st.just(-math.inf), st.booleans(), st.text(max_size=3))
NOT_BOOL = st.one_of(st.integers(), st.text(max_size=3), st.floats(allow_nan=False))
NOT_STR = st.one_of(  # a choice that is none of the allowed ones, or not a str at all
    st.builds(lambda t: f"no such {t}", st.text(max_size=3)), st.integers(), st.floats(allow_nan=False), st.booleans()
)
BAD = {"int": NOT_INT, "float": NOT_NUMBER, "bool": NOT_BOOL, "str": NOT_STR, "list[int]": st.just([0])}
NOT_ROW = st.one_of(st.integers(max_value=-1), st.floats(allow_nan=True), st.booleans(), st.text(max_size=3))
BAD_BY_NAME = {"start": NOT_ROW}  # a block's first row may be 0


def _kind(annotation: object) -> str | None:
    if not isinstance(annotation, str):
        return None
    kinds = [k.strip() for k in annotation.split("|") if k.strip() != "None"]
    return kinds[0] if kinds and kinds[0] in BAD and annotation_rule(annotation) is not None else None


def _model_arguments() -> list[tuple[str, str, str]]:
    """(model, argument, kind) for every annotated argument of every registered model's builder and class."""
    cases = []
    for name in list_models():
        entry = model_entry(name)
        with torch.device("meta"):
            cls = type(entry.builder())
        seen = set()
        for fn in (entry.builder, cls.__init__):
            for arg, param in inspect.signature(fn).parameters.items():
                kind = _kind(param.annotation)
                if kind is not None and arg not in seen and arg != "self":
                    seen.add(arg)
                    cases.append((name, arg, kind))
    return cases


MODEL_ARGUMENTS = _model_arguments()


def test_every_model_has_checked_arguments():
    assert {name for name, _, _ in MODEL_ARGUMENTS} == set(list_models())
    assert len(MODEL_ARGUMENTS) > 3 * len(list_models())


@pytest.mark.parametrize("model, argument, kind", MODEL_ARGUMENTS, ids=lambda v: str(v))
def test_a_model_argument_of_the_wrong_type_or_range_is_named(model, argument, kind):
    @FUZZ
    @given(value=BAD[kind])
    def check(value):
        with pytest.raises(ValueError, match=re.escape(argument)):
            create_model(model, **{argument: value})  # refused before anything is built

    check()


@pytest.mark.parametrize("model", list_models())
def test_an_unknown_model_argument_lists_the_known_ones(model):
    with pytest.raises(ValueError, match="unexpected keyword argument 'no_such_option'.*it takes"):
        create_model(model, no_such_option=1)


def _scheme_options() -> list[tuple[str, str, str]]:
    cases = []
    for name in list_schemes():
        scheme = get_scheme(name)
        for option, param in inspect.signature(type(scheme).__init__).parameters.items():
            kind = _kind(param.annotation)
            if option not in ("self", "kind", "name", "hadamard") and kind is not None:
                cases.append((name, option, kind))
    return cases


@pytest.mark.parametrize("scheme, option, kind", _scheme_options(), ids=lambda v: str(v))
def test_a_scheme_option_of_the_wrong_type_or_range_is_named(scheme, option, kind):
    @FUZZ
    @given(value=BAD[kind])
    def check(value):
        with pytest.raises(ValueError, match=rf"{option}"):
            get_scheme(scheme, **{option: value})

    check()


@pytest.mark.parametrize("scheme", list_schemes())
def test_an_unknown_scheme_option_is_refused(scheme):
    with pytest.raises(ValueError, match=f"scheme {scheme!r} does not accept options"):
        get_scheme(scheme, no_such_option=1)


@pytest.mark.parametrize(
    "scheme, options, message",
    [
        ("orthogonal", {"mode": "fan_out"}, "mode='fan_out' does nothing under orthogonal"),
        ("orthogonal", {"distribution": "uniform"}, "distribution='uniform' does nothing under orthogonal"),
        ("xavier", {"mode": "fan_in"}, "mode='fan_in' does nothing under xavier"),
        ("rezero", {"mode": "fan_out"}, "mode='fan_out' does nothing under rezero"),
        ("partial_identity", {"norm": "paper"}, "norm='paper' does nothing under partial_identity"),
        ("zero", {"variant": "paper", "end_reach": 2.0}, "end_reach=2.0 does nothing without a gain"),
    ],
)
def test_an_option_the_scheme_would_ignore_is_refused(scheme, options, message):
    with pytest.raises(ValueError, match=message):
        get_scheme(scheme, **options)


TENSOR_MODULES = ("constnet", "embedding", "hadamard", "idinit", "random", "zero", "zero_rows")
TENSOR_MODULES = tuple(f"detinit.init.tensor.{name}" for name in TENSOR_MODULES)  # public fills outside init's __all__


def _fills() -> dict[str, object]:
    """Every in-place fill of ``detinit.init`` and of the tensor-level modules' ``__all__``, by name."""
    import importlib

    fills = {name: getattr(init_api, name) for name in init_api.__all__}
    for module in map(importlib.import_module, TENSOR_MODULES):
        fills.update({name: getattr(module, name) for name in module.__all__})
    return {name: fn for name, fn in sorted(fills.items()) if name.endswith("_") and callable(fn)}


FILL_FUNCTIONS = _fills()
FILLS = list(FILL_FUNCTIONS)


def _fill_arguments() -> list[tuple[str, str, str]]:
    cases = []
    for name in FILLS:
        for arg, param in list(inspect.signature(FILL_FUNCTIONS[name]).parameters.items())[1:]:
            kind = _kind(param.annotation)
            if kind is not None:
                cases.append((name, arg, kind))
    return cases


def _call_fill(name: str, tensor: torch.Tensor, **kwargs: object) -> torch.Tensor:
    fn = FILL_FUNCTIONS[name]
    parameters = inspect.signature(fn).parameters
    if "generator" in parameters:
        kwargs.setdefault("generator", torch.Generator().manual_seed(0))
    if "start" in parameters:  # a block of rows: the whole tensor's
        kwargs = {"start": 0, "total": len(tensor), **kwargs}
    if "fan_in" in parameters:  # ConstAvg's noise
        kwargs = {"c": 0.5, "fan_in": tensor.shape[1], "gain": 1.0, **kwargs}
    if "rows" in parameters:  # entries of H
        kwargs = {"rows": torch.arange(len(tensor)), "columns": torch.arange(tensor.shape[1]), **kwargs}
    return fn(tensor, **kwargs)


@pytest.mark.parametrize("fill, argument, kind", _fill_arguments(), ids=lambda v: str(v))
def test_a_fill_argument_of_the_wrong_type_or_range_is_named(fill, argument, kind):
    @FUZZ
    @given(value=BAD_BY_NAME.get(argument, BAD[kind]))
    def check(value):
        with pytest.raises((ValueError, TypeError), match=rf"{argument}"):
            _call_fill(fill, torch.empty(8, 4), **{argument: value})

    check()


@pytest.mark.parametrize("fill", FILLS)
def test_a_fill_refuses_overlapping_memory_and_complex_tensors(fill):
    overlapping = torch.zeros(64).as_strided((8, 4), (1, 1))  # rows share elements: no expand() involved
    with pytest.raises(ValueError, match=rf"{fill}: tensor of shape \(8, 4\) has strides \(1, 1\).*share memory"):
        _call_fill(fill, overlapping)
    with pytest.raises(TypeError, match=rf"{fill}: .*complex64"):
        _call_fill(fill, torch.empty(8, 4, dtype=torch.complex64))


ELEMENTWISE_FILLS = {"normal_", "orthogonal_", "const_avg_noise_", "fill_sylvester_", "fill_sylvester_entries_"}
# ^ torch.nn.init's semantics: a draw (or entries of H) for any shape, an empty tensor a no-op


@pytest.mark.parametrize("fill", sorted(set(FILLS) - ELEMENTWISE_FILLS))
@pytest.mark.parametrize("shape", [(8, 0), (0, 4)])
def test_a_layout_fill_refuses_an_empty_dimension(fill, shape):
    """A weight with a zero-sized dimension has no matrix to fill: refused naming the fill and the shape. A row
    form's block of no rows inside a 4-row weight is an empty shard (FSDP gives one to a rank past a small weight's
    rows): nothing to write, no error."""
    rows = "start" in inspect.signature(FILL_FUNCTIONS[fill]).parameters
    if rows and shape[0] == 0:
        assert _call_fill(fill, torch.empty(shape), total=4).shape == shape
        return
    with pytest.raises(ValueError, match=rf"{fill}: .*{re.escape(str(shape))}"):
        _call_fill(fill, torch.empty(shape))


@pytest.mark.parametrize("fill", [f for f in FILLS if "transposed" in inspect.signature(FILL_FUNCTIONS[f]).parameters])
@pytest.mark.parametrize("geometry", [{"transposed": True}, {"groups": 2}])
def test_a_conv_geometry_on_a_linear_weight_is_refused(fill, geometry):
    """``groups`` and ``transposed`` describe a conv kernel; on a 2-D (Linear) weight they are refused. A row
    form's 2-D block may be transposed: the rows of an (in, out) weight such as Hugging Face's Conv1D."""
    rows = "start" in inspect.signature(FILL_FUNCTIONS[fill]).parameters
    if rows and "transposed" in geometry:
        whole = _call_fill(fill.removesuffix("rows_").rstrip("_") + "_", torch.empty(8, 4, 1), **geometry)
        assert torch.equal(_call_fill(fill, torch.empty(8, 4), **geometry), whole[:, :, 0])  # a 1-tap ConvTranspose
        return
    with pytest.raises(ValueError, match=rf"{fill}: a 2-D \(Linear\) weight of shape \(8, 4\) takes groups=1"):
        _call_fill(fill, torch.empty(8, 4), **geometry)


@FUZZ
@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    strides=st.lists(st.integers(0, 6), min_size=3, max_size=3),
)
def test_internal_overlap_is_found_exactly(shape, strides):
    strides = strides[: len(shape)]
    view = torch.zeros(200).as_strided(shape, strides)
    offsets = torch.zeros((), dtype=torch.int64)
    for size, stride in zip(shape, strides):
        offsets = (offsets.unsqueeze(-1) + torch.arange(size) * stride).flatten()
    assert has_internal_overlap(view) == (offsets.unique().numel() < view.numel())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"seed": 2**32}, r"seed=4294967296 is not supported; seed must be an int in \[0, 2\*\*32\)"),
        ({"seed": -1}, "seed=-1 is not supported"),
        ({"seed": 1.0}, "seed=1.0 is not supported"),
        ({"strict": "yes"}, "strict must be True or False, got 'yes'"),
        ({"roles": ["fc"]}, r"roles=\['fc'\] is not supported; roles must be a mapping"),
        ({"roles": {"": "classifier"}}, "'' is the model itself"),
        ({"roles": {"1": "classifier"}}, "'1' is a ReLU, which holds no parameters of its own"),
        ({"generator": 0}, "generator must be a torch.Generator or None, got int"),
    ],
)
def test_bad_initialize_arguments_are_named(kwargs, message):
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=message):
        initialize(model, "kaiming", **kwargs)


def test_a_seed_beyond_32_bits_would_repeat_seed_0():
    """Why the seed contract stops at 2**32: torch's CPU generator keeps only the low 32 bits."""
    draw = [torch.randn(4, generator=torch.Generator().manual_seed(s)) for s in (0, 2**32)]
    assert torch.equal(*draw)


# ------------------------------------------------------------------ every public function of every package
# (scalar arguments, models and tensors: a model given as its name, a tensor as a list)
PACKAGES = ("detinit", "detinit.init", "detinit.nn", "detinit.diagnostics", "detinit.symmetry", "detinit.data")
PACKAGES += ("detinit.experiments", "detinit.models", "detinit.train", "detinit.atomic", "detinit.argtypes")
PACKAGES += TENSOR_MODULES
# public callables whose scalar arguments are checked in their own body (tests/test_bad_inputs.py), or that
# are records the library builds (a measurement row, a dataset, a report), not boundaries a caller crosses
CHECKED_IN_BODY = {"initialize", "parse_study", "TrainConfig"}
OUTPUT_RECORDS = {"DeadChannelRow", "Promise", "FeatureRow", "RankRow", "SignalRow", "StepGradients"}
OUTPUT_RECORDS |= {"WeightSymmetryRow", "SampleBatch", "RunResult"}  # what the library returns, not what it takes
BUILT_BY_HAND = {"Mechanism", "ArrayDataset", "FolderDataset", "InitReport", "Study", "TokenDataset", "RunSpec"}
RECORDS = OUTPUT_RECORDS | BUILT_BY_HAND  # dataclasses: their fields are checked by check_fields, not by a call
SCALAR_BAD = {  # wrong types, refused whatever the range
    "int": st.one_of(st.booleans(), st.text(max_size=3), st.just(2.5)),
    "float": st.one_of(st.just(math.nan), st.just(math.inf), st.booleans(), st.text(max_size=3)),
    "bool": st.one_of(st.integers(), st.text(max_size=3)),
    "nn.Module": st.one_of(st.text(max_size=3), st.just([nn.Linear(2, 2)]), st.just(torch.zeros(2))),
    "torch.Tensor": st.one_of(st.lists(st.floats(allow_nan=False), max_size=3), st.text(max_size=3)),
    "Collection[str]": st.one_of(st.text(min_size=1, max_size=3), st.lists(st.integers(), min_size=1, max_size=2)),
    "Callable": st.one_of(st.text(max_size=3), st.integers()),
    "list[int]": st.one_of(st.just("3"), st.just(3), st.just(["a"])),
    "list[str]": st.one_of(st.just("abc"), st.just(3), st.just([1])),  # one str is not a list of names
    "str": st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.lists(st.text(), max_size=2)),
    "Path": st.one_of(st.just(""), st.integers(), st.booleans(), st.lists(st.text(), max_size=2)),
    "Mapping": st.one_of(st.lists(st.tuples(st.text(max_size=2), st.integers()), max_size=2), st.text(max_size=3)),
    "class": st.one_of(st.text(max_size=3), st.integers(), st.just([])),  # a name or a number for an object
    "list[class]": st.one_of(st.text(max_size=3), st.integers(), st.just([1]), st.just(("a",))),  # [] is valid
}


def _argument_kind(annotation: str, namespace: dict) -> str | None:
    """The key of SCALAR_BAD an annotation's rule refuses values of, ``None`` where no rule is known."""
    kinds = [k.strip() for k in annotation.split("|") if k.strip() != "None"]
    if set(kinds) == {"str", "Path"} or kinds == ["Path"]:
        return "Path"
    if kinds and all(k.startswith("type[") for k in kinds):  # block classes
        return "class" if annotation_rule(annotation, namespace=namespace) is not None else None
    if len(kinds) != 1:
        return None
    kind = "Callable" if kinds[0].startswith("Callable") else kinds[0]
    kind = "list[int]" if kind == "tuple[int, ...]" else kind  # sizes, given either way
    if kind in SCALAR_BAD:
        return kind
    if kind.startswith(("dict[", "Mapping[")):
        return "Mapping"
    if kind.startswith("list[") and annotation_rule(kind, namespace=namespace) is not None:
        return "list[class]"
    return "class" if annotation_rule(kinds[0], namespace=namespace) is not None else None


NOT_BOUNDARIES = {
    "forward",
    "forward_features",
    "extra_repr",
}  # a module's forward is torch's hot path; its inputs meet torch's checks


def _public_dataclasses() -> dict[str, type]:
    import dataclasses
    import importlib

    found = {}
    for package in PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) and dataclasses.is_dataclass(obj):
                found[name] = obj
    return found


def test_every_public_dataclass_a_caller_may_build_checks_its_fields():
    """A dataclass a user builds by hand (a report, a study, a run, a mechanism, a dataset of their own tensors)
    checks its fields against their annotations (``contract.check_fields``) in ``__post_init__``; a new public
    dataclass is either that or a record the library only returns (``OUTPUT_RECORDS``), or this test fails.
    ``TrainConfig`` is checked by its ``validate``, which ``from_dict`` and ``train`` call."""
    classes = _public_dataclasses()
    assert BUILT_BY_HAND | OUTPUT_RECORDS | {"TrainConfig"} == set(classes), set(classes) ^ (
        BUILT_BY_HAND | OUTPUT_RECORDS
    )
    for name in sorted(BUILT_BY_HAND):
        post = getattr(classes[name], "__post_init__", None)
        assert post is not None and "check_fields(self" in inspect.getsource(post), name


def _public_callables():
    """(qualified name, callable) of every public function of PACKAGES, every public class's constructor and
    every public method a class defines itself (records built by the library: their methods only)."""
    import importlib

    for package in PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj):
                if name not in CHECKED_IN_BODY | RECORDS:
                    yield f"{package}:{name}", obj.__init__
                for method, member in vars(obj).items():
                    if inspect.isfunction(member) and not method.startswith("_") and method not in NOT_BOUNDARIES:
                        yield f"{package}:{name}.{method}", member
            elif callable(obj) and name not in CHECKED_IN_BODY:
                yield f"{package}:{name}", obj


def _public_scalar_arguments() -> list[tuple[str, str, str]]:
    """(qualified name, argument, kind) of every int/float/bool/str/path/mapping/nn.Module/torch.Tensor/class
    argument of every public callable (an argument of one annotation, or a path: a union such as
    ``torch.Tensor | np.ndarray`` is its body's)."""
    cases = []
    for qualified, fn in _public_callables():
        namespace = getattr(inspect.unwrap(fn), "__globals__", {})
        for arg, param in inspect.signature(fn).parameters.items():
            annotation = param.annotation if isinstance(param.annotation, str) else ""
            kind = _argument_kind(annotation, namespace) if annotation else None
            if kind is not None and arg != "self" and param.kind is not param.VAR_KEYWORD:
                cases.append((qualified, arg, kind))
    return sorted(set(cases))


PUBLIC_SCALARS = _public_scalar_arguments()


def _callable(qualified: str):
    return dict(_public_callables())[qualified]


def test_the_sweep_of_public_functions_finds_them():
    names = {q for q, _, _ in PUBLIC_SCALARS}
    assert len(PUBLIC_SCALARS) > 80 and {"detinit.diagnostics:numerical_rank", "detinit.nn:ChannelPad"} <= names
    assert {"detinit.train:RunDir.damage", "detinit.symmetry:Mechanism.attach"} <= names  # methods too


@pytest.mark.parametrize("qualified", sorted({q for q, _, _ in PUBLIC_SCALARS}))
def test_every_public_function_with_scalar_arguments_carries_a_contract(qualified):
    assert hasattr(_callable(qualified), "check_arguments"), f"{qualified}: decorate it with checked_arguments"


@pytest.mark.parametrize("qualified, argument, kind", PUBLIC_SCALARS, ids=lambda v: str(v))
def test_a_public_scalar_argument_of_the_wrong_type_is_named_before_any_work(qualified, argument, kind):
    check = _callable(qualified).check_arguments  # the contract alone: no tensor, model or file is needed

    @FUZZ
    @given(value=SCALAR_BAD[kind])
    def refused(value):
        with pytest.raises(ValueError, match=rf"{re.escape(argument)}=.* is not supported; {argument} must be"):
            check(**{argument: value})

    refused()


@pytest.mark.parametrize("qualified", sorted({q for q, _, _ in PUBLIC_SCALARS}))
def test_every_default_passes_its_own_contract(qualified):
    """A contract narrower than the function (a dimension index held to >= 1) would refuse its own defaults."""
    fn = _callable(qualified)
    for name, param in inspect.signature(fn).parameters.items():
        if param.default is not param.empty and param.default is not None and name != "self":
            fn.check_arguments(**{name: param.default})
