"""ZerO's ``branch_zero="gate"``: the norm-free start with the branch's zero on its scalar gate, mixed branches and
He-normed Hadamard rows (docs/results.md section 14: 3 of 3 seeds at 256 and 768 steps on ResNet-20)."""

import math
import sys
from pathlib import Path

import pytest
import torch

from detinit import initialize
from detinit.diagnostics.promises import zero_start_promises
from detinit.init.schemes import ParamRule
from detinit.init.schemes.zero import ZerOScheme, he_rows_rule
from detinit.init.tensor.hadamard import hadamard_mixing_, hadamard_mixing_rows_
from detinit.init.tensor.row_fills import RowFill
from detinit.models import create_model

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))


def gated_resnet(**options):
    model = create_model("resnet20", norm="none", in_chans=1)
    report = initialize(model, "zero", **({"branch_zero": "gate"} | options))
    return model, report


def test_it_is_the_default_where_the_model_has_gates_and_no_norm_nor_attention():
    default = create_model("resnet20", norm="none", in_chans=1)
    report = initialize(default, "zero")
    gated, _ = gated_resnet()
    assert report.options["branch_zero"] == "gate"
    assert all(torch.equal(a, b) for a, b in zip(default.state_dict().values(), gated.state_dict().values()))
    for model, options in [
        (create_model("resnet20", in_chans=1), {}),  # BatchNorm: the zero on the norm's scale
        (create_model("resnet20", norm="none", in_chans=1), {"depth_scale": True}),
        (create_model("resnet20", norm="none", in_chans=1), {"variant": "paper"}),
        (create_model("resnet20", norm="none", gate=False, in_chans=1), {}),
        (create_model("gpt", vocab_size=32, context=8, depth=2, width=16, heads=2, norm="none", gate=True), {}),
    ]:
        report = initialize(model, "zero", **options)
        assert report.options.get("branch_zero", "end") == "end", (type(model).__name__, options)


def test_it_is_bitwise_the_start_the_measurements_were_made_with():
    import no_norm_parts

    measured = create_model("resnet20", norm="none", in_chans=1)
    initialize(measured, no_norm_parts.VARIANTS["gated_zero+he_rows+spatial"][1]())  # an instance: not registered
    model, _ = gated_resnet()
    ours, theirs = model.state_dict(), measured.state_dict()
    assert list(ours) == list(theirs) and all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_step_zero_keeps_zeros_promises_with_the_zero_on_the_gates():
    model, report = gated_resnet()
    promises = {p.promise: p for p in zero_start_promises(model, torch.randn(4, 1, 28, 28))}
    assert promises["zero logits"].kept and promises["residual branches add 0"].kept
    gates = [float(m.weight.detach()) for n, m in model.named_modules() if n.endswith(".gate")]
    assert len(gates) == 9 and set(gates) == {0.0}
    first, last = model.stages[0][0].conv1.weight.detach(), model.stages[0][0].conv2.weight.detach()
    for weight, gain in ((first, math.sqrt(2)), (last, 1.0)):  # every tap: +-gain / sqrt(16 * 9)
        unfolded = weight.flatten(1)
        assert torch.allclose(unfolded.abs(), torch.full_like(unfolded, gain / 12))
        assert torch.allclose(unfolded @ unfolded.T, torch.eye(16) * gain**2, atol=1e-6)  # orthogonal rows
    for weight in (model.stem[0].weight, model.stages[1][0].shortcut[0].weight):  # expanding blocks: He's rows
        assert torch.allclose(weight.detach().flatten(1).norm(dim=1), torch.full((len(weight),), math.sqrt(2.0)))
    assert report.options["branch_zero"] == "gate"


def test_a_branch_no_longer_points_along_the_stream():
    model, _ = gated_resnet()
    block, x = model.stages[0][1], torch.relu(torch.randn(8, 16, 7, 7))
    with torch.no_grad():
        branch = block.conv2(torch.relu(block.conv1(x)))
    assert float(torch.nn.functional.cosine_similarity(branch.flatten(1), x.flatten(1)).abs().mean()) < 0.3


@pytest.mark.parametrize("taps", ["centre", "all"])
def test_row_blocks_of_the_new_fills_are_the_rows_of_the_whole(taps):
    whole = hadamard_mixing_(torch.empty(32, 32, 3, 3), math.sqrt(2.0), reverse=True, taps=taps)
    for start, count in ((0, 5), (7, 9), (31, 1)):
        block = hadamard_mixing_rows_(torch.empty(count, 32, 3, 3), start, 32, math.sqrt(2.0), reverse=True, taps=taps)
        assert torch.equal(block, whole[start : start + count])
    _, report = gated_resnet()
    assert next(r.rule for r in report.records if r.name == "stages.2.0.shortcut.0.weight") == "hadamard_he_rows"
    plain = RowFill(lambda w, g: w.copy_(torch.arange(w.numel(), dtype=w.dtype).view_as(w)),
                    lambda out, s, t, g: out.copy_(torch.arange(t * out[0].numel(), dtype=out.dtype)
                                                   .view(t, *out.shape[1:])[s : s + len(out)]))  # fmt: skip
    rows = he_rows_rule(ParamRule("ramp", "", plain)).fill
    full = rows(torch.empty(6, 4), None)
    assert torch.allclose(full.norm(dim=1)[1:], torch.full((5,), math.sqrt(2.0)))
    assert torch.equal(rows.rows(torch.empty(2, 4), 3, 6, None), full[3:5])


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"variant": "paper"}, "variant='paper'"),
        ({"depth_scale": True}, "depth_scale=True"),
        ({"branch_end": 0.1}, "branch_end=0.1"),
        ({"hadamard": False}, "hadamard=False"),  # partial_identity: no Hadamard block to mix with
    ],
)
def test_it_refuses_what_it_does_not_combine_with(options, words):
    with pytest.raises(ValueError, match=rf"branch_zero='gate' does not combine with {words}"):
        ZerOScheme(branch_zero="gate", **options)


def test_a_model_without_gates_is_refused_naming_them():
    with pytest.raises(ValueError, match="no residual gates"):
        initialize(create_model("resnet20", in_chans=1), "zero", branch_zero="gate")


def test_partial_identity_keeps_its_promise_of_no_hadamard_block_on_norm_free_models():
    """The ablation without Hadamard blocks: the gate default (which mixes by Hadamard blocks) is not its default."""
    model = create_model("resnet20", norm="none", in_chans=1)
    report = initialize(model, "partial_identity")
    assert report.options.get("branch_zero", "end") == "end"
    assert not [r.rule for r in report.records if "hadamard" in r.rule]


def test_the_row_form_of_the_mixing_refuses_rows_outside_its_weight():
    with pytest.raises(ValueError, match="starting at row 3 is not inside a tensor of 4 rows"):
        hadamard_mixing_rows_(torch.empty(2, 4), 3, 4)
    with pytest.raises(ValueError, match="start=-1 is not supported; start must be an int >= 0"):
        hadamard_mixing_rows_(torch.empty(2, 4), -1, 4)


def test_the_mixing_on_every_tap_gives_each_output_its_own_tap_pattern():
    """``taps="all"``: W[i, c] = H[i, c] / sqrt n * t_i, t_i row i mod 16 of H_16 on the 9 taps at unit norm;
    the centre-tap form is the same channel mixing with t_i = e_centre."""
    spread = hadamard_mixing_(torch.empty(32, 32, 3, 3), taps="all")
    centre = hadamard_mixing_(torch.empty(32, 32, 3, 3))[:, :, 1, 1]
    patterns = torch.tensor([[(-1.0) ** (i & t).bit_count() for t in range(9)] for i in range(16)]) / 3
    for i in (0, 5, 17, 31):
        assert torch.allclose(spread[i].flatten(1), centre[i][:, None] * patterns[i % 16][None, :])
    assert torch.equal(hadamard_mixing_(torch.empty(8, 8), taps="all"), hadamard_mixing_(torch.empty(8, 8)))
    with pytest.raises(ValueError, match=r"taps='every' is not supported; choose one of \('centre', 'all'\)"):
        hadamard_mixing_(torch.empty(8, 8, 3, 3), taps="every")
