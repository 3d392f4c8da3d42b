"""Helpers of the multi-process trainer tests: launching ``detinit train`` under torchrun, and the run they
compare with one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from detinit.train import TrainConfig

QUIET = {"progress": False, "tensorboard": False, "threads": 1}


def fixup_resnet20_config(**changes: object) -> TrainConfig:
    """A Fixup ResNet-20 without norms on small synthetic images: per-rank batch statistics do not enter,
    so a data-parallel run equals one process up to the order of float additions (in fp32 and NCHW, which
    the comparisons' tolerances are for)."""
    base = dict(
        model="resnet20",
        model_args={"norm": "none"},
        init="fixup",
        data="synthetic",
        data_args={"num_examples": 256, "image_size": 8},
        epochs=2,
        batch_size=32,
        lr=0.05,
        amp=False,
        channels_last=False,
        **QUIET,
    )
    return TrainConfig(**(base | changes))


def torchrun_train(config: TrainConfig, out: Path, port: int, *, wait: bool = True) -> subprocess.Popen | None:
    """``torchrun --nproc_per_node=2 -m detinit train`` on ``config`` (written beside ``out``), one thread a
    rank. Waits and asserts success, or with ``wait=False`` returns the running torchrun process."""
    config_file = out.with_name(out.name + ".json")
    config_file.write_text(json.dumps(config.to_dict()))
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--nproc_per_node=2", f"--master_port={port}", "-m", "detinit", "train"]
    cmd += ["--config", str(config_file), "--out", str(out)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return None
