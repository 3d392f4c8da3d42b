"""The run directory: status, the config check before resume, and one training process at a time."""

import json
import os

import pytest
import torch

from detinit.train import ConfigError, RunDir, RunDirInUse, TrainConfig, train


def test_a_second_process_is_refused_while_a_run_holds_the_directory(tiny_config, tmp_path):
    run = RunDir(tmp_path / "run")
    with run.lock():
        assert (run.lock_file.read_text().strip()) == f"process {os.getpid()}"
        # flock locks belong to an open file, so a second open in this process is refused like another process
        with pytest.raises(RunDirInUse, match=rf"run directory .*run is in use by process {os.getpid()}"):
            train(tiny_config(), run.path)
        assert not run.metrics_file.exists() and run.status() == "pending"  # nothing written, nothing duplicated
    result = train(tiny_config(), run.path)  # released at the end of the block
    assert result.status == "complete" and [r["epoch"] for r in run.metrics()] == [1]
    assert run.status() == "complete" and run.is_complete()
    with run.lock():  # released after training, too
        pass


def test_a_refused_lock_is_a_config_error_and_a_refused_run_leaves_no_directory(tmp_path):
    assert issubclass(RunDirInUse, ConfigError)  # the CLI reports it as a clean error, exit code 2
    missing = RunDir(tmp_path / "never")
    with missing.lock():
        assert missing.lock_file.exists()
    assert not missing.path.exists()


def test_status_records_and_the_config_check(tiny_config, tmp_path):
    run = RunDir(tmp_path)
    assert run.status() == "pending" and run.run_record() == {}
    run.set_status({"seed": 3}, "diverged", error="loss became nan")
    assert json.loads(run.run_file.read_text()) == {"seed": 3, "status": "diverged", "error": "loss became nan"}
    with pytest.raises(ValueError, match="status must be one of"):
        run.set_status({}, "finished")
    config = tiny_config(amp=False)  # as a run started before the modes were chosen per device recorded it
    run.check_config(config)  # no config.json yet: any config is welcome
    run.write_start(config, {"seed": 0, "threads": 1}, {"scheme": "zero"}, [], [])
    assert (
        run.status() == "running"
        and run.metrics() == []
        and run.run_record()
        == {
            "seed": 0,
            "threads": 1,
            "status": "running",
        }
    )
    run.check_config(config.replace(threads=2, progress=True))  # how it executes may change
    # a mode left unset resumes as the run started; one set must be what the run was started with
    run.check_config(config.replace(amp=None))
    with pytest.raises(ConfigError, match=r"different config \(keys \['amp'\]\)"):
        run.check_config(config.replace(amp=True))
    with pytest.raises(ConfigError, match=r"different config \(keys \['epochs', 'lr'\]\)"):
        run.check_config(config.replace(epochs=2, lr=0.5))
    # a resume keeps the config and the record of the start, and says how it went on
    meta = run.write_start(config.replace(threads=2), {"seed": 0, "threads": 2}, {}, [{"epoch": 1}], [])
    assert json.loads(run.config_file.read_text())["threads"] == 1 and run.metrics() == [{"epoch": 1}]
    assert meta == {"seed": 0, "threads": 1, "resumes": [{"from_epoch": 1, "threads": 2}]}
    assert run.run_record() == meta | {"status": "running"}


def test_temporary_files_of_a_killed_write_are_removed_by_the_next_process(tmp_path):
    run = RunDir(tmp_path)
    stale = [tmp_path / ".checkpoint.pt.k2j4x", tmp_path / ".metrics.jsonl.abc"]
    for path in stale:
        path.write_bytes(b"half a file")
    (tmp_path / ".keep.me").write_text("not ours")
    with run.lock():
        assert not any(p.exists() for p in stale) and (tmp_path / ".keep.me").exists()


def test_a_run_records_its_task_and_the_signal_at_init_without_touching_the_model(tiny_config, tmp_path):
    from detinit import create_model
    from detinit.diagnostics import signal_at_init

    run = RunDir(tmp_path)
    config = tiny_config(model="resnet20", model_args={}, data_args={"num_examples": 64, "image_size": 8})
    train(config, run.path)
    assert run.run_record()["task"] == "image_classification" == config.task
    rows = run.signal_at_init()
    assert [r["name"] for r in rows] == [f"stages.{s}.{b}" for s in range(3) for b in range(3)]
    assert all(r["var"] > 0 and r["channels"] in (16, 32, 64) for r in rows)
    model = create_model("resnet20", num_classes=10, in_chans=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    signal_at_init(model, torch.randn(8, 1, 8, 8), torch.zeros(8, dtype=torch.long))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BN statistics untouched
    assert RunDir(tmp_path / "old").signal_at_init() is None  # runs that predate the record
    assert TrainConfig(model="gpt", data="kjv").task == "language_modelling"
