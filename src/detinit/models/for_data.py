"""What a registered model's constructor takes from a dataset: its classes, channels and image size, or its
vocabulary and context (:func:`detinit.data.model_shape`); a language model is refused on images and an
image model on token windows.

>>> from detinit.data import load_dataset, model_shape
>>> shape = model_shape(load_dataset("synthetic", "train", num_examples=8, image_size=12))
>>> create_model("resnet20", **data_kwargs_for("resnet20", shape)).fc.out_features
10
"""

from __future__ import annotations

from collections.abc import Mapping

from .registry import create_model, model_entry  # noqa: F401  (create_model: the doctest above)


def data_kwargs_for(name: str, shape: Mapping[str, int], data: str = "the data") -> dict[str, int]:
    """The constructor arguments model ``name`` takes from data of ``shape``
    (:func:`detinit.data.model_shape`); ``data`` names the data in the error a mismatch raises.

    >>> data_kwargs_for("gpt", {"vocab_size": 256, "context": 64})
    {'vocab_size': 256, 'context': 64}
    """
    entry = model_entry(name)
    tokens = "vocab_size" in shape
    if entry.takes_tokens != tokens:
        kind = "a language model (token ids in)" if entry.takes_tokens else "an image model"
        data_kind = "token windows" if tokens else "images"
        raise ValueError(
            f"model={name!r} is {kind} but data={data!r} gives {data_kind}; "
            + ("use data 'kjv' or 'text_file'" if entry.takes_tokens else "use a model such as 'gpt'")
        )
    return entry.data_kwargs(**shape)
