"""Attention through kernels other than softmax is traced as attention, and an initialisation that makes a
model's output non-finite on its example is said, naming the module where it starts."""

import warnings

import pytest
import torch
from torch import nn

from detinit import initialize
from detinit.init.schemes.zero import ZerOScheme


class Attention(nn.Module):
    """Weights ``kernel(q k^T)`` (no softmax) times the values."""

    def __init__(self, kernel: str, width: int) -> None:
        super().__init__()
        self.kernel = kernel
        self.query, self.key, self.value = (nn.Linear(width, width) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.query(x), self.key(x), self.value(x)
        if self.kernel == "sigmoid":
            weights = torch.sigmoid(q @ k.transpose(-1, -2))
        elif self.kernel == "raw_cosine":  # the cosine without an epsilon: 0 / 0 where a key is 0 too
            cosine = (q @ k.transpose(-1, -2)) / (q.norm(dim=-1, keepdim=True) * k.norm(dim=-1).unsqueeze(-2))
            weights = (1 - torch.acos(cosine) / torch.pi) ** 8
        else:  # YOSO's expectation: (1 - acos(cos(q, k)) / pi)^8, undefined where the cosine rounds above 1
            q, k = nn.functional.normalize(q, dim=-1), nn.functional.normalize(k, dim=-1)
            weights = (1 - torch.acos(q @ k.transpose(-1, -2)) / torch.pi) ** 8
        return weights @ v


class KernelAttention(nn.Module):
    """One residual attention block, then a readout."""

    def __init__(self, kernel: str, width: int = 8) -> None:
        super().__init__()
        self.attn = Attention(kernel, width)
        self.out = nn.Linear(width, width)
        self.head = nn.Linear(width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x + self.out(self.attn(x)))


@pytest.mark.parametrize("kernel", ["sigmoid", "acos"])
def test_a_kernel_other_than_softmax_is_traced_as_attention(kernel):
    report = initialize(KernelAttention(kernel), "kaiming", example_inputs=torch.randn(2, 5, 8))
    roles = {r.name.rsplit(".", 1)[0]: r.role for r in report.records}
    assert [roles[m] for m in ("attn.query", "attn.key", "attn.value", "out")] == [
        "attn_query",
        "attn_key",
        "attn_value",
        "attn_out",
    ]


def _example() -> torch.Tensor:
    # rows whose own normalised product rounds above 1 in float32 (acos of it is NaN); a random init keeps q != k
    return torch.randn(2, 4, 8, generator=torch.Generator().manual_seed(0))


def test_an_output_made_non_finite_by_an_option_given_is_said_where_it_starts():
    model, x = KernelAttention("acos"), _example()
    assert torch.isfinite(model(x)).all()
    with pytest.warns(UserWarning, match=r"output is not finite .* first module .* is attn \(Attention\)") as caught:
        report = initialize(model, "zero", attention="identity", example_inputs=x)  # the default rule, asked for
    assert not torch.isfinite(model.attn(x)).all()  # W_Q = W_K: acos(1 + rounding)
    note = next(n for n in report.notes if "not finite" in n)
    assert "(it was before)" in note and "attention='kv_zero'" in note and str(caught[0].message) == note
    assert report.options.get("attention") is None  # the default rule, kept as asked
    with pytest.warns(UserWarning, match="output is not finite"):
        report = initialize(model := KernelAttention("acos"), ZerOScheme(), example_inputs=x)  # built by the user
    assert report.options.get("attention") is None and not torch.isfinite(model.attn(x)).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = initialize(model, "zero", attention="kv_zero", example_inputs=x)  # K = 0: the kernel is defined
    assert torch.isfinite(model(x)).all() and not any("not finite" in n for n in report.notes)


def test_a_default_rule_that_makes_the_output_non_finite_falls_back_and_says_so():
    model, x = KernelAttention("acos"), _example()
    with pytest.warns(UserWarning, match=r"so attention='kv_zero' was used instead") as caught:
        report = initialize(model, "zero", example_inputs=x)
    assert torch.isfinite(model(x)).all() and torch.isfinite(model(torch.randn(3, 6, 8))).all()
    assert report.options["attention"] == "kv_zero" and len(caught) == 1
    rules = {r.name: r.rule for r in report.records}
    assert (
        rules["attn.key.weight"] == rules["attn.value.weight"] == "zeros" and rules["attn.query.weight"] == "identity"
    )
    with torch.no_grad():
        assert float(model(x).abs().amax()) == 0.0  # ZerO's promise still kept: the logits are 0
    again = KernelAttention("acos")
    with pytest.warns(UserWarning):
        initialize(again, "zero", example_inputs=x)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_an_output_that_was_never_finite_is_not_blamed_on_the_initialisation():
    class Masked(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"logits": self.fc(x), "mask": torch.full((2,), float("-inf"))}

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = initialize(Masked(), "zero", example_inputs=torch.randn(3, 4))
    assert not any("not finite" in n for n in report.notes)


def test_a_fallback_that_is_no_better_leaves_the_default_as_asked():
    x = _example()
    with pytest.warns(UserWarning, match="output is not finite") as caught:
        report = initialize(model := KernelAttention("raw_cosine"), "zero", example_inputs=x)
    assert "attention" not in report.options and not any("was used instead" in str(w.message) for w in caught)
    plain = KernelAttention("raw_cosine")
    with pytest.warns(UserWarning):
        initialize(plain, "zero", attention="identity", example_inputs=x)  # the default, with no fallback
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), plain.state_dict().values()))
