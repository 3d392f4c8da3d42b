"""Training configuration: one validated dataclass, loadable from YAML or TOML, with ``key=value`` overrides.

>>> cfg = TrainConfig.from_dict({"model": "resnet20", "epochs": 2})
>>> cfg.apply_overrides(["lr=0.05", "model_args.norm=none"]).lr
0.05
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..contract import checked_arguments
from ..values import SEEDS, interval, is_int, is_number, is_seed
from .modes import NATIVE

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("constant", "step", "cosine", "constnet")
DEVICES = ("auto", "cpu", "cuda")
PARALLEL = ("ddp", "fsdp")  # under torchrun: replicated model (DDP) or sharded (FSDP2, detinit.train.fsdp)
FSDP_REFUSED_MECHANISMS = ("rounding", "weight_noise")  # they act on whole parameters, FSDP holds shards


class ConfigError(ValueError):
    """A configuration value or key is invalid; the message names it and what is allowed."""


@dataclass
class TrainConfig:
    """Everything that defines one training run (with the seed and thread count, it reproduces the run)."""

    # model and initialisation
    model: str = "zero_resnet20"
    model_args: dict[str, Any] = field(default_factory=dict)
    init: str | None = None  # scheme; None = the model's own default
    init_options: dict[str, Any] = field(default_factory=dict)
    # data
    data: str = "fashion_mnist"
    data_root: str | None = None
    data_args: dict[str, Any] = field(default_factory=dict)
    train_subset: int | None = None
    test_subset: int | None = None
    augment: bool = False
    data_workers: int = 2  # DataLoader workers for streamed (image-folder) datasets
    # optimisation
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    scalar_lr_factor: float = 1.0  # lr multiplier for 0-dim parameters (Fixup's scalar biases and gates use 0.1)
    branch_norm_lr_factor: float = 1.0  # lr multiplier for the scales of branch_last_norm layers (start at 0)
    classifier_norm_lr_factor: float = 1.0  # lr multiplier for the scale of a tied output's final norm (starts at 0)
    schedule: str = "cosine"
    milestones: list[int] = field(default_factory=list)  # epochs, for schedule="step"
    gamma: float = 0.1  # step factor; "constnet" uses 0.2 at E-140, E-80, E-40
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    max_steps_per_epoch: int | None = None  # cap, for smoke runs of paper-scale configs
    # symmetry breaking and diagnostics
    symmetry: str | None = None  # a mechanism of detinit.symmetry; None = torch's defaults
    symmetry_args: dict[str, float] = field(default_factory=dict)
    diagnostics_every: int = 0  # epochs; 0 = off
    # run
    seed: int = 0  # dropout, symmetry-breaking noise, and the two below unless set
    init_seed: int | None = None  # the initialisation's generator (random schemes); None = seed
    data_seed: int | None = None  # training/test subsets, data order and augmentation; None = seed
    threads: int | None = None  # torch threads on CPU; None = torch's default, recorded
    device: str = "auto"
    parallel: str = "ddp"  # with torchrun: "ddp" (replicated) or "fsdp" (sharded, built on meta)
    # execution modes (detinit.train.modes): None = chosen for the model
    amp: bool | str | None = None  # bfloat16 autocast (CPU or CUDA); "native": only where the device computes bf16
    channels_last: bool | None = None  # NHWC memory format for 4-D activations and kernels
    compile: bool | None = None  # torch.compile
    progress: bool = True
    tensorboard: bool = True  # when the tensorboard package is installed

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build and validate; unknown keys are an error naming close matches."""
        names = [f.name for f in fields(cls)]
        unknown = [k for k in data if k not in names]
        if unknown:
            hints = [
                f"{k!r}"
                + (
                    f" (did you mean {difflib.get_close_matches(k, names, 1)[0]!r}?)"
                    if difflib.get_close_matches(k, names, 1)
                    else ""
                )
                for k in unknown
            ]
            raise ConfigError(f"unknown config key(s) {', '.join(hints)}; allowed keys: {', '.join(names)}")
        cfg = cls(**data)
        cfg.validate()
        return cfg

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """Read a ``.yaml``/``.yml`` or ``.toml`` file."""
        return cls.from_dict(read_config_file(path))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @checked_arguments()
    def apply_overrides(self, assignments: list[str]) -> TrainConfig:
        """A copy with ``key=value`` (or ``dict_key.sub=value``) assignments; values parse as YAML scalars."""
        data = self.to_dict()
        for item in assignments:
            if "=" not in item:
                raise ConfigError(f"override {item!r} must look like key=value")
            key, raw = item.split("=", 1)
            set_dotted_key(data, key.strip(), parse_scalar(raw), where=f"override {item!r}")
        return TrainConfig.from_dict(data)

    # ---------------------------------------------------------------- validation
    def validate(self) -> None:
        from ..data import list_datasets
        from ..init import list_schemes
        from ..models import list_models
        from ..symmetry import MECHANISMS, make_mechanism

        for name in ("model_args", "init_options", "data_args", "symmetry_args"):
            if not isinstance(getattr(self, name), dict):
                raise ConfigError(f"{name} must be a mapping, got {getattr(self, name)!r}")
        _choice("model", self.model, list_models())
        _choice("data", self.data, list(list_datasets()))
        if self.init is not None:
            _choice("init", self.init, list_schemes())
        self._check_model_and_scheme()
        if self.symmetry is not None:
            _choice("symmetry", self.symmetry, MECHANISMS)
            try:  # the knobs, before a run directory is written
                make_mechanism(self.symmetry, **self.symmetry_args)
            except ValueError as err:
                raise ConfigError(f"symmetry_args: {err}") from None
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("schedule", self.schedule, SCHEDULES)
        _choice("device", self.device, DEVICES)
        if self.symmetry == "gpu" and self.device == "cpu":
            raise ConfigError(
                "symmetry='gpu' (non-deterministic GPU arithmetic) needs device 'cuda' or 'auto' on a GPU"
            )
        _choice("parallel", self.parallel, PARALLEL)
        if self.parallel == "fsdp":
            self._validate_fsdp()
        if self.data_root is not None and not isinstance(self.data_root, str):
            raise ConfigError(f"data_root must be a path (a string) or null, got {self.data_root!r}")
        for name in ("augment", "nesterov", "progress", "tensorboard"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.amp is not None and not isinstance(self.amp, bool) and self.amp != NATIVE:
            raise ConfigError(
                f"amp must be true, false, null (chosen for the model) or {NATIVE!r} (bf16 only where the device "
                f"computes it natively), got {self.amp!r}"
            )
        for name in ("channels_last", "compile"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), bool):
                raise ConfigError(
                    f"{name} must be true, false or null (null: chosen for the model), got {getattr(self, name)!r}"
                )
        for name, low in (("epochs", 1), ("batch_size", 1), ("data_workers", 0)):
            value = getattr(self, name)
            if not is_int(value, low):
                raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.train_subset is not None and is_int(self.train_subset, 1) and self.batch_size > self.train_subset:
            raise ConfigError(
                f"batch_size={self.batch_size} is larger than train_subset={self.train_subset}: no full batch; use "
                f"batch_size <= {self.train_subset}"
            )
        if not is_seed(self.seed):
            raise ConfigError(f"seed must be {SEEDS} (the generators keep 32 bits), got {self.seed!r}")
        for name in ("init_seed", "data_seed"):
            value = getattr(self, name)
            if value is not None and not is_seed(value):
                raise ConfigError(f"{name} must be {SEEDS} or null (null: use seed), got {value!r}")
        for name in ("train_subset", "test_subset", "max_steps_per_epoch", "threads"):
            value = getattr(self, name)
            if value is not None and not is_int(value, 1):
                raise ConfigError(f"{name} must be a positive integer or null, got {value!r}")
        for name, high in (
            ("lr", math.inf),
            ("scalar_lr_factor", math.inf),
            ("branch_norm_lr_factor", math.inf),
            ("classifier_norm_lr_factor", math.inf),
            ("momentum", 1.0),
            ("weight_decay", math.inf),
            ("gamma", math.inf),
            ("warmup_epochs", math.inf),
            ("label_smoothing", 1.0),
        ):
            value = getattr(self, name)
            if not is_number(value, 0.0, high):
                raise ConfigError(f"{name} must be a number in {interval(0.0, high)}, got {value!r}")
        if self.schedule == "step" and not self.milestones:
            raise ConfigError("schedule='step' needs milestones (a list of epochs), e.g. milestones: [30, 60]")
        if not isinstance(self.milestones, list) or any(not is_int(m, 1) for m in self.milestones):
            raise ConfigError(f"milestones must be a list of positive epochs, got {self.milestones!r}")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum == 0):
            raise ConfigError("nesterov=true needs optimizer='sgd' with momentum > 0")
        if not is_int(self.diagnostics_every, 0):
            raise ConfigError(f"diagnostics_every must be an integer >= 0 (epochs), got {self.diagnostics_every!r}")
        self._check_schedule_fits()
        unused = self.unused_keys()
        if unused:
            raise ConfigError(
                "keys set that this config would not read (the run would silently ignore them): "
                + "; ".join(f"{key}={getattr(self, key)!r} is read only with {needs}" for key, needs in unused.items())
            )

    def _check_model_and_scheme(self) -> None:
        """``model_args`` against the model's argument contract, ``init_options`` against the scheme's and
        ``data_args`` against the dataset's options, before any work (what depends on the data, such as sizes
        that must divide, is checked when the model is built)."""
        from ..data.base import DataError, check_dataset_options, gives_tokens
        from ..init import get_scheme
        from ..models import model_entry
        from ..models.for_data import kind_mismatch

        entry = model_entry(self.model)
        try:
            entry.check_arguments(self.model_args)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"model_args of {self.model!r}: {err}") from None
        scheme = self.init or entry.default_init
        try:
            get_scheme(scheme, **entry.init_options(self.init, self.init_options))
        except (TypeError, ValueError) as err:
            raise ConfigError(f"init_options of scheme {scheme!r}: {err}") from None
        try:
            check_dataset_options(self.data, self.data_args)
        except DataError as err:
            raise ConfigError(f"data_args: {err}") from None
        mismatch = kind_mismatch(self.model, gives_tokens(self.data), self.data)
        if mismatch:
            raise ConfigError(mismatch)

    def _check_schedule_fits(self) -> None:
        """Milestones and warm-up inside the run: a milestone at or past the last epoch never decays the rate."""
        if self.schedule == "step":
            late = [m for m in self.milestones if m >= self.epochs]
            if late:
                raise ConfigError(
                    f"milestones {late} are not before the end of the run (epochs={self.epochs}): the rate would "
                    f"never decay there; use epochs in [1, {self.epochs - 1}]"
                )
        if self.warmup_epochs > self.epochs:
            raise ConfigError(f"warmup_epochs={self.warmup_epochs} is longer than the run (epochs={self.epochs})")
        if self.diagnostics_every > self.epochs:
            raise ConfigError(
                f"diagnostics_every={self.diagnostics_every} is longer than the run (epochs={self.epochs}): no "
                f"diagnostics would be measured; use 1 to {self.epochs}, or 0 for none"
            )

    def unused_keys(self) -> dict[str, str]:
        """Keys set away from their defaults that the rest of the config makes inert, each with what would read
        it (``momentum`` under AdamW, ``milestones`` without the step schedule, ``data_root`` for a generated
        dataset...).

        >>> TrainConfig(optimizer="adamw", momentum=0.5).unused_keys()
        {'momentum': "optimizer='sgd'"}
        """
        from ..data import reads_files

        read_when = {
            "milestones": (self.schedule == "step", "schedule='step'"),
            "gamma": (self.schedule == "step", "schedule='step'"),
            "momentum": (self.optimizer == "sgd", "optimizer='sgd'"),
            "symmetry_args": (self.symmetry is not None, "a symmetry mechanism (symmetry: ...)"),
            "data_root": (reads_files(self.data), "a dataset read from files, not the generated " + repr(self.data)),
        }
        defaults = TrainConfig()
        return {
            key: needs
            for key, (read, needs) in read_when.items()
            if not read and getattr(self, key) != getattr(defaults, key)
        }

    def _validate_fsdp(self) -> None:
        """What a sharded run cannot do (each rank holds a shard of every parameter, not the parameter)."""
        if self.channels_last:
            raise ConfigError(
                "channels_last=true with parallel='fsdp': a rank holds row blocks of each kernel, which have no "
                "channels_last layout; set channels_last to false or null, or train with parallel='ddp'"
            )
        if self.diagnostics_every:
            raise ConfigError(
                f"diagnostics_every={self.diagnostics_every} with parallel='fsdp': the diagnostics read whole "
                "weight matrices, which no rank holds under FSDP; set diagnostics_every=0, or train with "
                "parallel='ddp'"
            )
        if self.symmetry in FSDP_REFUSED_MECHANISMS:
            raise ConfigError(
                f"symmetry={self.symmetry!r} with parallel='fsdp': it draws noise for whole parameters, which no "
                "rank holds under FSDP; use 'dropout', 'activation_noise' or 'gradient_noise' (they act on "
                "activations), or train with parallel='ddp'"
            )

    @property
    def task(self) -> str:
        """``"language_modelling"`` for a model fed token ids, else ``"image_classification"``."""
        from ..models import model_entry

        return "language_modelling" if model_entry(self.model).takes_tokens else "image_classification"

    @property
    def seed_of_init(self) -> int:
        """The seed of the initialisation: ``init_seed``, or ``seed`` when it is not set."""
        return self.seed if self.init_seed is None else self.init_seed

    @property
    def seed_of_data(self) -> int:
        """The seed of the subsets, the data order and the augmentation: ``data_seed``, or ``seed``."""
        return self.seed if self.data_seed is None else self.data_seed

    def replace(self, **changes: Any) -> TrainConfig:
        out = dataclasses.replace(self, **changes)
        out.validate()
        return out


def _choice(name: str, value: object, allowed: list[str] | tuple[str, ...]) -> None:
    if value not in allowed:
        close = difflib.get_close_matches(str(value), [str(a) for a in allowed], 2)
        hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
        raise ConfigError(f"{name}={value!r} is not allowed{hint}; allowed values: {', '.join(map(str, allowed))}")


def set_dotted_key(data: dict[str, Any], key: str, value: Any, *, where: str) -> None:
    """Set ``data[key] = value``; a dotted ``head.sub`` key sets one entry of the mapping ``data[head]``.

    The mapping is copied, never changed in place (a study's runs share its base).

    >>> d = {"model_args": {"depth": 20}}
    >>> set_dotted_key(d, "model_args.norm", "none", where="example"); d
    {'model_args': {'depth': 20, 'norm': 'none'}}
    """
    head, _, sub = key.partition(".")
    if not sub:
        data[head] = value
        return
    current = data.get(head)
    if current is not None and not isinstance(current, dict):
        raise ConfigError(f"{where}: {head!r} is not a dict-valued key (it holds {current!r})")
    data[head] = {**(current or {}), sub: value}


_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def parse_scalar(raw: str) -> Any:
    """A ``key=value`` override's value as a YAML scalar (``true``, ``0.1``, ``paper``); unparsable text as is.

    Decimal numbers are numbers whatever YAML 1.1 says (it reads ``1e-5``, without a dot, as a string).

    >>> parse_scalar("1e-5"), parse_scalar("0.1"), parse_scalar("3"), parse_scalar("none"), parse_scalar("true")
    (1e-05, 0.1, 3, 'none', True)
    """
    import yaml

    text = raw.strip()
    if _DECIMAL.fullmatch(text):
        return int(text) if text.lstrip("+-").isdigit() else float(text)
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def load_yaml_unique(text: str, path: str | Path) -> Any:
    """``yaml.safe_load`` that refuses a key given twice in one mapping (plain YAML keeps the later value
    without a word, so ``lr: 0.1`` then ``lr: 0.2`` would silently train at 0.2)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise ConfigError(
                        f"config file {path}: key {key!r} is given twice (lines {seen[key]} and {line}); "
                        "keep one of them"
                    )
                seen[key] = line
            return super().construct_mapping(node, deep=deep)

    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)


@checked_arguments()
def read_config_file(path: str | Path) -> dict[str, Any]:
    """Parse a YAML or TOML config file into a dict (errors name the file)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist" + (" (it is a directory)" if path.is_dir() else ""))
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte {err.object[err.start]:#04x} at position {err.start}); "
            "save it as UTF-8"
        ) from None
    try:
        if path.suffix in (".yaml", ".yml"):
            data = load_yaml_unique(text, path)
        elif path.suffix == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover
                import tomli as tomllib
            data = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"config file {path}: use a .yaml, .yml, .toml or .json file")
    except ConfigError:
        raise
    except Exception as err:  # parse errors of either format
        raise ConfigError(f"config file {path} could not be parsed: {err}") from None
    if data is None or data == {}:
        raise ConfigError(
            f"config file {path} is empty: it sets no key; write the keys to set, or leave the file out for the "
            "defaults"
        )
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values")
    return data
