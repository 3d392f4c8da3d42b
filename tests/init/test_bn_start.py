"""ZerO's BatchNorm start (options ``branch_mixing`` and ``open_blocks``, docs/results.md section 14): on blocks whose
branch ends on a BatchNorm, square branch convs mix their channels on every tap and the entry blocks (the first, and
each that changes the width) start with their branch on; every other block is still the identity, the output 0."""

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from detinit import initialize
from detinit.diagnostics.promises import zero_start_promises
from detinit.init.roles.declared import collect_roles
from detinit.init.roles.entries import normed_blocks
from detinit.init.tensor.hadamard import hadamard_mixing_
from detinit.models import create_model

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

IDENTITY_START = {"open_blocks": "none", "branch_mixing": False}  # the default until session 27


def found(model):
    return normed_blocks(list(model.named_modules()), collect_roles(model, None, {}), batch_norm_only=True)


@pytest.mark.parametrize(
    "name, entries",
    [
        ("resnet20", ["stages.0.0", "stages.1.0", "stages.2.0"]),
        ("resnet50", ["stages.0.0", "stages.1.0", "stages.2.0", "stages.3.0"]),  # bottlenecks: each stage widens
    ],
)
def test_the_entry_blocks_are_the_first_and_the_widening_ones(name, entries):
    model = create_model(name, init=None)
    ended, entry = found(model)
    assert list(entry.values()) == entries
    assert len(ended) == sum(len(stage) for stage in model.stages)  # every block ends on its BatchNorm
    report = initialize(model, "zero")
    assert report.open_blocks == entries
    for block in entries:
        assert report[f"{block}.{'bn3' if name == 'resnet50' else 'bn2'}.weight"].rule == "ones"


def test_only_the_entry_blocks_leave_the_identity_and_the_output_stays_zero():
    model = create_model("resnet20", in_chans=1, init="zero").eval()
    report = model.init_report
    x = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    promises = {p.promise: p for p in zero_start_promises(model, x, open_blocks=report.open_blocks)}
    assert all(p.kept for p in promises.values()), promises
    assert next(p for p in promises.values() if "identity" in p.promise).checked == 6  # the six other blocks
    broken = [p for p in zero_start_promises(model, x) if p.kept is False]
    assert broken and all("stages." in p.where and p.where.endswith(".0") for p in broken)  # an entry block
    assert torch.equal(model(x), torch.zeros(4, 10))


def test_the_square_branch_convs_mix_on_every_tap_and_the_zero_stays_on_the_norm():
    model = create_model("resnet20", in_chans=1, init="zero")
    block = model.stages[1][1]  # not an entry block
    expected = hadamard_mixing_(torch.empty(32, 32, 3, 3), 2**0.5, reverse=False, taps="all")
    assert torch.equal(block.conv1.weight, expected) and torch.equal(block.conv2.weight, expected)
    assert torch.equal(block.bn2.weight, torch.zeros(32))
    entry = model.stages[1][0]  # 16 -> 32: its first conv widens (Algorithm 1 on the unfolded kernel), its second mixes
    assert model.init_report["stages.1.0.conv1.weight"].rule == "unfolded_identity"
    assert torch.equal(entry.conv2.weight, expected) and torch.equal(entry.bn2.weight, torch.ones(32))


def test_it_is_the_probe_it_was_measured_as():
    """Bitwise ``bn_branch_mixing.py --variant stage_first``'s network (86.18 % over six seeds)."""
    import bn_branch_mixing as probe

    default = create_model("resnet20", in_chans=1, init="zero")
    roles, init = probe.BasicBlock.detinit_roles, probe.ResNet.__init__
    probe.BasicBlock.detinit_roles, probe.ResNet.__init__ = probe.transition_roles, probe.mark_first_blocks
    try:
        probed = create_model("resnet20", in_chans=1, init=None)
        initialize(probed, probe.ProbedBranches(probe="stage_first", **IDENTITY_START))  # not registered: no leak
    finally:
        probe.BasicBlock.detinit_roles, probe.ResNet.__init__ = roles, init
    theirs = probed.state_dict()
    assert all(torch.equal(value, theirs[name]) for name, value in default.state_dict().items())


def test_the_options_and_their_limits():
    plain = initialize(create_model("resnet20", in_chans=1), "zero", **IDENTITY_START)
    assert plain.open_blocks == [] and plain["stages.0.0.bn2.weight"].rule == "zeros"
    assert plain["stages.0.1.conv1.weight"].rule == "identity"
    only_open = initialize(create_model("resnet20", in_chans=1), "zero", branch_mixing=False)
    assert only_open["stages.0.1.conv1.weight"].rule == "identity" and only_open["stages.0.0.conv1.weight"].rule == (
        "hadamard_mixing"
    )
    for options in ({"variant": "paper"}, {}):  # the paper's rules, and the ablation without Hadamard blocks
        report = initialize(
            create_model("resnet20", in_chans=1), "partial_identity" if not options else "zero", **options
        )
        assert report.open_blocks == [] and "hadamard_mixing" not in report.counts()
    with pytest.raises(ValueError, match=r"open_blocks='entries' does not combine with variant='paper'"):
        initialize(create_model("resnet20"), "zero", variant="paper", open_blocks="entries")
    with pytest.raises(ValueError, match=r"branch_mixing=True does not combine with hadamard=False"):
        initialize(create_model("resnet20"), "partial_identity", branch_mixing=True)
    mlp = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"open_blocks='entries' does nothing on Sequential"):
        initialize(mlp, "zero", open_blocks="entries")
    with pytest.raises(ValueError, match=r"open_blocks='all' is not supported"):
        initialize(mlp, "zero", open_blocks="all")


def test_other_norms_only_when_asked():
    """The default acts on branches ending on a BatchNorm (where it was measured); given explicitly, on any norm."""

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.fc2, self.norm = nn.Linear(8, 8), nn.Linear(8, 8), nn.LayerNorm(8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.norm(self.fc2(torch.relu(self.fc1(x))))

        def detinit_roles(self) -> dict[str, str]:
            return {"fc1": "branch", "fc2": "branch_last", "norm": "branch_last_norm"}

    model = nn.Sequential(Block(), Block())
    assert initialize(model, "zero").open_blocks == []
    report = initialize(model, "zero", open_blocks="entries")
    assert (
        report.open_blocks == ["0"]
        and report["0.norm.weight"].rule == "ones"
        and report["1.norm.weight"].rule == ("zeros")
    )
    assert report["1.fc1.weight"].rule == "identity"  # branch_mixing not asked: its default acts on BatchNorm only
