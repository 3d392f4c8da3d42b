"""Docs/results/14-fast-start.md: ZerO on the BatchNorm ResNet-20 with each residual branch's square convs mixed on
every tap (``hadamard_mixing_(taps="all")``, as the norm-free default's branches) instead of ZerO's identity convs;
the zero stays on the branch's last BatchNorm scale (``end_gain``), so every block is still the identity at step 0.
Both convs get the first layer's mixing (gain sqrt 2, columns not reversed): where a norm after a branch's last
layer carries the zero, the library asks the scheme for that layer as an ordinary branch layer
(``detinit.init.apply.resolve``), and the BatchNorms make the gain immaterial.

    .venv/bin/python benchmarks/bn_branch_mixing.py --seeds 0 1 2      # about 4 minutes a seed on the 2-core VM

The recipe of ``configs/studies/baselines_resnet20_fashion_mnist.yaml``'s BatchNorm rows at 256 steps (8,192
Fashion-MNIST images, batch 128, SGD lr 0.1 with momentum 0.9, weight decay 5e-4, cosine with one warm-up epoch,
fp32), through :func:`detinit.train.train`, one run directory a seed under ``--out`` (a second call reuses them).
Prints each seed's final test accuracy (the study's "bn zero" and "bn kaiming" rows are the references).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from gate_coherence import branch_mixing_  # noqa: E402 (this folder)

from detinit.argtypes import output_folder, positive_int, random_seed  # noqa: E402
from detinit.init.roles.layers import Matrix  # noqa: E402
from detinit.init.roles.vocabulary import LayerInfo  # noqa: E402
from detinit.init.schemes import ParamRule  # noqa: E402
from detinit.init.schemes.registry import SCHEMES  # noqa: E402
from detinit.init.schemes.zero import ZerOScheme  # noqa: E402
from detinit.train import TrainConfig, read_jsonl, train  # noqa: E402

SCHEME = "bn_branch_mixing"


class MixedBranches(ZerOScheme):
    """ZerO's default, but a residual branch's square convs mix their channels on every tap; the branch's zero stays
    on its last norm (so its last conv is asked for as a ``"branch"`` layer and gets the first's mixing)."""

    def matrix_rule(self, matrix: Matrix, layer: LayerInfo) -> ParamRule | None:
        square = matrix.out_features == matrix.in_features and matrix.groups == 1 and not matrix.transposed
        if layer.role in ("branch", "branch_last") and square:
            last = layer.role == "branch_last"
            return ParamRule("mixing", "", lambda w, g: branch_mixing_(w, last, taps="all"))
        return super().matrix_rule(matrix, layer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=random_seed, default=[0, 1, 2])
    parser.add_argument("--epochs", type=positive_int, default=4, help="of 64 steps (4: the parity budget)")
    parser.add_argument("--out", type=output_folder, default="runs/bn_branch_mixing", help="the runs' folder")
    args = parser.parse_args()
    if SCHEME not in SCHEMES:
        SCHEMES.add(SCHEME, lambda **kw: MixedBranches(**kw), "benchmarks/bn_branch_mixing.py")
    for seed in args.seeds:
        config = TrainConfig.from_dict(
            dict(
                model="resnet20", data="fashion_mnist", train_subset=8192, test_subset=2000, batch_size=128, lr=0.1,
                weight_decay=5e-4, schedule="cosine", warmup_epochs=1, epochs=args.epochs, seed=seed, init=SCHEME,
                threads=1, progress=False,
            )
        )  # fmt: skip
        folder = args.out / f"e{args.epochs}-s{seed}"
        train(config, folder)
        accuracy = read_jsonl(folder / "metrics.jsonl")[-1]["test_acc"]
        print(f"seed {seed}: {100 * accuracy:.2f}", flush=True)


if __name__ == "__main__":
    main()
