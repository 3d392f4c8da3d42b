"""ImageNet-layout image folders on generated JPEGs: scanning, transforms, seeded streaming, errors, training."""

import numpy as np
import pytest
import torch
from PIL import Image

from detinit.data import DataError, FolderBatches, load_dataset, probe_batch
from detinit.train import TrainConfig, train


def make_folder(root, classes=("n01", "n02", "n03"), per_class=4, val_per_class=2):
    rng = np.random.default_rng(0)
    for split, n in (("train", per_class), ("val", val_per_class)):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                h, w = int(rng.integers(20, 60)), int(rng.integers(20, 60))
                Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / split / c / f"{i}.JPEG")
    return root


def test_scan_classes_and_transforms(tmp_path):
    make_folder(tmp_path)
    train_set = load_dataset("imagenet", "train", root=tmp_path, image_size=16)
    val = load_dataset("imagenet", "test", root=tmp_path, image_size=16)
    assert len(train_set) == 12 and len(val) == 6 and train_set.classes == ("n01", "n02", "n03")
    assert train_set.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    img = val.load(0, augment=False, generator=None)
    assert img.shape == (3, 16, 16) and img.dtype == torch.uint8
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(train_set.load(3, True, g1), train_set.load(3, True, g2))
    assert probe_batch(val, 4).shape == (4, 3, 16, 16)
    assert len(load_dataset("imagenet", "train", root=tmp_path, image_size=16, subset=5)) == 5


def test_streamed_batches_are_seeded_and_independent_of_workers(tmp_path):
    make_folder(tmp_path)
    ds = load_dataset("imagenet", "train", root=tmp_path, image_size=16)
    a = list(FolderBatches(ds, 4, shuffle=True, augment=True, seed=3, workers=0).epoch(1))
    b = list(FolderBatches(ds, 4, shuffle=True, augment=True, seed=3, workers=2).epoch(1))
    assert len(a) == 3 and all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b))
    c = list(FolderBatches(ds, 4, shuffle=True, augment=True, seed=3, workers=0).epoch(2))
    assert not torch.equal(torch.cat([x for x, _ in a]), torch.cat([x for x, _ in c]))
    shards = [
        list(FolderBatches(ds, 4, shuffle=True, seed=3, rank=r, world_size=2, workers=0).epoch(0)) for r in (0, 1)
    ]
    full = list(FolderBatches(ds, 4, shuffle=True, seed=3, workers=0).epoch(0))
    for (xa, ya), (xb, yb), (x, y) in zip(*shards, full):
        assert torch.equal(torch.cat([ya, yb]), y) and torch.equal(torch.cat([xa, xb]), x)


def test_layout_errors_name_the_folder_or_file(tmp_path):
    with pytest.raises(DataError, match="pass root=DIR"):
        load_dataset("imagenet", "train")
    with pytest.raises(DataError, match=r"missing folder .*train: root must hold train/<class>"):
        load_dataset("imagenet", "train", root=tmp_path)
    make_folder(tmp_path)
    (tmp_path / "val" / "n99").mkdir()
    with pytest.raises(DataError, match=r"class folders \['n99'\] that train/ does not have"):
        load_dataset("imagenet", "test", root=tmp_path)
    (tmp_path / "val" / "n99").rmdir()
    bad = tmp_path / "train" / "n01" / "0.JPEG"
    bad.write_bytes(b"not a jpeg")
    ds = load_dataset("imagenet", "train", root=tmp_path, image_size=16)
    with pytest.raises(DataError, match=r"cannot read image .*n01/0.JPEG"):
        ds.load(0, False, None)
    with pytest.raises(DataError, match="has 12 images, expected 1281167"):
        load_dataset("imagenet", "train", root=tmp_path, verify=True)


def test_training_on_an_image_folder(tmp_path):
    make_folder(tmp_path / "data", per_class=8)
    cfg = TrainConfig(
        model="resnet18",
        model_args={"stem": "imagenet"},
        data="imagenet",
        data_root=str(tmp_path / "data"),
        data_args={"image_size": 32},
        augment=True,
        epochs=1,
        batch_size=8,
        data_workers=0,
        diagnostics_every=1,
        progress=False,
        tensorboard=False,
        threads=2,
    )
    result = train(cfg, tmp_path / "run")
    assert result.status == "complete" and result.final["step"] == 3 and 0 <= result.final["test_acc"] <= 1
