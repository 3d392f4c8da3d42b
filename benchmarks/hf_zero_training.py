"""Docs/results.md section 8: final / first loss of 30 AdamW steps on one batch, Hugging Face tiny models.

    .venv/bin/python benchmarks/hf_zero_training.py          # about a minute on 2 CPU cores

The models and batches are those of ``tests/init/test_hugging_face.py``. Rows: ZerO with roles traced from
one forward pass (no ``roles=``), and the model's own initialisation; columns: learning rates.
"""

from __future__ import annotations

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


def main() -> None:
    print("| model | ZerO, lr 1e-3 | ZerO, lr 3e-3 | own init, lr 1e-3 | own init, lr 3e-3 |")
    print("|---|---|---|---|---|")
    for name in [*MODELS, "gpt2_untied", "t5_untied"]:
        cells = [f"{ratio(name, scheme, lr):.2f}" for scheme in ("zero", None) for lr in (1e-3, 3e-3)]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
