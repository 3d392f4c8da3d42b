"""Docs/results.md section 8: final / first loss of 30 AdamW steps on one batch, Hugging Face tiny models.

    .venv/bin/python benchmarks/hf_zero_training.py          # about 90 s on 2 CPU cores

The models and batches are those of ``tests/init/test_hugging_face.py``. First table: ZerO with roles traced
from one forward pass (no ``roles=``) and the model's own initialisation; columns: learning rates. Then,
for the slow starts: the loss over 200 steps (lr 3e-3), and untied T5 under ZerO with one group of
parameters copied from T5's own initialisation.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from detinit import initialize  # noqa: E402
from tests.init.test_hugging_face import MODELS, adamw_losses, batch, build  # noqa: E402


def ratio(name: str, scheme: str | None, lr: float) -> float:
    torch.manual_seed(0)  # the models' own init and their dropout draw from the global generator
    model = build(name)
    if scheme is not None:
        initialize(model, scheme, strict=True)
    losses = adamw_losses(model, batch(name), lr)
    return losses[-1] / losses[0]


# groups of T5 parameters (regular expressions on their names) copied from T5's own init into the ZerO init
T5_GROUPS = {
    "none (ZerO everywhere)": [],
    "lm_head": [r"^lm_head"],
    "attention q, k (all)": [r"\.(q|k)\.weight"],
    "attention o": [r"\.o\.weight"],
    "feed-forward wo": [r"\.wo\.weight"],
    "token embeddings": [r"embed_tokens", r"^shared"],
    "relative position bias": [r"relative_attention_bias"],
    "everything but lm_head": [r"^(encoder|decoder|shared)"],
}
STEPS = (1, 30, 100, 200)


def losses(name: str, scheme: str | None, steps: int, own: list[str] = ()) -> list[float]:
    """The losses of ``steps`` AdamW steps (lr 3e-3); parameters matching ``own`` keep the model's own init."""
    torch.manual_seed(0)
    model = build(name)
    mine = {k: v.detach().clone() for k, v in model.named_parameters()}
    if scheme is not None:
        initialize(model, scheme, strict=True)
    with torch.no_grad():
        for k, p in model.named_parameters():
            if any(re.search(pattern, k) for pattern in own):
                p.copy_(mine[k])
    return adamw_losses(model, batch(name), 3e-3, steps=steps)


def main() -> None:
    print("| model | ZerO, lr 1e-3 | ZerO, lr 3e-3 | own init, lr 1e-3 | own init, lr 3e-3 |")
    print("|---|---|---|---|---|")
    for name in [*MODELS, "gpt2_untied", "t5_untied"]:
        cells = [f"{ratio(name, scheme, lr):.2f}" for scheme in ("zero", None) for lr in (1e-3, 3e-3)]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\nloss after k AdamW steps, lr 3e-3")
    print("| model | init | " + " | ".join(f"k = {k}" for k in STEPS) + " |")
    print("|---|---|" + "---|" * len(STEPS))
    for name in ("gpt2", "t5", "t5_untied"):
        for scheme in ("zero", None):
            curve = losses(name, scheme, max(STEPS))
            print(f"| {name} | {scheme or 'own'} | " + " | ".join(f"{curve[k - 1]:.2f}" for k in STEPS) + " |")
    print("\nT5 untied, ZerO with one group from T5's own init: loss after k AdamW steps, lr 3e-3")
    print("| own init for | k = 30 | k = 100 |")
    print("|---|---|---|")
    for group, patterns in T5_GROUPS.items():
        curve = losses("t5_untied", "zero", 100, patterns)
        print(f"| {group} | {curve[29]:.2f} | {curve[99]:.2f} |")


if __name__ == "__main__":
    main()
