"""Roles found from the computation (detinit.init.roles.traced) on models that declare none."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from detinit import initialize
from detinit.init.roles.trace import Graph, Node, TraceError, Value
from detinit.init.roles.traced import trace_roles
from detinit.train import param_groups

from .timm_patterns import ConvNet, VisionTransformer

RANDOM_AND_DETERMINISTIC = ("zero", "partial_identity", "kaiming", "xavier", "orthogonal")


def _adamw_ratio(model: nn.Module, loss_fn, steps: int = 30, lr: float = 3e-3, groups: list | None = None) -> float:
    """Final / first loss of ``steps`` AdamW steps on one batch (over ``groups``, default every parameter)."""
    model.train()
    opt = torch.optim.AdamW(groups if groups is not None else model.parameters(), lr=lr)
    first = last = None
    for _ in range(steps):
        loss = loss_fn(model)
        first = loss.item() if first is None else first
        last = loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return last / first


def _block_changes(blocks: list[nn.Module], model: nn.Module, *inputs) -> list[float]:
    """max |output - input| of each block on one forward pass."""
    found: list[float] = []
    hooks = [b.register_forward_hook(lambda m, i, o: found.append((o - i[0]).abs().max().item())) for b in blocks]
    model.eval()
    with torch.no_grad():
        model(*inputs)
    for h in hooks:
        h.remove()
    return found


class Conv1D(nn.Module):
    """Hugging Face's GPT-2 Conv1D: a Linear whose weight is stored (in, out)."""

    def __init__(self, nf: int, nx: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(nx, nf))
        self.bias = nn.Parameter(torch.randn(nf))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(*x.shape[:-1], -1)


@pytest.mark.parametrize("scheme", ["zero", "partial_identity", "constnet", "kaiming", "orthogonal"])
@pytest.mark.parametrize("out_features,in_features", [(24, 8), (8, 24), (200, 70), (130, 130)])
def test_a_weight_stored_in_out_gets_the_transpose_of_the_linear_rule(scheme, out_features, in_features):
    """Deterministic rules write the stored (in, out) layout straight (as rows of the transpose), random ones
    through an (out, in) temporary: either way the transpose of the Linear's weight, with the same draws.
    Expanding (Hadamard, 200 outputs: three whole tiles of 64 and a ragged one), contracting and square; a
    classifier follows, so that the layer is not the output layer (which starts at 0)."""
    conv1d = nn.Sequential(Conv1D(out_features, in_features), nn.Linear(out_features, 3))
    linear = nn.Sequential(nn.Linear(in_features, out_features), nn.Linear(out_features, 3))
    x = torch.ones(2, in_features)
    report = initialize(conv1d, scheme, example_inputs=x, seed=3)
    initialize(linear, scheme, example_inputs=x, seed=3)
    assert report["0.weight"].role == "default"
    assert torch.equal(conv1d[0].weight, linear[0].weight.t())
    assert torch.equal(conv1d[0].bias, torch.zeros(out_features))
    assert torch.equal(conv1d[1].weight, linear[1].weight)


def test_timm_vit_pattern_roles_and_promises():
    model = VisionTransformer()
    report = initialize(model, "zero", strict=True)  # input size from pretrained_cfg
    assert report["blocks.0.attn.qkv.weight"].role == "attn_qkv:32,32,32"
    assert report["blocks.0.attn.proj.weight"].role == "attn_out"
    assert report["blocks.0.ls1.gamma"].rule == "zeros" and report["blocks.0.ls1.gamma"].role == "layer_scale"
    # the zero is on the layer scale, so the layer before it is not a second zero (a saddle)
    assert torch.equal(model.blocks[0].attn.proj.weight, torch.eye(32))
    assert report["pos_embed"].rule == "zeros" and report["cls_token"].rule == "hadamard"
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert model(x).abs().max() == 0
    assert _block_changes(list(model.blocks), model, x) == [0.0, 0.0]
    y = torch.tensor([0, 1, 2, 3])
    assert _adamw_ratio(model, lambda m: nn.functional.cross_entropy(m(x), y)) <= 0.8


def test_timm_convnet_pattern_puts_the_zero_on_the_last_batchnorm():
    plain = initialize(ConvNet(), "zero", strict=True, open_blocks="none", branch_mixing=False)  # the paper's rules
    for name in ("layers.0.bn2", "layers.1.bn2", "layers.2.bn3", "layers.3.bn3"):
        assert plain[f"{name}.weight"].role == "branch_last_norm" and plain[f"{name}.weight"].rule == "zeros"
    assert plain["layers.0.conv2.weight"].rule == "identity"  # the layer before keeps its own matrix
    model = ConvNet()
    report = initialize(model, "zero", strict=True)  # the default: the entry blocks (first, 8 -> 16) start on
    assert report.open_blocks == ["layers.0", "layers.1"]
    assert [report[f"layers.{i}.bn2.weight"].rule for i in (0, 1)] == ["ones", "ones"]
    assert [report[f"layers.{i}.bn3.weight"].rule for i in (2, 3)] == ["zeros", "zeros"]
    assert report["layers.0.conv2.weight"].rule == "hadamard_mixing"  # an entry block's square conv mixes
    assert report["layers.2.conv_dw.weight"].rule == "identity"  # a depthwise conv (groups > 1) does not
    assert report["layers.1.downsample.0.weight"].role == "default"  # the shortcut, not the branch
    assert report["layers.2.conv_dw.weight"].role == "branch"
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    changes = _block_changes([model.layers[0], model.layers[2], model.layers[3]], model, x)
    assert changes[1:] == [0.0, 0.0]  # blocks without an activation after the add are the identity
    assert model(x).abs().max() == 0


def test_timm_convnet_pattern_trains_and_its_zero_norm_scales_learn_faster_with_their_factor():
    """30 AdamW steps (lr 3e-3) on one batch: <= 0.8 x the first loss (0.71 measured); the branch-end BatchNorm
    scales start at 0 and grow by about lr per Adam step, and 10 x lr on them (the trainer's
    branch_norm_lr_factor, through param_groups) more than halves the ratio (0.16 measured)."""
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 3])

    def loss(m: nn.Module) -> torch.Tensor:
        return nn.functional.cross_entropy(m(x), y)

    model = ConvNet()
    initialize(model, "zero", strict=True)
    plain = _adamw_ratio(model, loss)
    assert plain <= 0.8
    model = ConvNet()
    report = initialize(model, "zero", strict=True)
    groups = param_groups(model, 3e-3, report=report, branch_norm_lr_factor=10.0)
    assert _adamw_ratio(model, loss, groups=groups) < plain / 2


@pytest.mark.parametrize("scheme", RANDOM_AND_DETERMINISTIC)
@pytest.mark.parametrize("build", [VisionTransformer, ConvNet])
def test_every_scheme_leaves_no_unknown_parameter(build, scheme):
    report = initialize(build(), scheme, strict=True)
    assert not report.unknown


def test_fixup_counts_traced_branches():
    report = initialize(ConvNet(), "fixup", strict=True)
    assert report["layers.0.bn2.weight"].rule == "zeros"  # the branch's zero goes on its last norm
    assert report["layers.0.conv1.weight"].rule == "fixup_scaled"
    assert "= 4^(-1/" in report["layers.0.conv1.weight"].reason  # L = 4 traced residual branches


def test_fixup_with_given_roles_keeps_the_traced_blocks():
    model = VisionTransformer()
    report = initialize(model, "fixup", roles={"blocks.0.mlp.fc1": "branch"}, strict=True)
    assert report["blocks.0.mlp.fc1.weight"].rule == "fixup_scaled"


class TwoBlocks(nn.Module):
    """Two residual blocks and a head; its forward is opaque to detinit unless traced."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8)) for _ in range(2))
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = x + block(x)
        return self.head(x)


def test_fixup_with_roles_given_on_an_untraced_model_counts_blocks_by_parent_module():
    given = {f"blocks.{i}.{j}": role for i in range(2) for j, role in ((0, "branch"), (2, "branch_last"))}
    given["head"] = "classifier"
    model = TwoBlocks()
    report = initialize(model, "fixup", roles=given, trace=False, strict=True, seed=1)
    assert report["blocks.0.0.weight"].rule == "fixup_scaled"
    assert "= 2^(-1/2)" in report["blocks.1.0.weight"].reason  # L = 2 blocks of m = 2 branch layers
    traced = TwoBlocks()
    initialize(traced, "fixup", example_inputs=torch.randn(4, 8), strict=True, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), traced.parameters()))  # same as traced
    net = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2))
    report = initialize(net, "fixup", roles={"0": "branch", "1": "branch_last"}, trace=False)  # block "": m = 2
    assert report["0.weight"].rule == "fixup_scaled" and report["1.weight"].rule == "zeros"
    with pytest.raises(ValueError, match="got m=1, L=.. A role given in roles= belongs to the block"):
        initialize(TwoBlocks(), "fixup", roles={"blocks.0.0": "branch", "blocks.1.2": "branch_last"}, trace=False)


class TiedLM(nn.Module):
    def __init__(self, vocab: int = 16, dim: int = 8, final_norm: bool = True) -> None:
        super().__init__()
        self.embed, self.fc = nn.Embedding(vocab, dim), nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim) if final_norm else nn.Identity()
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)
        return self.head(self.norm(x + self.fc(x)))


def test_a_tied_output_layer_puts_its_zero_on_the_norm_before_it():
    model, ids = TiedLM(), torch.arange(8).view(2, 4)
    report = initialize(model, "zero", example_inputs=ids, strict=True)
    assert report["norm.weight"].role == "classifier_norm" and report["norm.weight"].rule == "zeros"
    assert report["embed.weight"].rule == "hadamard" and "tied" in report["embed.weight"].reason
    assert model(ids).abs().max() == 0 and model.embed.weight.abs().sum() > 0


def test_a_tied_output_layer_without_a_norm_is_refused():
    with pytest.raises(ValueError, match="head.weight .* is tied to embed.weight .* would zero every token"):
        initialize(TiedLM(final_norm=False), "zero", example_inputs=torch.arange(8).view(2, 4))
    report = initialize(TiedLM(final_norm=False), "kaiming", example_inputs=torch.arange(8).view(2, 4))
    assert report["embed.weight"].rule == "normal"  # a random output layer needs no zero


def test_tied_weights_with_different_roles_are_refused():
    net = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4))
    net[2].weight = net[0].weight
    with pytest.raises(ValueError, match="2.weight is tied to 0.weight: .* different roles"):
        initialize(net, "zero", roles={"2": "classifier"})


def test_options_that_would_do_nothing_are_refused():
    mlp = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="attention='kv_zero' does nothing on Sequential: no attention layer"):
        initialize(mlp, "zero", attention="kv_zero")
    report = initialize(VisionTransformer(), "zero", attention="kv_zero", strict=True)
    assert report["blocks.0.attn.qkv.weight"].rule == "identity+zeros"


class RMSNorm(nn.Module):
    """A norm of a class detinit does not know, with Gemma's (1 + w) scale as an option."""

    def __init__(self, dim: int, offset: bool = False) -> None:
        super().__init__()
        self.offset = offset
        self.weight = nn.Parameter(torch.randn(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)
        return x * (1.0 + self.weight) if self.offset else self.weight * x


@pytest.mark.parametrize("offset", [False, True])
def test_norms_of_unknown_classes_get_unit_scale_and_carry_the_branch_zero(offset):
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc, self.post = nn.Linear(8, 8), RMSNorm(8, offset)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.post(self.fc(x))

    model = nn.Sequential(nn.Linear(4, 8), RMSNorm(8, offset), Block(), nn.Linear(8, 3))
    report = initialize(model, "zero", example_inputs=torch.randn(2, 4), strict=True)
    unit, zero = (0.0, -1.0) if offset else (1.0, 0.0)
    assert torch.all(model[1].weight == unit) and report["1.weight"].role == "default"
    assert report["2.post.weight"].role == "branch_last_norm" and torch.all(model[2].post.weight == zero)


def test_declared_and_given_roles_win_over_traced_ones():
    model = VisionTransformer()
    report = initialize(model, "zero", roles={"blocks.0.mlp.fc1": "default"})
    assert report["blocks.0.mlp.fc1.weight"].role == "default"
    assert "roles= argument" in report["blocks.0.mlp.fc1.weight"].reason
    assert report["head.weight"].role == "classifier" and "get_classifier" in report["head.weight"].reason


def test_a_model_that_cannot_run_on_the_example_names_the_fix():
    with pytest.raises(TraceError, match="could not run Linear on the example input.*pass example_inputs="):
        initialize(nn.Linear(4, 4), "zero", example_inputs=torch.ones(2, 5))
    with pytest.raises(ValueError, match=r"trace=True\): no example input for Linear"):
        initialize(nn.Linear(4, 4), "zero", trace=True)
    with pytest.raises(ValueError, match="trace='yes' is not supported; trace must be None"):
        initialize(nn.Linear(4, 4), "zero", trace="yes")


def test_tracing_changes_nothing_in_the_model():
    model = ConvNet()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trace_roles(model, torch.randn(2, 3, 16, 16))
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@st.composite
def _graphs(draw):
    """A random recorded computation: values numbered in the order computed, each either a leaf (input,
    parameter) or the output of a node reading up to three earlier values."""
    count = draw(st.integers(1, 40))
    values, nodes = [], []
    for index in range(count):
        inputs = draw(st.lists(st.integers(0, index - 1), max_size=3, unique=True)) if index else []
        if inputs:
            nodes.append(Node(len(nodes), "op", dict(enumerate(inputs)), [index], ""))
        values.append(Value(index, len(nodes) - 1 if inputs else None, True))
    a, b = draw(st.integers(0, count - 1)), draw(st.integers(0, count - 1))
    return Graph(values, nodes, [], [], [], []), a, b


def _ancestors(graph: Graph, value: int) -> set[int]:
    """Every value ``value`` was computed from (itself included): the whole walk back."""
    seen, stack = {value}, [value]
    while stack:
        node = graph.producer(stack.pop())
        for v in node.inputs.values() if node is not None else ():
            if v not in seen:
                seen.add(v)
                stack.append(v)
    return seen


@given(_graphs())
def test_exclusive_ancestors_are_the_differences_of_the_whole_walks(case):
    """The walk that stops at the shared history gives the same sets as two whole ancestor walks."""
    graph, a, b = case
    anc_a, anc_b = _ancestors(graph, a), _ancestors(graph, b)
    assert graph.exclusive_ancestors(a, b) == (anc_a - anc_b, anc_b - anc_a, bool(anc_a & anc_b))
    assert graph.is_ancestor(a, of=b) == (a in anc_b)
    assert graph.is_ancestor(b, of=a) == (b in anc_a)
