"""Docs/results.md section 8: final / first loss of 30 AdamW steps on one batch, Hugging Face tiny models.

    .venv/bin/python benchmarks/hf_zero_training.py          # about 90 s on 2 CPU cores

The models and batches are those of ``tests/init/test_hugging_face.py``. First table: ZerO with roles traced
from one forward pass (no ``roles=``) and the model's own initialisation; columns: learning rates, and ZerO
with the scale of a tied output's final norm learning at 10 x lr (``param_groups``). Then,
for the slow starts: the loss over 200 steps (lr 3e-3), and untied T5 under ZerO with one group of
parameters copied from T5's own initialisation; and the classifiers that read [CLS] / the cls token with
their output layer at 0 (a saddle) or as ZerO now starts it (``detinit.init.apply.readout``).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from detinit import initialize  # noqa: E402
from detinit.argtypes import no_options  # noqa: E402
from tests.init.test_hugging_face import MODELS, adamw_losses, batch, build  # noqa: E402


def ratio(name: str, scheme: str | None, lr: float, classifier_norm_lr_factor: float = 1.0) -> float:
    torch.manual_seed(0)  # the models' own init and their dropout draw from the global generator
    model = build(name)
    report = initialize(model, scheme, strict=True) if scheme is not None else None
    losses = adamw_losses(model, batch(name), lr, report=report, classifier_norm_lr_factor=classifier_norm_lr_factor)
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
    no_options(__doc__)
    columns = [(scheme, lr, 1.0) for scheme in ("zero", None) for lr in (1e-3, 3e-3, 1e-2)]
    columns.insert(3, ("zero", 1e-2, 10.0))
    print(
        "| model | "
        + " | ".join(f"{s or 'own init'}, lr {lr:g}" + (f", scale {k:g}x" if k != 1 else "") for s, lr, k in columns)
        + " |"
    )
    print("|---|" + "---|" * len(columns))
    for name in [*MODELS, "gpt2_untied", "t5_untied"]:
        print(f"| {name} | " + " | ".join(f"{ratio(name, *column):.2f}" for column in columns) + " |")
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
    print("\nclassifiers reading [CLS] / the cls token: loss after k AdamW steps, lr 3e-3")
    print("| model | output layer at init | k = 1 | k = 30 | k = 100 |")
    print("|---|---|---|---|---|")
    for name in ("bert", "vit"):
        for escape in (False, True):
            curve = readout_losses(name, escape, 100)
            rule = "rows orthogonal to the readout (default)" if escape else "0 (the saddle)"
            print(f"| {name} | {rule} | {curve[0]:.2f} | {curve[29]:.2f} | {curve[99]:.2f} |")


def readout_losses(name: str, escape: bool, steps: int) -> list[float]:
    """ZerO's losses with the output layer as initialised (``escape``) or set back to 0."""
    torch.manual_seed(0)  # dropout draws from the global generator, as in ratio() and losses()
    model = build(name)
    initialize(model, "zero", strict=True)
    if not escape:
        with torch.no_grad():
            model.classifier.weight.zero_()
    return adamw_losses(model, batch(name), 3e-3, steps=steps)


if __name__ == "__main__":
    main()
