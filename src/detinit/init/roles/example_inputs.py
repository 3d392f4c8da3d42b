"""An example input for models whose library says what they take: :func:`example_for`, :func:`infer_example_inputs`.

:func:`detinit.initialize` traces one forward pass to find the roles of a
model's layers (:mod:`detinit.init.roles.traced`). Users can pass
``example_inputs=``; for two families the model itself says what it takes:

* **Hugging Face** (a ``config`` with ``model_type``), by ``main_input_name``:
  ``"input_ids"``: 2 x 8 token ids below the (text) config's ``vocab_size``,
  both rows starting with the config's own first token (:func:`first_token_id`:
  ``cls_token_id``, else ``bos_token_id``, else 0, which the note says was
  assumed), as real batches do; encoder-decoder models' rows end with the config's ``eos_token_id`` (and
  hold it nowhere else), and they also get ``decoder_input_ids`` from ``decoder_start_token_id``.
  ``"pixel_values"``: 2 images of the (vision) config's ``num_channels`` and
  ``image_size`` (64 x 64 assumed where the config has none); a tower that also takes ``aspect_ratio_ids``
  (Mllama's) gets them as tiles: one tile an image, in a 1 x 1 layout.
  ``"input_values"``: 2 waveforms of 8,000 samples (half a second at 16 kHz), every other frame masked where
  the model takes ``mask_time_indices`` (so its mask embedding is traced).
  ``"input_features"``: 2 log-mel windows, ``(num_mel_bins, 2 x max_source_positions)``
  where the encoder has fixed positions (Whisper), else 64 frames of
  ``num_mel_bins`` / ``feature_size`` / ``input_feat_per_channel x input_channels``
  features, channels last or first, whichever the model runs on.
  A vision tower taking patches with their grid (``grid_thw``: Qwen-VL and its kin): one image of
  ``2m x 2m`` patches (``m`` the spatial merge size), flattened or not, whichever it runs on.
  ``"hidden_states"`` (a tower taking features its processor computed: Granite Speech's encoder): 2 x 8
  feature vectors of the first width the config names that the model runs on (``input_dim``, ...).
  The cache is off (``use_cache=False``), so no key/value concatenation shows
  up as structure.
* **timm** (``pretrained_cfg["input_size"]``): a batch of 2 images of that size.

The values are deterministic (token ``i`` at position ``i`` after the shared
first token; images and waveforms from a seeded generator). Roles depend only on
their shapes and on what depends on them; a zero output layer whose input is the
same for both rows gets rows orthogonal to it (:mod:`detinit.init.apply.readout`),
which keeps the output at 0 for inputs that start with the same first token.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from torch import nn

from .trace import eval_mode, run_model

WAVEFORM_SAMPLES = 8000
FEATURE_FRAMES = 64
ASSUMED_IMAGE_SIZE = 64
MAIN_INPUTS = ("input_ids", "pixel_values", "input_values", "input_features")
# config keys naming the width of features a tower takes already embedded, the likeliest first
EMBEDDED_WIDTHS = ("input_dim", "feature_size", "num_mel_bins", "hidden_size", "d_model")


@dataclass(frozen=True)
class Example:
    """An example input (``None`` where none could be made) and what it assumed, or why there is none."""

    inputs: object | None
    note: str = ""


def _device(model: nn.Module) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def _generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def _image(channels: int, size: int | tuple[int, int], device: torch.device) -> torch.Tensor:
    height, width = (size, size) if isinstance(size, int) else size
    return torch.randn(2, channels, height, width, generator=_generator()).to(device)


def _token_rows(length: int, vocab: int, first: int, device: torch.device) -> torch.Tensor:
    """2 rows of ``length`` token ids that share their first token, as real batches do (BOS, ``[CLS]``, the
    decoder's start token), and differ after it: row ``r``, position ``i`` holds ``(r * length + i) mod vocab``,
    position 0 holds ``first``."""
    ids = torch.arange(2 * length).view(2, length) % vocab
    ids[:, 0] = first
    return ids.to(device)


def _ending_with(ids: torch.Tensor, eos: int, vocab: int) -> torch.Tensor:
    """``ids`` with ``eos`` at the end of each row and nowhere else (BART's classification head reads every
    row's last ``</s>`` and refuses rows that hold different numbers of them)."""
    ids = ids.clone()
    ids[ids == eos] = (eos + 1) % vocab
    ids[:, -1] = eos
    return ids


def text_config(config: object) -> object:
    """The config that has the vocabulary: a composite model's text config, else the config itself."""
    if getattr(config, "vocab_size", None):
        return config
    get = getattr(config, "get_text_config", None)
    try:
        return get() if callable(get) else config
    except (AttributeError, ValueError):  # composite configs without a text part
        return config


def first_token_id(config: object) -> tuple[int, str]:
    """The first token of every sequence the model is given, as its config says (``cls_token_id``, else
    ``bos_token_id``), and where it came from; ``(0, "assumed")`` where the config says neither.

    >>> from types import SimpleNamespace
    >>> first_token_id(SimpleNamespace(vocab_size=100, cls_token_id=None, bos_token_id=1))
    (1, 'bos_token_id')
    """
    text = text_config(config)
    vocab = int(getattr(text, "vocab_size", 0) or 0)
    for key in ("cls_token_id", "bos_token_id"):
        value = getattr(text, key, None)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < max(vocab, 1):
            return value, key
    return 0, "assumed"


def _token_inputs(model: nn.Module, config: object, accepted: object, device: torch.device) -> Example:
    text = text_config(config)
    vocab = int(getattr(text, "vocab_size", 0) or 0)
    if vocab < 1:
        return Example(None, f"main input 'input_ids' but no vocab_size in {type(config).__name__}")
    first, source = first_token_id(config)
    inputs: dict[str, object] = {"input_ids": _token_rows(8, vocab, first, device)}
    note = (
        f"input_ids: 2 x 8 tokens starting with token {first} ({source}); a zero output reading one position "
        "stays 0 for inputs that start so: pass example_inputs= starting with your own [CLS]/BOS id to change it"
    )
    eos = getattr(text, "eos_token_id", None)
    if getattr(config, "is_encoder_decoder", False) and isinstance(eos, int) and 0 <= eos < vocab and eos != first:
        inputs["input_ids"] = _ending_with(inputs["input_ids"], eos, vocab)  # BART's classifier reads the </s>
        note += f"; each ends with eos token {eos}, as a sequence-to-sequence model's inputs do"
    if getattr(config, "is_encoder_decoder", False) and "decoder_input_ids" in accepted:
        start = getattr(config, "decoder_start_token_id", None)
        start = start if isinstance(start, int) and 0 <= start < vocab else first
        inputs["decoder_input_ids"] = _token_rows(8, vocab, start, device)  # as long: BART classifies on it
    return Example(inputs, note)


def _pixel_inputs(config: object, device: torch.device) -> Example:
    vision = getattr(config, "vision_config", None) or config
    size = getattr(vision, "image_size", None) or getattr(config, "image_size", None)
    channels = getattr(vision, "num_channels", None) or getattr(config, "num_channels", 3)
    note = ""
    if size is None:
        size = ASSUMED_IMAGE_SIZE
        note = f"pixel_values: {size} x {size} images assumed (the config has no image_size)"
    if not isinstance(size, int):
        size = tuple(size)[-2:]
    return Example({"pixel_values": _image(int(channels), size, device)}, note)


def _tiled_pixel_inputs(config: object, device: torch.device) -> Example:
    """Images cut into tiles with their aspect ratios (Mllama's vision tower): 2 images of one tile each,
    ``(2, 1, max_num_tiles, channels, size, size)`` with the other tiles padding, ``aspect_ratio_ids`` 1 (a 1 x 1
    layout) and the mask on the first tile."""
    found = _pixel_inputs(config, device)
    image = found.inputs["pixel_values"]  # type: ignore[index]
    tiles = int(getattr(getattr(config, "vision_config", None) or config, "max_num_tiles", 4))
    pixels = torch.zeros(2, 1, tiles, *image.shape[1:], device=device)
    pixels[:, 0, 0] = image
    mask = torch.zeros(2, 1, tiles, dtype=torch.long, device=device)
    mask[:, :, 0] = 1
    ids = torch.ones(2, 1, dtype=torch.long, device=device)
    note = f"pixel_values: 2 images of one {tuple(image.shape[1:])} tile of {tiles}, aspect_ratio_ids 1"
    return Example({"pixel_values": pixels, "aspect_ratio_ids": ids, "aspect_ratio_mask": mask}, note)


def _waveform_inputs(model: nn.Module, accepted: object, device: torch.device) -> Example:
    """Two waveforms; where the model takes ``mask_time_indices`` (wav2vec 2.0's family: masked frames are
    replaced by a learned mask embedding in pretraining), every other frame masked, so that the mask embedding
    is traced too."""
    waveform = torch.randn(2, WAVEFORM_SAMPLES, generator=_generator()).to(device)
    inputs: dict[str, object] = {"input_values": waveform}
    note = f"input_values: 2 waveforms of {WAVEFORM_SAMPLES} samples"
    frames_of = getattr(model, "_get_feat_extract_output_lengths", None)
    if "mask_time_indices" in accepted and callable(frames_of):
        frames = int(frames_of(torch.tensor(WAVEFORM_SAMPLES)))
        mask = torch.zeros(2, frames, dtype=torch.bool, device=device)
        mask[:, ::2] = True
        inputs["mask_time_indices"] = mask
        note += ", every other frame masked (mask_time_indices)"
    return Example(inputs, note)


def _feature_candidates(config: object, device: torch.device) -> list[torch.Tensor]:
    """Log-mel inputs of the shapes speech encoders take: a fixed window where the encoder has fixed positions
    (Whisper), two attention windows where it attends in windows of ``n_window`` frames pairs (Qwen3-ASR),
    else 64 frames with the features last or first."""
    g = _generator()
    per_channel = getattr(config, "input_feat_per_channel", None)
    features = per_channel * getattr(config, "input_channels", 1) if per_channel else None
    features = features or getattr(config, "num_mel_bins", None) or getattr(config, "feature_size", None) or 80
    sources = getattr(config, "max_source_positions", None)
    shapes = [(2, features, 2 * sources)] if isinstance(sources, int) else []
    window = getattr(config, "n_window", None)
    shapes += [(2, features, 2 * window)] if isinstance(window, int) and window > 0 else []
    shapes += [(2, FEATURE_FRAMES, features), (2, features, FEATURE_FRAMES)]
    return [torch.randn(*shape, generator=g).to(device) for shape in shapes]


def _feature_inputs(
    config: object, accepted: object, device: torch.device
) -> list[tuple[torch.Tensor, dict[str, object]]]:
    """Each log-mel candidate (:func:`_feature_candidates`) with what goes beside it: an encoder-decoder's
    ``decoder_input_ids``, and, where the model requires one, an ``input_features_mask`` of every frame (its
    frames along either axis, as the layout is not known)."""
    found = []
    for features in _feature_candidates(config, device):
        inputs: dict[str, object] = {"input_features": features}
        if getattr(config, "is_encoder_decoder", False) and "decoder_input_ids" in accepted:
            inputs["decoder_input_ids"] = torch.zeros(2, 3, dtype=torch.long, device=device)
        if "input_features_mask" not in accepted:
            found.append((features, inputs))
            continue
        for frames in dict.fromkeys((features.shape[-1], features.shape[1])):
            mask = torch.ones(features.shape[0], frames, dtype=torch.long, device=device)
            found.append((features, {**inputs, "input_features_mask": mask}))
    return found


def feature_vectors(widths: list[int], device: torch.device) -> list[torch.Tensor]:
    """Sequences of 8 feature vectors, ``(2, 8, width)``, one for each distinct positive width, in order."""
    widths = list(dict.fromkeys(w for w in widths if isinstance(w, int) and not isinstance(w, bool) and w > 0))
    return [torch.randn(2, FEATURE_FRAMES // 8, w, generator=_generator()).to(device) for w in widths]


def embedded_candidates(config: object, keys: tuple[str, ...], device: torch.device) -> list[torch.Tensor]:
    """:func:`feature_vectors` of each width the config names under ``keys`` (first found first): the inputs
    of a part that takes features already embedded."""
    return feature_vectors([getattr(config, key, None) for key in keys], device)


def _embedded_inputs(model: nn.Module, config: object) -> Example:
    """A tower whose forward takes ``hidden_states`` (Granite Speech's CTC encoder: features already computed
    by the processor): features of the first width in the config it runs on."""
    for features in embedded_candidates(config, EMBEDDED_WIDTHS, _device(model)):
        if runs_on(model, {"hidden_states": features}):
            return Example({"hidden_states": features}, f"hidden_states: {tuple(features.shape)} features")
    return Example(None, "main input 'hidden_states': no feature width in the config the model runs on")


def _patch_grid_inputs(model: nn.Module, config: object, first: str, device: torch.device) -> Example:
    """A vision tower that takes its image as a list of patches with the grid they came from (Qwen-VL's and its
    kin's ``(patches, grid_thw)``, the processor's output): one image of ``2 m x 2 m`` patches, ``m`` the
    config's spatial merge size, each patch flattened (``channels x temporal x patch x patch``) or not,
    whichever the tower runs on."""
    patch = int(getattr(config, "patch_size", 14) or 14)
    temporal = int(getattr(config, "temporal_patch_size", 1) or 1)
    channels = int(getattr(config, "in_channels", None) or getattr(config, "num_channels", None) or 3)
    merge = getattr(config, "spatial_merge_size", None) or getattr(config, "merge_kernel_size", None) or 2
    side = 2 * (max(merge) if isinstance(merge, (list, tuple)) else int(merge))
    grid = torch.tensor([[1, side, side]], device=device)
    count = side * side
    shapes = [(count, channels * temporal * patch * patch), (count, channels, patch, patch)]
    for shape in shapes:
        patches = torch.randn(*shape, generator=_generator()).to(device)
        if runs_on(model, {first: patches, "grid_thw": grid}):
            note = f"{first}: one image of {side} x {side} patches {tuple(shape)} with grid_thw {grid.tolist()}"
            return Example({first: patches, "grid_thw": grid}, note)
    return Example(None, f"inputs {first!r} and 'grid_thw': no patch layout the tower runs on")


def runs_on(model: nn.Module, inputs: dict[str, object]) -> bool:
    try:
        with eval_mode(model), torch.no_grad():
            run_model(model, inputs)
        return True
    except Exception:  # noqa: BLE001 (any failure means this shape is not the model's)
        return False


def _hugging_face(model: nn.Module) -> Example | None:
    config = getattr(model, "config", None)
    if getattr(config, "model_type", None) is None:
        return None
    device = _device(model)
    accepted = inspect.signature(model.forward).parameters
    name = getattr(model, "main_input_name", "input_ids")
    if name not in accepted:  # a tower that inherits the default name but takes another input (Llama 4's vision)
        name = next((known for known in (*MAIN_INPUTS, "hidden_states") if known in accepted), name)
    if "grid_thw" in accepted and "input_ids" not in accepted:
        example = _patch_grid_inputs(model, config, next(iter(accepted)), device)
    elif name == "input_ids":
        example = _token_inputs(model, config, accepted, device)
    elif name == "pixel_values" and "aspect_ratio_ids" in accepted:
        example = _tiled_pixel_inputs(config, device)
    elif name == "pixel_values":
        example = _pixel_inputs(config, device)
    elif name == "input_values":
        example = _waveform_inputs(model, accepted, device)
    elif name == "input_features":
        example = Example(None, "main input 'input_features': no shape of log-mel features the model runs on")
        for features, inputs in _feature_inputs(config, accepted, device):
            if runs_on(model, {**inputs, **({"use_cache": False} if "use_cache" in accepted else {})}):
                example = Example(inputs, f"input_features: {tuple(features.shape)} log-mel features")
                break
    elif name == "hidden_states":
        example = _embedded_inputs(model, config)
    else:
        return Example(None, f"main input {name!r}: no example input is known for it")
    if isinstance(example.inputs, dict) and "use_cache" in accepted:
        example.inputs["use_cache"] = False
    return example


def _timm(model: nn.Module) -> Example | None:
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None)
    size = cfg.get("input_size") if isinstance(cfg, dict) else None
    if not size or len(size) != 3:
        return None
    channels, height, width = size
    return Example(_image(channels, (height, width), _device(model)))


def example_for(model: nn.Module) -> Example | None:
    """An input ``model`` accepts, from its library's description of it, with what it assumed; ``None`` for a
    model no library describes, an :class:`Example` with ``inputs=None`` and the reason where the library
    describes the model but no input could be made."""
    for infer in (_hugging_face, _timm):
        found = infer(model)
        if found is not None:
            return found
    return None


def infer_example_inputs(model: nn.Module) -> object | None:
    """An input ``model`` accepts, from its library's description of it; ``None`` if it has none.

    >>> infer_example_inputs(torch.nn.Linear(2, 2)) is None
    True
    """
    found = example_for(model)
    return None if found is None else found.inputs
