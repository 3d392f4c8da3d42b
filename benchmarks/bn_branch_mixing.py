"""Docs/results/14-fast-start.md: probes of ZerO's start on the BatchNorm ResNet-20, each a change of the default
that keeps every block the identity at step 0 (the zero stays on the branch's last BatchNorm scale, ``end_gain``):

* ``--variant mixing`` (default): each residual branch's square convs mix their channels on every tap
  (``hadamard_mixing_(taps="all")``, as the norm-free default's branches) instead of ZerO's identity convs. Both
  convs get the first layer's mixing (gain sqrt 2, columns not reversed): where a norm after a branch's last layer
  carries the zero, the library asks the scheme for that layer as an ordinary branch layer
  (``detinit.init.apply.resolve``), and the BatchNorms make the gain immaterial to the forward pass.
* ``--variant scaled --scale s``: the branch convs' identities times ``s``. The forward pass is the same (each conv
  is followed by a BatchNorm), but SGD's step on a conv before a BatchNorm turns it by about lr / ||row||^2: ZerO's
  identity rows (norm 1) turn twice as fast as Kaiming's (norm sqrt 2 in expectation); ``s`` tests that.
* ``--variant he_rows``: every conv's rows (stem, branches, shortcuts: each is followed by a BatchNorm here) at
  He's norm sqrt 2, the norm Kaiming's rows have in expectation.
* ``--variant transition``: ``mixing``, and the two blocks that change the width (a projection shortcut: they are
  not the identity at any initialisation) start with their branch on: its last BatchNorm scale at 1 instead of 0
  (the block declares its last conv an ordinary branch layer and no ``branch_last_norm``). The other seven blocks
  stay the identity; stage 3's features at step 0 are no longer a fixed expansion of stage 1's.
* ``--variant transition_identity``: the same two branches on, with ZerO's identity convs (no mixing): the control.
* ``--variant open_first``: ``stage_first`` with the mixing only in those three open blocks; the other six keep
  ZerO's identity convs (bitwise the default there). The open blocks declare their convs ``"default"`` (an ordinary
  layer, no zero anywhere in the block), and the probe mixes every square ordinary conv (only theirs are square).
* ``--variant all_on``: every branch on at step 0 (no block is the identity: each ends in a BatchNorm at scale 1,
  as under Kaiming's init), the branches' convs mixed on every tap: a deterministic start with Kaiming's structure.
* ``--variant stage_first``: ``transition``, and the first block of the first stage on too (its shortcut is the
  identity: that block is no longer the identity at step 0), so stage 1's features mix as well.

Each seed also prints the participation ratio of every block's output at init (train mode) and after training
(eval mode), as ``run_features.py`` does for a study's runs.

    .venv/bin/python benchmarks/bn_branch_mixing.py --seeds 0 1 2      # about 4 minutes a seed on the 2-core VM
    .venv/bin/python benchmarks/bn_branch_mixing.py --variant scaled --scale 1.4142135623730951 --seeds 0 1 2

The recipe of ``configs/studies/baselines_resnet20_fashion_mnist.yaml``'s BatchNorm rows at 256 steps (8,192
Fashion-MNIST images, batch 128, SGD lr 0.1 with momentum 0.9, weight decay 5e-4, cosine with one warm-up epoch,
fp32), through :func:`detinit.train.train`, one run directory a seed under ``--out`` (a second call reuses them).
Prints each seed's final test accuracy (the study's "bn zero" and "bn kaiming" rows are the references).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from gate_coherence import branch_mixing_  # noqa: E402 (this folder)
from run_features import participation  # noqa: E402 (this folder)

from detinit.argtypes import output_folder, positive_float, positive_int, random_seed  # noqa: E402
from detinit.data import load_dataset, probe_batch  # noqa: E402
from detinit.init.roles.layers import Matrix  # noqa: E402
from detinit.init.roles.vocabulary import LayerInfo  # noqa: E402
from detinit.init.schemes import ParamRule  # noqa: E402
from detinit.init.schemes.registry import SCHEMES  # noqa: E402
from detinit.init.schemes.zero import ZerOScheme, he_rows_rule, scaled_rule  # noqa: E402
from detinit.models.resnet import BasicBlock, ResNet  # noqa: E402
from detinit.train import TrainConfig, build_model, load_checkpoint, read_jsonl, train  # noqa: E402

SCHEME = "bn_branch_probe"
VARIANTS = ("mixing", "scaled", "he_rows", "transition", "transition_identity", "stage_first", "all_on", "open_first")
OWN_ROLES = BasicBlock.detinit_roles
OWN_INIT = ResNet.__init__


def transition_roles(block: BasicBlock) -> dict[str, str]:
    """A block with a projection shortcut: its last conv an ordinary branch layer, no zero on its last BatchNorm."""
    if isinstance(block.shortcut, nn.Identity) and not getattr(block, "starts_on", False):
        return OWN_ROLES(block)
    return {"conv1": "branch", "conv2": "branch"}


def branch_on_roles(block: BasicBlock) -> dict[str, str]:
    """Every block: its last conv an ordinary branch layer, no zero on its last BatchNorm (``--variant all_on``)."""
    return {"conv1": "branch", "conv2": "branch"}


def open_roles(block: BasicBlock) -> dict[str, str]:
    """``--variant open_first``: a block marked ``starts_on`` declares its convs ordinary layers."""
    return {"conv1": "default", "conv2": "default"} if getattr(block, "starts_on", False) else OWN_ROLES(block)


def mark_first_blocks(model: ResNet, *args: object, **kwargs: object) -> None:
    """``ResNet.__init__``, then the first block of every stage marked ``starts_on`` (``--variant stage_first``)."""
    OWN_INIT(model, *args, **kwargs)
    for stage in model.stages:
        stage[0].starts_on = True


class ProbedBranches(ZerOScheme):
    """ZerO's default with one of the probes of the module docstring (``probe``, with ``scale`` for ``"scaled"``)."""

    def __init__(self, probe: str = "mixing", scale: float = 1.0, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.probe, self.scale = probe, scale

    def matrix_rule(self, matrix: Matrix, layer: LayerInfo) -> ParamRule | None:
        rule = super().matrix_rule(matrix, layer)
        if self.probe == "he_rows":  # every conv of the BatchNorm ResNet-20 is followed by a BatchNorm
            return rule if rule is None or layer.role == "classifier" or rule.rule == "zeros" else he_rows_rule(rule)
        square = matrix.out_features == matrix.in_features and matrix.groups == 1 and not matrix.transposed
        if self.probe == "open_first":  # mixing in the open blocks only: their convs are declared "default"
            mixed = square and layer.role == "default"
            return ParamRule("mixing", "", lambda w, g: branch_mixing_(w, False, taps="all")) if mixed else rule
        if layer.role not in ("branch", "branch_last") or not square:
            return rule
        if self.probe == "transition_identity":  # ZerO's own convs
            return rule
        if self.probe == "scaled":
            return scaled_rule(rule, self.scale, f"branch conv times {self.scale:g} (bn_branch_mixing.py)")
        last = layer.role == "branch_last"
        return ParamRule("mixing", "", lambda w, g: branch_mixing_(w, last, taps="all"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=random_seed, default=[0, 1, 2])
    parser.add_argument("--epochs", type=positive_int, default=4, help="of 64 steps (4: the parity budget)")
    parser.add_argument("--variant", choices=VARIANTS, default="mixing", help="the probe (see the docstring)")
    parser.add_argument("--scale", type=positive_float, help="--variant scaled: the branch convs' factor")
    parser.add_argument("--out", type=output_folder, default="runs/bn_branch_mixing", help="the runs' folder")
    args = parser.parse_args()
    if (args.scale is None) == (args.variant == "scaled"):
        parser.error("--scale goes with --variant scaled, and only with it")
    if SCHEME not in SCHEMES:
        SCHEMES.add(SCHEME, lambda **kw: ProbedBranches(**kw), "benchmarks/bn_branch_mixing.py")
    probe = {"probe": args.variant, **({"scale": args.scale} if args.scale is not None else {})}
    probe |= {"open_blocks": "none", "branch_mixing": False}  # each probe changes session 26's default
    tag = (
        f"scaled{args.scale:g}-" if args.variant == "scaled" else "" if args.variant == "mixing" else f"{args.variant}-"
    )
    if args.variant.startswith("transition") or args.variant == "stage_first":
        BasicBlock.detinit_roles = transition_roles  # type: ignore[method-assign]
    if args.variant == "all_on":
        BasicBlock.detinit_roles = branch_on_roles  # type: ignore[method-assign]
    if args.variant == "open_first":
        BasicBlock.detinit_roles = open_roles  # type: ignore[method-assign]
    if args.variant in ("stage_first", "open_first"):
        ResNet.__init__ = mark_first_blocks  # type: ignore[method-assign]
    for seed in args.seeds:
        config = TrainConfig.from_dict(
            dict(
                model="resnet20", data="fashion_mnist", train_subset=8192, test_subset=2000, batch_size=128, lr=0.1,
                weight_decay=5e-4, schedule="cosine", warmup_epochs=1, epochs=args.epochs, seed=seed, init=SCHEME,
                init_options=probe, threads=1, progress=False,
            )
        )  # fmt: skip
        folder = args.out / f"{tag}e{args.epochs}-s{seed}"
        train(config, folder)
        accuracy = read_jsonl(folder / "metrics.jsonl")[-1]["test_acc"]
        test = load_dataset(config.data, "test", subset=256)
        images = probe_batch(test, 256)
        model = build_model(config, test)
        at_init = participation(model, images, train=True)
        model.load_state_dict(load_checkpoint(folder / "checkpoint.pt")["model"])
        trained = participation(model, images, train=False)
        print(f"seed {seed}: {100 * accuracy:.2f}", flush=True)
        print(f"  participation at init  {' '.join(f'{v:5.1f}' for v in at_init)}")
        print(f"  participation trained  {' '.join(f'{v:5.1f}' for v in trained)}", flush=True)


if __name__ == "__main__":
    main()
