"""Meta-device and sharded (DTensor, FSDP2) initialisation: bitwise the plain initialisation."""

from __future__ import annotations

import os
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from detinit import initialize
from detinit.init.apply.sharded import local_block, materialize_
from detinit.init.tensor.row_fills import RowFill
from detinit.models.registry import create_model, model_entry
from detinit.train.fsdp import shard_model

CASES = [
    ("resnet20", "zero", {}),
    ("resnet20", "zero", {"norm": "none"}),  # branch_zero="gate": mixing and He-row fills, by row blocks
    ("resnet20", "kaiming", {}),
    ("zero_resnet20", None, {}),
    ("constnet_16_1", None, {}),
    ("gpt", "zero", {"position": "sinusoidal"}),
    ("gpt", "zero", {"tie_weights": True}),
    ("vit", "orthogonal", {}),
]


def _differing(a: nn.Module, b: nn.Module) -> list[str]:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    full = {k: v.full_tensor() if hasattr(v, "full_tensor") else v for k, v in sa.items()}
    return [k for k in sa if not torch.equal(full[k], sb[k])]


@pytest.mark.parametrize(("name", "init", "kwargs"), CASES)
def test_a_model_built_on_meta_is_bitwise_the_model_built_on_cpu(name, init, kwargs) -> None:
    """Parameters, norm running statistics and constant buffers (sinusoidal positions) included."""
    plain = create_model(name, init=init, **kwargs)
    lazy = create_model(name, init=init, device="cpu", **kwargs)
    assert not any(t.is_meta for t in [*lazy.parameters(), *lazy.buffers()])
    assert _differing(lazy, plain) == []
    assert [r.rule for r in lazy.init_report.records] == [r.rule for r in plain.init_report.records]


def test_materialising_keeps_tied_weights_tied_and_real_tensors_real() -> None:
    lazy = create_model("gpt", init="zero", device="cpu", tie_weights=True)
    shared = [p for p in lazy.parameters() if p.dim() == 2 and p.shape[0] == lazy.head.weight.shape[0]]
    assert lazy.head.weight.data_ptr() == lazy.tok.weight.data_ptr(), shared
    with torch.device("meta"):
        net = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    net[1].weight = nn.Parameter(torch.full((3,), 7.0), requires_grad=False)  # a real, frozen tensor
    materialize_(net, "cpu")
    assert torch.equal(net[1].weight, torch.full((3,), 7.0)) and torch.equal(net[1].running_var, torch.ones(3))


def test_meta_inputs_that_would_be_left_unfilled_are_refused() -> None:
    with pytest.raises(ValueError, match=r"device=.*no meta tensor: move it with model.to\(device\)"):
        initialize(nn.Linear(2, 2), "zero", device="cpu")
    with torch.device("meta"):
        unknown = nn.Sequential(nn.Linear(2, 2), nn.Bilinear(2, 2, 2))
    with pytest.raises(ValueError, match=r"no rule fills 1.weight \(unknown\)"):
        initialize(unknown, "zero", device="cpu")
    assert unknown[0].weight.is_meta  # refused before anything was materialised

    class Table(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(2, 2)
            self.register_buffer("table", torch.arange(4.0))

    with torch.device("meta"):
        table = Table()
    with pytest.raises(ValueError, match=r"buffers table hold values detinit cannot recompute; .*detinit_buffers_"):
        initialize(table, "zero", device="cpu")
    with torch.device("meta"):
        linear = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="tracing runs the model, which a meta-device model cannot do"):
        initialize(linear, "zero", device="cpu", example_inputs=torch.zeros(1, 2))
    with pytest.raises(ValueError, match="device='meta'"):
        initialize(linear, "zero", device="meta")
    for device, message in (("gpu", "device='gpu' is not a device"), (3.5, "device=3.5 is not a device")):
        with pytest.raises(ValueError, match=message):
            initialize(linear, "zero", device=device)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cuda', but CUDA is not available here"):
            initialize(linear, "zero", device="cuda")
    assert linear.weight.is_meta  # refused before anything was materialised


def _hugging_face_gpt2(mesh, whole_fills: list) -> tuple[list[str], list] | None:
    """A tiny Hugging Face GPT-2 (Conv1D weights stored (in, out)) sharded, then initialised with ZerO, its roles
    traced through the sharded forward pass: ``(differing tensors, whole fills)``; ``None`` without transformers."""
    try:
        from tests.init.test_hugging_face import build
    except ImportError:  # transformers is in the [test] extra
        return None
    plain, sharded = build("gpt2"), build("gpt2")
    initialize(plain, "zero")
    shard_model(sharded, mesh)
    whole_fills.clear()
    initialize(sharded, "zero")
    return _differing(sharded, plain), list(whole_fills)


def _sharded_worker(rank: int, world: int, store: str, out: str) -> None:
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor, init_device_mesh

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    whole_fills = []  # the deterministic fills a rank ran on a whole tensor instead of its shard's rows
    whole = RowFill.__call__
    RowFill.__call__ = lambda fill, tensor, g: (whole_fills.append(tuple(tensor.shape)), whole(fill, tensor, g))[1]
    mesh = init_device_mesh("cpu", (world,))
    found = []
    for name, init, on_meta in [("resnet20", "zero", False), ("resnet20", "kaiming", True), ("gpt", "zero", True),
                                ("gpt", "kaiming", False), ("constnet_16_1", "constnet", True)]:  # fmt: skip
        entry = model_entry(name)
        with torch.device("meta") if on_meta else torch.device("cpu"):
            model = entry.builder()
        shard_model(model, mesh)  # FSDP2 fully_shard on each block, then the model
        whole_fills.clear()
        initialize(model, init, device="cpu" if on_meta else None, **entry.init_options(init, None))
        ran_whole = list(whole_fills)
        locals_ = [p.to_local().numel() for p in model.parameters()]
        differing = _differing(model, create_model(name, init=init))
        found.append((name, init, on_meta, differing, sum(locals_), ran_whole))
    found.append(_hugging_face_gpt2(mesh, whole_fills))
    expanding = nn.Conv2d(6, 300, 3, groups=3, bias=False)  # Shard(0): rows 0:150 and 150:300, across groups
    expanding.weight = nn.Parameter(distribute_tensor(torch.empty(300, 2, 3, 3), mesh, [Shard(0)]))
    initialize(expanding, "zero", variant="paper")
    plain = nn.Conv2d(6, 300, 3, groups=3, bias=False)
    initialize(plain, "zero", variant="paper")
    block = local_block(expanding.weight)
    found.append(("conv", torch.equal(expanding.weight.to_local(), plain.weight[block]), block))
    linear = nn.Linear(6, 40, bias=False)  # Shard(1): each rank holds 3 of the 6 input columns
    linear.weight = nn.Parameter(distribute_tensor(torch.empty(40, 6), mesh, [Shard(1)]))
    initialize(linear, "zero")
    plain = nn.Linear(6, 40, bias=False)
    initialize(plain, "zero")
    block = local_block(linear.weight)
    found.append(("linear", "zero", "Shard(1)", torch.equal(linear.weight.to_local(), plain.weight[block]), block))
    replicated = nn.Parameter(distribute_tensor(torch.empty(5, 5), mesh, [Replicate()]))
    found.append(("replicate", local_block(replicated)))
    if rank == 0:
        torch.save(found, out)
    dist.barrier()  # no rank tears gloo down while another still talks to it (a std::terminate otherwise)
    dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # no interpreter teardown: a gloo thread still joinable there aborted a rank once (std::terminate)


def test_fsdp2_sharded_models_get_their_shard_of_the_plain_init(tmp_path) -> None:
    """Two gloo processes on the CPU: ResNet-20, the GPT, ConstNet and a Hugging Face GPT-2 sharded with FSDP2
    ``fully_shard`` (built on the CPU, or on meta and materialised by ``initialize(device=...)``), a grouped expanding conv sharded
    across its groups and a Linear weight sharded along its columns: each rank's shard holds exactly the plain
    initialisation's values, with no communication, and no deterministic fill ran on a whole tensor."""
    out = tmp_path / "found.pt"
    mp.spawn(_sharded_worker, args=(2, str(tmp_path / "store"), str(out)), nprocs=2)
    found = torch.load(out, weights_only=False)
    models = found[:5]
    for name, init, on_meta, differing, local_numel, whole_fills in models:
        assert differing == [], (name, init, on_meta)
        total = sum(p.numel() for p in create_model(name, init=init).parameters())
        assert local_numel < 0.6 * total  # each rank holds about half
        assert whole_fills == []  # deterministic fills wrote the shard's rows alone: no full-size temporary
    if found[5] is not None:
        assert found[5] == ([], [])  # Hugging Face GPT-2: its (in, out) weights sharded along their inputs too
    (_, conv_equal, conv_block), (_, _, _, equal, block), (_, replicated) = found[6:]
    assert conv_equal and conv_block == (slice(0, 150), slice(0, 2), slice(0, 3), slice(0, 3))
    assert equal and block == (slice(0, 40), slice(0, 3))
    assert replicated == (slice(0, 5), slice(0, 5))


def _small_registered_models(limit: int = 3_000_000) -> list[str]:
    from detinit.models import list_models

    small = []
    for name in list_models():
        with torch.device("meta"):
            model = model_entry(name).builder()
        if sum(p.numel() for p in model.parameters()) <= limit:
            small.append(name)
    return small


@pytest.mark.parametrize("name", _small_registered_models())
def test_the_to_empty_recipe_gives_the_plain_init_bitwise(name):
    """The FSDP2 recipe users follow (meta -> fully_shard -> to_empty -> initialize), unsharded: after to_empty
    every parameter and buffer is garbage (here NaN or 123); initialize must give back the plain model's tensors."""
    entry = model_entry(name)
    plain = create_model(name)
    with torch.device("meta"):
        model = entry.builder()
    model.to_empty(device="cpu")
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            tensor.fill_(float("nan") if tensor.is_floating_point() else 123)
    initialize(model, entry.default_init, **entry.init_options(None, None))
    expected, got = plain.state_dict(), model.state_dict()
    assert list(expected) == list(got)
    assert [key for key in expected if not torch.equal(expected[key], got[key])] == []
