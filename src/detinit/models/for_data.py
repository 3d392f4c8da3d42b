"""What a registered model's constructor takes from a dataset: its classes, channels and image size, or its
vocabulary and context (:func:`detinit.data.model_shape`); a language model is refused on images and an
image model on token windows.

>>> from detinit.data import load_dataset, model_shape
>>> shape = model_shape(load_dataset("synthetic", "train", num_examples=8, image_size=12))
>>> create_model("resnet20", **data_kwargs_for("resnet20", shape)).fc.out_features
10
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

from ..contract import checked_arguments
from .registry import ModelEntry, create_model, model_entry  # noqa: F401  (create_model: the doctest above)

SHAPE_KEYS = tuple(p for p in inspect.signature(ModelEntry.data_kwargs).parameters if p != "self")  # what it reads


@checked_arguments()
def data_kwargs_for(name: str, shape: Mapping[str, int], data: str = "the data") -> dict[str, int]:
    """The constructor arguments model ``name`` takes from data of ``shape``
    (:func:`detinit.data.model_shape`); ``data`` names the data in the error a mismatch raises.

    >>> data_kwargs_for("gpt", {"vocab_size": 256, "context": 64})
    {'vocab_size': 256, 'context': 64}
    """
    entry = model_entry(name)
    tokens = "vocab_size" in shape
    mismatch = kind_mismatch(name, tokens, data)
    if mismatch:
        raise ValueError(mismatch)
    needed = ("vocab_size", "context") if tokens else ("num_classes", "in_chans", "image_size|length")
    missing = [k for k in needed if not any(part in shape for part in k.split("|"))]
    unknown = sorted(set(shape) - set(SHAPE_KEYS))
    if missing or unknown:
        raise ValueError(
            f"data_kwargs_for: shape {dict(shape)} "
            + (f"lacks {', '.join(missing)}" if missing else f"has unknown keys {', '.join(unknown)}")
            + "; give detinit.data.model_shape(dataset): num_classes, in_chans and image_size (or length) for images, "
            "vocab_size and context for token windows"
        )
    return entry.data_kwargs(**shape)


def kind_mismatch(name: str, tokens: bool, data: str = "the data") -> str | None:
    """What is wrong when model ``name`` meets data that gives token windows (``tokens``) or images, else ``None``.

    >>> kind_mismatch("gpt", tokens=False, data="cifar10")
    "model='gpt' is a language model (token ids in) but data='cifar10' gives images; use data 'kjv' or 'text_file'"
    """
    takes_tokens = model_entry(name).takes_tokens
    if takes_tokens == tokens:
        return None
    kind = "a language model (token ids in)" if takes_tokens else "an image model"
    return f"model={name!r} is {kind} but data={data!r} gives {'token windows' if tokens else 'images'}; " + (
        "use data 'kjv' or 'text_file'" if takes_tokens else "use a model such as 'gpt'"
    )
