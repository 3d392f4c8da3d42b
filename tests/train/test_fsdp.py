"""``parallel: fsdp``: two gloo processes under torchrun against one process, kill and exact resume, refusals."""

import json
import os
import random
import re
import signal
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from detinit.models import create_model
from detinit.train import CheckpointError, ConfigError, TrainConfig, load_checkpoint, read_jsonl, train
from detinit.train.fsdp import latest_sharded_checkpoint, replicated_parameters, shard_units

from .torchrun_runs import QUIET, fixup_resnet20_config, torchrun_train


def _kill_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants (torchrun's workers do not share its process group)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    todo, tree = [pid], []
    while todo:
        tree.append(todo.pop())
        todo += children.get(tree[-1], [])
    for member in tree:
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _consolidated(run: Path) -> dict:
    """The model and optimiser state of a run's last sharded checkpoint, gathered into one dict."""
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    folder = latest_sharded_checkpoint(run / "checkpoint_sharded")
    dcp_to_torch_save(str(folder), str(run / "consolidated.pt"))
    return torch.load(run / "consolidated.pt", weights_only=False)


def _tensors(tree: object) -> list[torch.Tensor]:
    return [leaf for leaf in torch.utils._pytree.tree_leaves(tree) if isinstance(leaf, torch.Tensor)]


def test_fsdp_with_two_cpu_processes_matches_single_process(tmp_path):
    """Fixup ResNet-20 without norms (its 0-dim scalars stay replicated, averaged by hand) and SGD: the
    sharded run's weights after 2 epochs are the single-process ones within rtol 1e-4 (measured: 5e-7 at
    most, relative to each tensor's largest value). They cannot be bitwise: each rank sums the gradient
    of its half of the batch and FSDP averages the halves, another order of float additions."""
    cfg = fixup_resnet20_config()
    train(cfg, tmp_path / "single")
    torchrun_train(cfg.replace(parallel="fsdp"), tmp_path / "fsdp", 29521)
    single = load_checkpoint(tmp_path / "single" / "checkpoint.pt")["model"]
    sharded = _consolidated(tmp_path / "fsdp")["model"]
    assert single.keys() == sharded.keys()
    for key in single:
        torch.testing.assert_close(sharded[key], single[key], rtol=1e-4, atol=1e-5)
    run = json.loads((tmp_path / "fsdp" / "run.json").read_text())
    assert (run["world_size"], run["parallel"], run["status"]) == (2, "fsdp", "complete")
    folder = latest_sharded_checkpoint(tmp_path / "fsdp" / "checkpoint_sharded")
    assert folder.name == "epoch_0002" and sorted(p.name for p in folder.glob("*.distcp")) == [
        "__0_0.distcp",
        "__1_0.distcp",
    ]  # each rank wrote its own shards; epoch 1's folder was removed once epoch 2's was in force
    assert [p.name for p in folder.parent.iterdir() if p.is_dir()] == ["epoch_0002"]
    rows, sharded_rows = (
        read_jsonl(tmp_path / "single" / "metrics.jsonl"),
        read_jsonl(tmp_path / "fsdp" / "metrics.jsonl"),
    )
    assert abs(rows[-1]["test_loss"] - sharded_rows[-1]["test_loss"]) < 1e-4


def _text_config(tmp_path: Path) -> TrainConfig:
    rng = random.Random(0)
    words = ["in", "the", "beginning", "was", "word", "and", "light", "darkness", "upon", "face", "deep"]
    (tmp_path / "text.txt").write_text(" ".join(rng.choice(words) for _ in range(6000)))
    return TrainConfig(
        model="gpt",
        model_args={"depth": 2, "width": 64, "heads": 4, "tie_weights": True},
        init="zero",
        data="text_file",
        data_root=str(tmp_path / "text.txt"),
        data_args={"context": 32},
        train_subset=None,  # the whole text: 923 windows
        test_subset=None,  # the whole validation text: 102 windows
        epochs=3,
        max_steps_per_epoch=30,
        batch_size=32,
        optimizer="adamw",
        lr=3e-3,
        weight_decay=0.1,
        parallel="fsdp",
        **QUIET,
    )


def _bn_config(tmp_path: Path) -> TrainConfig:
    return TrainConfig(
        model="resnet20",
        init="zero",
        data="synthetic",
        data_args={"num_examples": 1024, "image_size": 8},
        epochs=3,
        batch_size=32,
        lr=0.05,
        symmetry="dropout",
        symmetry_args={"p": 0.05},
        parallel="fsdp",
        **QUIET,
    )


@pytest.mark.parametrize("make_config", [_text_config, _bn_config], ids=["gpt_tied_adamw", "resnet20_bn_dropout"])
def test_fsdp_run_killed_with_sigkill_and_resumed_is_bitwise_the_uninterrupted_run(tmp_path, make_config):
    """Two ranks, one thread each: a run killed (torchrun and both workers, SIGKILL) after its first epoch
    and started again ends with the same weights, optimiser state (AdamW moments, SGD momentum) and test
    losses, bit for bit, as the run that was not interrupted. The tied GPT checks shared parameters in the
    checkpoint; the BatchNorm ResNet, whose ranks see different batches, checks that its statistics are
    made one set before they are saved."""
    cfg = make_config(tmp_path)
    torchrun_train(cfg, tmp_path / "reference", 29522)
    killed = tmp_path / "killed"
    proc = torchrun_train(cfg, killed, 29523, wait=False)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not read_jsonl(killed / "metrics.jsonl"):
        time.sleep(0.02)
    _kill_tree(proc.pid)
    proc.wait()
    done = len(read_jsonl(killed / "metrics.jsonl"))
    assert 1 <= done < cfg.epochs, "the run should have been killed mid-way"
    torchrun_train(cfg, killed, 29524)
    run = json.loads((killed / "run.json").read_text())
    assert run["status"] == "complete" and run["resumes"][0]["from_epoch"] == done
    reference, resumed = _consolidated(tmp_path / "reference"), _consolidated(killed)
    for key, value in reference["model"].items():
        assert torch.equal(resumed["model"][key], value), key
    assert all(torch.equal(a, b) for a, b in zip(_tensors(reference["optimizer"]), _tensors(resumed["optimizer"])))
    losses = [[r["test_loss"] for r in read_jsonl(path / "metrics.jsonl")] for path in (tmp_path / "reference", killed)]
    assert losses[0] == losses[1] and len(losses[0]) == cfg.epochs


def test_the_blocks_are_sharded_and_scalars_stay_whole():
    resnet = create_model("resnet20", init="fixup", norm="none")
    assert {type(m).__name__ for m in shard_units(resnet)} == {"BasicBlock"} and len(shard_units(resnet)) == 9
    gpt = create_model("gpt", depth=3)
    assert [type(m).__name__ for m in shard_units(gpt)] == ["TransformerBlock"] * 3
    constnet = create_model("constnet_16_1")
    assert {type(m).__name__ for m in shard_units(constnet)} == {"ConstNetBlock"}
    whole = {id(p) for p in replicated_parameters(resnet)}
    scalars = {name for name, p in resnet.named_parameters() if id(p) in whole}  # Fixup: 4 biases, a gate a block
    assert len(scalars) == 9 * 5 + 2 and {"stem.2.bias", "pool.2.bias", "stages.2.2.gate.weight"} <= scalars
    nested = nn.Sequential(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), nn.Sequential(nn.Linear(2, 2)))
    assert shard_units(nested) == []  # containers of leaf layers: everything stays with the root


def test_what_fsdp_cannot_do_is_refused_naming_the_key(tmp_path):
    base = dict(model="mnist_mlp", data="synthetic", epochs=1, parallel="fsdp", **QUIET)
    with pytest.raises(ConfigError, match="diagnostics_every=1 with parallel='fsdp'.*set diagnostics_every=0"):
        TrainConfig(**base, diagnostics_every=1).validate()
    for mechanism in ("rounding", "weight_noise"):
        with pytest.raises(ConfigError, match=f"symmetry='{mechanism}' with parallel='fsdp'.*'dropout'"):
            TrainConfig(**base, symmetry=mechanism).validate()
    with pytest.raises(ConfigError, match="parallel='bogus' is not allowed.*ddp, fsdp"):
        TrainConfig(**{**base, "parallel": "bogus"}).validate()
    env = {k: os.environ.pop(k) for k in ("RANK", "WORLD_SIZE") if k in os.environ}
    try:
        with pytest.raises(ConfigError, match="parallel='fsdp' shards the model across processes started by torchrun"):
            train(TrainConfig(**base), tmp_path / "run")
    finally:
        os.environ.update(env)
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="sharding happens on the meta device; give device="):
        create_model("mnist_mlp", shard=lambda m: m)
    (tmp_path / "checkpoint_sharded").mkdir()
    (tmp_path / "checkpoint_sharded" / "latest.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="latest.json is damaged; delete .*checkpoint_sharded"):
        latest_sharded_checkpoint(tmp_path / "checkpoint_sharded")
    (tmp_path / "checkpoint_sharded" / "latest.json").write_text('{"epoch": 2, "dir": "epoch_0002"}')
    with pytest.raises(CheckpointError, match="names .*epoch_0002, which does not exist"):
        latest_sharded_checkpoint(tmp_path / "checkpoint_sharded")


def _damaged_shard_worker(rank: int, root: str) -> None:
    """One gloo rank: save a sharded checkpoint, damage it three ways (a shard cut short and loaded; a bit
    flipped, and a pointer without digests, each checked as a resume does); writes each error."""
    import json

    import torch.distributed as dist

    from detinit.train.fsdp import (
        latest_sharded_checkpoint,
        load_sharded_checkpoint,
        save_sharded_checkpoint,
        shard_model,
    )

    def error(fn) -> str:
        try:
            fn()
            return "accepted"
        except CheckpointError as err:
            return str(err)

    dist.init_process_group("gloo", init_method=f"file://{root}/store", rank=rank, world_size=1)
    try:
        model = shard_model(nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        checkpoints = Path(root) / "checkpoint_sharded"
        folder = save_sharded_checkpoint(checkpoints, 1, model, optimizer, {"epoch": 1})
        (shard,) = folder.glob("*.distcp")
        whole = shard.read_bytes()
        messages = {"intact": error(lambda: latest_sharded_checkpoint(checkpoints, verify=True))}
        shard.write_bytes(whole[: len(whole) // 2])
        messages["truncated"] = error(lambda: load_sharded_checkpoint(folder, model, optimizer))
        flipped = bytearray(whole)
        flipped[len(flipped) // 2] ^= 0x01  # one bit: DCP reads the tensor bytes as they are
        shard.write_bytes(bytes(flipped))
        messages["flipped"] = error(lambda: latest_sharded_checkpoint(checkpoints, verify=True))
        pointer = checkpoints / "latest.json"
        pointer.write_text(json.dumps({k: v for k, v in json.loads(pointer.read_text()).items() if k != "sha256"}))
        messages["unverifiable"] = error(lambda: latest_sharded_checkpoint(checkpoints, verify=True))
        Path(root, "messages.json").write_text(json.dumps(messages))
    finally:
        dist.destroy_process_group()


def test_a_damaged_shard_file_is_a_checkpoint_error_naming_the_folder(tmp_path):
    """A shard file cut short (a disk full, a copy interrupted) is refused with the folder and what to do,
    not DCP's storage-plan traceback; one flipped bit, which DCP would load, is found by the digests the
    pointer records; a pointer without digests cannot vouch for its shards."""
    import json

    import torch.multiprocessing as mp

    mp.spawn(_damaged_shard_worker, args=(str(tmp_path),), nprocs=1)
    messages = json.loads((tmp_path / "messages.json").read_text())
    folder, root = tmp_path / "checkpoint_sharded" / "epoch_0001", tmp_path / "checkpoint_sharded"
    assert messages["intact"] == "accepted"
    assert messages["truncated"].startswith(f"sharded checkpoint {folder} could not be")
    assert messages["truncated"].endswith(f"delete {root} to restart the run from epoch 0")
    assert re.fullmatch(rf"sharded checkpoint {folder} is not the one written: damaged \['__0_0.distcp'\]; .*",
                        messages["flipped"])  # fmt: skip
    assert messages["unverifiable"].startswith(f"sharded checkpoint {folder} cannot be verified: ")
