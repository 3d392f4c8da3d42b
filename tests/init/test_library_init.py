"""Parameters no scheme knows, set from the model's own library initialiser (``model._init_weights``,
:mod:`detinit.init.apply.library`): constants adopted, draws replaced by their quantiles under deterministic
schemes and drawn from the scheme's generator under random ones, constructor constants kept, the rest unknown."""

from __future__ import annotations

import torch
from torch import nn

from detinit import initialize


class Mixer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 4)
        self.decay_log = nn.Parameter(torch.empty(16))  # drawn: log U(0.01, 16), as Qwen3-Next's A_log
        self.skip = nn.Parameter(torch.empty(4))  # a constant the library sets: 1
        self.mixing = nn.Parameter(torch.zeros(3, 4))  # a drawn matrix (zeros until drawn: torch.empty may hold NaN)
        self.alpha = nn.Parameter(torch.full((2,), 0.8))  # the constructor's constant, the initialiser skips it
        self.noise = nn.Parameter(torch.randn(2))  # the constructor's draw, the initialiser skips it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x) * self.decay_log.exp().mean() + self.skip + self.mixing.sum() + self.alpha.sum()


class Library(nn.Module):
    """A model carrying its library's initialiser, as Hugging Face models do."""

    def __init__(self) -> None:
        super().__init__()
        self.mixer = Mixer()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, Mixer):
            with torch.no_grad():
                module.decay_log.copy_(torch.empty(16).uniform_(0.01, 16).log())
                module.skip.fill_(1.0)
                module.mixing.normal_()


def rules(report) -> dict[str, str]:
    return {r.name: r.rule for r in report.records}


def test_a_deterministic_scheme_adopts_constants_and_the_quantiles_of_draws():
    model = Library()
    state = torch.get_rng_state()
    got = rules(initialize(model, "zero"))
    assert torch.equal(torch.get_rng_state(), state)  # the probe forks the RNG
    assert got["mixer.skip"] == "library" and torch.equal(model.mixer.skip, torch.ones(4))
    assert got["mixer.decay_log"] == "library_quantiles"
    rates = model.mixer.decay_log.exp()
    assert torch.all(rates[1:] >= rates[:-1]) and 0.01 <= rates[0] < 2 and 14 < rates[-1] <= 16
    assert got["mixer.alpha"] == "constructed" and torch.equal(model.mixer.alpha, torch.full((2,), 0.8))
    assert got["mixer.mixing"] == "unknown" and got["mixer.noise"] == "unknown"


def test_quantiles_are_the_same_whatever_the_global_seed():
    values = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = Library()
        initialize(model, "zero")
        values.append(model.mixer.decay_log.detach().clone())
    assert torch.equal(values[0], values[1])


def test_a_random_scheme_draws_from_the_library_with_its_own_generator():
    def draw(seed: int) -> tuple[dict[str, str], torch.Tensor, torch.Tensor]:
        model = Library()
        got = rules(initialize(model, "kaiming", seed=seed))
        return got, model.mixer.decay_log.detach().clone(), model.mixer.mixing.detach().clone()

    (got, decay_a, mixing_a), (_, decay_b, mixing_b), (_, decay_c, _) = draw(0), draw(0), draw(1)
    assert got["mixer.decay_log"] == got["mixer.mixing"] == "library_draw"
    assert torch.equal(decay_a, decay_b) and torch.equal(mixing_a, mixing_b)
    assert not torch.equal(decay_a, decay_c)
    assert 0.01 <= float(decay_a.exp().min()) and float(decay_a.exp().max()) <= 16


def test_a_composite_model_uses_the_initialiser_of_the_part_that_holds_the_parameter():
    class Composite(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.language_model = Library()

        def _init_weights(self, module: nn.Module) -> None:  # knows nothing of the mixer
            pass

    model = Composite()
    got = rules(initialize(model, "zero"))
    assert (
        got["language_model.mixer.skip"] == "library" and got["language_model.mixer.decay_log"] == "library_quantiles"
    )
