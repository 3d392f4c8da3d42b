"""Training: a validated config, one run per directory, resume, DDP.

>>> cfg = TrainConfig(model="mnist_mlp", model_args={"hidden": 32}, data="synthetic", epochs=1,
...                   batch_size=64, progress=False, tensorboard=False)
"""

from .checkpoint import CheckpointError, append_jsonl, load_checkpoint, read_jsonl, save_checkpoint, write_json
from .config import ConfigError, TrainConfig, read_config_file
from .param_groups import param_groups
from .rundir import RunDir, RunDirDamaged, RunDirInUse
from .schedule import constnet_milestones, lr_factor_fn
from .trainer import RunResult, TrainingDiverged, build_model, evaluate, train

__all__ = [
    "CheckpointError",
    "ConfigError",
    "RunDir",
    "RunDirDamaged",
    "RunDirInUse",
    "RunResult",
    "TrainConfig",
    "TrainingDiverged",
    "append_jsonl",
    "build_model",
    "constnet_milestones",
    "evaluate",
    "load_checkpoint",
    "lr_factor_fn",
    "param_groups",
    "read_config_file",
    "read_jsonl",
    "save_checkpoint",
    "train",
    "write_json",
]
