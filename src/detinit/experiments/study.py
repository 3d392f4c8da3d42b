"""A study: a grid of training runs from one config file.

A study file (YAML or TOML)::

    name: quick
    out: runs/quick                 # default runs/<name>
    workers: 2                      # processes, one torch thread each (CPU)
    base:                           # TrainConfig keys shared by every run
      model: resnet20
      data: fashion_mnist
      epochs: 3
    grid:                           # the cartesian product of these lists
      init: [zero, kaiming, xavier]
      seed: [0, 1]
    variants:                       # optional: named overrides, crossed with the grid
      - {name: bn}
      - {name: no_bn, model_args.norm: none, tags: {norm: none}}   # tags: labels that are not config keys
    group_by: [variant, init]       # report rows (default: every grid key but seed, and the variant)
    panel_by: [norm, epochs]        # optional: figure panels, one column per value of the last label (and one row
                                    # per value of the first); the report's "By" table has a column per value

``detinit study --only epochs=4`` runs part of a grid first (:func:`select_runs`); the report always
covers the whole study, counting the runs not done yet.

Each run gets a directory ``<out>/runs/<run id>``; a complete run is skipped,
a partial one resumed (see :func:`detinit.train.train`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..atomic import OutputDirError, check_output_dir
from ..contract import check_fields, checked_arguments
from ..train.config import ConfigError, TrainConfig, read_config_file, set_dotted_key
from ..values import is_int

STUDY_KEYS = ("name", "out", "workers", "base", "grid", "variants", "group_by", "panel_by", "description")


@dataclass(frozen=True)
class RunSpec:
    """One run of a study: its id, the labels it is grouped by, and its config."""

    run_id: str
    labels: dict[str, Any]
    config: TrainConfig

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class Study:
    """A parsed, validated study."""

    name: str
    out: Path
    runs: list[RunSpec]
    group_by: list[str]
    workers: int = 1
    description: str = ""
    source: dict[str, Any] = field(default_factory=dict)
    panel_by: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        """A study built by hand holds what :func:`parse_study` would have put in it."""
        check_fields(self)  # runs: a list of RunSpec (the contract's list[X])


def _slug(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", str(value)).strip("-") or "x"


_SAFE_NAME = re.compile(r"(?!\.\.?$)[A-Za-z0-9._-]+")  # a file name: not '.', not '..', no separators


def _tags(variant: dict[str, Any], study: str, labels: set[str]) -> dict[str, Any]:
    """A variant's ``tags``: labels for grouping and panels that are neither config keys nor part of a run's id
    (adding them to a study that has run keeps its runs)."""
    tags = variant.get("tags") or {}
    if not isinstance(tags, dict) or any(not isinstance(k, str) or k in labels for k in tags):
        raise ConfigError(
            f"study {study!r}, variant {variant.get('name')!r}: tags must be a mapping of new label names to values "
            f"(not {sorted(labels)}), got {tags!r}"
        )
    bad = {k: v for k, v in tags.items() if not k or not isinstance(v, (str, int, float, bool)) or v != v}
    if bad:
        raise ConfigError(
            f"study {study!r}, variant {variant.get('name')!r}: a tag is a non-empty label name with one string or "
            f"number (not NaN) as its value (a label of the runs), got {bad}"
        )
    return tags


def _check_tags_everywhere(variants: list[dict[str, Any]], study: str) -> None:
    """Every variant names the same tag labels: a label some runs lack would group them under ``None``."""
    named = [(v.get("name"), set(v.get("tags") or {})) for v in variants]
    every = set().union(*(labels for _, labels in named)) if named else set()
    for variant, labels in named:
        if labels != every:
            raise ConfigError(
                f"study {study!r}, variant {variant!r}: has no tag {sorted(every - labels)} that other variants "
                f"have; give every variant the same tag labels ({sorted(every)})"
            )


def parse_study(data: dict[str, Any], *, out: str | Path | None = None, workers: int | None = None) -> Study:
    """Validate a study mapping and expand it into runs (every run's config is validated)."""
    unknown = [k for k in data if k not in STUDY_KEYS]
    if unknown:
        raise ConfigError(f"unknown study key(s) {unknown}; allowed: {', '.join(STUDY_KEYS)}")
    if not any(data.get(k) for k in ("base", "variants", "grid")):
        raise ConfigError(
            "a study needs at least one of base, variants or grid (an empty study would train the defaults)"
        )
    name = data.get("name") or "study"
    if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name):
        raise ConfigError(
            f"study name {name!r} is not supported; a name is letters, digits, '.', '_' and '-' (it names the "
            "default folder runs/<name>, so no '/' and no '..')"
        )
    for key in ("base", "grid"):
        if not isinstance(data.get(key) or {}, dict):
            raise ConfigError(f"study {name!r}: {key} must be a mapping of config keys, got {data[key]!r}")
    if not isinstance(data.get("description", ""), str):
        raise ConfigError(f"study {name!r}: description must be text, got {data['description']!r}")
    if data.get("variants") == []:
        raise ConfigError(
            f"study {name!r}: variants is an empty list; list the variants, or leave the key out for one run of base"
        )
    if not isinstance(data.get("variants") or [], list):
        raise ConfigError(f"study {name!r}: variants must be a list of mappings, got {data['variants']!r}")
    base = dict(data.get("base") or {})
    grid = dict(data.get("grid") or {})
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"grid.{key} must be a non-empty list, got {values!r}")
    variants = list(data.get("variants") or [{"name": None}])
    for v in variants:
        if not isinstance(v, dict) or ("name" not in v and len(variants) > 1):
            raise ConfigError(f"each variant must be a mapping with a name, got {v!r}")
        if v.get("name") is not None and not isinstance(v["name"], (str, int, float)):
            raise ConfigError(f"study {name!r}: a variant's name must be a str, got {v['name']!r}")
        if isinstance(v.get("name"), str) and not v["name"].strip():
            raise ConfigError(f"study {name!r}: a variant's name is empty ({v['name']!r}); name it (its runs' label)")
    runs, seen = [], set()
    keys = list(grid)
    for variant in variants:
        for point in itertools.product(*(grid[k] for k in keys)):
            config_data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
            labels: dict[str, Any] = {}
            if variant.get("name") is not None:
                labels["variant"] = variant["name"]
            for key, value in variant.items():
                if key not in ("name", "tags"):
                    set_dotted_key(config_data, key, value, where=f"study {name!r}, variant {variant.get('name')!r}")
            for key, value in zip(keys, point):
                set_dotted_key(config_data, key, value, where=f"study {name!r}, grid.{key}")
                labels[key] = value
            try:
                config = TrainConfig.from_dict(config_data)
            except ConfigError as err:
                where = ", ".join(f"{k}={v}" for k, v in labels.items())
                raise ConfigError(f"study {name!r}, run {where or 'base'}: {err}") from None
            run_id = ",".join(f"{_slug(k)}={_slug(v)}" for k, v in labels.items()) or "run"
            if run_id in seen:
                raise ConfigError(f"study {name!r} has two runs with the id {run_id!r}")
            seen.add(run_id)
            runs.append(RunSpec(run_id, {**labels, **_tags(variant, name, set(labels))}, config))
    _check_tags_everywhere(variants, name)
    default_group = (["variant"] if len(variants) > 1 else []) + [k for k in keys if k != "seed"]
    group_by = list(data.get("group_by") or default_group)
    label_keys = set().union(*(r.labels for r in runs)) if runs else set()
    bad = [g for g in group_by if g not in label_keys]
    if bad:
        raise ConfigError(f"group_by {bad} are not grid keys or 'variant'; available: {sorted(label_keys)}")
    given = data.get("panel_by") or []
    panel_by = [given] if isinstance(given, str) else given
    if (
        not isinstance(panel_by, list)
        or len(panel_by) > 2
        or len(set(map(str, panel_by))) < len(panel_by)
        or any(k not in group_by for k in panel_by)
    ):
        raise ConfigError(
            f"study {name!r}: panel_by must be one or two different labels of group_by {group_by} (columns, or "
            f"rows and columns), got {given!r}"
        )
    n_workers = workers if workers is not None else data.get("workers", 1)
    if not is_int(n_workers, 1):
        raise ConfigError(f"workers must be an integer >= 1, got {n_workers!r}")
    folder = out if out is not None else data.get("out", f"runs/{name}")
    if not isinstance(folder, (str, Path)):
        raise ConfigError(f"study {name!r}: out must be a folder path (a str), got {folder!r}")
    try:
        folder = check_output_dir(folder, "study out")
    except OutputDirError as err:
        raise ConfigError(f"study {name!r}: {err}") from None
    return Study(
        name,
        folder,
        runs,
        group_by,
        n_workers,
        str(data.get("description", "")),
        data,
        panel_by,
    )


@checked_arguments()
def select_runs(study: Study, only: Mapping[str, Any]) -> Study:
    """The study with only the runs whose labels match every ``{label: value}`` of ``only`` (a list of values:
    any of them; values compared as text, so ``{"epochs": "4"}`` matches the grid value 4): to run part of a large
    grid first. The runs keep their ids and folders, so running the whole study later reuses them.

    >>> study = parse_study({"base": {"model": "resnet20"}, "grid": {"epochs": [4, 12], "seed": [0, 1, 2]}})
    >>> [r.run_id for r in select_runs(study, {"epochs": 4, "seed": ["0", "2"]}).runs]
    ['epochs=4,seed=0', 'epochs=4,seed=2']
    """
    keys = sorted(set().union(*(r.labels for r in study.runs)))
    unknown = [k for k in only if k not in keys]
    if unknown:
        raise ConfigError(f"study {study.name!r}: only= names labels {unknown} that no run has; its labels: {keys}")
    wanted = {k: {str(x) for x in (v if isinstance(v, (list, tuple, set)) else [v])} for k, v in only.items()}
    have = {k: {str(r.labels.get(k)) for r in study.runs} for k in wanted}
    missing = {k: sorted(values - have[k]) for k, values in wanted.items() if values - have[k]}
    if missing:  # one of several values a typo: the runs of the others would run, and it would go unnoticed
        raise ConfigError(
            f"study {study.name!r}: only= asks for values no run has, {missing}; the values of those labels: "
            f"{ {k: sorted(v) for k, v in have.items()} }"
        )
    runs = [r for r in study.runs if all(str(r.labels.get(k)) in values for k, values in wanted.items())]
    if not runs:
        values = {k: sorted({str(r.labels.get(k)) for r in study.runs}) for k in only}
        raise ConfigError(
            f"study {study.name!r}: no run matches only={dict(only)}; the values of those labels: {values}"
        )
    return replace(study, runs=runs)


@checked_arguments()
def load_study(path: str | Path, **kwargs: Any) -> Study:
    """Read and expand a study file."""
    return parse_study(read_config_file(path), **kwargs)
