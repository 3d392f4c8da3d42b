"""Norm-aware branch ends: where a norm follows a branch's last layer, the zero goes on the norm's scale."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from detinit import create_model, initialize
from detinit.init import hadamard
from detinit.models.resnet import BasicBlock


def bn_block_branch(block: BasicBlock, x: torch.Tensor) -> torch.Tensor:
    """The residual branch bn2(conv2(relu(bn1(conv1(x))))) of a post-activation block."""
    return block.bn2(block.conv2(block.act1(block.bn1(block.conv1(x)))))


def test_zero_goes_on_the_last_norm_and_the_conv_keeps_its_matrix():
    model = create_model("resnet20", init="zero", init_options={"branch_mixing": False})
    block = model.stages[1][1]
    assert torch.equal(block.bn2.weight, torch.zeros(32))
    assert torch.equal(block.conv2.weight[:, :, 1, 1], torch.eye(32))  # Algorithm 2: the identity
    report = model.init_report
    assert "a norm or layer scale follows" in report["stages.1.1.conv2.weight"].reason
    mixed = create_model("resnet20", init="zero").init_report  # the default: the conv mixes, the zero is the same
    assert mixed["stages.1.1.conv2.weight"].rule == "hadamard_mixing" and mixed["stages.1.1.bn2.weight"].rule == "zeros"
    assert report["stages.1.1.bn2.weight"].rule == "zeros"
    assert report["stages.1.1.bn1.weight"].rule == "ones"


def test_paper_variant_zeroes_the_conv_and_keeps_the_norm_at_one():
    model = create_model("resnet20", init="zero", init_options={"variant": "paper"})
    block = model.stages[1][1]
    assert torch.equal(block.conv2.weight, torch.zeros_like(block.conv2.weight))
    assert torch.equal(block.bn2.weight, torch.ones(32))


@pytest.mark.parametrize("scheme,options", [("kaiming", {"zero_init_last": True}), ("fixup", {})])
def test_other_schemes_that_zero_branch_ends_are_norm_aware(scheme, options):
    model = create_model("resnet20", init=scheme, init_options=options)
    for name in ("stages.0.0", "stages.2.2"):
        block = model.get_submodule(name)
        assert torch.equal(block.bn2.weight, torch.zeros_like(block.bn2.weight)), name
        assert block.conv2.weight.std() > 0.01, name  # a random conv, not 0
    plain = create_model("resnet20", init="kaiming")
    assert torch.equal(plain.stages[0][0].bn2.weight, torch.ones(16))


def test_branch_output_grows_smoothly_under_sgd():
    """The issue's measurement: with the zero on conv2 (paper), BatchNorm turns the first update into a
    unit-variance branch output; with the zero on bn2 the branch stays small for the first steps."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (64,), generator=g)
    stds = {}
    for variant in ("detinit", "paper"):
        model = create_model("resnet20", in_chans=1, init="zero", init_options={"variant": variant})
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        trace = []
        for _ in range(4):
            block_input = {}
            block = model.stages[0][1]  # the second block: the first is an entry block, its branch on
            handle = block.register_forward_pre_hook(lambda m, a: block_input.setdefault("x", a[0]))
            loss = F.cross_entropy(model(x), y)
            handle.remove()
            with torch.no_grad():
                trace.append(bn_block_branch(block, block_input["x"]).std().item())
            opt.zero_grad()
            loss.backward()
            opt.step()
        stds[variant] = trace
    assert stds["detinit"][0] == 0 and stds["paper"][0] == 0  # both start as the identity
    assert max(stds["detinit"][:3]) < 0.05  # still small after two SGD steps
    assert max(stds["paper"][:3]) > 0.5  # BatchNorm normalised the first update of a zero conv


class TwoBranchEnds(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.bn = nn.Linear(4, 4), nn.Linear(4, 4), nn.BatchNorm1d(4)

    def detinit_roles(self) -> dict[str, str]:
        return {"a": "branch_last", "b": "branch_last", "bn": "branch_last_norm"}


def test_ambiguous_or_misplaced_norm_role_is_refused():
    with pytest.raises(ValueError, match="declares a 'branch_last_norm' or 'layer_scale' but 2 'branch_last' layers"):
        initialize(TwoBranchEnds(), "zero")
    with pytest.raises(ValueError, match="role 'branch_last_norm' is for a normalisation layer; Linear is not one"):
        roles = {"0": "branch_last", "1": "branch_last_norm"}
        initialize(nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4)), "zero", roles=roles)


def paper_reference(model: nn.Module) -> dict[str, torch.Tensor]:
    """Algorithms 1-2 literally, from the dense Sylvester matrix: the paper variant's weights."""
    roles = {r.name.removesuffix(".weight"): r.role for r in model.init_report.records}
    out = {}
    for name, module in model.named_modules():
        if not isinstance(module, (nn.Conv2d, nn.Linear)):
            continue
        w = torch.zeros_like(module.weight)
        if roles[name] not in ("branch_last", "classifier"):
            p, q = w.shape[:2]
            if p <= q:
                matrix = torch.eye(p, q)
            else:
                m = (p - 1).bit_length()
                matrix = hadamard(2**m)[:p, :q] * 2 ** (-m / 2)
            if w.dim() == 4:
                w[:, :, (w.shape[2] - 1) // 2, (w.shape[3] - 1) // 2] = matrix
            else:
                w.copy_(matrix)
        out[name] = w
    return out


@pytest.mark.parametrize("name,kwargs", [("resnet20", {"in_chans": 1}), ("resnet18", {}), ("mnist_mlp", {})])
def test_paper_variant_is_algorithms_1_and_2_literally(name, kwargs):
    options = {} if name == "mnist_mlp" else {"variant": "paper"}  # mnist_mlp is the notebook's network
    model = create_model(name, init="zero", init_options=options, **kwargs)
    assert model.init_report.options["variant"] == "paper"
    for layer, expected in paper_reference(model).items():
        assert torch.equal(model.get_submodule(layer).weight, expected), layer
