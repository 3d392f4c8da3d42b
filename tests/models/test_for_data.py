"""What a model's constructor takes from the data, and the refusal of a model on the wrong kind of data."""

import pytest

from detinit.data import load_dataset, model_shape
from detinit.models import create_model, data_kwargs_for


def test_an_image_model_takes_classes_and_channels_and_a_vit_the_size():
    shape = model_shape(load_dataset("synthetic", "train", num_examples=8, image_size=12))
    assert data_kwargs_for("resnet20", shape) == {"num_classes": 10, "in_chans": 1}
    assert data_kwargs_for("vit", shape) == {"num_classes": 10, "in_chans": 1, "image_size": 12}
    assert create_model("resnet20", **data_kwargs_for("resnet20", shape)).fc.out_features == 10


def test_a_language_model_takes_the_vocabulary_and_the_context():
    assert data_kwargs_for("gpt", {"vocab_size": 40, "context": 16}) == {"vocab_size": 40, "context": 16}


def test_a_model_on_the_wrong_kind_of_data_is_refused_by_name():
    with pytest.raises(ValueError, match="model='gpt' is a language model.*data='digits' gives images.*'kjv'"):
        data_kwargs_for("gpt", {"num_classes": 10, "in_chans": 1, "image_size": 8}, "digits")
    with pytest.raises(ValueError, match="model='resnet20' is an image model.*data='kjv' gives token windows"):
        data_kwargs_for("resnet20", {"vocab_size": 40, "context": 16}, "kjv")
