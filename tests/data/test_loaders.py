"""Loaders on generated files in the real formats, Fashion-MNIST from Debian, augmentation, batching."""

import gzip
import inspect
import pickle
import tarfile

import numpy as np
import pytest
import torch

from detinit.data import (
    Batches,
    DataError,
    fetch_fashion_mnist,
    list_datasets,
    load_dataset,
    random_crop_flip,
    read_idx,
    reads_files,
    to_float,
    write_idx,
)
from detinit.data.base import DATASETS
from detinit.data.mnist import FASHION_SHA256


def make_mnist_dir(root, n_train=20, n_test=10, gz=True):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    for split, n in (("train", n_train), ("t10k", n_test)):
        write_idx(root / f"{split}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(root / f"{split}-labels-idx1-ubyte{suffix}", rng.integers(0, 10, (n,), dtype=np.uint8))
    return root


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip_and_mnist_from_path(tmp_path, gz):
    make_mnist_dir(tmp_path, gz=gz)
    ds = load_dataset("mnist", "train", root=tmp_path)
    assert ds.images.shape == (20, 1, 28, 28) and ds.images.dtype == torch.uint8 and ds.labels.dtype == torch.int64
    raw = read_idx(tmp_path / ("train-images-idx3-ubyte" + (".gz" if gz else "")))
    assert torch.equal(ds.images[:, 0], raw)
    assert len(load_dataset("mnist", "test", root=tmp_path)) == 10


def test_corrupt_and_missing_idx_files_name_the_file(tmp_path):
    make_mnist_dir(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])  # truncated
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: header says shape \(20, 28, 28\)"):
        load_dataset("mnist", "train", root=tmp_path)
    path.write_bytes(b"garbage!")
    with pytest.raises(DataError, match="not an IDX file"):
        load_dataset("mnist", "train", root=tmp_path)
    path.unlink()
    with pytest.raises(DataError, match="missing file .*train-images-idx3-ubyte"):
        load_dataset("mnist", "train", root=tmp_path)
    with pytest.raises(DataError, match="pass root=DIR"):
        load_dataset("mnist", "train")
    bad_gz = tmp_path / "x.gz"
    bad_gz.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x05ab")[:-4])
    with pytest.raises(DataError, match="corrupt or truncated"):
        read_idx(bad_gz)


def test_fashion_mnist_from_debian_is_verified_and_complete():
    folder = fetch_fashion_mnist()  # downloads once into the cache, then reuses it
    assert sorted(p.name for p in folder.iterdir()) == sorted(FASHION_SHA256)
    train, test = load_dataset("fashion_mnist", "train"), load_dataset("fashion_mnist", "test")
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(train.labels).tolist() == [6000] * 10  # Fashion-MNIST is balanced
    assert abs(to_float(train.images[:5000], train.mean, train.std).mean().item()) < 0.05


def test_fashion_mnist_corrupt_root_is_reported(tmp_path):
    folder = fetch_fashion_mnist()
    for name in FASHION_SHA256:
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    victim = tmp_path / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(victim.read_bytes())
    data[-10] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"\['t10k-labels-idx1-ubyte.gz'\] .* fail their SHA-256 check"):
        load_dataset("fashion_mnist", "test", root=tmp_path)


def _cifar_batch(n, label_key, classes, seed):
    rng = np.random.default_rng(seed)
    return pickle.dumps(
        {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            label_key: rng.integers(0, classes, n).tolist(),
            b"batch_label": b"x",
        }
    )


def make_cifar10(root, n=8):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i in range(1, 6):
        (folder / f"data_batch_{i}").write_bytes(_cifar_batch(n, b"labels", 10, i))
    (folder / "test_batch").write_bytes(_cifar_batch(n, b"labels", 10, 9))
    return folder


def test_cifar10_from_folder_parent_and_archive(tmp_path):
    folder = make_cifar10(tmp_path)
    a = load_dataset("cifar10", "train", root=tmp_path, verify=False)
    b = load_dataset("cifar10", "train", root=folder, verify=False)
    assert a.images.shape == (40, 3, 32, 32) and torch.equal(a.images, b.images) and a.num_classes == 10
    first = pickle.loads((folder / "data_batch_1").read_bytes())
    assert torch.equal(a.images[0].flatten(), torch.from_numpy(first[b"data"][0]))  # CHW order kept
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    c = load_dataset("cifar10", "test", root=archive, verify=False)
    assert c.images.shape == (8, 3, 32, 32)
    with pytest.raises(DataError, match="data_batch_1 .* fails its MD5 check .* verify=False"):
        load_dataset("cifar10", "train", root=tmp_path)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DataError, match="missing CIFAR batch file .*data_batch_3"):
        load_dataset("cifar10", "train", root=tmp_path, verify=False)
    (folder / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="test_batch .* is not a CIFAR pickle batch"):
        load_dataset("cifar10", "test", root=tmp_path, verify=False)


def test_cifar100_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    (folder / "train").write_bytes(_cifar_batch(12, b"fine_labels", 100, 1))
    (folder / "test").write_bytes(_cifar_batch(6, b"fine_labels", 100, 2))
    ds = load_dataset("cifar100", "train", root=tmp_path, verify=False)
    assert ds.num_classes == 100 and len(ds) == 12


def test_generated_datasets_and_registry():
    assert set(list_datasets()) == {
        "fashion_mnist",
        "mnist",
        "cifar10",
        "cifar100",
        "digits",
        "mnist1d",
        "synthetic",
        "imagenet",
        "kjv",
        "text_file",
    }
    digits = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert digits[0].images.shape[1:] == (1, 8, 8) and len(digits[0]) + len(digits[1]) == 1797
    m1d = load_dataset("mnist1d", "test")
    assert m1d.images.shape == (1000, 1, 40)
    syn = load_dataset("synthetic", "train", num_examples=100, in_chans=3, image_size=8)
    assert torch.equal(
        syn.images, load_dataset("synthetic", "train", num_examples=100, in_chans=3, image_size=8).images
    )
    assert len(load_dataset("synthetic", "train", subset=10)) == 10
    with pytest.raises(ValueError, match="unknown dataset 'fashion'.*Did you mean fashion_mnist"):
        load_dataset("fashion")
    with pytest.raises(ValueError, match="split='val'"):
        load_dataset("synthetic", "val")


@pytest.mark.parametrize("name", sorted(list_datasets()))
def test_a_generated_dataset_refuses_a_root_and_every_dataset_a_subset_larger_than_it(name, tmp_path):
    """``root`` is read by the loaders that read files and refused by the ones that generate; a subset larger
    than the split is refused rather than silently the whole split."""
    if not reads_files(name):
        with pytest.raises(DataError, match=f"dataset '{name}' is generated and reads no files"):
            load_dataset(name, "test", root=tmp_path)
        dataset = load_dataset(name, "test")
        with pytest.raises(DataError, match=f"a subset of {len(dataset) + 1} examples asked from a test split of"):
            load_dataset(name, "test", subset=len(dataset) + 1)
        assert len(load_dataset(name, "test", subset=len(dataset))) == len(dataset)
    else:
        assert "root" in inspect.signature(DATASETS.get(name)).parameters


def test_random_crop_flip_takes_windows_of_the_padded_image():
    x = torch.randn(64, 3, 8, 8)
    out = random_crop_flip(x, torch.Generator().manual_seed(0), pad=2)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="reflect")
    for i in range(64):
        found = any(
            torch.equal(out[i], w) or torch.equal(out[i], w.flip(2))
            for dy in range(5)
            for dx in range(5)
            for w in [padded[i, :, dy : dy + 8, dx : dx + 8]]
        )
        assert found
    again = random_crop_flip(x, torch.Generator().manual_seed(0), pad=2)
    assert torch.equal(out, again) and not torch.equal(out, x)


def test_batches_are_seeded_per_epoch_and_shard_for_ddp():
    ds = load_dataset("synthetic", "train", num_examples=96, image_size=8)
    full = Batches(ds, 32, shuffle=True, seed=3)
    e0 = [y for _, y in full.epoch(0)]
    assert [torch.equal(a, b) for a, b in zip(e0, [y for _, y in full.epoch(0)])] == [True] * 3
    assert not torch.equal(torch.cat(e0), torch.cat([y for _, y in full.epoch(1)]))
    assert sorted(torch.cat(e0).tolist()) == sorted(ds.labels.tolist())
    shards = [Batches(ds, 32, shuffle=True, seed=3, rank=r, world_size=2) for r in (0, 1)]
    for (xa, ya), (xb, yb), (x, y) in zip(shards[0].epoch(0), shards[1].epoch(0), full.epoch(0)):
        assert torch.equal(torch.cat([xa, xb]), x) and torch.equal(torch.cat([ya, yb]), y)
    with pytest.raises(ValueError, match="divisible by the world size 2"):
        Batches(ds, 33, world_size=2)
    with pytest.raises(ValueError, match=r"augment=True needs image data"):
        Batches(load_dataset("mnist1d", "test"), 8, augment=True)
    assert len(Batches(ds, 128)) == 1  # a batch larger than the data: one partial batch, as torch's DataLoader
    with pytest.raises(ValueError, match=r"batch_size=128 with drop_last=True is larger than the dataset \(96"):
        Batches(ds, 128, drop_last=True)  # no batch at all
