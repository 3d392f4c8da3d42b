"""Config validation: every bad key or value is named with what is allowed."""

import pytest
import torch

from detinit.train import ConfigError, TrainConfig, constnet_milestones, lr_factor_fn


def test_yaml_and_toml_files_and_overrides(tmp_path):
    (tmp_path / "a.yaml").write_text("model: resnet20\nmodel_args:\n  norm: none\nepochs: 3\nlr: 0.05\n")
    (tmp_path / "b.toml").write_text('model = "resnet20"\nepochs = 3\nlr = 0.05\n[model_args]\nnorm = "none"\n')
    a, b = TrainConfig.load(tmp_path / "a.yaml"), TrainConfig.load(tmp_path / "b.toml")
    assert a == b and a.model_args == {"norm": "none"}
    c = a.apply_overrides(["epochs=5", "model_args.shortcut=pad", "init=fixup", "train_subset=null"])
    assert c.epochs == 5 and c.model_args == {"norm": "none", "shortcut": "pad"} and c.init == "fixup"


@pytest.mark.parametrize(
    "data,message",
    [
        (
            {"optimiser": "sgd"},
            r"unknown config key\(s\) 'optimiser' \(did you mean 'optimizer'\?\); allowed keys: model",
        ),
        (
            {"model": "resnet21"},
            r"model='resnet21' is not allowed \(did you mean .*'resnet20'.*allowed values: constnet",
        ),
        ({"init": "he"}, r"init='he' is not allowed.*allowed values: constnet, fixup, gpt2, idinit, kaiming"),
        ({"data": "cifar"}, r"data='cifar' is not allowed \(did you mean 'cifar10'"),
        ({"symmetry": "atomics"}, r"symmetry='atomics' is not allowed.*none, gpu, rounding, dropout"),
        ({"schedule": "linear"}, r"schedule='linear' is not allowed.*constant, step, cosine, constnet"),
        ({"epochs": 0}, r"epochs must be an integer >= 1, got 0"),
        ({"batch_size": 12.5}, r"batch_size must be an integer >= 1, got 12.5"),
        ({"lr": -1}, r"lr must be a number in \[0, inf\), got -1"),
        ({"momentum": 1.5}, r"momentum must be a number in \[0, 1\], got 1.5"),
        ({"schedule": "step"}, r"schedule='step' needs milestones"),
        ({"nesterov": True, "optimizer": "adamw"}, r"nesterov=true needs optimizer='sgd'"),
        ({"train_subset": 0}, r"train_subset must be a positive integer or null, got 0"),
        ({"model_args": [1]}, r"model_args must be a mapping"),
        # keys the rest of the config would not read
        ({"optimizer": "adamw", "momentum": 0.5}, r"momentum=0.5 is read only with optimizer='sgd'"),
        ({"milestones": [3]}, r"milestones=\[3\] is read only with schedule='step'"),
        ({"gamma": 0.5, "schedule": "constnet"}, r"gamma=0.5 is read only with schedule='step'"),
        ({"symmetry_args": {"std": 0.1}}, r"symmetry_args=\{'std': 0.1\} is read only with a symmetry mechanism"),
        ({"data": "synthetic", "data_root": "/tmp"}, r"data_root='/tmp' is read only with a dataset read from files"),
        # a schedule that does not fit the run
        ({"schedule": "step", "milestones": [5, 10], "epochs": 10}, r"milestones \[10\] are not before the end"),
        ({"warmup_epochs": 11, "epochs": 10}, r"warmup_epochs=11 is longer than the run \(epochs=10\)"),
    ],
)
def test_bad_values_are_named(data, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(data)


def test_bad_files_and_overrides(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        TrainConfig.load(tmp_path / "missing.yaml")
    (tmp_path / "x.ini").write_text("a=1")
    with pytest.raises(ConfigError, match="use a .yaml, .yml, .toml or .json file"):
        TrainConfig.load(tmp_path / "x.ini")
    (tmp_path / "bad.yaml").write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml could not be parsed"):
        TrainConfig.load(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="must look like key=value"):
        TrainConfig().apply_overrides(["epochs"])
    with pytest.raises(ConfigError, match="'lr' is not a dict-valued key"):
        TrainConfig().apply_overrides(["lr.x=1"])


def test_schedules():
    cfg = TrainConfig(epochs=300, schedule="constnet", lr=0.03)
    f = lr_factor_fn(cfg, steps_per_epoch=10)
    assert constnet_milestones(300) == [160, 220, 260]
    assert [round(f(e * 10), 6) for e in (0, 159, 160, 220, 260, 299)] == [1.0, 1.0, 0.2, 0.04, 0.008, 0.008]
    cos = lr_factor_fn(TrainConfig(epochs=10, schedule="cosine", warmup_epochs=1), steps_per_epoch=4)
    assert cos(0) == pytest.approx(0.25) and cos(3) == pytest.approx(
        1.0 * 0.5 * (1 + __import__("math").cos(__import__("math").pi * 0.75 / 10))
    )
    assert cos(20) == pytest.approx(0.5) and cos(40) == pytest.approx(0.0)
    step = lr_factor_fn(TrainConfig(epochs=10, schedule="step", milestones=[3, 6], gamma=0.1), steps_per_epoch=2)
    assert [step(s) for s in (5, 6, 12)] == [1.0, pytest.approx(0.1), pytest.approx(0.01)]


def test_init_and_data_seeds_default_to_seed_and_vary_one_thing_each():
    from detinit.data import load_dataset
    from detinit.train.trainer import build_model

    base = TrainConfig(model="resnet20", init="kaiming", data="synthetic", seed=3, progress=False)
    assert (base.seed_of_init, base.seed_of_data) == (3, 3)
    data = load_dataset("synthetic", "train", num_examples=64, image_size=8)

    def weights(cfg):
        return build_model(cfg, data).state_dict()["stages.0.0.conv1.weight"]

    same_init = base.replace(data_seed=7)
    assert (same_init.seed_of_init, same_init.seed_of_data) == (3, 7)
    assert torch.equal(weights(base), weights(same_init))  # the data seed leaves the initialisation alone
    assert not torch.equal(weights(base), weights(base.replace(init_seed=4)))
    zero = base.replace(init="zero")  # a deterministic scheme: every init seed gives the same network
    assert torch.equal(weights(zero), weights(zero.replace(init_seed=4)))
    with pytest.raises(ConfigError, match=r"init_seed must be an int in \[0, 2\*\*32\) or null"):
        base.replace(init_seed=-1)


def test_branch_norm_lr_factor_puts_the_branch_end_scales_in_their_own_group():
    from detinit.data import load_dataset
    from detinit.train.trainer import _make_optimizer, build_model

    cfg = TrainConfig(model="resnet20", init="zero", data="synthetic", lr=0.1, branch_norm_lr_factor=10.0)
    model = build_model(cfg, load_dataset("synthetic", "train", num_examples=64, image_size=8))
    groups = _make_optimizer(cfg, model).param_groups
    assert [g["lr"] for g in groups] == [0.1, pytest.approx(1.0)]
    ends = {id(p) for p in groups[1]["params"]}
    # the bn2 scales that start at 0, computed through ZerO's end_gain from their originals: 6 of the 9 blocks (the
    # first of each stage is an entry block, its scale at 1: open_blocks)
    expected = {id(m.bn2.parametrizations.weight.original) for stage in model.stages for m in list(stage)[1:]}
    assert ends == expected and len(ends) == 6
    with pytest.raises(ConfigError, match="branch_norm_lr_factor must be a number"):
        cfg.replace(branch_norm_lr_factor=-1.0)


def test_classifier_norm_lr_factor_puts_a_tied_outputs_final_norm_scale_in_its_own_group():
    from detinit.models import create_model
    from detinit.train import param_groups
    from detinit.train.trainer import _make_optimizer

    cfg = TrainConfig(model="gpt", data="kjv", init="zero", lr=0.01, optimizer="adamw", classifier_norm_lr_factor=10.0)
    model = create_model("gpt", vocab_size=32, context=8, depth=2, width=16, heads=2, tie_weights=True)
    groups = _make_optimizer(cfg, model).param_groups
    assert [(g["name"], g["lr"]) for g in groups] == [("default", 0.01), ("classifier_norm", pytest.approx(0.1))]
    # the scale only, not the bias (computed through ZerO's output_gain from its original)
    assert [id(p) for p in groups[1]["params"]] == [id(model.norm.parametrizations.weight.original)]
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    untied = create_model("gpt", vocab_size=32, context=8, depth=2, width=16, heads=2)
    assert [g["name"] for g in param_groups(untied, 0.01, classifier_norm_lr_factor=10.0)] == ["default"]
    refused = r"classifier_norm_lr_factor=-1 is not supported; classifier_norm_lr_factor must be a number in \[0, "
    with pytest.raises(ValueError, match=refused):
        param_groups(model, 0.01, classifier_norm_lr_factor=-1)
    with pytest.raises(ConfigError, match="classifier_norm_lr_factor must be a number"):
        cfg.replace(classifier_norm_lr_factor="fast")


def test_small_learning_rates_and_other_decimals_are_numbers_in_overrides():
    # YAML 1.1 reads 1e-5 (no dot) as a string; an override is a number whenever it is written as one
    cfg = TrainConfig().apply_overrides(["lr=1e-5", "weight_decay=5E-4", "epochs=+3", "momentum=.5"])
    assert (cfg.lr, cfg.weight_decay, cfg.epochs, cfg.momentum) == (1e-5, 5e-4, 3, 0.5)
    with pytest.raises(ConfigError, match="lr must be a number"):
        TrainConfig().apply_overrides(["lr=1e-5x"])
