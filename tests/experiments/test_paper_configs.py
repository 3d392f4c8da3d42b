"""Every paper-scale config starts and runs a few steps at reduced size (synthetic data of the same shape)."""

import dataclasses
import json
from pathlib import Path

import pytest

from detinit.experiments import load_study
from detinit.train import TrainConfig, train

PAPER = sorted((Path(__file__).parents[2] / "configs" / "paper").glob("*.yaml"))
SHAPES = {
    "cifar10": (3, 32, 10),
    "cifar100": (3, 32, 100),
    "mnist": (1, 28, 10),
    "fashion_mnist": (1, 28, 10),
    "imagenet": (3, 64, 1000),
}  # ImageNet networks run at 64 x 64 here: reduced size


def reduced(config):
    small = dict(
        epochs=1,
        batch_size=8,
        max_steps_per_epoch=2,
        diagnostics_every=0,
        progress=False,
        tensorboard=False,
        threads=2,
        symmetry="rounding" if config.symmetry == "gpu" else config.symmetry,  # 'gpu' needs CUDA
    )
    if config.schedule == "step":  # its milestones lie past a one-epoch run, where the config refuses them
        small |= dict(schedule="constant", milestones=[], gamma=TrainConfig().gamma)
    if config.data == "kjv":  # language models keep their (real) data, with short windows and a small model
        return dataclasses.replace(
            config,
            model_args={**config.model_args, "depth": 2, "width": 32, "heads": 2},
            data_args={**config.data_args, "context": 32},
            test_subset=16,
            **small,
        )
    in_chans, size, classes = SHAPES[config.data]
    return dataclasses.replace(
        config,
        data="synthetic",
        data_root=None,
        train_subset=None,
        test_subset=None,
        data_args={"num_examples": 16, "in_chans": in_chans, "image_size": size, "num_classes": classes},
        **small,
    )


def test_there_are_paper_configs():
    assert {p.stem for p in PAPER} >= {
        "zero_cifar10_resnet18",
        "zero_cifar10_no_bn",
        "zero_mnist_mlp_rank",
        "constnet_cifar10",
        "leakynet_cifar10",
        "zero_imagenet_resnet50",
        "zero_gpt_kjv_depth",
    }


@pytest.mark.parametrize("path", PAPER, ids=[p.stem for p in PAPER])
def test_each_run_of_each_paper_config_starts_and_trains_two_steps(path, tmp_path):
    study = load_study(path)
    seen = set()
    for spec in study.runs:
        config = reduced(spec.config)
        key = json.dumps(config.replace(seed=0).to_dict(), sort_keys=True, default=str)
        if key in seen:  # seeds, and sizes the reduction makes equal, run once
            continue
        seen.add(key)
        result = train(config, tmp_path / spec.run_id)
        assert result.status == "complete" and result.final["step"] == 2, spec.run_id
