"""Model-level initialize(): rules, roles, report, unknown modules, strictness."""

import copy
import json

import pytest
import torch
from torch import nn

import detinit
from detinit.init import initialize, list_schemes


class Block(nn.Module):
    """A residual block that declares its branch-last layer."""

    def __init__(self, c):
        super().__init__()
        self.conv1, self.bn, self.conv2 = (
            nn.Conv2d(c, c, 3, padding=1),
            nn.BatchNorm2d(c),
            nn.Conv2d(c, c, 3, padding=1),
        )

    def detinit_roles(self):
        return {"conv2": "branch_last"}

    def forward(self, x):
        return x + self.conv2(torch.relu(self.bn(self.conv1(x))))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.block = Block(16)
        self.norm = nn.GroupNorm(4, 16)
        self.fc = nn.Linear(16, 10)

    def get_classifier(self):
        return self.fc

    def forward(self, x):
        return self.fc(self.norm(self.block(self.stem(x))).mean((2, 3)))


@pytest.mark.parametrize("variant,stem", [("paper", "hadamard"), ("detinit", "unfolded_identity")])
def test_zero_scheme_rules_and_report(variant, stem):
    net = Net()
    report = initialize(net, "zero", variant=variant)
    rules = {r.name: r.rule for r in report.records}
    assert rules == {
        "stem.weight": stem,
        "block.conv1.weight": "identity",
        "block.conv1.bias": "zeros",
        "block.bn.weight": "ones",
        "block.bn.bias": "zeros",
        "block.conv2.weight": "zeros",
        "block.conv2.bias": "zeros",
        "norm.weight": "ones",
        "norm.bias": "zeros",
        "fc.weight": "zeros",
        "fc.bias": "zeros",
    }
    assert report["fc.weight"].role == "classifier" and "get_classifier" in report["fc.weight"].reason
    assert "Block.detinit_roles()" in report["block.conv2.weight"].reason
    assert torch.equal(net(torch.randn(2, 3, 8, 8)), torch.zeros(2, 10))  # ZerO: output 0 at init
    assert detinit.check_zero_one(net)
    text = str(report)
    gains = ", end_gain=30.0, output_gain=300.0, end_reach=1.0" if variant == "detinit" else ""
    assert f"scheme=zero (norm=orthonormal, variant={variant}{gains})" in text and "stem.weight" in text
    assert f"{stem}: 1" in text
    json.dumps(report.to_dict())  # plain data


def test_block_is_identity_under_zero_and_constnet():
    for scheme in ("zero", "constnet", "partial_identity"):
        block = Block(8).eval()
        initialize(block, scheme)
        x = torch.randn(2, 8, 5, 5)
        assert torch.equal(block(x), x), scheme


def test_constnet_channels_identical():
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 1))
    report = initialize(net, "constnet")
    assert {r.rule for r in report.records} == {"const_avg", "zeros"} and report.seed is None
    y = net(torch.randn(2, 3, 6, 6))
    assert (y - y[:, :1]).abs().max() == 0


@pytest.mark.parametrize("scheme", ["kaiming", "xavier", "orthogonal"])
def test_random_schemes_are_seeded_and_leave_global_rng(scheme):
    a, b, c = Net(), Net(), Net()  # construction itself draws from the global RNG; initialize must not
    state = torch.random.get_rng_state()
    ra = initialize(a, scheme, seed=1)
    initialize(b, scheme, seed=1)
    initialize(c, scheme, generator=torch.Generator().manual_seed(2))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.stem.weight, c.stem.weight)
    assert ra.seed == 1
    assert torch.equal(a.block.bn.weight, torch.ones(16)) and not a.fc.bias.any()


def test_zero_init_last_option():
    net = Net()
    report = initialize(net, "kaiming", zero_init_last=True, mode="fan_out")
    assert report["block.conv2.weight"].rule == "zeros" and report["block.conv1.weight"].rule == "kaiming_normal"
    assert report.options == {"zero_init_last": True, "distribution": "normal", "mode": "fan_out"}


def test_unknown_modules_are_reported_and_strict_raises_before_writing():
    net = nn.Sequential(nn.Linear(4, 4), nn.Bilinear(4, 4, 4), nn.PReLU())
    report = initialize(net, "zero")
    unknown = {r.name for r in report.unknown}
    assert "1.weight" in unknown and "0.weight" not in unknown
    assert report["2.weight"].rule == "constant(0.25)"  # PReLU's slope has a rule (issue 34)
    assert "left unchanged, no rule for" in str(report) and "Bilinear" in str(report)
    fresh = nn.Sequential(nn.Linear(4, 4), nn.Bilinear(4, 4, 4))
    before = [p.clone() for p in fresh.parameters()]
    with pytest.raises(ValueError, match=r"strict=True.*1.weight \(Bilinear\)"):
        initialize(fresh, "zero", strict=True)
    assert all(torch.equal(p, q) for p, q in zip(before, fresh.parameters()))


def test_frozen_shared_and_hooked_parameters():
    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.alpha = nn.Parameter(torch.full((1,), 5.0))
            self.beta = nn.Parameter(torch.full((1,), 5.0))

        def detinit_init_(self, scheme, generator):
            self.alpha.zero_()
            return {"alpha": f"ReZero gate 0 under {scheme.name}"}

    shared = nn.Linear(4, 4)
    frozen = nn.Linear(4, 4)
    frozen.requires_grad_(False)
    frozen_before = frozen.weight.clone()
    net = nn.Sequential(shared, shared, frozen, Gate())
    report = initialize(net, "zero")
    names = [r.name for r in report.records]
    assert names.count("0.weight") == 1 and "1.weight" not in names
    assert report["2.weight"].rule == "frozen" and torch.equal(frozen.weight, frozen_before)
    assert report["3.alpha"].rule == "hook" and "ReZero gate 0 under zero" in report["3.alpha"].reason
    assert report["3.beta"].rule == "unknown" and net[3].alpha.item() == 0


def test_roles_override_and_errors():
    mlp = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    report = initialize(mlp, "zero", roles={"2": "classifier"})
    assert report["2.weight"].rule == "zeros" and "roles= argument" in report["2.weight"].reason
    assert initialize(mlp, "zero")["2.weight"].rule == "partial_identity"
    with pytest.raises(ValueError, match=r"roles: 'fc' is not a module"):
        initialize(mlp, "zero", roles={"fc": "classifier"})
    with pytest.raises(ValueError, match="role 'head' is not supported; roles are default, branch, branch_last"):
        initialize(mlp, "zero", roles={"2": "head"})
    with pytest.raises(ValueError, match=r"unknown scheme 'zeros'.*Did you mean zero"):
        initialize(mlp, "zeros")
    with pytest.raises(ValueError, match=r"scheme 'zero' does not accept options \['mode'\]"):
        initialize(mlp, "zero", mode="fan_in")
    with pytest.raises(ValueError, match="norm='bad'"):
        initialize(mlp, "zero", norm="bad")
    with pytest.raises(TypeError, match="nn.Module"):
        initialize(torch.empty(3, 3), "zero")
    with pytest.raises(ValueError, match="lazy"):
        initialize(nn.LazyLinear(3), "zero")


def test_every_scheme_on_conv_transpose_and_grouped_layers():
    net = nn.Sequential(
        nn.Conv2d(4, 8, 3, groups=2),
        nn.ConvTranspose2d(8, 16, 3, groups=4),
        nn.Conv1d(2, 2, 3),
        nn.Embedding(10, 4),
        nn.LayerNorm(4),
        nn.Linear(4, 4, bias=False),
    )
    for scheme in list_schemes():
        if scheme in ("skipinit", "rezero"):
            with pytest.raises(ValueError, match=f"scheme '{scheme}' gates every residual branch.*no residual gates"):
                initialize(net, scheme)
            continue
        if scheme == "tfixup":
            with pytest.raises(ValueError, match="no attention layers"):
                initialize(net, scheme)
            continue
        if scheme == "fixup":  # no residual branch: fixup would silently equal kaiming with a zero classifier
            with pytest.raises(ValueError, match="'fixup' on Sequential, which has no residual branch"):
                initialize(net, scheme)
            continue
        report = initialize(net, scheme)
        unknown = {r.name for r in report.unknown}
        assert unknown == ({"3.weight"} if scheme == "constnet" else set()), scheme  # ConstNet has no embedding rule
    assert set(list_schemes()) == {
        "zero",
        "partial_identity",
        "constnet",
        "kaiming",
        "xavier",
        "orthogonal",
        "fixup",
        "skipinit",
        "rezero",
        "gpt2",
        "tfixup",
        "idinit",
    }


def _geometry_zoo() -> nn.Sequential:
    """Layers that share a weight shape but not a rule (groups, transposed, role, padding row), and twins."""
    return nn.Sequential(
        nn.Conv2d(4, 8, 3, groups=2),  # weight (8, 2, 3, 3), two groups
        nn.Conv2d(2, 8, 3),  # the same weight shape, one group
        nn.Conv2d(2, 8, 3),  # a twin of the one before
        nn.ConvTranspose2d(8, 2, 3),  # (8, 2, 3, 3) again, transposed
        nn.Linear(16, 16),  # role branch
        nn.Linear(16, 16),  # role branch_last
        nn.Linear(16, 16),  # role attn_out
        nn.Linear(16, 16),  # default
        nn.Linear(16, 16),  # a twin of the one before
        nn.Embedding(16, 16, padding_idx=0),
        nn.Embedding(16, 16),
        nn.LayerNorm(16),
    )


@pytest.mark.parametrize(
    "scheme", ["zero", "partial_identity", "constnet", "kaiming", "orthogonal", "fixup", "gpt2", "tfixup"]
)
def test_rules_built_once_per_geometry_change_nothing(scheme, monkeypatch):
    """initialize builds one weight rule per layer class, role and geometry and shares it between layers alike;
    every layer gets the values and report it gets with a rule built for it alone."""
    from detinit.init.apply import resolve
    from detinit.init.schemes import get_scheme

    roles = {"4": "branch", "5": "branch_last", "6": "attn_out"}
    cached_model = _geometry_zoo()
    alone_model = copy.deepcopy(cached_model)  # the same values where no rule writes (ConstNet's embeddings)
    built = []
    weight_rule = resolve._weight_rule
    monkeypatch.setattr(resolve, "_weight_rule", lambda *a: built.append(a[0]) or weight_rule(*a))
    cached = initialize(cached_model, scheme, roles=roles)
    # twins (2 after 1, 8 after 7) and the two embeddings but for padding_idx share one rule each
    assert len(built) == len(_geometry_zoo()) - 1 - 3, scheme
    monkeypatch.setattr(type(get_scheme(scheme)), "geometry_keyed", False)  # every layer builds its own rule
    alone = initialize(alone_model, scheme, roles=roles)
    assert cached.records == alone.records
    for (name, a), b in zip(cached_model.state_dict().items(), alone_model.state_dict().values()):
        assert torch.equal(a, b), (scheme, name)


def test_rules_of_a_scheme_subclass_are_built_per_layer():
    """A subclass of a built-in scheme may keep state or read anything, so its rules are never shared: it is
    asked once per layer, even for two layers alike."""
    from detinit.init.schemes import ParamRule, ZerOScheme
    from detinit.init.tensor.row_fills import ZEROS

    class FirstLayerZero(ZerOScheme):
        def __init__(self) -> None:
            super().__init__()
            self.asked = 0

        def matrix_rule(self, matrix, layer):
            self.asked += 1
            if self.asked == 2:
                return ParamRule("zeros", "second layer: 0", ZEROS)
            return super().matrix_rule(matrix, layer)

    assert ZerOScheme.geometry_keyed and not FirstLayerZero.geometry_keyed
    net = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8, bias=False))
    report = initialize(net, FirstLayerZero())
    assert [r.rule for r in report.records] == ["identity", "zeros", "zeros"]
    assert torch.equal(net[0].weight, torch.eye(8)) and not net[1].weight.any()


class WithAnEmptyLayer(nn.Module):
    """A residual MLP with a layer of width 0 beside its stream (MobileBERT's extra output rows when its
    embedding is as wide as the model)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem, self.fc, self.extra, self.head = nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 0), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.stem(x))
        h = h + self.fc(h)
        return self.head(torch.cat([h, self.extra(h)], dim=-1))


@pytest.mark.parametrize("scheme", [s for s in list_schemes() if s not in ("skipinit", "rezero", "tfixup")])
def test_a_parameter_with_no_elements_has_nothing_to_write(scheme):
    """Every scheme that applies to the model initialises it around an empty layer (nothing to write there)."""
    model, x = WithAnEmptyLayer(), torch.randn(5, 4)
    report = initialize(model, scheme, example_inputs=x, strict=True)
    assert report["extra.weight"].shape == (0, 8) and report["extra.bias"].shape == (0,)
    assert model(x).shape == (5, 3) and torch.isfinite(model(x)).all()
