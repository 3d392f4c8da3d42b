"""Issue 31's tied language models: the share of the initial loss that AdamW removes in 30 and 100 steps.

    .venv/bin/python benchmarks/tied_lm_start.py                 # about 2 min on 2 CPU cores

GPT-2 and T5 from Hugging Face configs (2 layers, width 64, 4 heads, vocabulary 1,000, the output layer tied to
the token embedding), one fixed batch of 8 sequences of 32 tokens, AdamW (weight decay 0.01) at lr 1e-3 and
1e-2 over ``model.parameters()``: no optimiser groups. Each cell is ``1 - loss_k / loss_0``, the share of the
first loss removed after ``k`` steps, and in brackets ZerO's share divided by the model's own initialisation's
(issue 31's target: >= 0.8). The model's own init draws from ``torch.manual_seed(0)``. ZerO's output layer is
tied, so its zero is on the final norm's scale; ``output_gain`` is the slope at 0 of the function that computes
that scale (:mod:`detinit.init.apply.end_gain`; docs/results.md, section 14).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
import transformers

VOCAB, WIDTH, LAYERS, HEADS, BATCH, LENGTH = 1000, 64, 2, 4, 8, 32
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
    raise KeyError(name)


def batch(name: str) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
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


def own(model: torch.nn.Module) -> None:
    """Leave the model's own initialisation."""


def zero(**options: object) -> Callable[[torch.nn.Module], None]:
    from detinit import initialize

    return lambda model: initialize(model, "zero", strict=True, **options)


INITS: dict[str, Callable[[torch.nn.Module], None]] = {
    "own": own,
    "zero, output_gain 1 (plain zero scale)": zero(output_gain=1.0),
    "zero (default: output_gain 300)": zero(),
    "zero, output_gain 1000": zero(output_gain=1000.0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["gpt2", "t5"])
    args = parser.parse_args()
    columns = [(lr, k) for lr in LRS for k in STEPS]
    print("| model | init | " + " | ".join(f"lr {lr:g}, {k} steps" for lr, k in columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for name in args.models:
        shares: dict[str, list[float]] = {}
        for label, init in INITS.items():
            row = []
            for lr in LRS:
                torch.manual_seed(0)
                model = build(name)
                init(model)
                curve = losses(model, batch(name), lr, max(STEPS))
                row += [1 - curve[k] / curve[0] for k in STEPS]
            shares[label] = row
            cells = [f"{s:.3f}" for s in row]
            if label != "own":
                cells = [f"{s:.3f} ({s / o:.2f})" for s, o in zip(row, shares["own"])]
            print(f"| {name} | {label} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
