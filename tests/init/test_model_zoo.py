"""A fast sample of the sweep beyond Hugging Face (``benchmarks/model_zoo.py``, docs/model_zoo.md): models of
diffusers, x-transformers and MONAI built tiny and checked for the sweep's promises 1-4 (nothing unknown, the
output 0 on a fresh input, identity blocks, random schemes complete and raising nothing), one for each structure
the sweep taught tracing, and a block no initialisation makes the identity reported with its mechanism."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

pytest.importorskip("diffusers")  # the [zoo] extra, in the [test] extra
pytest.importorskip("x_transformers")
pytest.importorskip("monai")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import model_zoo  # noqa: E402

SAMPLE = [
    ("diffusers", "UNet2DConditionModel (cross-attention)"),
    ("diffusers", "DiTTransformer2DModel"),  # adaptive norms, a patch embedding, a final projection
    ("x-transformers", "Decoder (scaled residual)"),  # a parameter scaling the skip: 1
    ("x-transformers", "Decoder (layer scale held as 1 + w)"),  # a layer scale with an offset: w = -1
    ("x-transformers", "XTransformer (encoder-decoder)"),  # forward returns the loss: its one layer is the output
    ("monai", "UNet (residual units)"),  # the output is a residual unit: conv(x) + PReLU(IN(convT(...)))
    ("monai", "DynUNet (residual blocks)"),  # blocks held under two names
]


@pytest.fixture(scope="module")
def cases() -> dict[tuple[str, str], model_zoo.Case]:
    return {(c.library, c.name): c for c in model_zoo.cases()}


@pytest.mark.parametrize(("library", "name"), SAMPLE)
def test_a_sample_of_the_sweep_keeps_every_promise(cases, library: str, name: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        row = model_zoo.check(cases[(library, name)], time_limit=0)
    assert row["built"], row.get("reason")
    assert row["kept"], row.get("error") or {k: v for k, v in row["promises"].items() if v[0] is False}


def test_a_post_activation_block_on_negative_inputs_is_reported_with_its_mechanism(cases):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        row = model_zoo.check(cases[("monai", "UNETR")], time_limit=0)
    kept, detail = row["promises"]["blocks are the identity"]
    assert kept is False and "a post-activation block on an input with negative entries" in detail
    assert all(row["promises"][p][0] for p in ("nothing unknown", model_zoo.ZERO_OUTPUT, "random schemes"))
