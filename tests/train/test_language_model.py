"""Language modelling end to end: a ZerO GPT on the King James Bible learns well past the unigram baseline."""

import pytest

from detinit.data import load_dataset, unigram_loss
from detinit.train import ConfigError, TrainConfig, read_jsonl, train

QUIET = {"progress": False, "tensorboard": False, "threads": 1}


def _config(**changes):
    base = dict(
        model="gpt",
        model_args={"depth": 2, "width": 64, "heads": 4},
        init="zero",
        data="kjv",
        data_args={"context": 32},
        test_subset=256,
        epochs=3,
        max_steps_per_epoch=60,
        batch_size=32,
        optimizer="adamw",
        lr=3e-3,
        weight_decay=0.0,
        warmup_epochs=0.5,
        diagnostics_every=1,
        **QUIET,
    )
    return TrainConfig(**(base | changes))


def test_zero_gpt_learns_well_below_the_unigram_baseline(tmp_path):
    cfg = _config()
    result = train(cfg, tmp_path)
    baseline = unigram_loss(load_dataset("kjv", "test", context=32))  # 3.03 nats per character
    first, final = result.history[0], result.final
    assert "tokens_per_s" in first and "images_per_s" not in first
    assert final["test_loss"] < baseline - 0.5, (final["test_loss"], baseline)  # 180 steps of a 2-block GPT
    diag = read_jsonl(tmp_path / "diagnostics.jsonl")
    assert all(v == 0 for v in diag[0]["rank_update"].values())  # W - W0 is 0 at init
    assert diag[-1]["rank_update"]["blocks.0.attn.proj"] > 0 and diag[-1]["rank_update"]["head"] > 0
    assert "max_channel_difference" not in diag[0]  # feature measures are for image models


@pytest.mark.parametrize(
    "init,model_args",
    [("rezero", {"norm": "none", "gate": True}), ("tfixup", {"norm": "none"}), ("zero", {"norm": "none"})],
)
def test_norm_free_variants_train(tmp_path, init, model_args):
    args = {"depth": 2, "width": 64, "heads": 4} | model_args
    result = train(_config(init=init, model_args=args, epochs=2, diagnostics_every=0), tmp_path)
    assert result.final["test_loss"] < 3.03 - 0.1  # below the unigram baseline after 120 steps (2.48-2.87 here)


def test_model_and_data_of_different_kinds_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ConfigError, match="model='gpt' is a language model.*data='synthetic' gives images"):
        train(_config(data="synthetic", data_args={}), tmp_path / "a")
    with pytest.raises(ConfigError, match="model='resnet20' is an image model.*gives token windows.*'gpt'"):
        train(_config(model="resnet20", model_args={}), tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
