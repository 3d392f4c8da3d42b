"""Adding a scheme is one class and one registry line: a scheme defined here, applied to a ResNet, a GPT and a
Hugging Face model. It says only what it does to a matrix and a table; biases, norms, fused projections and
weights stored (in, out) are the resolver's (detinit.init.apply.resolve)."""

from __future__ import annotations

import pytest
import torch

from detinit import create_model, initialize
from detinit.init.roles.layers import Matrix, Table
from detinit.init.roles.vocabulary import RESIDUAL_LAST_ROLES, LayerInfo
from detinit.init.schemes import SCHEMES, ParamRule, Policy, Scheme
from detinit.init.tensor.zero import partial_identity_

GAIN = 0.5


class HalfIdentity(Scheme):
    """Every matrix ``GAIN`` times the partial identity, branch ends and the output 0, tables 0."""

    name = "half_identity"
    policy = Policy(zeroes_branch_ends=True, zeroes_classifier=True)

    def matrix_rule(self, matrix: Matrix, layer: LayerInfo) -> ParamRule | None:
        if layer.role in RESIDUAL_LAST_ROLES or layer.role == "classifier":
            return ParamRule("zeros", "branch end or output: 0", lambda w, g: w.zero_())
        groups, transposed = matrix.groups, matrix.transposed

        def fill(w: torch.Tensor, g: torch.Generator) -> None:
            partial_identity_(w, groups=groups, transposed=transposed).mul_(GAIN)

        return ParamRule("half_identity", f"{GAIN} x partial identity", fill)

    def table_rule(self, table: Table, layer: LayerInfo) -> ParamRule | None:
        return ParamRule("zeros", "table: 0", lambda w, g: w.zero_())


@pytest.fixture
def registered(monkeypatch):
    entries = dict(SCHEMES._entries)
    monkeypatch.setattr(SCHEMES, "_entries", entries)  # the registry as it was after the test
    SCHEMES.add("half_identity", HalfIdentity, "a test scheme")  # the one line that adds a scheme
    return "half_identity"


def _check(model: torch.nn.Module, report) -> None:
    """Every parameter got a rule; square matrices are GAIN x I; biases 0 and norm scales 1 (the resolver's)."""
    assert not report.unknown
    params = dict(model.named_parameters())
    for record in report.records:
        value = params[record.name].detach()
        if record.rule == "half_identity" and value.dim() == 2 and value.shape[0] == value.shape[1]:
            assert torch.equal(value, GAIN * torch.eye(len(value))), record.name
        if record.name.endswith("bias") and record.role != "position":
            assert not value.any(), record.name
        if record.rule == "ones":
            assert torch.all(value == 1) and "norm" in record.reason, record.name


def test_a_scheme_defined_here_initialises_a_resnet(registered):
    model = create_model("resnet20", init=registered, num_classes=10, in_chans=3)
    report = model.init_report
    _check(model, report)
    assert report.scheme == "half_identity" and report.counts()["half_identity"] > 0
    # the zero of each branch end goes on the BatchNorm after it: decided by the resolver from the policy
    ends = [r for r in report.records if r.role == "branch_last_norm"]
    assert ends and all(r.rule == "zeros" and r.name.endswith(".weight") for r in ends if "weight" in r.name)
    logits = model.eval()(torch.randn(2, 3, 32, 32))
    assert not logits.any()  # the classifier starts at 0


def test_a_scheme_defined_here_initialises_a_gpt(registered):
    model = create_model("gpt", init=registered, vocab_size=32, context=8, depth=2, width=16, heads=2)
    _check(model, model.init_report)
    qkv = [r for r in model.init_report.records if r.role.startswith("attn_qkv") and r.name.endswith("weight")]
    assert qkv and all(r.reason.count("0.5 x partial identity") == 3 for r in qkv)  # one block per projection


def test_a_scheme_defined_here_initialises_a_hugging_face_model(registered):
    pytest.importorskip("transformers")
    from tests.init.test_hugging_face import build

    model = build("gpt2")
    report = initialize(model, registered, strict=True)
    _check(model, report)
    c_attn = report["transformer.h.0.attn.c_attn.weight"]  # Conv1D, stored (in, out), a fused projection
    assert c_attn.role == "attn_qkv:32,32,32" and "traced" in c_attn.reason
    stored = model.transformer.h[0].attn.c_attn.weight.detach()
    assert torch.equal(stored.t(), GAIN * torch.eye(32).repeat(3, 1))


def test_a_scheme_written_for_the_old_interface_is_refused_when_defined():
    """A subclass defining ``_rule`` (detinit 0.1) would be called by nothing and leave every weight unknown."""
    with pytest.raises(TypeError, match=r"scheme class OldStyle defines _rule, .*matrix_rule\(matrix, layer\)"):

        class OldStyle(Scheme):
            def _rule(self, module, layer):
                return None
