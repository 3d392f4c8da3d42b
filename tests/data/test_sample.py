"""The batch ``detinit demo`` / ``inspect`` measure on: seeded synthetic inputs of a given shape, or a
dataset's first test examples with the dataset's own shape."""

import torch

from detinit.data import load_dataset, model_shape, probe_batch, sample_batch


def test_synthetic_images_are_seeded_and_shaped_by_the_arguments():
    a = sample_batch("synthetic", 5, tokens=False, seed=3, num_classes=7, in_chans=2, image_size=6)
    b = sample_batch("synthetic", 5, tokens=False, seed=3, num_classes=7, in_chans=2, image_size=6)
    assert a.inputs.shape == (5, 2, 6, 6) and torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert a.shape == {"num_classes": 7, "in_chans": 2, "image_size": 6}
    assert int(a.targets.max()) < 7 and a.describe_shape() == "input 2x6x6, 7 classes"
    assert not torch.equal(
        a.inputs, sample_batch("synthetic", 5, tokens=False, seed=4, in_chans=2, image_size=6).inputs
    )


def test_synthetic_token_windows_are_next_token_pairs():
    batch = sample_batch("synthetic", 4, tokens=True, seed=1, vocab_size=11, context=9)
    assert batch.inputs.shape == batch.targets.shape == (4, 9)
    assert torch.equal(batch.inputs[:, 1:], batch.targets[:, :-1])  # one window, shifted by one token
    assert int(batch.inputs.max()) < 11 and batch.describe_shape() == "11 tokens, context 9"


def test_a_dataset_gives_its_first_test_examples_and_its_own_shape():
    batch = sample_batch("digits", 6, tokens=False, num_classes=99, in_chans=5, image_size=40)  # flags ignored
    test = load_dataset("digits", "test")
    assert torch.equal(batch.inputs, probe_batch(test, 6)) and torch.equal(batch.targets, test.labels[:6])
    assert batch.shape == model_shape(test) == {"num_classes": 10, "in_chans": 1, "image_size": 8}
    assert batch.description == "the first 6 digits test images"
