"""The trainer: a real Fashion-MNIST run that learns, crash and resume, divergence, DDP, the CLI."""

import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from detinit.cli import main
from detinit.train import ConfigError, TrainConfig, TrainingDiverged, load_checkpoint, read_jsonl, train

from .torchrun_runs import fixup_resnet20_config, torchrun_train

QUIET = {"progress": False, "tensorboard": False, "threads": 1}


def test_short_fashion_mnist_run_learns(tmp_path):
    cfg = TrainConfig(
        model="mnist_mlp",
        model_args={"hidden": 128},
        data="fashion_mnist",
        train_subset=8192,
        test_subset=2000,
        epochs=2,
        batch_size=128,
        lr=0.1,
        diagnostics_every=1,
        **QUIET,
    )
    result = train(cfg, tmp_path)
    assert result.status == "complete" and len(result.history) == 2
    assert result.final["test_acc"] > 0.7  # chance is 0.1
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2] and rows == result.history
    run = json.loads((tmp_path / "run.json").read_text())
    assert (
        run["status"] == "complete" and run["threads"] == 1 and run["seed"] == 0 and run["torch"] == torch.__version__
    )
    diag = read_jsonl(tmp_path / "diagnostics.jsonl")
    assert [d["epoch"] for d in diag] == [0, 1, 2]
    assert diag[0]["rank_w_minus_i"]["body.1"] == 0 and diag[2]["rank_w_minus_i"]["body.1"] > 0  # ZerO: W - I grows
    assert json.loads((tmp_path / "init_report.json").read_text())["scheme"] == "zero"
    assert train(cfg, tmp_path).history == result.history  # complete: nothing is redone


def _small_config(**changes):
    base = dict(
        model="resnet20",
        model_args={"norm": "bn"},
        data="synthetic",
        data_args={"num_examples": 512, "image_size": 12},
        epochs=4,
        batch_size=32,
        lr=0.05,
        augment=False,
        symmetry="dropout",
        symmetry_args={"p": 0.05},
        **QUIET,
    )
    base.update(changes)
    if base["symmetry"] is None and "symmetry_args" not in changes:  # no mechanism reads its knobs
        base["symmetry_args"] = {}
    return TrainConfig(**base)


@pytest.mark.parametrize(
    "modes",
    [
        {},  # chosen for the model: channels_last, fp32
        {"amp": False, "channels_last": False},
        {"amp": True},
        {"model": "mnist_mlp", "model_args": {"hidden": 32}, "symmetry": None, "amp": True, "compile": True},
        {"init": "zero"},  # its branch-end scales computed through end_gain: checkpoints keep the originals
    ],
    ids=["auto", "fp32", "bf16", "bf16-compiled-mlp", "zero-end-gains"],
)
def test_sigkill_and_resume_is_bitwise_identical_to_an_uninterrupted_run(tmp_path, modes):
    cfg = _small_config(**modes)
    reference = train(cfg, tmp_path / "reference")
    ref_state = load_checkpoint(tmp_path / "reference" / "checkpoint.pt")["model"]

    killed = tmp_path / "killed"
    (tmp_path / "cfg.json").write_text(json.dumps(cfg.to_dict()))
    code = (
        "import json, sys; from detinit.train import TrainConfig, train; "
        f"train(TrainConfig.from_dict(json.load(open({str(tmp_path / 'cfg.json')!r}))), {str(killed)!r})"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 120
    while time.time() < deadline and len(read_jsonl(killed / "metrics.jsonl")) < 1:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(read_jsonl(killed / "metrics.jsonl"))
    assert 1 <= done < 4, "the run should have been killed mid-way"
    assert json.loads((killed / "run.json").read_text())["status"] == "running"

    resumed = train(cfg, killed)
    state = load_checkpoint(killed / "checkpoint.pt")["model"]
    assert all(torch.equal(state[k], ref_state[k]) for k in ref_state)
    assert [r["test_loss"] for r in resumed.history] == [r["test_loss"] for r in reference.history]


def test_divergence_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path):
    cfg = _small_config(epochs=3, schedule="step", milestones=[1], gamma=1e12, symmetry=None)
    with pytest.raises(TrainingDiverged, match=r"loss became (nan|inf) at epoch 2.*last good checkpoint \(epoch 1\)"):
        train(cfg, tmp_path)
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["status"] == "diverged" and "epoch 2" in run["error"]
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["epoch"] == 1 and all(
        torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point()
    )


def test_ddp_with_two_cpu_processes_matches_single_process(tmp_path):
    cfg = fixup_resnet20_config()
    single = tmp_path / "single"
    train(cfg, single)
    torchrun_train(cfg, tmp_path / "ddp", 29517)
    a = load_checkpoint(single / "checkpoint.pt")["model"]
    b = load_checkpoint(tmp_path / "ddp" / "checkpoint.pt")["model"]
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5)
    assert json.loads((tmp_path / "ddp" / "run.json").read_text())["world_size"] == 2
    # evaluation is sharded across the ranks and summed: the same test metrics as one process
    single_rows, ddp_rows = read_jsonl(single / "metrics.jsonl"), read_jsonl(tmp_path / "ddp" / "metrics.jsonl")
    assert abs(single_rows[-1]["test_loss"] - ddp_rows[-1]["test_loss"]) < 1e-4
    assert abs(single_rows[-1]["test_acc"] - ddp_rows[-1]["test_acc"]) <= 2 / 256


def test_cli_train_with_config_file_flags_and_errors(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        "model: mnist_mlp\nmodel_args: {hidden: 16}\ndata: synthetic\nepochs: 1\nbatch_size: 64\n"
        "progress: false\ntensorboard: false\n"
    )
    assert (
        main(
            [
                "train",
                "--config",
                str(cfg),
                "--lr",
                "1e-5",  # a flag keeps its type (it once went back to the string '1e-05', which YAML 1.1 reads as text)
                "--set",
                "data_args.num_examples=128",
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 0
    )
    assert "done: 1 epochs" in capsys.readouterr().out
    assert json.loads((tmp_path / "run" / "config.json").read_text())["lr"] == 1e-5
    assert main(["train", "--config", str(cfg), "--lr", "0.1", "--out", str(tmp_path / "run")]) == 2
    assert "holds a run with a different config (keys ['data_args', 'lr'])" in capsys.readouterr().err
    assert main(["train", "--config", str(cfg), "--set", "schedule=linear", "--out", str(tmp_path / "x")]) == 2
    assert "schedule='linear' is not allowed" in capsys.readouterr().err
    assert main(["train", "--data", "mnist", "--out", str(tmp_path / "y")]) == 2
    assert "MNIST cannot be downloaded here" in capsys.readouterr().err


def test_the_first_non_finite_loss_of_an_epoch_is_the_one_reported():
    """The host reads the losses' finiteness every few steps, not after each: the step it reports is still
    the first whose loss was not finite, with that loss."""
    from detinit.train.trainer import _FiniteWatch

    watch = _FiniteWatch(torch.device("cpu"))
    for step, loss in enumerate([1.0, 2.0, float("inf"), float("nan"), 3.0]):
        watch.watch(torch.tensor(loss), step)
    assert int(watch.first_bad) == 2 and float(watch.bad_loss) == float("inf")


def test_scalar_parameters_get_their_own_learning_rate_and_old_run_dirs_resume(tmp_path):
    from detinit.data import load_dataset
    from detinit.train.trainer import _make_optimizer, build_model

    cfg = _small_config(model_args={"norm": "none"}, init="fixup", scalar_lr_factor=0.1, lr=0.2, symmetry=None)
    model = build_model(cfg, load_dataset("synthetic", "train", num_examples=8, image_size=12))
    groups = _make_optimizer(cfg, model).param_groups
    assert [g["lr"] for g in groups] == [0.2, pytest.approx(0.02)]
    assert all(p.dim() == 0 for p in groups[1]["params"]) and len(groups[1]["params"]) == 9 * 5 + 2
    # a run directory written before a config key existed resumes when the key has its default value
    run = tmp_path / "old"
    old = _small_config(epochs=1, symmetry=None)
    train(old, run)
    saved = json.loads((run / "config.json").read_text())
    del saved["scalar_lr_factor"]
    (run / "config.json").write_text(json.dumps(saved))
    (run / "run.json").write_text(json.dumps({"status": "running"}))  # as if it had been killed
    assert train(old, run).history[-1]["epoch"] == 1
    with pytest.raises(ConfigError, match=r"different config \(keys \['epochs'\]\)"):
        train(old.replace(epochs=2), run)
