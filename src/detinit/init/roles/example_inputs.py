"""An example input for models whose library says what they take: :func:`infer_example_inputs`.

:func:`detinit.initialize` traces one forward pass to find the roles of a
model's layers (:mod:`detinit.init.roles.traced`). Users can pass
``example_inputs=``; for two families the model itself says what it takes:

* **Hugging Face** (a ``config`` with ``model_type``): ``main_input_name``
  ``"input_ids"`` gets 2 x 8 token ids below ``config.vocab_size``, the same
  first token in both rows (as ``[CLS]`` or BOS in real batches)
  (encoder-decoder models also ``decoder_input_ids``); ``"pixel_values"`` a
  2 x ``num_channels`` x ``image_size`` x ``image_size`` image. The cache is
  off (``use_cache=False``), so no key/value concatenation shows up as
  structure.
* **timm** (``pretrained_cfg["input_size"]``): a batch of 2 images of that size.

The values are deterministic (token ``i`` at position ``i`` after the shared
first token; images from a seeded generator). Roles depend only on their
shapes and on what depends on them; a zero output layer whose input is the
same for both rows gets rows orthogonal to it (:mod:`detinit.init.apply.readout`).
"""

from __future__ import annotations

import inspect

import torch
from torch import nn


def _device(model: nn.Module) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def _image(channels: int, size: int | tuple[int, int], device: torch.device) -> torch.Tensor:
    height, width = (size, size) if isinstance(size, int) else size
    generator = torch.Generator().manual_seed(0)
    return torch.randn(2, channels, height, width, generator=generator).to(device)


def _token_rows(length: int, vocab: int, device: torch.device) -> torch.Tensor:
    """2 rows of ``length`` token ids that share their first token, as real batches do (BOS, ``[CLS]``, the
    decoder's start token), and differ after it: row ``r``, position ``i`` holds ``(r * length + i) mod vocab``,
    position 0 holds 0."""
    ids = torch.arange(2 * length).view(2, length) % vocab
    ids[:, 0] = 0
    return ids.to(device)


def _hugging_face(model: nn.Module) -> dict[str, object] | None:
    config = getattr(model, "config", None)
    if getattr(config, "model_type", None) is None:
        return None
    config = (
        config.get_text_config() if hasattr(config, "get_text_config") and hasattr(config, "vision_config") else config
    )
    device = _device(model)
    name = getattr(model, "main_input_name", "input_ids")
    accepted = inspect.signature(model.forward).parameters
    inputs: dict[str, object] = {}
    if name == "input_ids":
        vocab = int(getattr(config, "vocab_size", 0) or 0)
        if vocab < 1:
            return None
        inputs["input_ids"] = _token_rows(8, vocab, device)
        if getattr(config, "is_encoder_decoder", False) and "decoder_input_ids" in accepted:
            inputs["decoder_input_ids"] = _token_rows(4, vocab, device)
    elif name == "pixel_values":
        size, channels = getattr(config, "image_size", None), getattr(config, "num_channels", 3)
        if size is None:
            return None
        inputs["pixel_values"] = _image(channels, size, device)
    else:
        return None
    if "use_cache" in accepted:
        inputs["use_cache"] = False
    return inputs


def _timm(model: nn.Module) -> torch.Tensor | None:
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None)
    size = cfg.get("input_size") if isinstance(cfg, dict) else None
    if not size or len(size) != 3:
        return None
    channels, height, width = size
    return _image(channels, (height, width), _device(model))


def infer_example_inputs(model: nn.Module) -> object | None:
    """An input ``model`` accepts, from its library's description of it; ``None`` if it has none.

    >>> infer_example_inputs(torch.nn.Linear(2, 2)) is None
    True
    """
    for infer in (_hugging_face, _timm):
        found = infer(model)
        if found is not None:
            return found
    return None
