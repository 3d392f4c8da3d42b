"""ZerO's promises on the whole Hugging Face zoo: every model class transformers maps from a config, built tiny.

    .venv/bin/python benchmarks/hf_zoo.py                        # every family (docs/hf_zoo.md has the table)
    .venv/bin/python benchmarks/hf_zoo.py --families "causal LM" --limit 20 --workers 2

Each class is built from its config class's defaults with the sizes shrunk by name (hidden 64, 2 layers,
4 heads, feed-forward 128, vocabulary 1,000, 4 experts; hierarchical vision models keep their image size and
get one block a stage), then checked, with no ``roles=`` and no ``example_inputs=``:

1. ``initialize(model, "zero")`` leaves no parameter unknown and could trace the model (its report has no
   "was not traced" note);
2. logits are exactly 0 on inputs that are not the tracing example (random tokens; the first one the config's
   own ``cls_token_id`` / ``bos_token_id`` where it has one, as a model reading one position sees);
3. every residual branch adds 0 and every block around one is the identity (relative error <= 1e-4),
   blocks found from the recorded computation (:mod:`detinit.diagnostics.promises`); a block holding the norm
   that carries a tied output layer's zero (role ``classifier_norm``) is the exception ZerO makes by design, and
   so are the entry blocks of branches ending on a BatchNorm, which ZerO starts on (the report's ``open_blocks``);
4. ``kaiming``, ``xavier`` and ``orthogonal`` leave nothing unknown.

A class that cannot be built on a CPU from the shrunk config, or has no input this script can make, is listed
with the reason and not counted. Results are appended to ``--out`` (JSON lines) as they come, so an interrupted
sweep resumes where it stopped; the table is printed and written to ``--markdown``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import multiprocessing
import os
import platform
import signal
import sys
import time
import traceback
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from detinit import initialize  # noqa: E402
from detinit._table import format_table  # noqa: E402
from detinit.argtypes import existing_file, non_negative_int, output_file, pair, positive_int  # noqa: E402
from detinit.diagnostics.promises import ARCHITECTURE_MECHANISMS, ZERO_LOGITS, zero_start_promises  # noqa: E402
from detinit.init.roles.example_inputs import example_for, text_config  # noqa: E402
from detinit.init.roles.traced.submodels import UNREACHED  # noqa: E402
from detinit.train.checkpoint import read_jsonl, write_text  # noqa: E402

# (family, the transformers auto mapping that lists it); a class is counted under its first family
FAMILIES = [
    ("causal LM", "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES"),
    ("masked LM", "MODEL_FOR_MASKED_LM_MAPPING_NAMES"),
    ("sequence classification", "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES"),
    ("token classification", "MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES"),
    ("seq2seq", "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES"),
    ("image classification", "MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES"),
    ("audio classification", "MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES"),
    ("speech", "MODEL_FOR_CTC_MAPPING_NAMES"),
    ("speech", "MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES"),
    ("vision encoder", "MODEL_FOR_IMAGE_MAPPING_NAMES"),
    ("base model", "MODEL_MAPPING_NAMES"),
]
RANDOM_SCHEMES = ("kaiming", "xavier", "orthogonal")
TOLERANCE = 1e-4
MAX_PARAMETERS = 40_000_000  # after shrinking; a class still bigger is listed, not built
TIME_LIMIT_S = 120  # a class that takes longer is listed as such

VOCAB = 1000
SIZES = {  # key -> the shrunk value (only where the default is larger)
    **dict.fromkeys(
        ("hidden_size", "d_model", "n_embd", "embed_dim", "hidden_dim", "word_embed_proj_dim", "decoder_hidden_size",
         "encoder_hidden_size", "text_hidden_size", "out_hidden_size", "projection_dim", "embedding_size", "emb_dim",
         "d_latents", "pooler_hidden_size"), 64),
    **dict.fromkeys(
        ("num_hidden_layers", "n_layer", "n_layers", "num_layers", "encoder_layers", "decoder_layers",
         "num_decoder_layers", "num_encoder_layers", "depth"), 2),
    **dict.fromkeys(
        ("num_attention_heads", "n_head", "n_heads", "num_heads", "encoder_attention_heads",
         "decoder_attention_heads"), 4),
    **dict.fromkeys(
        ("intermediate_size", "ffn_dim", "d_ff", "n_inner", "encoder_ffn_dim", "decoder_ffn_dim", "mlp_dim",
         "decoder_intermediate_size"), 128),
    **dict.fromkeys(("moe_intermediate_size", "shared_expert_intermediate_size"), 32),
    **dict.fromkeys(("num_experts", "n_routed_experts", "num_local_experts"), 4),
    "num_experts_per_tok": 2,
    "num_key_value_heads": 2,
    **dict.fromkeys(("head_dim", "v_head_dim", "qk_nope_head_dim", "index_head_dim", "d_kv", "d_head"), 16),
    **dict.fromkeys(("qk_rope_head_dim", "rotary_dim"), 8),
    "qk_head_dim": 24,
    **dict.fromkeys(("kv_lora_rank", "q_lora_rank"), 32),
    **dict.fromkeys(("vocab_size", "entity_vocab_size", "encoder_hash_byte_group_vocab"), VOCAB),
    **dict.fromkeys(("max_position_embeddings", "n_positions"), 512),
    "image_size": 32,
    "patch_size": 8,
}  # fmt: skip
# widths of one head's parts: two equal in the defaults stay equal (DeepSeek's rotary head_dim is its
# qk_rope_head_dim), at the smaller shrunk value
HEAD_KEYS = ("head_dim", "v_head_dim", "qk_nope_head_dim", "qk_rope_head_dim", "qk_head_dim", "rotary_dim", "d_kv")
LAYER_KEYS = ("num_hidden_layers", "n_layer", "n_layers", "num_layers", "encoder_layers", "decoder_layers")
# list-valued widths -> the most each entry may be: a speech feature extractor's channels are no wider than the
# stream in the defaults (512 < 768), so no wider after shrinking, or its projection into the stream would
# become a truncation (a partial identity dropping most channels) that no full-size model has
LIST_SIZES = {"conv_dim": 64}
HIERARCHICAL = ("depths",)  # a vision model with stages keeps its widths and image size; one block a stage


def shrink(values: dict[str, Any]) -> dict[str, Any]:
    """A config dict with its sizes shrunk (recursively into sub-configs), head widths equal in the defaults
    kept equal, as key/value heads equal to the query heads (DeepSeek's latent attention needs both); lists as
    long as the layer count (``layer_types``) cut to the new count; special token ids moved into the shrunk
    vocabulary; indices of layers whose outputs are read (``intermediate_layers_indices``) kept among the 2."""
    out = dict(values)
    hierarchical = any(isinstance(out.get(k), list) for k in HIERARCHICAL)
    layers_before = next((out[k] for k in LAYER_KEYS if isinstance(out.get(k), int)), None)
    for key, value in values.items():
        if isinstance(value, dict) and key not in ("id2label", "label2id", "rope_parameters", "rope_scaling"):
            out[key] = shrink(value)
        elif hierarchical and key in ("depths",):
            out[key] = [1] * len(value)
        elif hierarchical:
            continue
        elif key in LIST_SIZES and isinstance(value, list) and all(isinstance(v, int) for v in value):
            out[key] = [min(v, LIST_SIZES[key]) for v in value]
        elif key in SIZES and isinstance(value, int) and not isinstance(value, bool) and value > SIZES[key]:
            out[key] = SIZES[key]
    heads = [k for k in HEAD_KEYS if isinstance(values.get(k), int) and not isinstance(values[k], bool)]
    for key in heads:
        equal = [k for k in heads if values[k] == values[key]]
        out[key] = min(out[k] for k in equal)
    if (
        "head_dim" in values
        and values["head_dim"] is None
        and out.get("hidden_size")
        and out.get("num_attention_heads")
    ):
        out["head_dim"] = out["hidden_size"] // out["num_attention_heads"]  # a default the model does not derive
    if values.get("num_key_value_heads") == values.get("num_attention_heads") is not None:
        out["num_key_value_heads"] = out["num_attention_heads"]  # multi-head attention stays multi-head
    if layers_before and layers_before > 2 and not hierarchical:
        for key, value in values.items():
            if isinstance(value, list) and len(value) == layers_before:
                out[key] = value[:2]
        if out.get("out_features") is not None:  # a backbone's default stages name the old last layer
            out["out_features"] = out["out_indices"] = None
        for key, value in values.items():  # indices of layers whose outputs are read (Mllama's vision tower)
            if key.endswith("layers_indices") and isinstance(value, list) and all(isinstance(i, int) for i in value):
                out[key] = sorted({min(i, 1) for i in value})
    if isinstance(out.get("vocab_size"), int) and out["vocab_size"] <= VOCAB:
        vocab = out["vocab_size"]
        taken = 0
        for key in sorted(out):
            if key.endswith(("token_id", "token_index")) and isinstance(out[key], int) and out[key] >= vocab:
                taken += 1
                out[key] = vocab - taken  # special ids at the top of the vocabulary, kept distinct
    return out


def classes() -> list[tuple[str, str, str]]:
    """``(family, model_type, class name)`` of every class the families list, each once."""
    from transformers.models.auto import modeling_auto

    seen, found = set(), []
    for family, mapping in FAMILIES:
        for model_type, names in getattr(modeling_auto, mapping).items():
            for name in (names,) if isinstance(names, str) else names:
                if name not in seen:
                    seen.add(name)
                    found.append((family, model_type, name))
    return found


def build(model_type: str, class_name: str) -> torch.nn.Module:
    import transformers
    from transformers import CONFIG_MAPPING

    config_class = CONFIG_MAPPING[model_type]
    config = config_class.from_dict(shrink(config_class().to_dict()))
    if getattr(config, "pad_token_id", 0) is None and hasattr(config, "vocab_size"):
        config.pad_token_id = config.vocab_size - 1  # classifying a batch of sequences needs one
    cls = getattr(transformers, class_name)
    with torch.device("meta"):
        count = sum(p.numel() for p in cls(config).parameters())
    if count > MAX_PARAMETERS:
        raise _NotBuilt(f"{count / 1e6:.0f}M parameters after shrinking (limit {MAX_PARAMETERS / 1e6:.0f}M)")
    return cls(config)


def check_real_widths(model_type: str, class_name: str) -> list[str]:
    """Promises 2-3 on ``class_name`` built with its config's real widths, only its layer count cut to 2 (and a
    vocabulary larger than 30,000 cut to :data:`VOCAB`): whether a failure of the shrunk sweep is the shrink's."""
    import transformers
    from transformers import CONFIG_MAPPING

    config_class = CONFIG_MAPPING[model_type]
    values = config_class().to_dict()
    values.update({k: 2 for k in LAYER_KEYS if isinstance(values.get(k), int) and values[k] > 2})
    if isinstance(values.get("vocab_size"), int) and values["vocab_size"] > 30_000:
        values["vocab_size"] = VOCAB
    model = getattr(transformers, class_name)(config_class.from_dict(values)).eval()
    opened = initialize(model, "zero").open_blocks
    lines = [f"{class_name}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters"]
    with torch.no_grad():
        found = zero_start_promises(model, test_inputs(model), tolerance=TOLERANCE, open_blocks=opened)
        lines += [f"  {p}" for p in found]
    return lines


class _NotBuilt(RuntimeError):
    pass


def test_inputs(model: torch.nn.Module) -> dict[str, Any]:
    """Inputs of the kind the model takes, not the tracing example: the example's structure with its values
    drawn again (token ids at random but for the first, which is the config's own, or the one detinit assumed
    and says so, and a special last token shared by every row, as </s>); where detinit has no example, inputs
    this script makes (:func:`own_inputs`)."""
    example = example_for(model)
    if example is None or example.inputs is None:
        return own_inputs(model)
    g = torch.Generator().manual_seed(12345)
    special = _special_ids(model.config)
    inputs: dict[str, Any] = {}
    for key, value in example.inputs.items():
        if key == "mask_time_indices":
            continue  # pretraining's masked frames: the model at work sees whole inputs
        if not isinstance(value, torch.Tensor):
            inputs[key] = value
        elif value.is_floating_point():
            inputs[key] = torch.randn(value.shape, generator=g, dtype=value.dtype)
        else:
            vocab = int(getattr(text_config(model.config), "vocab_size", 0) or int(value.max()) + 1)
            allowed = torch.tensor([t for t in range(vocab) if t not in special])
            ids = allowed[torch.randint(0, len(allowed), (2, 10), generator=g)]
            ids[:, 0] = value[0, 0]
            if int(value[0, -1]) in special and bool((value[:, -1] == value[0, -1]).all()):
                ids[:, -1] = value[0, -1]  # rows that end with </s> (sequence-to-sequence inputs) still do
            inputs[key] = ids
    return inputs


def _special_ids(config: Any) -> set[int]:
    text = text_config(config)
    return {v for k, v in vars(text).items() if k.endswith(("token_id", "token_index")) and isinstance(v, int)}


def own_inputs(model: torch.nn.Module) -> dict[str, Any]:
    """Inputs of the kind the model takes, made here from its config (for models detinit makes none for)."""
    config, name = model.config, getattr(model, "main_input_name", "input_ids")
    accepted = inspect.signature(model.forward).parameters
    g = torch.Generator().manual_seed(12345)
    inputs: dict[str, Any] = {}
    if name == "input_ids":
        text = text_config(config)
        vocab = int(getattr(text, "vocab_size", 0) or 0)
        if vocab < 4:
            raise _NotBuilt("main input input_ids, but no vocab_size in the config")
        special = _special_ids(config)
        allowed = torch.tensor([t for t in range(vocab) if t not in special])
        ids = allowed[torch.randint(0, len(allowed), (2, 10), generator=g)]
        firsts = [getattr(text, k, None) for k in ("cls_token_id", "bos_token_id")]
        first = next((t for t in firsts if isinstance(t, int)), None)
        if first is not None and first < vocab:
            ids[:, 0] = first
        inputs["input_ids"] = ids
        if getattr(config, "is_encoder_decoder", False) and "decoder_input_ids" in accepted:
            start = getattr(config, "decoder_start_token_id", None)
            dec = allowed[torch.randint(0, len(allowed), (2, 5), generator=g)]
            if isinstance(start, int) and start < vocab:
                dec[:, 0] = start
            inputs["decoder_input_ids"] = dec
    elif name == "pixel_values":
        vision = getattr(config, "vision_config", None) or config
        size = getattr(vision, "image_size", None) or 64
        height, width = (size, size) if isinstance(size, int) else tuple(size)[-2:]
        channels = getattr(vision, "num_channels", 3)
        inputs["pixel_values"] = torch.randn(2, channels, height, width, generator=g)
    elif name == "input_values":
        inputs["input_values"] = torch.randn(2, 8000, generator=g)
    elif name == "input_features":
        mels = getattr(config, "num_mel_bins", None) or getattr(config, "feature_size", None) or 80
        sources = getattr(config, "max_source_positions", None)
        if sources:  # Whisper-style: the full log-mel window the encoder's positions expect
            inputs["input_features"] = torch.randn(2, mels, 2 * sources, generator=g)
        else:
            per_channel = getattr(config, "input_feat_per_channel", None)
            features = per_channel * getattr(config, "input_channels", 1) if per_channel else mels
            inputs["input_features"] = torch.randn(2, 64, features, generator=g)
        if getattr(config, "is_encoder_decoder", False) and "decoder_input_ids" in accepted:
            start = getattr(config, "decoder_start_token_id", None) or 0
            inputs["decoder_input_ids"] = torch.full((2, 3), start)
    else:
        raise _NotBuilt(f"main input {name!r}: no test input for it")
    if "use_cache" in accepted:
        inputs["use_cache"] = False
    return inputs


def check(entry: tuple[str, str, str], time_limit: int = TIME_LIMIT_S) -> dict[str, Any]:
    """Build one class and check promises 1-4 on it; never raises. ``time_limit`` (seconds) needs the
    SIGALRM handler of :func:`_worker_init`; 0 for none."""
    family, model_type, class_name = entry
    row: dict[str, Any] = {"family": family, "model_type": model_type, "class": class_name}
    with timed_check(row, time_limit):
        try:
            model = build(model_type, class_name)
            inputs = test_inputs(model)
            model.eval()
            with torch.no_grad():
                model(**inputs)
        except Exception as err:  # noqa: BLE001 (a class that does not build or run is listed, not counted)
            row.update(built=False, reason=_reason(err))
            return row
        row["built"] = True
        report = initialize(model, "zero")
        promises: dict[str, Any] = {}
        unknown = [r.name for r in report.records if r.rule == "unknown"]
        untraced = [n for n in report.notes if "was not traced" in n]
        row["unreached"] = next((n for n in report.notes if UNREACHED in n), "")
        promises["nothing unknown"] = (not unknown and not untraced, _unknown_detail(unknown, untraced))
        with torch.no_grad():
            carriers = {r.name.rsplit(".", 1)[0] for r in report.records if r.role == "classifier_norm"}
            opened = report.open_blocks  # entry blocks ZerO starts on: their sums are not counted
            for p in zero_start_promises(
                model, inputs, tolerance=TOLERANCE, carries_output_zero=carriers, open_blocks=opened
            ):
                promises[p.promise] = (p.kept, str(p))
            row["parts"] = part_promises(model, carriers, opened)
        random_unknown = {}
        for scheme in RANDOM_SCHEMES:
            found = [r.name for r in initialize(build(model_type, class_name), scheme).records if r.rule == "unknown"]
            if found:
                random_unknown[scheme] = found[:3]
        detail = "random schemes leave unknown: " + json.dumps(random_unknown) if random_unknown else ""
        promises["random schemes"] = (not random_unknown, detail)
        row["promises"] = promises
        row["kept"] = all(kept is not False for kept, _ in promises.values())
    return row


@contextmanager
def timed_check(row: dict[str, Any], time_limit: int) -> Iterator[None]:
    """Around one model's checks: an alarm after ``time_limit`` seconds (0: none; needs the SIGALRM handler of
    :func:`_worker_init`), any error recorded in ``row`` as ``kept=False`` with its reason (the check never
    raises), and the seconds it took."""
    start = time.perf_counter()
    signal.alarm(time_limit)
    try:
        yield
    except Exception as err:  # noqa: BLE001
        row.update(kept=False, error=_reason(err))
    finally:
        signal.alarm(0)
        row["seconds"] = round(time.perf_counter() - start, 2)


def part_promises(model: torch.nn.Module, carriers: set[str], opened: list[str]) -> list[dict[str, Any]]:
    """ZerO's promises 2-3 on each outermost part of ``model`` that its library describes and gives an example
    of (a vision or audio tower, an inner encoder, a language model), on that example: the towers the test
    inputs never reach are checked too. ``carriers``: the whole model's norms carrying its output's zero;
    ``opened``: its entry blocks that ZerO starts on."""
    found: list[dict[str, Any]] = []
    for name, part in model.named_modules():
        if not name or any(name.startswith(f"{p['part']}.") for p in found) or not hasattr(part, "main_input_name"):
            continue
        example = example_for(part) if getattr(part, "config", None) is not None else None
        if example is None or example.inputs is None:
            continue
        local = {c[len(name) + 1 :] for c in carriers if c.startswith(f"{name}.")}
        inside = [b[len(name) + 1 :] for b in opened if b.startswith(f"{name}.")]
        try:
            promises = zero_start_promises(
                part, example.inputs, tolerance=TOLERANCE, carries_output_zero=local, open_blocks=inside
            )
        except Exception as err:  # noqa: BLE001 (a part that does not run alone on its example is said so)
            found.append({"part": name, "kept": None, "detail": _reason(err)})
            continue
        broken = [str(p) for p in promises if p.kept is False and p.promise != ZERO_LOGITS]
        found.append({"part": name, "kept": not broken, "detail": " | ".join(broken)})
    return found


def _unknown_detail(unknown: list[str], untraced: list[str]) -> str:
    parts = ["nothing unknown: BROKEN", *untraced]
    if unknown:
        parts.append(f"{len(unknown)} unknown: " + ", ".join(unknown[:4]))
    return "; ".join(parts)


def _reason(err: BaseException) -> str:
    if isinstance(err, _Timeout):
        return f"took over {TIME_LIMIT_S} s"
    text = f"{type(err).__name__}: {err}".replace("\n", " ")
    where = traceback.extract_tb(err.__traceback__)[-1] if err.__traceback__ else None
    site = f" [{Path(where.filename).name}:{where.lineno}]" if where else ""
    return text[:240] + site


class _Timeout(Exception):
    pass


def _on_alarm(signum: int, frame: object) -> None:
    raise _Timeout


def _worker_init() -> None:
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    signal.signal(signal.SIGALRM, _on_alarm)


def summarise(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]], str]:
    """The table by family (built, kept all promises, pass rate) and the overall pass rate."""
    by_family: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        c = by_family[row["family"]]
        c["classes"] += 1
        c["built"] += bool(row.get("built"))
        c["kept"] += bool(row.get("built") and row.get("kept"))
    table = []
    for family in dict.fromkeys(f for f, _ in FAMILIES):
        c = by_family.get(family)
        if c:
            rate = f"{100 * c['kept'] / c['built']:.0f} %" if c["built"] else "-"
            table.append([family, str(c["classes"]), str(c["built"]), str(c["kept"]), rate])
    built = sum(c["built"] for c in by_family.values())
    kept = sum(c["kept"] for c in by_family.values())
    total = f"{kept} of {built} classes that build keep promises 1-4 ({100 * kept / max(built, 1):.1f} %)"
    impossible = sum(1 for row in rows if _breaks_only_architecture(row))
    if impossible:
        total += (
            f"; {impossible} more break only the identity of blocks that no initialisation of their branches "
            "can make the identity (a post-norm block on an input that is not normalised, a sum that scales its "
            f"skip, a post-activation block on negative inputs: {100 * (kept + impossible) / max(built, 1):.1f} % "
            "if they are counted)"
        )
    partly = sum(1 for row in rows if row.get("built") and row.get("kept") and row.get("unreached"))
    if partly:
        total += (
            f". {partly} of the classes that keep them have parameters no trace reached (roles by module type "
            "alone: the promises hold where the test inputs run, and the report says where they were not checked)"
        )
    parts = [p for row in rows if row.get("kept") for p in row.get("parts", []) if p["kept"] is not None]
    if parts:
        total += (
            f". Checked alone on their own examples, {sum(p['kept'] for p in parts)} of the {len(parts)} towers "
            "and inner models of those classes keep promises 2-3"
        )
    return ["family", "classes", "built", "kept 1-4", "pass rate"], table, total


def broken_parts(rows: list[dict[str, Any]]) -> list[str]:
    return [
        f"- {row['class']}: {p['part']}: {p['detail']}"
        for row in rows
        if row.get("kept")
        for p in row.get("parts", [])
        if p["kept"] is False
    ]


def partly_traced(rows: list[dict[str, Any]]) -> list[str]:
    return [f"- {row['class']}: {row['unreached']}" for row in rows if row.get("kept") and row.get("unreached")]


def _mechanism(detail: str) -> str:
    """The architectural mechanism a broken promise's detail names, or ``""``."""
    return next((m for m in ARCHITECTURE_MECHANISMS if m in detail), "")


def _breaks_only_architecture(row: dict[str, Any]) -> bool:
    if not row.get("built") or row.get("kept") or "promises" not in row:
        return False
    broken = [(name, detail) for name, (kept, detail) in row["promises"].items() if kept is False]
    return bool(broken) and all(_mechanism(detail) for _, detail in broken)


def failures(rows: list[dict[str, Any]], name: Callable[[dict[str, Any]], str] = lambda row: row["class"]) -> list[str]:
    """One line for each row that builds and breaks a promise: its ``name``, then each broken promise's detail."""
    lines = []
    for row in rows:
        if not row.get("built") or row.get("kept"):
            continue
        if "error" in row:
            lines.append(f"- {name(row)}: error {row['error']}")
            continue
        broken = [detail or promise for promise, (kept, detail) in row["promises"].items() if kept is False]
        lines.append(f"- {name(row)}: " + " | ".join(broken))
    return lines


def not_built(rows: list[dict[str, Any]]) -> list[str]:
    return [f"- {row['class']}: {row['reason']}" for row in rows if not row.get("built")]


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def broken_counts(rows: list[dict[str, Any]]) -> list[list[str]]:
    """How many built classes break each promise (a class may break several)."""
    counts: Counter = Counter()
    for row in rows:
        if not row.get("built") or row.get("kept"):
            continue
        if "error" in row:
            counts["initialize raised an error"] += 1
            continue
        for name, (kept, detail) in row["promises"].items():
            if kept is False:
                mechanism = _mechanism(detail)
                counts[name + (f" ({mechanism})" if mechanism else "")] += 1
    return [[name, str(n)] for name, n in counts.most_common()]


README_START, README_END = "<!-- hf_zoo table: start -->", "<!-- hf_zoo table: end -->"


def write_reports(rows: list[dict[str, Any]], meta: str, markdown: str, readme: str) -> str:
    """The sweep's tables as text (printed), and as markdown in ``markdown`` and between the markers of
    ``readme`` (empty paths: not written)."""
    header, table, total = summarise(rows)
    text = "\n".join([meta, "", format_table(header, table), "", total, "", "Broken promises:", *failures(rows),
                      "", "Not built (not counted):", *not_built(rows)])  # fmt: skip
    if markdown:
        doc = [
            "# ZerO's promises on the Hugging Face zoo",
            "",
            "Every model class transformers maps from a config class, built tiny on the CPU from the config's "
            "defaults with its sizes shrunk by name, initialised with no `roles=` and no `example_inputs=`, "
            "and checked for four promises (`benchmarks/hf_zoo.py` says how): (1) nothing unknown and the "
            "model traced, (2) logits exactly 0 on inputs that are not the tracing example, (3) every residual "
            "branch adds 0 and every block around one is the identity (relative error <= 1e-4, blocks found "
            "from the recorded computation), (4) `kaiming`, `xavier` and `orthogonal` leave nothing unknown. "
            "A class that does not build or run from the shrunk config is listed with its error, not counted. "
            "Each outermost part of a class that its library describes (a vision or audio tower, an inner "
            "encoder, a language model) is also checked alone, on its own example, for (2) and (3): the towers "
            "a text input never reaches are checked too; those results are reported apart, not counted.",
            "",
            "```bash",
            ".venv/bin/pip install -e '.[test]'   # transformers",
            ".venv/bin/python benchmarks/hf_zoo.py --out hf_zoo.jsonl --markdown docs/hf_zoo.md --readme README.md",
            "```",
            "",
            meta,
            "",
            markdown_table(header, table),
            "",
            f"**{total}.**",
            "",
            "## Promises broken, by promise",
            "",
            markdown_table(["promise", "classes"], broken_counts(rows)),
            "",
            "## Every class that breaks a promise",
            "",
            *failures(rows),
            "",
            "## Towers and inner models that break promises 2-3 on their own example",
            "",
            "(of classes that keep promises 1-4 on the whole model's test inputs)",
            "",
            *broken_parts(rows),
            "",
            "## Classes that keep the promises with parameters no trace reached",
            "",
            *partly_traced(rows),
            "",
            "## Not built (not counted)",
            "",
            *(line.replace("[", "\\[") for line in not_built(rows)),  # "[file.py:12]" is no markdown link
            "",
        ]
        write_text(markdown, "\n".join(doc))
    if readme:
        path = Path(readme)
        old = path.read_text()
        head, _, rest = old.partition(README_START)
        _, _, tail = rest.partition(README_END)
        if not rest:
            raise SystemExit(readme_block_missing(readme))
        block = "\n".join(["", markdown_table(header, table), "", f"{total} (docs/hf_zoo.md).", ""])
        write_text(path, head + README_START + block + README_END + tail)
    return text


def readme_block_missing(readme: str | Path) -> str | None:
    """What is wrong with ``readme`` as the README whose hf_zoo block is rewritten, or ``None``."""
    text = Path(readme).read_text(encoding="utf-8")
    if README_START in text and README_END in text.partition(README_START)[2]:
        return None
    return f"{readme} has no {README_START} ... {README_END} block; add one where the table goes"


def read_results(out: Path, key: Callable[[dict[str, Any]], object]) -> dict[object, dict[str, Any]]:
    """The rows a previous run appended to ``out`` (a sweep resumes from them), by ``key``; a line that is not
    a JSON record is an error naming the file and the line (:func:`detinit.train.checkpoint.read_jsonl`)."""
    try:
        return {key(row): row for row in read_jsonl(out)}
    except (ValueError, KeyError) as error:
        raise SystemExit(f"--out {out}: cannot resume from it: {error}") from None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--families", nargs="+", help="only these families (default all)")
    parser.add_argument("--classes", nargs="+", help="only these class names")
    parser.add_argument("--limit", type=non_negative_int, default=0, help="at most this many classes (0: all)")
    parser.add_argument("--workers", type=positive_int, default=2)
    parser.add_argument(
        "--out", type=output_file, default="hf_zoo.jsonl", help="results, a JSON line a class (resumed)"
    )
    parser.add_argument("--markdown", type=output_file, help="also write the tables here (docs/hf_zoo.md)")
    parser.add_argument("--readme", type=existing_file, help="also put the family table in this README's hf_zoo block")
    parser.add_argument(
        "--real-widths",
        nargs="+",
        type=pair,
        metavar="TYPE:CLASS",
        help="instead: check these at real widths, 2 layers",
    )
    args = parser.parse_args()
    problem = readme_block_missing(args.readme) if args.readme else None
    if problem:
        parser.error(f"argument --readme: {problem}")
    _worker_init()
    if args.real_widths:
        for entry in args.real_widths:
            print("\n".join(check_real_widths(*entry)), flush=True)
        return 0
    import transformers

    every = classes()
    for flag, given, known in (
        ("--families", args.families, {e[0] for e in every}),
        ("--classes", args.classes, {e[2] for e in every}),
    ):
        unknown = sorted(set(given or ()) - known)
        if unknown:
            examples = ", ".join(sorted(known)[:4])
            parser.error(f"argument {flag}: {', '.join(unknown)} not among the {len(known)} it knows, e.g. {examples}")
    todo = [e for e in every if (not args.families or e[0] in args.families)]
    todo = [e for e in todo if not args.classes or e[2] in args.classes]
    if args.limit:
        todo = todo[: args.limit]
    out = args.out
    done = read_results(out, lambda row: row["class"])
    pending = [e for e in todo if e[2] not in done]
    start = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    with (
        out.open("a") as sink,
        multiprocessing.get_context("fork").Pool(args.workers, initializer=_worker_init, maxtasksperchild=20) as pool,
    ):
        for n, row in enumerate(pool.imap_unordered(check, pending), 1):
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            done[row["class"]] = row
            verdict = "not built" if not row.get("built") else ("kept" if row.get("kept") else "BROKEN")
            print(f"[{n}/{len(pending)}] {row['class']}: {verdict} ({row['seconds']} s)", flush=True)
    rows = [done[e[2]] for e in todo if e[2] in done]
    meta_file = out.with_suffix(".meta")  # how the results were made, kept for a report written later
    if pending:
        meta = (
            f"transformers {transformers.__version__}, torch {torch.__version__}, {platform.machine()} "
            f"{os.cpu_count()} CPU cores; {len(pending)} classes checked in {time.perf_counter() - start:.0f} s "
            f"on {args.workers} workers, {time.strftime('%Y-%m-%d')}"
        )
        if len(rows) > len(pending):  # a resumed run: say what came from before
            meta += f"; {len(rows) - len(pending)} more read from {out.name}, checked by an earlier run"
        write_text(meta_file, meta)
    else:
        meta = meta_file.read_text() if meta_file.exists() else f"results read from {out}"
    print(write_reports(rows, meta, args.markdown, args.readme))
    return 0


if __name__ == "__main__":
    sys.exit(main())
