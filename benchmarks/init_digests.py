"""Digests of what ``initialize`` writes and reports: one line per (model, scheme, options) case.

A refactoring of ``detinit.init`` must leave every line unchanged. Each line is the case, the sha1 of the
initial state dict (parameter and buffer bytes, in order, with their names, shapes and dtypes) and the
sha1 of the report (its ``to_dict()`` as JSON), or the sha1 of the error message where the case is
refused. Cases: every registered model under every scheme, option variants of the deterministic schemes,
the Hugging Face models of the tests (when ``transformers`` is installed), the timm-pattern models,
recurrent layers and ``nn.MultiheadAttention`` / torch's Transformer layers.

Usage, from the repository root (writes the table to stdout; compare two runs with ``diff``)::

    .venv/bin/python benchmarks/init_digests.py > /tmp/digests_before.txt
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' model builders

from detinit import create_model, initialize, list_models  # noqa: E402
from detinit.argtypes import no_options  # noqa: E402
from detinit.init import list_schemes  # noqa: E402

OPTION_VARIANTS: dict[str, list[dict[str, object]]] = {
    "zero": [{"variant": "paper"}, {"norm": "paper"}, {"attention": "kv_zero"}, {"constant_token": True}],
    "partial_identity": [{"variant": "paper"}],
    "constnet": [{"s": 0.5}, {"c": 0.5, "gain": 2.0}],
    "kaiming": [{"zero_init_last": True}, {"mode": "fan_out", "distribution": "uniform"}],
    "gpt2": [{"std": 0.05}],
    "tfixup": [{"stack": "encoder"}],
}


def state_digest(model: nn.Module) -> str:
    """sha1 over the names, shapes, dtypes and bytes of the state dict, in order."""
    h = hashlib.sha1()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def text_digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def case_line(label: str, build: Callable[[], tuple[nn.Module, object]]) -> str:
    """``label state=... report=...`` or ``label error=...``."""
    try:
        model, report = build()
    except (ValueError, TypeError, RuntimeError) as err:
        return f"{label} error={text_digest(type(err).__name__ + str(err))}"
    return f"{label} state={state_digest(model)} report={text_digest(json.dumps(report.to_dict(), default=str))}"


def registered_cases() -> list[tuple[str, Callable]]:
    cases = []
    for name in list_models():
        for scheme in list_schemes():
            for options in [{}, *OPTION_VARIANTS.get(scheme, [])]:

                def build(name=name, scheme=scheme, options=options):
                    model = create_model(name, init=scheme, init_options=options or None)
                    return model, model.init_report

                cases.append((f"model {name} {scheme} {json.dumps(options, sort_keys=True)}", build))
    return cases


def module_cases() -> list[tuple[str, Callable]]:
    """Hugging Face, timm-pattern, recurrent and attention modules under every scheme."""
    from tests.init.timm_patterns import ConvNet, VisionTransformer

    builders: dict[str, Callable[[], nn.Module]] = {"timm_vit": VisionTransformer, "timm_convnet": ConvNet}
    recurrent = {
        "rnn_2x_bi": lambda: nn.RNN(5, 8, num_layers=2, bidirectional=True),
        "rnn_relu": lambda: nn.RNN(5, 8, nonlinearity="relu"),
        "lstm_proj_bi": lambda: nn.LSTM(5, 8, proj_size=3, bidirectional=True, batch_first=True),
        "gru_3x": lambda: nn.GRU(5, 8, num_layers=3, bias=False),
        "lstm_cell": lambda: nn.LSTMCell(5, 8),
        "gru_cell": lambda: nn.GRUCell(5, 8),
        "rnn_cell": lambda: nn.RNNCell(5, 12),
    }
    attention = {
        "mha": lambda: nn.MultiheadAttention(8, 2),
        "mha_kdim_bias_kv": lambda: nn.MultiheadAttention(8, 2, kdim=4, vdim=6, add_bias_kv=True),
        "encoder_layer": lambda: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0),
        "decoder_layer": lambda: nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, norm_first=True),
    }
    builders |= recurrent | attention
    try:
        from tests.init import test_hugging_face as hf

        for name in [*hf.MODELS, "gpt2_untied", "t5_untied"]:
            builders[f"hf_{name}"] = lambda name=name: hf.build(name)
    except ImportError:  # transformers absent: those lines are missing from both tables alike
        pass
    cases = []
    for label, make in builders.items():
        for scheme in list_schemes():
            for options in [{}, *OPTION_VARIANTS.get(scheme, [])]:

                def build(make=make, scheme=scheme, options=options):
                    model = make()
                    return model, initialize(model, scheme, **options)

                cases.append((f"module {label} {scheme} {json.dumps(options, sort_keys=True)}", build))
    return cases


def main() -> None:
    no_options(__doc__)
    torch.set_num_threads(1)
    for label, build in [*registered_cases(), *module_cases()]:
        torch.manual_seed(0)  # constructors draw their weights from the global RNG; what no rule fills keeps them
        print(case_line(label, build), flush=True)


if __name__ == "__main__":
    main()
