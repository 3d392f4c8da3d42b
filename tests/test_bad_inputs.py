"""Bad inputs from the hostile-user audit (issue #15): each is a clean error naming what is wrong, or a
correct result; never a traceback deep inside, never a silently wrong initialisation."""

import math
import re

import pytest
import torch
from torch import nn

from detinit import create_model, initialize
from detinit.data import DataError, load_dataset
from detinit.experiments import parse_study, select_runs
from detinit.init import partial_identity_, zero_
from detinit.init.schemes import get_scheme
from detinit.nn.hadamard_transform import fwht
from detinit.train import ConfigError, RunDir, TrainingDiverged, train


def test_a_nan_at_evaluation_is_a_divergence_not_a_complete_run(tiny_config, tmp_path):
    config = tiny_config(lr=1.0e38, max_steps_per_epoch=1, epochs=2)
    with pytest.raises(TrainingDiverged, match="training diverged: .*(test loss|weights) .*epoch 1"):
        train(config, tmp_path)
    assert RunDir(tmp_path).status() == "diverged" and not (tmp_path / "checkpoint.pt").exists()


@pytest.mark.parametrize("key, value", [("lr", math.inf), ("lr", math.nan), ("weight_decay", math.inf)])
def test_non_finite_numbers_are_refused(tiny_config, key, value):
    with pytest.raises(ConfigError, match=f"{key} must be a number in"):
        tiny_config(**{key: value}).validate()


@pytest.mark.parametrize("key", ["augment", "nesterov", "progress", "tensorboard", "amp", "channels_last", "compile"])
def test_config_booleans_must_be_booleans(tiny_config, key):
    with pytest.raises(ConfigError, match=f"{key} must be true(, | or )false.*got 'false'"):
        tiny_config(**{key: "false"}).validate()


@pytest.mark.parametrize(
    "scheme, option, value",
    [
        ("zero", "constant_token", "no"),
        ("kaiming", "zero_init_last", "yes"),
        ("constnet", "c", "1"),
        ("constnet", "s", math.nan),
        ("gpt2", "std", 0),
    ],
)
def test_scheme_options_are_checked(scheme, option, value):
    with pytest.raises(ValueError, match=f"scheme option {option}=.* is not supported; {option} must be"):
        get_scheme(scheme, **{option: value})


def test_tensor_initialisers_refuse_shared_memory_and_non_boolean_flags():
    with pytest.raises(ValueError, match=r"partial_identity_: tensor of shape \(4, 4\) has strides \(1, 0\)"):
        partial_identity_(torch.zeros(4, 1).expand(4, 4))
    with pytest.raises(ValueError, match="transposed='no' is not supported; transposed must be True or False"):
        zero_(torch.zeros(4, 4, 3, 3), transposed="no")
    with pytest.raises(ValueError, match=r"fwht: dim=5 is out of range for a 2-D tensor of shape \(2, 4\)"):
        fwht(torch.randn(2, 4), dim=5)


@pytest.mark.parametrize("scheme", ["zero", "kaiming", "gpt2"])
def test_an_embeddings_padding_row_stays_zero(scheme):
    model = nn.Sequential(nn.Embedding(10, 8, padding_idx=3), nn.Linear(8, 2))
    report = initialize(model, scheme, seed=0)
    assert torch.equal(model[0].weight[3], torch.zeros(8)) and model[0].weight[4].abs().sum() > 0
    assert "padding row padding_idx=3 stays 0" in report["0.weight"].reason


def test_bad_options_are_refused_before_a_run_directory_is_written(tiny_config, tmp_path):
    with pytest.raises(ConfigError, match="symmetry_args: mechanism 'dropout' takes knobs"):
        tiny_config(symmetry="dropout", symmetry_args={"prob": 0.1}).validate()
    with pytest.raises(ConfigError, match=r"symmetry_args must be a mapping, got \[0.1\]"):
        tiny_config(symmetry="dropout", symmetry_args=[0.1]).validate()
    with pytest.raises(
        ConfigError, match=r"init_options of scheme 'zero': .* options \['varaint'\]; it takes norm, .*variant"
    ):
        train(tiny_config(init="zero", init_options={"varaint": "paper"}), tmp_path / "a")
    with pytest.raises(
        ConfigError, match=r"model_args of 'mnist_mlp': MLP: got an unexpected keyword argument 'hiden'"
    ):
        train(tiny_config(model_args={"hiden": 16}), tmp_path / "b")
    with pytest.raises(ConfigError, match="data_args: dataset 'synthetic' does not take option 'num_exmples'; it"):
        train(tiny_config(data_args={"num_exmples": 64}), tmp_path / "c")
    assert not any((tmp_path / d).exists() for d in "abc")  # so the corrected command is not refused
    with pytest.raises(DataError, match="dataset 'digits' does not take option 'image_size'; it takes none"):
        load_dataset("digits", "train", image_size=8)


@pytest.mark.parametrize(
    "study, message",
    [
        ({}, "a study needs at least one of base, variants or grid"),
        ({"name": "x"}, "a study needs at least one of base, variants or grid"),
        ({"base": {"epochs": 1}, "workers": 1.5}, "workers must be an integer >= 1, got 1.5"),
        ({"base": {"epochs": 1}, "workers": "two"}, "workers must be an integer >= 1, got 'two'"),
        ({"base": ["epochs"]}, "base must be a mapping of config keys"),
        ({"base": {"epochs": 1}, "grid": "seed"}, "grid must be a mapping of config keys"),
        ({"name": "../../etc", "base": {"epochs": 1}}, r"study name '../../etc' is not supported.*no '/' and no '..'"),
        ({"name": "..", "base": {"epochs": 1}}, "study name '..' is not supported"),
        ({"name": ["a"], "base": {"epochs": 1}}, r"study name \['a'\] is not supported"),
        ({"base": {"epochs": 1}, "out": 3}, "out must be a folder path"),
        ({"variants": [{"name": ["a"]}, {"name": "b"}]}, r"a variant's name must be a str, got \['a'\]"),
        ({"base": {"epochs": 1}, "variants": []}, "variants is an empty list; list the variants, or leave the key"),
        ({"base": {"epochs": 1}, "out": ""}, "study out is empty; give a folder"),
        ({"base": {"epochs": 1}, "description": 5}, "description must be text, got 5"),
        (
            {"base": {"model": "mnist_mlp", "model_args": {"hiden": 8}}},
            "model_args of 'mnist_mlp': MLP: got an unexpected",
        ),
        ({"grid": {"init_options.variant": ["paper", "x"]}}, r"run init_options.variant=x: init_options of scheme"),
        ({"base": {"epochs": 2, "diagnostics_every": 3}}, "diagnostics_every=3 is longer than the run"),
        ({"variants": [{"name": "a", "tags": {"norm": ["bn", "none"]}}]}, "a tag is a non-empty label name with one"),
        ({"variants": [{"name": "a", "tags": {"x": math.nan}}]}, r"string or\s+number \(not NaN\)"),
        ({"variants": [{"name": "a", "tags": {"": 1}}]}, r"got \{'': 1\}"),
        (
            {"variants": [{"name": "a", "tags": {"norm": "bn"}}, {"name": "b"}], "group_by": ["variant", "norm"]},
            r"variant 'b': has no tag \['norm'\] that other variants have",
        ),
        (
            {"base": {"epochs": 1}, "grid": {"seed": [0, 1]}, "group_by": ["seed"], "panel_by": ["seed", "seed"]},
            "panel_by must be one or two different labels",
        ),
    ],
)
def test_bad_study_files(study, message):
    with pytest.raises(ConfigError, match=message):
        parse_study(study)


def test_only_values_that_no_run_has_are_named_even_beside_ones_that_match():
    study = parse_study({"base": {"epochs": 1}, "grid": {"seed": [0, 1]}})
    assert [r.run_id for r in select_runs(study, {"seed": ["0", "1"]}).runs] == ["seed=0", "seed=1"]
    with pytest.raises(ConfigError, match=r"only= asks for values no run has, \{'seed': \['7'\]\}"):
        select_runs(study, {"seed": ["0", "7"]})  # a typo beside a good value would run the good one alone


def _finished_run(tiny_config, path):
    train(tiny_config(epochs=1), path)
    return RunDir(path)


@pytest.mark.parametrize("damage", ["truncate", "empty", "flip"])
def test_a_damaged_checkpoint_is_named_and_never_loaded(tiny_config, tmp_path, damage):
    from detinit.train import CheckpointError, load_checkpoint

    run = _finished_run(tiny_config, tmp_path)
    data = bytearray(run.checkpoint_file.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "empty":
        data = bytearray()
    else:
        data[len(data) // 2] ^= 0x10  # one bit in the middle: torch.load alone would not notice
    run.checkpoint_file.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=rf"checkpoint {run.checkpoint_file} (is damaged|could not be read)"):
        load_checkpoint(run.checkpoint_file)


def test_damaged_records_and_a_checkpoint_of_another_model_are_named(tiny_config, tmp_path):
    from detinit.train import CheckpointError, RunDirDamaged

    run = _finished_run(tiny_config, tmp_path / "a")
    run.config_file.write_text("{not json")
    with pytest.raises(RunDirDamaged, match=r"config.json is damaged"):
        train(tiny_config(epochs=2), run.path)
    other = _finished_run(tiny_config, tmp_path / "b")
    other.run_file.write_text('{"status": "running"}')  # as if killed
    wider = tiny_config(epochs=1, model_args={"hidden": 32})
    other.config_file.write_text(__import__("json").dumps(wider.to_dict()))  # the config says so, the weights not
    with pytest.raises(CheckpointError, match="was written by another run"):  # before its shapes are read
        train(wider, other.path)


def test_a_checkpoint_from_another_run_is_refused_with_or_without_its_digest(tiny_config, tmp_path):
    from detinit.train import CheckpointError

    source = _finished_run(tiny_config, tmp_path / "seed0")
    config = tiny_config(epochs=2, seed=1)
    train(config.replace(epochs=1), tmp_path / "seed1")  # one epoch of the same model, another seed
    target = RunDir(tmp_path / "seed1")
    target.run_file.write_text('{"status": "running"}')  # as if killed after epoch 1
    target.config_file.write_text(__import__("json").dumps(config.to_dict()))
    for name in ("checkpoint.pt", "checkpoint.pt.sha256"):  # the other run's checkpoint, copied in whole
        (target.path / name).write_bytes((source.path / name).read_bytes())
    with pytest.raises(CheckpointError, match="was written by another run"):
        train(config, target.path)
    (target.path / "checkpoint.pt.sha256").unlink()  # and with its digest removed
    with pytest.raises(CheckpointError, match=r"cannot be verified: its digest file checkpoint.pt.sha256 is missing"):
        train(config, target.path)


@pytest.mark.parametrize("damage", ["torn", "garbage"])
def test_a_complete_run_with_damaged_metrics_is_repaired_from_its_checkpoint(tiny_config, tmp_path, damage, caplog):
    from detinit.train import RunDirDamaged

    config = tiny_config(epochs=2)
    train(config, tmp_path)
    run = RunDir(tmp_path)
    whole = run.metrics()
    lines = run.metrics_file.read_text().splitlines(keepends=True)
    run.metrics_file.write_text(lines[0][:10] if damage == "torn" else lines[0] + "garbage\n" + lines[1])
    assert run.damage(2) is not None
    with caplog.at_level("WARNING"):
        train(config, tmp_path)  # a re-run of a complete run
    assert run.metrics() == whole and run.damage(2) is None
    assert "rewrote metrics.jsonl from the checkpoint's history" in caplog.text
    run.metrics_file.write_text(lines[0])
    run.checkpoint_file.unlink()
    with pytest.raises(RunDirDamaged, match="says the run is complete, but metrics.jsonl holds 1 of the run's 2"):
        train(config, tmp_path)


def test_the_checkpoint_digest_survives_a_kill_between_digest_and_rename(tmp_path):
    from detinit.train import load_checkpoint, save_checkpoint
    from detinit.train.checkpoint import file_sha256

    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"epoch": 1})
    old = file_sha256(path)
    # a digest for a newer file was recorded, but the rename never happened: the old file is still good
    (tmp_path / "checkpoint.pt.sha256").write_text(f'{{"sha256": ["{"0" * 64}", "{old}"]}}')
    assert load_checkpoint(path) == {"epoch": 1}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["inspect", "resnet20", "--batch-size", "0"], "argument --batch-size: 0 must be >= 1"),
        (["inspect", "resnet20", "--lr", "nan"], "argument --lr: nan must be a finite number > 0"),
        (["inspect", "resnet20", "--lanczos-steps", "two"], "argument --lanczos-steps: 'two' is not an integer"),
        (["inspect", "resnet20", "--data", "fashon"], "detinit inspect: unknown dataset 'fashon'"),
        (["demo", "--init-option", "variant=x"], "detinit demo: scheme option variant='x' is not supported"),
    ],
)
def test_bad_flags_of_inspect_and_demo_end_with_a_message(argv, message, capsys):
    from detinit.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert message in str(exit_info.value.code) + capsys.readouterr().err


@pytest.mark.parametrize(
    "override, message",
    [
        ("data_root=2024", "data_root must be a path (a string) or null, got 2024"),
        ("data_args.num_examples=-5", "dataset 'synthetic': synthetic: num_examples=-5 is not supported; num_examples"),
        ("model_args.depth=0", "model_args of 'resnet20': ResNet: got an unexpected keyword argument 'depth'"),
    ],
)
def test_bad_train_options_end_with_a_message(override, message, capsys, tmp_path):
    from detinit.cli import main

    argv = ["train", "--model", "resnet20", "--data", "synthetic", "--epochs", "1", "--set", override]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_a_study_starts_no_more_workers_than_it_has_runs(tiny_config, tmp_path, caplog):
    from detinit.experiments import run_study

    config = tiny_config(epochs=1).to_dict()
    study = parse_study({"name": "one", "base": config}, out=tmp_path / "one", workers=8)
    with caplog.at_level("INFO"):
        assert run_study(study) == {"run": "complete"}
    assert "1 to run with 1 worker(s)" in caplog.text


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda root: "", "out_dir='' is not supported; out_dir must be a path"),
        (lambda root: (root / "file").write_text("x") and root / "file", "is a file, not a folder"),
        (lambda root: (root / "file").write_text("x") and root / "file" / "run", r"is under .*file, which is a file"),
        (lambda root: "/dev/null", "/dev/null is a file, not a folder"),
        (lambda root: root / ("a" * 300), "is 300 bytes; the file system allows 255"),
    ],
)
def test_run_directories_that_cannot_be_folders_are_named(tiny_config, tmp_path, make, message):
    with pytest.raises(ValueError, match=message):  # a ConfigError, or the contract's error for ""
        train(tiny_config(epochs=1), make(tmp_path))


@pytest.mark.parametrize("name", ["checkpoint.pt", ".lock", "metrics.jsonl"])
def test_a_run_file_that_is_a_folder_is_named(tiny_config, tmp_path, name):
    (tmp_path / name).mkdir()
    with pytest.raises(ConfigError, match=f"{name} should be a file and is a folder"):
        train(tiny_config(epochs=1), tmp_path)


def test_config_files_that_are_not_utf8_or_repeat_a_key_are_refused(tmp_path):
    from detinit.train.config import read_config_file

    (tmp_path / "latin.yaml").write_bytes(b"\xff\xfemodel: x")
    with pytest.raises(ConfigError, match=r"is not UTF-8 text \(byte 0xff at position 0\)"):
        read_config_file(tmp_path / "latin.yaml")
    (tmp_path / "twice.yaml").write_text("lr: 0.1\nmodel_args:\n  hidden: 8\n  hidden: 9\n")
    with pytest.raises(ConfigError, match=r"key 'hidden' is given twice \(lines 3 and 4\)"):
        read_config_file(tmp_path / "twice.yaml")
    with pytest.raises(ConfigError, match=r"does not exist \(it is a directory\)"):
        read_config_file(tmp_path)
    for empty in ("empty.yaml", "empty.toml", "comments.yaml"):
        (tmp_path / empty).write_text("# nothing set\n" if empty.startswith("comments") else "")
        with pytest.raises(ConfigError, match=f"config file .*{empty} is empty: it sets no key"):
            read_config_file(tmp_path / empty)


def test_a_report_of_a_study_that_never_ran_is_refused(tiny_config, tmp_path, capsys):
    from detinit.cli import main

    study_file = tmp_path / "s.yaml"
    study_file.write_text(__import__("yaml").safe_dump({"name": "s", "base": tiny_config(epochs=1).to_dict()}))
    assert main(["study", "--config", str(study_file), "--out", str(tmp_path / "s"), "--report-only"]) == 2
    assert "none of the 1 runs of 's' in" in capsys.readouterr().err
    assert not (tmp_path / "s" / "report.md").exists()


def test_models_that_do_not_fit_one_dimensional_signals(tiny_config, tmp_path):
    """MNIST-1D gives signals of length 40: an MLP takes 40 features; a 2-D network is refused by name."""
    from detinit.data import model_shape
    from detinit.models import data_kwargs_for

    shape = model_shape(load_dataset("mnist1d", "test"))
    assert shape == {"num_classes": 10, "in_chans": 1, "length": 40}
    assert data_kwargs_for("mnist_mlp", shape)["in_features"] == 40
    with pytest.raises(ValueError, match="model='resnet20' takes 2-D images, but the data are 1-D signals"):
        data_kwargs_for("resnet20", shape)


class _WritesInForward(nn.Module):
    """Rescales a weight in place in its forward pass (as Hugging Face RWKV does for inference)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.fc = nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            self.a.weight.mul_(2.0)
        return self.fc(self.a(x))


def test_a_forward_pass_that_writes_to_a_weight_does_not_change_the_initialisation():
    model = _WritesInForward()
    initialize(model, "zero", example_inputs=torch.randn(2, 4))  # traced, then run again to settle readouts
    assert torch.equal(model.a.weight, torch.eye(4))


def test_bad_hooks_and_classifiers_are_named():
    class Hook(nn.Linear):
        def detinit_init_(self, scheme, generator):
            return 42

    class Roles(nn.Sequential):
        def detinit_roles(self):
            return ["0"]

    class Head(nn.Sequential):
        def get_classifier(self):
            return nn.Linear(4, 2)  # not the model's own

    with pytest.raises(ValueError, match=r"Hook.detinit_init_\(\) returned 42; it must return None .* or a dict"):
        initialize(Hook(2, 2), "zero")
    with pytest.raises(ValueError, match=r"Roles.detinit_roles\(\) returned \['0'\]; it must return a dict"):
        initialize(Roles(nn.Linear(2, 2)), "zero")
    with pytest.raises(ValueError, match="Head.get_classifier.* returned a Linear that is not a sub-module"):
        initialize(Head(nn.Linear(4, 2)), "zero")


def test_meta_parameters_without_a_device_and_complex_ones_are_named():
    with torch.device("meta"):
        meta = nn.Linear(4, 4)
    with pytest.raises(ValueError, match=r"weight, bias of Linear are on the meta device.*pass device="):
        initialize(meta, "zero")
    model = nn.Sequential(nn.Linear(3, 3)).to(torch.complex64)
    with pytest.raises(TypeError, match=r"initialize: parameter 0.weight \(Linear\): .*complex64"):
        initialize(model, "zero")


def test_initialize_resets_running_statistics_and_names_what_it_keeps():
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.p = nn.Parameter(torch.arange(3.0))  # not one constant: no rule keeps it as constructed

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), Odd())
    model[1].running_mean.fill_(math.nan)
    model[1].num_batches_tracked.fill_(7)
    report = initialize(model, "zero")
    assert torch.equal(model[1].running_mean, torch.zeros(4)) and int(model[1].num_batches_tracked) == 0
    assert any("no rule fills 1 parameter, kept as it was: 2.p (Odd)" in note for note in report.notes)
    with torch.no_grad():
        model[2].p.fill_(math.nan)  # uninitialised memory after to_empty() looks like this at worst
    with pytest.raises(ValueError, match="no rule fills 2.p, and they hold NaN or infinite values"):
        initialize(model, "zero")


def test_a_study_edited_after_its_runs_neither_reuses_nor_reports_them(tiny_config, tmp_path, capsys):
    from detinit.cli import main

    config = tiny_config(epochs=1).to_dict()
    study_file = tmp_path / "s.yaml"
    study_file.write_text(__import__("yaml").safe_dump({"name": "s", "out": str(tmp_path / "s"), "base": config}))
    assert main(["study", "--config", str(study_file)]) == 0
    config["lr"] = config["lr"] * 5  # the file edited after its run completed
    study_file.write_text(__import__("yaml").safe_dump({"name": "s", "out": str(tmp_path / "s"), "base": config}))
    assert main(["study", "--config", str(study_file)]) == 1  # the run fails alone: not reused, not rerun over
    assert "1 run(s) failed: run" in capsys.readouterr().err
    assert main(["study", "--config", str(study_file), "--report-only"]) == 0
    report = (tmp_path / "s" / "report.md").read_text()
    assert "**warning**: run run: its directory holds a run of another config (keys lr); it is left out" in report
    assert "0 complete" in report


def test_a_report_warns_of_a_complete_run_whose_records_are_not_whole(tiny_config, tmp_path):
    from detinit.experiments import run_study, write_report

    study = parse_study({"name": "w", "base": tiny_config(epochs=2).to_dict()}, out=tmp_path / "w")
    run_study(study)
    metrics = next((tmp_path / "w" / "runs").iterdir()) / "metrics.jsonl"
    metrics.write_text(metrics.read_text().splitlines()[0] + "\n")
    text = write_report(study).read_text()
    assert "**warning**: run run is complete but metrics.jsonl holds 1 of the run's 2 epochs" in text
    assert "detinit " in text.split("machine:")[1].splitlines()[0]


def test_batches_of_a_rank_outside_the_world_and_normalisation_by_a_zero_std_are_refused():
    from detinit.data import Batches, to_float

    with pytest.raises(ValueError, match=r"rank=2 is not supported with world_size=2; ranks are 0 to 1"):
        Batches(load_dataset("synthetic", num_examples=8), 4, rank=2, world_size=2)
    with pytest.raises(ValueError, match=r"to_float: mean \(0.5,\) and std \(0.0,\) must be finite numbers"):
        to_float(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), (0.5,), (0.0,))
    with pytest.raises(ValueError, match=r"mean \(0.5, 0.5\) and std \(1.0,\)"):
        to_float(torch.zeros(2, 2, 4, 4), (0.5, 0.5), (1.0,))


def test_a_mechanism_reseeds_from_derived_seeds_and_refuses_negative_ones():
    from detinit.data import derived_seed
    from detinit.symmetry import make_mechanism

    mechanism = make_mechanism("dropout")
    mechanism.reseed(derived_seed(2**32 - 1, 5, 3))  # beyond 32 bits: what the trainer passes every epoch
    with pytest.raises(ValueError, match=r"Mechanism: seed=-1 is not supported; seed must be an int >= 0"):
        mechanism.reseed(-1)


def test_a_sample_batch_of_the_wrong_kind_is_refused():
    from detinit.data import sample_batch

    with pytest.raises(ValueError, match="dataset 'kjv' holds token windows, and a batch of images was asked"):
        sample_batch("kjv", 4, tokens=False)


# ---------------------------------------------------------------- arguments that must agree with each other
# (issue 32, the audit's fifth to ninth batches: each a value that is fine alone and wrong beside another)
def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def _agreement_cases(tmp_path):
    from detinit import diagnostics as dg
    from detinit.data import register_dataset, text_dataset, to_float
    from detinit.experiments import write_report
    from detinit.nn import cross_entropy
    from detinit.train import TrainConfig, param_groups, read_jsonl, write_json

    config = dict(model="mnist_mlp", data="synthetic", epochs=1)
    never_run = parse_study({"name": "never", "base": config, "grid": {"seed": [0, 1]}}, out=tmp_path / "never")
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")

    def loader_without_split(root=None):
        return None

    return [
        (lambda: initialize(_mlp(), "zero", example_inputs=torch.randn(2, 8), trace=False), "trace=False"),
        (lambda: initialize(_mlp(), "kaiming", generator=torch.Generator(), seed=5), "given together"),
        (lambda: dg.rank_table(_mlp(), initial={"0": torch.zeros(3, 3)}), r"initial\['0'\] has shape \(3, 3\)"),
        (lambda: dg.rank_table(_mlp(), initial={"nope": torch.zeros(3, 3)}), "initial names 'nope'"),
        (lambda: dg.zero_start_promises(_mlp(), torch.randn(2, 8), carries_output_zero=["nope"]), "'nope'"),
        (lambda: dg.effective_rank(torch.eye(3, dtype=torch.complex64)), "complex64 is not supported"),
        (lambda: dg.mean_row_correlation(torch.randn(4, 4), max_rows=1), "max_rows=1"),
        (lambda: TrainConfig(**config, data_args={"bogus": 1}).validate(), "does not take option 'bogus'"),
        (lambda: TrainConfig(model="gpt", data="synthetic").validate(), "is a language model"),
        (lambda: TrainConfig(**config, train_subset=4, batch_size=8).validate(), "larger than train_subset=4"),
        (lambda: TrainConfig(**config, symmetry="gpu", device="cpu").validate(), "needs device 'cuda'"),
        (lambda: to_float(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), (0.5,) * 3, (1.0,) * 3), "3 channel means"),
        (lambda: cross_entropy(torch.zeros(2, 3), torch.zeros(2)), "integer class indices"),
        (lambda: param_groups(_mlp(), 0.1, report=initialize(nn.Sequential(nn.Linear(3, 3)), "zero")), "(3, 3)"),
        (lambda: register_dataset("no_split_loader", "x")(loader_without_split), "takes no split"),
        (lambda: write_report(never_run), "has started"),
        (lambda: write_json(tmp_path / "a.json", {1, 2}), "a set"),
        (lambda: read_jsonl(tmp_path / "folder"), "is not a file"),
        (lambda: RunDir(tmp_path / "file"), "is a file, not a folder"),
        (lambda: initialize(create_model("resnet20"), "zero", variant="paper", end_gain=30), "end_gain=30 does"),
        (lambda: initialize(create_model("resnet20"), "zero", output_gain=100), "output_gain=100 does"),
        (lambda: initialize(nn.ReLU(), "zero"), "ReLU has no parameters"),
        (lambda: read_jsonl(_written(tmp_path / "g.jsonl", '{"a": 1}\n{torn\n')), "line 2 is not a JSON record"),
        (lambda: text_dataset(str(_written(tmp_path / "t.txt", "ab\n" * 99)), "train"), "the path of a file"),
        (lambda: text_dataset("ab" * 200, "valid", context=4), "split='valid' is not supported"),
        (
            lambda: initialize(nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 4)), "zero", norm="paper"),
            "norm=.paper. does",
        ),
        (lambda: initialize(_mlp(), "zero", depth_scale=True), "depth_scale=True does nothing"),
        (lambda: initialize(_mlp(), "zero", branch_end=0.5), "branch_end=0.5 does nothing"),
        (lambda: initialize(_mlp(), "kaiming", zero_init_last=True), "zero_init_last=True does nothing"),
    ]


def _written(path, text: str):
    path.write_text(text)
    return path


def test_a_torn_last_line_is_dropped_and_a_damaged_run_reads_what_is_left(tmp_path):
    """The other side of read_jsonl's refusal: a line cut by a crash (no newline) is not an error, and a run
    directory reads the records before a damaged line (its damage() says what is wrong)."""
    from detinit.train import RunDir, read_jsonl

    assert read_jsonl(_written(tmp_path / "m.jsonl", '{"a": 1}\n{"b": ')) == [{"a": 1}]
    (tmp_path / "run").mkdir()
    run = RunDir(tmp_path / "run")
    _written(run.metrics_file, '{"epoch": 1}\nnot json\n{"epoch": 2}\n')
    assert run.metrics() == [{"epoch": 1}] and "line 2 is not a JSON record" in run.damage(2)


def test_an_explicit_gain_is_honoured_where_a_scale_carries_the_zero():
    """The other side of the refusal above: on the same model under the default variant the gain is installed."""
    from torch.nn.utils import parametrize

    model = create_model("resnet20")
    report = initialize(model, "zero", end_gain=10)
    assert parametrize.is_parametrized(model.stages[0][1].bn2)  # stages.0.0 is an entry block: its scale is 1
    assert "slope 10 at 0" in next(r.reason for r in report.records if r.name == "stages.0.1.bn2.weight")
    assert not parametrize.is_parametrized(model.stages[0][0].bn2)


def test_arguments_that_contradict_each_other_are_refused_naming_both(tmp_path):
    for case, message in _agreement_cases(tmp_path):
        with pytest.raises((ValueError, TypeError)) as caught:
            case()
        assert re.search(message, str(caught.value)), (message, str(caught.value))


def test_a_model_that_does_not_fit_its_data_is_refused_before_it_is_built(tiny_config):
    from detinit.data import load_dataset as load
    from detinit.train import build_model

    config = tiny_config(model_args={"hidden": 16, "num_classes": 5})  # the synthetic data has 10 classes
    with pytest.raises(ConfigError, match=r"model_args.num_classes=5, but data 'synthetic' gives num_classes=10"):
        build_model(config, load("synthetic", num_examples=8, image_size=8))


def test_zero_relu_takes_inplace_as_relu_does():
    from detinit.nn import ZeroReLU

    x = torch.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    y = x * 1
    ZeroReLU(inplace=True)(y).sum().backward()
    assert y.tolist() == [0.0, 0.0, 2.0] and x.grad.tolist() == [0.0, 1.0, 1.0]


def test_writers_and_readers_given_a_folder_name_it(tmp_path):
    from detinit.train import append_jsonl, load_checkpoint, write_json

    for call, words in [
        (lambda: append_jsonl(tmp_path, {"x": 1}), "append_jsonl: .* is a folder"),
        (lambda: write_json(tmp_path, {"x": 1}), "is a folder"),
        (lambda: load_checkpoint(tmp_path), "checkpoint .* is a folder"),
    ]:
        with pytest.raises(IsADirectoryError, match=words):
            call()
    assert sorted(tmp_path.iterdir()) == []  # no temporary file left behind


def test_a_write_under_a_file_names_the_file_in_the_way(tmp_path):
    from detinit.atomic import OutputDirError, atomic_write

    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputDirError, match="its folder .* is under .*afile, which is a file"):
        atomic_write(tmp_path / "afile" / "deeper" / "out.json", lambda f: f.write(b"{}"))


def test_train_with_an_empty_out_is_refused_by_the_parser(capsys):
    from detinit.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["train", "--data", "synthetic", "--epochs", "1", "--out", ""])
    assert stop.value.code == 2 and "argument --out: the path is empty; give a folder" in capsys.readouterr().err


def test_what_a_checkpoint_or_a_json_file_cannot_hold_is_named_before_writing(tmp_path):
    from detinit.train import save_checkpoint, write_json

    with pytest.raises(TypeError, match=r"save_checkpoint: state\['opt'\]\[0\] is a builtin_function_or_method"):
        save_checkpoint(tmp_path / "a.pt", {"model": {"w": torch.zeros(2)}, "opt": [len]})
    with pytest.raises(TypeError, match=r"save_checkpoint: state\['m'\] is a Linear"):
        save_checkpoint(tmp_path / "b.pt", {"m": nn.Linear(2, 2)})
    assert not list(tmp_path.iterdir())  # refused before any file was written
    with pytest.raises(ValueError, match=r"data\['x'\] has the keys 1 and '1', which JSON writes as the same key"):
        write_json(tmp_path / "c.json", {"x": {1: "a", "1": "b"}})
    write_json(tmp_path / "d.json", {"x": {1: "a", 2: "b"}, "ok": [{"n": None}]})  # int keys alone are fine


def test_public_dataclasses_built_by_hand_are_checked_like_calls():
    from pathlib import Path

    from detinit.contract import ArgumentError
    from detinit.experiments import RunSpec, Study
    from detinit.init import InitReport
    from detinit.symmetry import Mechanism, make_mechanism

    with pytest.raises(
        ArgumentError, match=r"InitReport: records=\[1\] is not supported; records must be a list of ParamRecord"
    ):
        InitReport("zero", {}, 0, records=[1])
    with pytest.raises(ArgumentError, match=r"RunSpec: config=\{'lr': 0.1\} is not supported; config must be"):
        RunSpec("r", {}, {"lr": 0.1})
    with pytest.raises(ArgumentError, match=r"Study: runs=\['a'\] is not supported; runs must be a list of RunSpec"):
        Study("s", Path("runs/s"), ["a"], [])
    with pytest.raises(ArgumentError, match=r"Study: workers=0 is not supported"):
        Study("s", Path("runs/s"), [], [], workers=0)
    with pytest.raises(ValueError, match=r"mechanism 'dropout': p=2.0 must be < 1"):
        Mechanism("dropout", knobs={"p": 2.0})
    assert Mechanism("dropout").knobs == make_mechanism("dropout").knobs  # a hand-built one gets the defaults too


def test_a_registry_decorator_and_a_table_scale_name_what_they_cannot_take():
    from detinit.experiments import mean_std
    from detinit.models import register_model

    with pytest.raises(TypeError, match=r"register_model\('never_registered'\): it decorates a builder"):
        register_model("never_registered", "zero", "a test")(5)
    with pytest.raises(ValueError, match=r"mean_std: scale=0.0 must be > 0"):
        mean_std([0.5], scale=0.0)


def test_datasets_built_from_a_users_tensors_are_checked_like_a_loaders():
    from pathlib import Path

    from detinit.data import ArrayDataset, FolderDataset, TokenDataset

    images, labels, tokens = torch.zeros(4, 1, 8, 8, dtype=torch.uint8), torch.zeros(4).long(), torch.zeros(4, 8).long()
    with pytest.raises(ValueError, match=r"d/train: mean \(0.5, 0.5, 0.5\) .* one of each per channel \(1\)"):
        ArrayDataset("d", "train", images, labels, 10, (0.5,) * 3, (0.5,) * 3)
    with pytest.raises(DataError, match=r"images must be uint8 or float32"):
        ArrayDataset("d", "train", images.long(), labels, 10, (0.5,), (0.5,))
    with pytest.raises(DataError, match=r"t/train: inputs hold token ids 9..9, outside the vocabulary of 2"):
        TokenDataset("t", "train", tokens + 9, tokens, ("a", "b"), torch.ones(2))
    with pytest.raises(DataError, match=r"unigram must hold 256 finite token counts"):
        TokenDataset("t", "train", tokens, tokens, None, torch.ones(4))
    with pytest.raises(DataError, match=r"f/train: labels must be int64, one per file \(1\)"):
        FolderDataset("f", "train", (Path("a.png"),), labels[:2], ("a",), 32)
    assert len(ArrayDataset("d", "train", images.float(), labels, 10, (0.5,), (0.5,)).subset(2)) == 2  # float is fine


def test_devices_meta_models_and_records_without_their_epoch_are_named(tmp_path):
    from detinit.data import make_batches
    from detinit.init import check_zero_one

    data = load_dataset("synthetic", subset=8)
    with pytest.raises(ValueError, match=r"Batches: device='meta' holds no values"):
        make_batches(data, 4, device="meta")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"Batches: device='cuda', but CUDA is not available here"):
            make_batches(data, 4, device="cuda")
    with pytest.raises(ValueError, match=r"check_zero_one: weight, bias of Linear are on the meta device"):
        check_zero_one(nn.Linear(2, 2, device="meta"))
    with pytest.raises(ValueError, match=r"RunDir.append_epoch: row must hold its 'epoch' \(an int >= 1\), got None"):
        RunDir(tmp_path / "run").append_epoch({"loss": 1.0})


def test_an_unknown_dataset_a_cache_under_a_file_and_an_empty_split_are_named(tmp_path):
    from detinit.data import ArrayDataset, fetch_kjv, make_batches, reads_files
    from detinit.train import evaluate
    from detinit.train.distributed import DistInfo

    with pytest.raises(ValueError, match=r"unknown dataset 'kvj'.*Did you mean kjv"):
        reads_files("kvj")  # was False: a typo read as "a generated dataset"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"the data cache \(cache=, or \$DETINIT_CACHE\) .*file/kjv is under .*file"):
        fetch_kjv(tmp_path / "file")
    images, labels = torch.zeros(0, 1, 8, 8, dtype=torch.uint8), torch.zeros(0, dtype=torch.long)
    empty = ArrayDataset("e", "test", images, labels, 10, (0.5,), (0.5,))
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    with pytest.raises(ValueError, match=r"evaluate: data \(Batches\) holds no example; the mean loss would be 0 / 0"):
        evaluate(model, make_batches(empty, 4), DistInfo())
