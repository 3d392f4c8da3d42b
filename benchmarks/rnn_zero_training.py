"""Docs/results.md section 9: recurrent layers under ZerO against random schemes, row-by-row Fashion-MNIST.

    .venv/bin/python benchmarks/rnn_zero_training.py               # about 10 minutes on 2 CPU cores
    .venv/bin/python benchmarks/rnn_zero_training.py --steps 100   # a quick look

Each image is a sequence of its 28 rows (28 features each); a one-layer RNN / LSTM / GRU with 64 hidden
units reads it and a Linear layer classifies its last hidden state. Adam, batch 128, the same batches for
every scheme of a seed. Rows: cell x scheme (``own`` is torch's default, U(-1/sqrt(H), 1/sqrt(H)));
columns: test accuracy on the first 2,000 test images after ``--steps`` steps, mean +- std over seeds
(the seed orders the batches; ZerO's weights do not depend on it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from detinit import initialize  # noqa: E402
from detinit.argtypes import positive_float, positive_int  # noqa: E402
from detinit.data import load_dataset  # noqa: E402

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
SCHEMES = ("zero", "orthogonal", "xavier", "own")


class RowReader(nn.Module):
    """An image read row by row by a recurrent layer; a Linear layer classifies the last hidden state."""

    def __init__(self, cell: str, width: int = 28, hidden: int = 64, num_classes: int = 10) -> None:
        super().__init__()
        self.rnn = CELLS[cell](width, hidden, batch_first=True)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        states, _ = self.rnn(rows)
        return self.head(states[:, -1])


def rows_of(images: torch.Tensor) -> torch.Tensor:
    """``(N, 1, 28, 28)`` uint8 images to ``(N, 28, 28)`` rows, standardised."""
    x = images.float().squeeze(1) / 255.0
    return (x - 0.286) / 0.353


def accuracy(cell: str, scheme: str, seed: int, steps: int, lr: float, data: dict) -> float:
    torch.manual_seed(seed)  # torch's own init draws from the global generator
    model = RowReader(cell)
    if scheme != "own":
        initialize(model, scheme, strict=True, example_inputs=data["test_x"][:2], seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed)
    train_x, train_y = data["train_x"], data["train_y"]
    for _ in range(steps):
        idx = torch.randint(0, train_x.shape[0], (128,), generator=order)
        loss = nn.functional.cross_entropy(model(train_x[idx]), train_y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred = model(data["test_x"]).argmax(1)
    return 100.0 * (pred == data["test_y"]).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=positive_int, default=500)
    parser.add_argument("--seeds", type=positive_int, default=2, help="seeds 0 .. N-1")
    parser.add_argument("--lr", type=positive_float, default=2e-3)
    args = parser.parse_args()
    train, test = load_dataset("fashion_mnist", "train"), load_dataset("fashion_mnist", "test")
    data = {
        "train_x": rows_of(train.images),
        "train_y": train.labels,
        "test_x": rows_of(test.images[:2000]),
        "test_y": test.labels[:2000],
    }
    print(f"test accuracy (%) after {args.steps} Adam steps, lr {args.lr:g}, batch 128, {args.seeds} seeds")
    print("| cell | " + " | ".join(SCHEMES) + " |")
    print("|---|" + "---|" * len(SCHEMES))
    for cell in CELLS:
        cells = []
        for scheme in SCHEMES:
            accs = [accuracy(cell, scheme, seed, args.steps, args.lr, data) for seed in range(args.seeds)]
            spread = statistics.stdev(accs) if len(accs) > 1 else 0.0
            cells.append(f"{statistics.mean(accs):.1f} ± {spread:.1f}")
        print(f"| {cell} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
