"""Issue 31's tied language models: the share of the initial loss that AdamW removes in 30 and 100 steps.

    .venv/bin/python benchmarks/tied_lm_start.py                         # ZerO's gains, one seed: 2 min, 2 cores
    .venv/bin/python benchmarks/tied_lm_start.py --inits schemes --seeds 0 1 2   # every scheme: about 15 min

GPT-2 and T5 from Hugging Face configs (2 layers, width 64, 4 heads, vocabulary 1,000, the output layer tied to
the token embedding), one fixed batch of 8 sequences of 32 tokens, AdamW (weight decay 0.01) at lr 1e-3 and
1e-2 over ``model.parameters()``: no optimiser groups. Each cell is ``1 - loss_k / loss_0``, the share of the
first loss removed after ``k`` steps, and in brackets ZerO's share divided by the model's own initialisation's
(issue 31's target: >= 0.8). Seed ``s`` draws the batch, the model's own init (``torch.manual_seed(s)``) and a
random scheme's (``seed=s``); with several seeds a cell is the mean ± std over them. ``--inits schemes`` compares
every scheme that applies to these models (SkipInit and ReZero need a scalar gate on each residual branch, which
these models do not have: ``initialize`` refuses them). ZerO's output layer is
tied, so its zero is on the final norm's scale; ``output_gain`` is the slope at 0 of the function that computes
that scale (:mod:`detinit.init.apply.end_gain`; docs/results.md, section 14).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
import transformers

from detinit.argtypes import random_seed

VOCAB, WIDTH, LAYERS, HEADS, BATCH, LENGTH = 1000, 64, 2, 4, 8, 32
MODELS = ("gpt2", "t5")
STEPS = (30, 100)
LRS = (1e-3, 1e-2)


def build(name: str) -> torch.nn.Module:
    """A tied GPT-2 or T5 of the issue's size."""
    t = transformers
    if name == "gpt2":
        config = t.GPT2Config(n_layer=LAYERS, n_embd=WIDTH, n_head=HEADS, vocab_size=VOCAB, n_positions=LENGTH,
                              bos_token_id=0, eos_token_id=0)  # fmt: skip
        return t.GPT2LMHeadModel(config)
    if name == "t5":
        config = t.T5Config(num_layers=LAYERS, d_model=WIDTH, d_ff=4 * WIDTH, num_heads=HEADS, d_kv=WIDTH // HEADS,
                            vocab_size=VOCAB, decoder_start_token_id=0)  # fmt: skip
        return t.T5ForConditionalGeneration(config)
    raise ValueError(f"build: model {name!r} is not one of {MODELS}")


def batch(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1 + seed)
    ids = torch.randint(0, VOCAB, (BATCH, LENGTH), generator=g)
    if name == "t5":
        return {"input_ids": ids, "labels": torch.randint(0, VOCAB, (BATCH, LENGTH // 2), generator=g)}
    return {"input_ids": ids, "labels": ids}


def losses(model: torch.nn.Module, inputs: dict[str, torch.Tensor], lr: float, steps: int) -> list[float]:
    """The loss before each of ``steps`` AdamW steps and after the last."""
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    out = []
    for _ in range(steps):
        loss = model(**inputs).loss
        out.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        out.append(model(**inputs).loss.item())
    return out


Init = Callable[[torch.nn.Module, int], None]


def own(model: torch.nn.Module, seed: int) -> None:
    """Leave the model's own initialisation (drawn under ``torch.manual_seed(seed)`` by :func:`main`)."""


def scheme(name: str, random: bool = False, **options: object) -> Init:
    from detinit import initialize

    def init(model: torch.nn.Module, seed: int) -> None:
        initialize(model, name, strict=True, **({"seed": seed} if random else {}), **options)

    return init


GAINS: dict[str, Init] = {
    "own": own,
    "zero, output_gain 1 (plain zero scale)": scheme("zero", output_gain=1.0),
    "zero (default: output_gain 300)": scheme("zero"),
    "zero, output_gain 1000": scheme("zero", output_gain=1000.0),
}
SCHEMES: dict[str, Init] = {
    "own": own,
    "zero (default)": scheme("zero"),
    "zero (paper)": scheme("zero", variant="paper"),
    "kaiming": scheme("kaiming", random=True),
    "xavier": scheme("xavier", random=True),
    "kaiming, zero-init-last": scheme("kaiming", random=True, zero_init_last=True),
    "fixup": scheme("fixup", random=True),
    "tfixup": scheme("tfixup", random=True),
    "gpt2": scheme("gpt2", random=True),
    "idinit": scheme("idinit"),
}
INITS = {"gains": GAINS, "schemes": SCHEMES}


def cell(values: list[float], own_values: list[float] | None) -> str:
    """``mean`` (± std over seeds), and in brackets the mean divided by the model's own init's."""
    mean = sum(values) / len(values)
    text = f"{mean:.3f}"
    if len(values) > 1:
        text += f" ± {(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5:.3f}"
    if own_values is not None:
        text += f" ({mean / (sum(own_values) / len(own_values)):.2f})"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--inits", choices=sorted(INITS), default="gains", help="ZerO's gains, or every scheme")
    parser.add_argument("--seeds", nargs="+", type=random_seed, default=[0])
    args = parser.parse_args()
    columns = [(lr, k) for lr in LRS for k in STEPS]
    print("| model | init | " + " | ".join(f"lr {lr:g}, {k} steps" for lr, k in columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for name in args.models:
        shares: dict[str, list[list[float]]] = {}  # label -> per column, the share of each seed
        for label, init in INITS[args.inits].items():
            per_column: list[list[float]] = [[] for _ in columns]
            for seed in args.seeds:
                for i, lr in enumerate(LRS):
                    torch.manual_seed(seed)
                    model = build(name)
                    init(model, seed)
                    curve = losses(model, batch(name, seed), lr, max(STEPS))
                    for j, k in enumerate(STEPS):
                        per_column[i * len(STEPS) + j].append(1 - curve[k] / curve[0])
            shares[label] = per_column
            base = shares["own"] if label != "own" else [None] * len(columns)
            cells = [cell(values, own_values) for values, own_values in zip(per_column, base)]
            print(f"| {name} | {label} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
