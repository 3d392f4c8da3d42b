"""IDInit (Pan et al. 2025; issue 31): the padded identity ``theta[m, j] = tau iff m = j mod in`` on every layer shape,
patch-maintain on convolutions (a square conv is exactly the identity), ``IDIZ_eps`` on branch ends (on the norm
or layer scale where one follows) and on the output, and what ``IDIZ`` is for: every weight of a branch gets a
gradient at the first step, where ZerO's exact zero leaves the layers before the branch end without one."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from detinit import initialize
from detinit.diagnostics.promises import zero_start_promises
from detinit.init import idinit_, list_schemes
from detinit.models import create_model


def padded_identity(p: int, q: int, tau: float = 1.0) -> torch.Tensor:
    """The paper's formula, entry by entry."""
    return torch.tensor([[tau if m % q == j else 0.0 for j in range(q)] for m in range(p)])


@pytest.mark.parametrize("p, q", [(3, 5), (4, 4), (7, 3), (8, 2), (1, 6)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_a_linear_weight_is_the_padded_identity(p: int, q: int, dtype: torch.dtype) -> None:
    weight = torch.full((p, q), 7.0, dtype=dtype)
    assert idinit_(weight, 0.5) is weight and weight.dtype == dtype
    assert torch.equal(weight, padded_identity(p, q, 0.5).to(dtype))
    if p > q:  # stacked identities: no output row is dead
        assert bool((weight != 0).any(dim=1).all())


def test_a_square_conv_is_exactly_the_identity_and_a_wider_one_makes_shifted_copies() -> None:
    x = torch.randn(2, 4, 6, 6)
    assert torch.equal(F.conv2d(x, idinit_(torch.empty(4, 4, 3, 3)), padding=1), x)
    wide = idinit_(torch.empty(10, 4, 3, 3))  # 10 <= 4 x 9 patch values: (channel, tap) pairs, each once
    y = F.conv2d(x, wide, padding=1)
    assert torch.equal(y[:, :4], x)  # the centre tap first
    pairs = {tuple(torch.nonzero(wide[i]).flatten().tolist()) for i in range(10)}
    assert len(pairs) == 10 and all(int(torch.count_nonzero(wide[i])) == 1 for i in range(10))
    many = idinit_(torch.empty(40, 4, 3, 3))  # past the 36 patch values the copies repeat, period 36
    assert torch.equal(many[36:], many[:4])


def test_grouped_and_transposed_convs_get_the_rule_per_group() -> None:
    grouped = idinit_(torch.empty(6, 2, 3), groups=3)  # 3 groups of (2 out, 2 in, 3 taps)
    x = torch.randn(1, 6, 5)
    assert torch.equal(F.conv1d(x, grouped, padding=1, groups=3), x)
    transposed = idinit_(torch.empty(4, 2, 3, 3), transposed=True, groups=2)  # (in, out / groups, k, k)
    assert torch.equal(transposed[:, :, 1, 1], torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]))
    assert int(torch.count_nonzero(transposed)) == 4


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: idinit_(torch.empty(3, 4), float("nan")),
            r"idinit_: tau=nan is not supported; tau must be a number in \[0",
        ),
        (lambda: idinit_(torch.empty(3)), r"idinit_: got a 1-D tensor of shape \(3,\)"),
        (lambda: idinit_(torch.empty(5, 2, 3), groups=2), r"idinit_: out_channels=5 .* not divisible by groups=2"),
    ],
)
def test_bad_inputs_name_the_parameter_and_shape(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_the_scheme_is_registered_and_checks_its_options() -> None:
    assert "idinit" in list_schemes()
    with pytest.raises(ValueError, match=r"scheme option tau=0 is not supported; tau must be a number in \(0"):
        initialize(nn.Linear(2, 2), "idinit", tau=0)
    with pytest.raises(ValueError, match=r"scheme option eps=-1 is not supported"):
        initialize(nn.Linear(2, 2), "idinit", eps=-1)
    with pytest.raises(ValueError, match=r"scheme option variant='norm' is not supported; choose one of"):
        initialize(nn.Linear(2, 2), "idinit", variant="norm")


def test_resnet20_with_batchnorm_puts_idiz_on_each_branchs_last_norm() -> None:
    model = create_model("resnet20")
    report = initialize(model, "idinit")
    rules = {r.name: r.rule for r in report.records}
    block = "stages.1.0"
    assert rules[f"{block}.conv1.weight"] == rules[f"{block}.conv2.weight"] == "idi"
    assert rules[f"{block}.bn2.weight"] == "constant(1e-06)" and rules[f"{block}.bn1.weight"] == "ones"
    assert torch.equal(model.get_submodule(f"{block}.bn2").weight, torch.full((32,), 1e-6))
    assert rules["fc.weight"] == "idiz"
    literal = create_model("resnet20")  # the paper's recipe read literally: IDIZ on the conv, the norm at 1
    paper = {r.name: r.rule for r in initialize(literal, "idinit", variant="paper").records}
    assert paper[f"{block}.conv2.weight"] == "idiz" and paper[f"{block}.bn2.weight"] == "ones"
    again = create_model("resnet20")
    initialize(again, "idinit")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    model.eval()
    promises = {p.promise: p for p in zero_start_promises(model, torch.randn(2, 3, 32, 32))}
    assert promises["blocks are the identity"].kept  # each block is x + O(eps): within the 1e-4 tolerance
    assert 0 < promises["zero logits"].error < 1e-5  # ~0, not 0: the output layer is eps x identity


class PlainBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(width, width, 3, padding=1), nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(torch.relu(self.conv1(x)))


class PlainNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.blocks = nn.Sequential(PlainBlock(8), PlainBlock(8))
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)).mean((2, 3)))


@pytest.mark.parametrize("scheme, first_layer_gets_a_gradient", [("idinit", True), ("zero", False)])
def test_idiz_gives_every_branch_weight_a_gradient_where_an_exact_zero_does_not(
    scheme: str, first_layer_gets_a_gradient: bool
) -> None:
    model = PlainNet()
    x = torch.randn(4, 3, 8, 8)
    report = initialize(model, scheme, example_inputs=x)
    assert {r.name: r.role for r in report.records}["blocks.0.conv2.weight"] == "branch_last"
    F.cross_entropy(model(x), torch.tensor([0, 1, 2, 3])).backward()
    grad = model.blocks[0].conv1.weight.grad
    assert bool(grad.abs().sum() > 0) is first_layer_gets_a_gradient
    assert float(model.head.weight.grad.abs().sum()) > 0


def test_a_transformer_gets_idi_inside_branches_and_idiz_at_their_ends() -> None:
    model = create_model("gpt")
    report = initialize(model, "idinit")
    by_role: dict[str, set[str]] = {}
    for record in report.records:
        if record.rule not in ("zeros", "ones"):
            by_role.setdefault(record.role, set()).add(record.rule)
    assert by_role["attn_out"] == {"idiz"} and by_role["branch_last"] == {"idiz"}
    assert by_role["branch"] == {"idi"}
    assert not [r.name for r in report.records if r.rule == "unknown"]


def test_stacked_identity_shortcuts_duplicate_every_channel_after_a_widening_stage() -> None:
    """The mechanism docs/results.md section 13 measures: ResNet-20's 1x1 shortcuts 16 -> 32 -> 64 under IDInit
    are stacked identities, its branches add ~0, so stage 2's channel c + 16 equals channel c (stage 3 likewise);
    under ZerO's Hadamard shortcuts no two channels are equal."""
    x = torch.randn(8, 3, 32, 32)
    for scheme, duplicated in (("idinit", True), ("zero", False)):
        model = create_model("resnet20")
        initialize(model, scheme)
        model.eval()
        with torch.no_grad():
            stage2 = model.stages[1](model.stages[0](model.stem(x)))
        flat = stage2.transpose(0, 1).reshape(32, -1)
        assert torch.allclose(flat[16:], flat[:16], atol=1e-4) is duplicated, scheme
        if not duplicated:
            assert torch.cdist(flat, flat).add(torch.eye(32) * 1e9).min() > 1e-3


def test_zero_with_branch_end_starts_each_branch_at_eps_times_its_ordinary_rule() -> None:
    """ZerO's option ``branch_end`` (issue 31's candidate "a small eps instead of an exact 0"): the last conv of a
    normalisation-free branch is eps x its identity, a BatchNorm after one gets eps as its scale; the output layer
    stays 0 and the default (0) is the exact zero."""
    plain = create_model("resnet20", norm="none")
    rules = {r.name: r.rule for r in initialize(plain, "zero", branch_end=1e-3).records}
    assert rules["stages.0.0.conv2.weight"] == "scaled_identity" and rules["fc.weight"] == "zeros"
    centre = plain.stages[0][0].conv2.weight[:, :, 1, 1]
    assert torch.equal(centre, torch.eye(16) * 1e-3)
    normed = create_model("resnet20")
    rules = {r.name: r.rule for r in initialize(normed, "zero", branch_end=1e-3).records}
    assert rules["stages.0.1.bn2.weight"] == "constant(0.001)"
    assert rules["stages.0.1.conv2.weight"] == "hadamard_mixing"  # the layer keeps a matrix (mixing: branch_mixing)
    assert rules["stages.0.0.bn2.weight"] == "ones"  # an entry block: its branch on (open_blocks)
    default = {r.name: r.rule for r in initialize(create_model("resnet20"), "zero").records}
    assert default["stages.0.1.bn2.weight"] == "zeros"
    with pytest.raises(ValueError, match=r"scheme option branch_end=2 is not supported"):
        initialize(nn.Linear(2, 2), "zero", branch_end=2)


@pytest.mark.parametrize("in_features, out_features", [(16, 16), (8, 24), (24, 8)])
def test_a_scaled_branch_end_keeps_its_row_form_for_sharded_weights(in_features: int, out_features: int) -> None:
    """A shard of a ``branch_end`` layer writes exactly its rows of the whole fill (the contract of
    detinit.init.tensor.row_fills), so sharded and unsharded models get the same weights."""
    from detinit.init.roles.layers import Matrix
    from detinit.init.roles.vocabulary import LayerInfo
    from detinit.init.schemes import ZerOScheme
    from detinit.init.tensor.row_fills import RowFill

    rule = ZerOScheme(branch_end=1e-3).matrix_rule(Matrix.linear(in_features, out_features), LayerInfo("branch_last"))
    assert isinstance(rule.fill, RowFill)
    whole = torch.empty(out_features, in_features)
    rule.fill(whole, torch.Generator())
    block = torch.empty(5, in_features)
    rule.fill.rows(block, 3, out_features, torch.Generator())
    assert torch.equal(block, whole[3:8])
    ordinary = ZerOScheme().matrix_rule(Matrix.linear(in_features, out_features), LayerInfo("branch"))
    plain = torch.empty(out_features, in_features)
    ordinary.fill(plain, torch.Generator())
    assert torch.equal(whole, plain * 1e-3)
