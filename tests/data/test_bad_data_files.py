"""Data files that are not what their format says, and options no loader supports (issue 32, batch 12): each is
a clean error naming the file or the option, for every registered dataset where the class is one of arguments."""

import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from detinit.contract import ArgumentError
from detinit.data import DataError, list_datasets
from detinit.data.base import DATASETS, ArrayDataset
from detinit.data.cifar import cifar10
from detinit.data.folder import imagenet
from detinit.data.idx import read_idx, write_idx
from detinit.data.mnist import mnist


@pytest.mark.parametrize("name", sorted(list_datasets()))
@pytest.mark.parametrize("split", ["val", "validation", "Train", None])
def test_every_dataset_refuses_a_split_it_does_not_have(name, split):
    with pytest.raises(ValueError, match=rf"dataset '{name}': split={split!r} is not supported; choose 'train'"):
        DATASETS.get(name)(split=split)


def test_an_idx_type_code_the_format_does_not_define_is_named(tmp_path):
    path = tmp_path / "x.idx"
    path.write_bytes(struct.pack(">HBB", 0, 0x0F, 1) + struct.pack(">I", 2) + b"\x01" * 8)
    with pytest.raises(DataError, match="IDX data type code 0x0F is not one the format defines"):
        read_idx(path)


def test_write_idx_to_a_folder_is_named(tmp_path):
    with pytest.raises(DataError, match="is a folder; give the file to write"):
        write_idx(tmp_path, np.zeros(3, np.uint8))


def _mnist_root(tmp_path, images, labels):
    write_idx(tmp_path / "train-images-idx3-ubyte", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    return tmp_path


def test_mnist_files_of_another_size_or_with_labels_beyond_the_classes_are_refused(tmp_path):
    root = _mnist_root(tmp_path, np.zeros((3, 32, 32), np.uint8), np.array([0, 1, 2], np.uint8))
    with pytest.raises(DataError, match=r"images of \(32, 32\) pixels; the MNIST format is 28x28"):
        mnist("train", root=str(root))
    root = _mnist_root(tmp_path, np.zeros((3, 28, 28), np.uint8), np.array([0, 200, 3], np.uint8))
    with pytest.raises(DataError, match=r"labels span 0..200, outside the 10 classes 0..9"):
        mnist("train", root=str(root))


@pytest.mark.parametrize(
    "batch, message",
    [
        (
            {b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]},
            "its data are float32; CIFAR batches hold uint8",
        ),
        ([1, 2, 3], "is not a CIFAR pickle batch"),
    ],
)
def test_cifar_batches_that_would_be_misread_are_refused(tmp_path, batch, message):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(pickle.dumps(batch))
    with pytest.raises(DataError, match=message):
        cifar10("test", root=tmp_path, verify=False)


def test_an_array_dataset_refuses_labels_outside_its_classes():
    with pytest.raises(DataError, match=r"labels span -1..2, outside the 3 classes 0..2"):
        ArrayDataset("x", "train", torch.zeros(3, 1, 2, 2), torch.tensor([0, -1, 2]), 3, (0.0,), (1.0,))
    with pytest.raises(DataError, match="labels must be 1-D int64, got torch.float32"):
        ArrayDataset("x", "train", torch.zeros(3, 1, 2, 2), torch.zeros(3), 3, (0.0,), (1.0,))


@pytest.mark.parametrize("size", [0, 7.5, "224"])
def test_an_image_folder_refuses_a_size_that_is_not_a_positive_int(tmp_path, size):
    for split in ("train", "val"):
        (tmp_path / split / "n1").mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / split / "n1" / "a.JPEG")
    assert imagenet("test", root=str(tmp_path), image_size=8).classes == ("n1",)
    with pytest.raises(ArgumentError, match=f"image_size={size!r} is not supported; image_size must be an int >= 1"):
        imagenet("train", root=tmp_path, image_size=size)
