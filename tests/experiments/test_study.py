"""Studies: grid expansion, validation, skip/resume, workers, and the report."""

import json
from pathlib import Path

import pytest

from detinit.experiments import load_study, mean_std, parse_study, run_study, write_report
from detinit.train import ConfigError

BASE = {
    "model": "mnist_mlp",
    "model_args": {"hidden": 16},
    "data": "synthetic",
    "data_args": {"num_examples": 128, "image_size": 8},
    "epochs": 2,
    "batch_size": 32,
    "diagnostics_every": 1,
    "progress": False,
    "tensorboard": False,
    "threads": 1,
}


def test_grid_and_variants_expand_into_validated_runs(tmp_path):
    study = parse_study(
        {
            "name": "s",
            "base": BASE,
            "grid": {"init": ["zero", "kaiming"], "seed": [0, 1, 2]},
            "variants": [{"name": "a"}, {"name": "b", "model_args.hidden": 8}],
        },
        out=tmp_path,
    )
    assert len(study.runs) == 12 and study.group_by == ["variant", "init"]
    run = next(r for r in study.runs if r.run_id == "variant=b,init=kaiming,seed=2")
    assert run.config.model_args == {"hidden": 8} and run.config.init == "kaiming" and run.config.seed == 2


@pytest.mark.parametrize(
    "data,message",
    [
        ({"base": BASE, "grid": {"init": "zero"}}, r"grid.init must be a non-empty list"),
        ({"base": BASE, "grid": {"init": ["zero", "he"]}}, r"run init=he: init='he' is not allowed"),
        ({"base": BASE, "gird": {}}, r"unknown study key\(s\) \['gird'\]"),
        ({"base": BASE, "grid": {"seed": [0]}, "group_by": ["init"]}, r"group_by \['init'\] are not grid keys"),
        ({"base": {**BASE, "epoch": 3}}, r"unknown config key\(s\) 'epoch' \(did you mean 'epochs'\?\)"),
    ],
)
def test_bad_studies_are_named(data, message):
    with pytest.raises(ConfigError, match=message):
        parse_study(data)


def test_run_skip_complete_and_report(tmp_path):
    data = {
        "name": "tiny",
        "description": "a test study",
        "base": BASE,
        "grid": {"init": ["zero", "kaiming"], "seed": [0, 1]},
    }
    study = parse_study(data, out=tmp_path)
    statuses = run_study(study)
    assert set(statuses.values()) == {"complete"} and len(statuses) == 4
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.glob("runs/*/checkpoint.pt")}
    assert run_study(study) == statuses  # complete runs are skipped, not redone
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("runs/*/checkpoint.pt")} == mtimes
    report = write_report(study, command="detinit study --config tiny.yaml")
    text = report.read_text()
    assert "# Study: tiny" in text and "| init | runs | test acc % (final)" in text and "| zero | 2/2 |" in text
    for png in ("test_acc.png", "train_loss.png", "rank.png", "signal_init.png"):
        assert (tmp_path / png).stat().st_size > 5000 and f"]({png})" in text
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["runs"] == statuses
    acc = summary["metrics"]["zero"]["test_acc"]  # numbers beside the rendered table, accuracy in %
    finals = [
        100 * json.loads(line)["test_acc"]
        for run in ("init=zero,seed=0", "init=zero,seed=1")
        for line in (tmp_path / "runs" / run / "metrics.jsonl").read_text().splitlines()[-1:]
    ]
    assert acc["values"] == finals and acc["mean"] == pytest.approx(sum(finals) / 2)
    assert acc["std"] == pytest.approx(abs(finals[0] - finals[1]) / 2**0.5)
    assert set(summary["metrics"]["kaiming"]) >= {"test_acc", "best_test_acc", "train_loss", "test_loss"}


def test_a_run_directory_of_another_config_fails_alone_and_workers_run_in_parallel(tmp_path):
    study = parse_study({"name": "p", "base": BASE, "grid": {"seed": [0, 1]}}, out=tmp_path, workers=2)
    first = study.runs[0]
    one_epoch = parse_study({"name": "p", "base": {**BASE, "epochs": 1}, "grid": {"seed": [0]}}, out=tmp_path)
    run_study(one_epoch)  # leaves seed=0 with 1 epoch... under a config with epochs=1
    (tmp_path / "runs" / first.run_id / "run.json").write_text(json.dumps({"status": "running"}))
    statuses = run_study(study)  # epochs differ -> the run directory refuses; reported as failed, study goes on
    assert statuses[first.run_id] == "failed" and statuses[study.runs[1].run_id] == "complete"
    text = write_report(study).read_text()  # a failed run still leaves a report of the good ones
    assert "signal_init.png" in text and "| 1/2 (changed) |" in text  # never reported as the study's run


def test_variant_tags_group_and_panel_without_changing_run_ids(tmp_path):
    """``tags`` label variants for the report (a row of figure panels, a column of the "By" table) but are no
    config key and no part of a run's id, so adding them to a study that has run reuses its runs."""
    data = {
        "name": "t",
        "base": {**BASE, "epochs": 1},
        "grid": {"seed": [0]},
        "variants": [{"name": "a", "init": "zero"}, {"name": "b", "init": "kaiming"}],
    }
    plain = parse_study(data, out=tmp_path)
    run_study(plain)
    data["variants"] = [{**v, "tags": {"kind": k}} for v, k in zip(data["variants"], ("det", "rand"))]
    tagged = parse_study({**data, "group_by": ["variant", "kind"], "panel_by": ["kind", "variant"]}, out=tmp_path)
    assert [r.run_id for r in tagged.runs] == [r.run_id for r in plain.runs] == ["variant=a,seed=0", "variant=b,seed=0"]
    assert tagged.runs[1].labels == {"variant": "b", "seed": 0, "kind": "rand"}
    assert run_study(tagged) == {"variant=a,seed=0": "complete", "variant=b,seed=0": "complete"}  # reused
    text = write_report(tagged).read_text()
    assert "| det | " in text.split("## By variant")[1] and (tmp_path / "test_acc.png").stat().st_size > 5000
    for bad, message in (({"seed": 1}, "tags must be a mapping of new label names"), ([1], "tags must be a mapping")):
        data["variants"][0]["tags"] = bad
        with pytest.raises(ConfigError, match=message):
            parse_study(data)


def test_mean_std_and_study_file(tmp_path):
    assert mean_std([]) == "-" and mean_std([0.5]) == "0.50" and mean_std([1.0, 3.0]) == "2.00 ± 1.41"
    path = tmp_path / "s.yaml"
    path.write_text("name: f\nbase: {model: resnet20}\ngrid: {seed: [0, 1]}\n")
    assert len(load_study(path).runs) == 2 and str(load_study(path).out) == "runs/f"


def test_language_model_study_report(tmp_path):
    base = {
        "model": "gpt",
        "model_args": {"depth": 2, "width": 32, "heads": 2},
        "data": "kjv",
        "data_args": {"context": 16},
        "test_subset": 32,
        "epochs": 2,
        "max_steps_per_epoch": 3,
        "batch_size": 8,
        "optimizer": "adamw",
        "lr": 1e-3,
        "diagnostics_every": 1,
        "progress": False,
        "tensorboard": False,
    }
    study = parse_study({"name": "lm", "base": base, "grid": {"init": ["zero", "gpt2"], "seed": [0, 1]}}, out=tmp_path)
    assert set(run_study(study).values()) == {"complete"}
    text = write_report(study).read_text()
    assert "| init | runs | val loss (final) | val loss (best) | val bits/token (final)" in text
    assert "losses in nats per token" in text and "rank.png" not in text and "signal_init" not in text
    rank_table = text.split("## Rank of the learned update W - W0 per layer kind")[1]
    assert "blocks.*.attn.qkv" in rank_table and "| zero | 2 |" in rank_table
    for png in ("val_loss.png", "train_loss.png", "rank_update.png"):
        assert (tmp_path / png).stat().st_size > 5000 and f"]({png})" in text


def _children(pid):
    from pathlib import Path

    kids = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            kids.append(int(status.parent.name))
    return kids


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="finds the workers in /proc")
def test_workers_die_with_a_killed_study_so_a_rerun_trains_nothing_twice(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    base = {**BASE, "epochs": 100000, "diagnostics_every": 0}  # runs far longer than the test waits
    (tmp_path / "s.json").write_text(json.dumps({"name": "k", "base": base, "grid": {"seed": [0, 1]}, "workers": 2}))
    study = subprocess.Popen(
        [sys.executable, "-m", "detinit", "study", "--config", str(tmp_path / "s.json"), "--out", str(tmp_path / "o")]
    )
    deadline = time.time() + 120
    metrics = tmp_path / "o" / "runs" / "seed=0" / "metrics.jsonl"
    while time.time() < deadline and not (metrics.exists() and metrics.read_text()):
        time.sleep(0.1)
    workers = [p for p in _children(study.pid) if "spawn" in _cmdline(p)]
    assert len(workers) >= 1, "the study should be training in worker processes"
    os.kill(study.pid, signal.SIGKILL)
    study.wait()
    deadline = time.time() + 10
    alive = workers
    while time.time() < deadline and alive:
        time.sleep(0.1)
        alive = [p for p in workers if os.path.exists(f"/proc/{p}") and not _zombie(p)]
    for pid in alive:  # leave nothing behind, whatever the outcome
        os.kill(pid, signal.SIGKILL)
    assert not alive, "orphaned workers went on training after the study was killed"


def _cmdline(pid):
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _zombie(pid):
    try:
        return "\nState:\tZ" in open(f"/proc/{pid}/status").read()
    except OSError:
        return True


STUDY_FILES = sorted((Path(__file__).parents[2] / "configs" / "studies").glob("*.yaml"))


@pytest.mark.parametrize("path", STUDY_FILES, ids=lambda p: p.stem)
def test_every_study_file_of_the_repository_loads(path):
    """Each file under configs/studies parses into runs whose configs are checked (a typo in a results study is
    found here, not hours into its runs); its runs go under runs/."""
    study = load_study(path)
    assert study.runs and Path(study.out).parts[0] == "runs"
