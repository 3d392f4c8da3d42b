"""ZerO's promises on models beyond Hugging Face: diffusers, x-transformers and MONAI, several models and options
each, built tiny, initialised as a user would (``initialize(model, "zero", example_inputs=...)``, no ``roles=``).

For each model: (1) nothing unknown in the report; (2) the output exactly 0 at init on a fresh input (another
draw, and another length where the model takes any: the first tensor the model returns, whatever its name, since
these libraries do not name logits); (3) every residual branch adds 0 and every shape-preserving block around one
is the identity (relative error <= 1e-4, blocks found from the recorded computation; where a block cannot be, the
check names the mechanism); (4) ``kaiming``, ``xavier`` and ``orthogonal`` leave nothing unknown, and no scheme
raises. A model that does not build or run is listed with its error, not counted.

The libraries are an optional extra, never the core's::

    .venv/bin/pip install -e '.[zoo]'
    .venv/bin/python benchmarks/model_zoo.py --out model_zoo.jsonl --markdown docs/model_zoo.md

The same checks on a sample run in the tests (tests/init/test_model_zoo.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import hf_zoo  # beside this file: the Hugging Face sweep, whose report helpers this one shares
import torch
from torch import nn

from detinit import initialize
from detinit.argtypes import output_file
from detinit.diagnostics.promises import ZERO_LOGITS, zero_start_promises
from detinit.init.roles.trace import flatten_output, run_model
from detinit.train.checkpoint import write_text

RANDOM_SCHEMES = ("kaiming", "xavier", "orthogonal")
TOLERANCE = 1e-4
TIME_LIMIT_S = hf_zoo.TIME_LIMIT_S
LIBRARIES = {"diffusers": "diffusers", "x-transformers": "x_transformers", "monai": "monai"}
ZERO_OUTPUT = "output 0"


@dataclass(frozen=True)
class Case:
    """One model of one library: how to build it (tiny) and its inputs (``seed`` 0: the tracing example;
    1: the fresh input the promises are checked on)."""

    library: str
    name: str
    build: Callable[[], nn.Module]
    inputs: Callable[[int], Any]


def _draw(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _tokens(seed: int, vocab: int = 100) -> torch.Tensor:
    """2 rows of 8 tokens for the example, 3 rows of 11 for the check."""
    rows, length = (2, 8) if seed == 0 else (3, 11)
    return torch.randint(0, vocab, (rows, length), generator=torch.Generator().manual_seed(seed))


def _labels(seed: int) -> torch.Tensor:
    return torch.tensor([1, 2]) + seed


def _diffusion(channels: int, size: int, **extra: Callable[[int], Any]) -> Callable[[int], dict[str, Any]]:
    def inputs(seed: int) -> dict[str, Any]:
        found = {"sample": _draw(seed, 2, channels, size, size), "timestep": torch.tensor([3, 7]) + seed}
        return found | {key: make(seed) for key, make in extra.items()}

    return inputs


def diffusers_cases() -> list[Case]:
    import diffusers as d

    unet = dict(block_out_channels=(16, 32), layers_per_block=1, norm_num_groups=8)
    vae = dict(in_channels=3, out_channels=3, latent_channels=4, **unet)
    vae_blocks = dict(down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2)
    text = {"encoder_hidden_states": lambda seed: _draw(seed, 2, 5 + seed, 16)}
    return [
        Case("diffusers", "UNet2DModel (attention blocks)", lambda: d.UNet2DModel(
            sample_size=16, attention_head_dim=8, down_block_types=("DownBlock2D", "AttnDownBlock2D"),
            up_block_types=("AttnUpBlock2D", "UpBlock2D"), **unet), _diffusion(3, 16)),
        Case("diffusers", "UNet2DModel (scale-shift time embedding, no attention)", lambda: d.UNet2DModel(
            sample_size=16, resnet_time_scale_shift="scale_shift", add_attention=False,
            down_block_types=("DownBlock2D",) * 2, up_block_types=("UpBlock2D",) * 2, **unet), _diffusion(3, 16)),
        Case("diffusers", "UNet2DConditionModel (cross-attention)", lambda: d.UNet2DConditionModel(
            sample_size=16, in_channels=4, out_channels=4, cross_attention_dim=16, attention_head_dim=8,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), **unet), _diffusion(4, 16, **text)),
        Case("diffusers", "AutoencoderKL", lambda: d.AutoencoderKL(**vae, **vae_blocks),
             lambda seed: {"sample": _draw(seed, 2, 3, 16, 16)}),
        Case("diffusers", "VQModel", lambda: d.VQModel(num_vq_embeddings=32, **vae, **vae_blocks),
             lambda seed: {"sample": _draw(seed, 2, 3, 16, 16)}),
        Case("diffusers", "UNet2DModel (class-conditioned)", lambda: d.UNet2DModel(
            sample_size=16, num_class_embeds=10, add_attention=False, down_block_types=("DownBlock2D",) * 2,
            up_block_types=("UpBlock2D",) * 2, **unet), _diffusion(3, 16, class_labels=_labels)),
        Case("diffusers", "UNet2DConditionModel (linear projections)", lambda: d.UNet2DConditionModel(
            sample_size=16, in_channels=4, out_channels=4, cross_attention_dim=16, attention_head_dim=8,
            use_linear_projection=True, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), **unet), _diffusion(4, 16, **text)),
        Case("diffusers", "ControlNetModel", lambda: d.ControlNetModel(
            in_channels=4, cross_attention_dim=16, attention_head_dim=8, conditioning_embedding_out_channels=(8, 16),
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), **unet),
            _diffusion(4, 16, **text, controlnet_cond=lambda seed: _draw(seed, 2, 3, 32, 32))),
        Case("diffusers", "AutoencoderTiny", lambda: d.AutoencoderTiny(
            in_channels=3, out_channels=3, encoder_block_out_channels=(16, 16), decoder_block_out_channels=(16, 16),
            num_encoder_blocks=(1, 1), num_decoder_blocks=(1, 1), latent_channels=4),
            lambda seed: {"sample": _draw(seed, 2, 3, 16, 16)}),
        Case("diffusers", "PixArtTransformer2DModel", lambda: d.PixArtTransformer2DModel(
            num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8, num_layers=2, sample_size=8,
            patch_size=2, cross_attention_dim=16, caption_channels=16, norm_num_groups=8, interpolation_scale=1),
            lambda seed: {"hidden_states": _draw(seed, 2, 4, 8, 8), "encoder_hidden_states": _draw(seed, 2, 5, 16),
                          "timestep": torch.tensor([3, 7]) + seed,
                          "added_cond_kwargs": {"resolution": None, "aspect_ratio": None}}),
        Case("diffusers", "AuraFlowTransformer2DModel", lambda: d.AuraFlowTransformer2DModel(
            sample_size=8, patch_size=2, in_channels=4, num_mmdit_layers=1, num_single_dit_layers=1,
            attention_head_dim=8, num_attention_heads=2, joint_attention_dim=16, caption_projection_dim=16,
            out_channels=4, pos_embed_max_size=16),
            lambda seed: {"hidden_states": _draw(seed, 2, 4, 8, 8), "encoder_hidden_states": _draw(seed, 2, 5, 16),
                          "timestep": torch.tensor([3, 7]) + seed}),
        Case("diffusers", "DiTTransformer2DModel", lambda: d.DiTTransformer2DModel(
            num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4, num_layers=2, sample_size=8,
            patch_size=2, num_embeds_ada_norm=10, norm_num_groups=8),
            lambda seed: {"hidden_states": _draw(seed, 2, 4, 8, 8), "timestep": torch.tensor([3, 7]) + seed,
                          "class_labels": torch.tensor([1, 2]) + seed}),
        Case("diffusers", "SD3Transformer2DModel", lambda: d.SD3Transformer2DModel(
            sample_size=8, patch_size=2, in_channels=4, num_layers=2, attention_head_dim=8, num_attention_heads=2,
            joint_attention_dim=16, caption_projection_dim=16, pooled_projection_dim=8, out_channels=4,
            pos_embed_max_size=16),
            lambda seed: {"hidden_states": _draw(seed, 2, 4, 8, 8), "encoder_hidden_states": _draw(seed, 2, 5, 16),
                          "pooled_projections": _draw(seed, 2, 8), "timestep": torch.tensor([3, 7]) + seed}),
        Case("diffusers", "FluxTransformer2DModel", lambda: d.FluxTransformer2DModel(
            patch_size=1, in_channels=4, num_layers=1, num_single_layers=1, attention_head_dim=8, num_attention_heads=2,
            joint_attention_dim=16, pooled_projection_dim=8, axes_dims_rope=(2, 2, 4)),
            lambda seed: {"hidden_states": _draw(seed, 2, 16, 4), "encoder_hidden_states": _draw(seed, 2, 5, 16),
                          "pooled_projections": _draw(seed, 2, 8), "timestep": torch.tensor([0.3, 0.7]),
                          "img_ids": torch.zeros(16, 3), "txt_ids": torch.zeros(5, 3)}),
    ]  # fmt: skip


# x-transformers: one decoder-only language model per option a user turns on (its README's options)
X_DECODER_OPTIONS: dict[str, dict[str, Any]] = {
    "pre-norm (default)": {},
    "post-norm": {"pre_norm": False},
    "RMSNorm": {"use_rmsnorm": True},
    "ScaleNorm": {"use_scalenorm": True},
    "sandwich norm": {"sandwich_norm": True},
    "GLU feed-forward, rotary positions": {"ff_glu": True, "rotary_pos_emb": True},
    "ALiBi": {"alibi_pos_bias": True},
    "T5 relative position bias": {"rel_pos_bias": True},
    "memory key/values": {"attn_num_mem_kv": 2},
    "grouped-query attention": {"attn_kv_heads": 2},
    "query/key norm": {"attn_qk_norm": True},
    "residual attention": {"residual_attn": True},
    "macaron": {"macaron": True},
    "gated residual": {"gate_residual": True},
    "scaled residual": {"scale_residual": True},
    "token shift": {"shift_tokens": 1},
    "talking heads": {"attn_pre_talking_heads": True},
    "layer scale": {"use_layerscale": True},
    "layer scale held as 1 + w": {"use_layerscale": True, "norm_add_unit_offset": True},
    "gated attention values": {"attn_gate_values": True},
    "no feed-forward bias": {"ff_no_bias": True},
    "hyper-connections (4 streams)": {"num_residual_streams": 4},
    "value residual": {"add_value_residual": True},
    "learned value residual mix": {"add_value_residual": True, "learned_value_residual_mix": True},
    "U-Net skips": {"unet_skips": True},
    "input reinjected at every layer": {"reinject_input": True},
    "layers integrated": {"integrate_layers": True},
    "dynamic tanh instead of norms": {"use_dynamic_tanh": True},
    "Derf instead of norms": {"use_derf": True},
    "simple RMSNorm": {"use_simple_rmsnorm": True},
    "pre- and post-norm": {"pre_and_post_norm": True},
    "softclamped output": {"softclamp_output": True},
    "dynamic position bias": {"dynamic_pos_bias": True},
    "xPos rotary": {"rotary_pos_emb": True, "rotary_xpos": True},
    "parallel blocks (par_ratio)": {"par_ratio": 2},
    "sandwich coefficient": {"sandwich_coef": 2},
    "weight-tied layers": {"weight_tie_layers": True},
    "custom layer order": {"custom_layers": ("a", "f", "a", "a", "f")},
    "depth-scaled residual": {"depth_scale_residual": True},
    "orthogonal residual update": {"orthog_residual": True},
    "attention on attention": {"attn_on_attn": True},
    "head scale": {"attn_head_scale": True},
    "sparse top-k attention": {"attn_sparse_topk": 4},
    "feed-forward post-activation norm": {"ff_post_act_ln": True},
    "one key/value head": {"attn_one_kv_head": True},
    "polar positions": {"polar_pos_emb": True},
    "queries, keys, values from different streams": {"num_residual_streams": 4, "qkv_receive_diff_residuals": True},
    "gated multi residual": {"gated_multi_residual": True, "residual_fn_kwargs": {"read_gate_rank": 4}},
    "mean-variance split residual": {"mv_split_residual": True},
}


def x_transformers_cases() -> list[Case]:
    import x_transformers as x

    def decoder(options: dict[str, Any]) -> Callable[[], nn.Module]:
        return lambda: x.TransformerWrapper(
            num_tokens=100, max_seq_len=32, attn_layers=x.Decoder(dim=32, depth=2, heads=4, **options)
        )

    cases = [Case("x-transformers", f"Decoder ({name})", decoder(o), _tokens) for name, o in X_DECODER_OPTIONS.items()]
    return cases + [
        Case("x-transformers", "Encoder (BERT-like)", lambda: x.TransformerWrapper(
            num_tokens=100, max_seq_len=32, attn_layers=x.Encoder(dim=32, depth=2, heads=4)), _tokens),
        Case("x-transformers", "XTransformer (encoder-decoder)", lambda: x.XTransformer(
            dim=32, enc_num_tokens=100, enc_depth=2, enc_heads=4, enc_max_seq_len=32, dec_num_tokens=100, dec_depth=2,
            dec_heads=4, dec_max_seq_len=32), lambda seed: (_tokens(seed), _tokens(seed).flip(1)[:, :6])),
        Case("x-transformers", "ViTransformerWrapper (classifier)", lambda: x.ViTransformerWrapper(
            image_size=16, patch_size=4, num_classes=3, attn_layers=x.Encoder(dim=32, depth=2, heads=4)),
            lambda seed: _draw(seed, 2, 3, 16, 16)),
        Case("x-transformers", "ContinuousTransformerWrapper", lambda: x.ContinuousTransformerWrapper(
            dim_in=6, dim_out=6, max_seq_len=32, attn_layers=x.Decoder(dim=32, depth=2, heads=4)),
            lambda seed: _draw(seed, 2, 8 + 3 * seed, 6)),
    ]  # fmt: skip


def monai_cases() -> list[Case]:
    from monai.networks import nets as n

    def image(size: int, channels: int = 1, dims: int = 2) -> Callable[[int], torch.Tensor]:
        return lambda seed: _draw(seed, 2, channels, *(size,) * dims)

    return [
        Case("monai", "UNet (residual units)", lambda: n.UNet(
            spatial_dims=2, in_channels=1, out_channels=2, channels=(8, 16, 32), strides=(2, 2), num_res_units=2),
            image(16)),
        Case("monai", "UNet (3-D, instance norm)", lambda: n.UNet(
            spatial_dims=3, in_channels=1, out_channels=2, channels=(8, 16), strides=(2,), num_res_units=1,
            norm="instance"), image(8, dims=3)),
        Case("monai", "BasicUNet", lambda: n.BasicUNet(
            spatial_dims=2, in_channels=1, out_channels=2, features=(8, 8, 16, 16, 32, 8)), image(64)),
        Case("monai", "SegResNet", lambda: n.SegResNet(
            spatial_dims=2, in_channels=1, out_channels=2, init_filters=8, blocks_down=(1, 2), blocks_up=(1,)),
            image(16)),
        Case("monai", "DynUNet (residual blocks)", lambda: n.DynUNet(
            spatial_dims=2, in_channels=1, out_channels=2, kernel_size=[3, 3, 3], strides=[1, 2, 2],
            upsample_kernel_size=[2, 2], filters=[8, 16, 32], res_block=True), image(16)),
        Case("monai", "UNETR", lambda: n.UNETR(
            in_channels=1, out_channels=2, img_size=16, feature_size=8, hidden_size=32, mlp_dim=64, num_heads=4,
            spatial_dims=2, proj_type="conv"), image(16)),
        Case("monai", "SwinUNETR", lambda: n.SwinUNETR(
            in_channels=1, out_channels=2, feature_size=12, depths=(1, 1, 1, 1), num_heads=(3, 3, 3, 3),
            spatial_dims=2), image(128)),
        Case("monai", "AttentionUnet", lambda: n.AttentionUnet(
            spatial_dims=2, in_channels=1, out_channels=2, channels=(8, 16, 32), strides=(2, 2)), image(16)),
        Case("monai", "VNet", lambda: n.VNet(
            spatial_dims=2, in_channels=1, out_channels=2, act=("elu", {"inplace": False})), image(16)),
        Case("monai", "ResNet-10", lambda: n.resnet10(spatial_dims=2, n_input_channels=1, num_classes=3), image(32)),
        Case("monai", "DenseNet", lambda: n.DenseNet(
            spatial_dims=2, in_channels=1, out_channels=3, init_features=8, growth_rate=4, block_config=(2, 2)),
            image(32)),
        Case("monai", "ViT (classification)", lambda: n.ViT(
            in_channels=1, img_size=16, patch_size=4, hidden_size=32, mlp_dim=64, num_layers=2, num_heads=4,
            spatial_dims=2, classification=True, num_classes=3), image(16)),
        Case("monai", "AutoEncoder", lambda: n.AutoEncoder(
            spatial_dims=2, in_channels=1, out_channels=1, channels=(8, 16), strides=(2, 2), num_res_units=1),
            image(16)),
        Case("monai", "HighResNet", lambda: n.HighResNet(spatial_dims=2, in_channels=1, out_channels=2), image(16)),
        Case("monai", "EfficientNet-B0", lambda: n.EfficientNetBN(
            "efficientnet-b0", pretrained=False, spatial_dims=2, in_channels=1, num_classes=3), image(32)),
        Case("monai", "UNet (ReLU, batch norm)", lambda: n.UNet(
            spatial_dims=2, in_channels=1, out_channels=2, channels=(8, 16, 32), strides=(2, 2), num_res_units=2,
            act="relu", norm="batch"), image(16)),
        Case("monai", "BasicUNetPlusPlus", lambda: n.BasicUNetPlusPlus(
            spatial_dims=2, in_channels=1, out_channels=2, features=(8, 8, 16, 16, 32, 8)), image(64)),
        Case("monai", "FlexibleUNet (EfficientNet-B0 encoder)", lambda: n.FlexibleUNet(
            in_channels=1, out_channels=2, backbone="efficientnet-b0", pretrained=False, spatial_dims=2), image(64)),
        Case("monai", "SwinUNETR v2", lambda: n.SwinUNETR(
            in_channels=1, out_channels=2, feature_size=12, depths=(1, 1, 1, 1), num_heads=(3, 3, 3, 3),
            spatial_dims=2, use_v2=True), image(128)),
        Case("monai", "SegResNetVAE", lambda: n.SegResNetVAE(
            input_image_size=(16, 16), spatial_dims=2, in_channels=1, out_channels=2, init_filters=8,
            blocks_down=(1, 2), blocks_up=(1,)), image(16)),
        Case("monai", "SegResNetDS", lambda: n.SegResNetDS(
            spatial_dims=2, init_filters=8, in_channels=1, out_channels=2, blocks_down=(1, 2)), image(16)),
        Case("monai", "MedNeXt", lambda: n.MedNeXt(
            spatial_dims=2, in_channels=1, out_channels=2, init_filters=8, blocks_down=(1, 1), blocks_bottleneck=1,
            blocks_up=(1, 1)), image(16)),
        Case("monai", "VarAutoEncoder (sigmoid output)", lambda: n.VarAutoEncoder(
            spatial_dims=2, in_shape=(1, 16, 16), out_channels=1, latent_size=4, channels=(8, 16), strides=(2, 2)),
            image(16)),
        Case("monai", "ViTAutoEnc", lambda: n.ViTAutoEnc(
            in_channels=1, img_size=16, patch_size=4, hidden_size=32, mlp_dim=64, num_layers=2, num_heads=4,
            spatial_dims=2), image(16)),
        Case("monai", "Regressor", lambda: n.Regressor(
            in_shape=(1, 16, 16), out_shape=(3,), channels=(8, 16), strides=(2, 2)), image(16)),
        Case("monai", "SE-ResNeXt-50 (one block a stage)", lambda: n.SEResNext50(
            spatial_dims=2, in_channels=1, num_classes=3, layers=(1, 1, 1, 1)), image(32)),
        Case("monai", "ResNet-18 (projection shortcuts)", lambda: n.resnet18(
            spatial_dims=2, n_input_channels=1, num_classes=3, shortcut_type="B"), image(32)),
        Case("monai", "SE-ResNet-50 (one block a stage)", lambda: n.SEResNet50(
            spatial_dims=2, in_channels=1, num_classes=3, layers=(1, 1, 1, 1)), image(32)),
    ]  # fmt: skip


CASE_MAKERS = {"diffusers": diffusers_cases, "x-transformers": x_transformers_cases, "monai": monai_cases}


def cases(libraries: list[str] | None = None) -> list[Case]:
    """Every case of the libraries named (default all) that are installed."""
    found: list[Case] = []
    for library, make in CASE_MAKERS.items():
        if libraries and library not in libraries:
            continue
        try:
            found.extend(make())
        except ImportError:
            continue
    return found


def first_output(output: Any) -> torch.Tensor | None:
    """The first floating-point tensor a model returns (a diffusers ``.sample``, a plain tensor, a tuple's
    first)."""
    return next((t for _, t in flatten_output(output) if t.is_floating_point()), None)


def build(case: Case) -> nn.Module:
    torch.manual_seed(0)
    return case.build().eval()


def check(case: Case, time_limit: int = TIME_LIMIT_S) -> dict[str, Any]:
    """Build one case and check promises 1-4 on it; never raises."""
    row: dict[str, Any] = {"library": case.library, "model": case.name}
    with hf_zoo.timed_check(row, time_limit):
        try:
            model = build(case)
            with torch.no_grad():
                run_model(model, case.inputs(0))
        except Exception as err:  # noqa: BLE001 (a model that does not build or run is listed, not counted)
            row.update(built=False, reason=_reason(err))
            return row
        row.update(built=True, parameters=sum(p.numel() for p in model.parameters()))
        promises: dict[str, Any] = {}
        report = initialize(model, "zero", example_inputs=case.inputs(0))
        unknown = [r.name for r in report.records if r.rule == "unknown"]
        detail = f"{len(unknown)} unknown: {', '.join(unknown[:4])}" if unknown else ""
        promises["nothing unknown"] = (not unknown, detail)
        row["notes"] = [n for n in report.notes if n]
        with torch.no_grad():
            output = first_output(run_model(model, case.inputs(1)))
            peak = float(output.abs().max()) if output is not None and output.numel() else 0.0
            promises[ZERO_OUTPUT] = (peak == 0.0, f"largest output entry {peak:.3g}")
            if peak and bool((output == output.flatten()[0]).all()):
                promises[ZERO_OUTPUT] = (False, f"every output entry {float(output.flatten()[0]):.3g}")
            squashed = _squashed_zero(output) if peak else ""
            if squashed:  # a final sigmoid or softmax of a zero output: the output layer's output is 0
                promises[ZERO_OUTPUT] = (True, squashed)
            if output is not None and output.dim() == 0:  # a loss: the prediction it is made from is not returned
                promises[ZERO_OUTPUT] = (None, "the model returns a loss, not its prediction")
            carriers = {r.name.rsplit(".", 1)[0] for r in report.records if r.role == "classifier_norm"}
            found = zero_start_promises(
                model,
                case.inputs(1),
                tolerance=TOLERANCE,
                carries_output_zero=carriers,
                open_blocks=report.open_blocks,  # entry blocks ZerO starts on: their sums are not counted
            )
            for p in found:
                if p.promise != ZERO_LOGITS:
                    promises[p.promise] = (p.kept, str(p))
        random: dict[str, Any] = {}
        for scheme in RANDOM_SCHEMES:
            try:
                records = initialize(build(case), scheme, example_inputs=case.inputs(0)).records
                left = [r.name for r in records if r.rule == "unknown"]
            except Exception as err:  # noqa: BLE001 (a scheme that raises is a broken promise, said as such)
                random[scheme] = f"raised {_reason(err)}"
                continue
            if left:
                random[scheme] = left[:3]
        promises["random schemes"] = (not random, "random schemes: " + json.dumps(random) if random else "")
        row["promises"] = promises
        row["kept"] = all(kept is not False for kept, _ in promises.values())
    return row


def _squashed_zero(output: torch.Tensor) -> str:
    """What a model ending in a fixed sigmoid or softmax returns for a zero output (every entry ``sigmoid(0) =
    1/2``, or ``1/C`` over its ``C`` classes), said; ``""`` for any other output."""
    value = float(output.flatten()[0])
    if not torch.all(output == value):
        return ""
    if value == 0.5:
        return "every entry 0.5: a final sigmoid of a zero output"
    if output.dim() and abs(value * output.shape[-1] - 1) < 1e-6:
        return f"every entry 1/{output.shape[-1]}: a final softmax of a zero output"
    return ""


_reason = hf_zoo._reason  # "Type: message [file:line]", or the time limit passed


def summarise(rows: list[dict[str, Any]]) -> tuple[list[list[str]], str]:
    """The table by library and the pass-rate line."""
    table = []
    for library in LIBRARIES:
        mine = [r for r in rows if r["library"] == library]
        built = [r for r in mine if r.get("built")]
        kept = [r for r in built if r.get("kept")]
        rate = f"{100 * len(kept) / len(built):.0f} %" if built else "-"
        table.append([library, str(len(mine)), str(len(built)), str(len(kept)), rate])
    built = [r for r in rows if r.get("built")]
    kept = [r for r in built if r.get("kept")]
    rate = 100 * len(kept) / max(len(built), 1)
    line = f"{len(kept)} of {len(built)} models that build keep promises 1-4 ({rate:.1f} %)"
    return table, line


def failures(rows: list[dict[str, Any]]) -> list[str]:
    return hf_zoo.failures(rows, name=lambda row: f"{row['library']} {row['model']}")


def write_markdown(rows: list[dict[str, Any]], meta: str, path: str) -> str:
    table, line = summarise(rows)
    lines = [
        "# ZerO's promises beyond Hugging Face: diffusers, x-transformers, MONAI",
        "",
        (__doc__ or "").split("\n\n")[0].replace("\n", " ") + " " + (__doc__ or "").split("\n\n")[1].replace("\n", " "),
        "",
        "```bash",
        ".venv/bin/pip install -e '.[zoo]'",
        ".venv/bin/python benchmarks/model_zoo.py --out model_zoo.jsonl --markdown docs/model_zoo.md",
        "```",
        "",
        meta,
        "",
        "| library | models | built | kept 1-4 | pass rate |",
        "|---|---|---|---|---|",
        *("| " + " | ".join(cells) + " |" for cells in table),
        "",
        f"**{line}.**",
        "",
        "## Every model, what it keeps",
        "",
        "| library | model | parameters | kept 1-4 | seconds |",
        "|---|---|---|---|---|",
        *(
            f"| {r['library']} | {r['model']} | {r.get('parameters', '-')} | "
            f"{'not built' if not r.get('built') else 'yes' if r.get('kept') else 'no'} | {r['seconds']} |"
            for r in rows
        ),
        "",
        "## Every model that breaks a promise",
        "",
        *(failures(rows) or ["None."]),
        "",
        "## Not built (not counted)",
        "",
        *([f"- {r['library']} {r['model']}: {r['reason']}" for r in rows if not r.get("built")] or ["None."]),
        "",
    ]
    text = "\n".join(lines)
    if path:
        write_text(path, text)
    return line


def versions() -> str:
    found = []
    for library in LIBRARIES:
        try:
            found.append(f"{library} {metadata.version(library)}")
        except metadata.PackageNotFoundError:
            found.append(f"{library} not installed")
    return ", ".join(found)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--libraries", nargs="+", choices=list(LIBRARIES), help="only these (default all)")
    parser.add_argument(
        "--out", type=output_file, default="model_zoo.jsonl", help="results, a JSON line a model (appended)"
    )
    parser.add_argument("--markdown", type=output_file, help="also write the tables here (docs/model_zoo.md)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    signal.signal(signal.SIGALRM, hf_zoo._on_alarm)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    out = args.out
    done = hf_zoo.read_results(out, lambda row: (row["library"], row["model"]))
    todo = cases(args.libraries)
    start = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as sink:
        for case in todo:
            if (case.library, case.name) in done:
                continue
            row = check(case)
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            done[(case.library, case.name)] = row
            verdict = "not built" if not row.get("built") else ("kept" if row.get("kept") else "BROKEN")
            print(f"{case.library} {case.name}: {verdict} ({row['seconds']} s)", flush=True)
    rows = [done[(c.library, c.name)] for c in todo if (c.library, c.name) in done]
    meta = (
        f"{versions()}, torch {torch.__version__}, {platform.machine()} {os.cpu_count()} CPU cores; "
        f"{len(rows)} models, {time.perf_counter() - start:.0f} s, {time.strftime('%Y-%m-%d')}"
    )
    table, line = summarise(rows)
    for cells in table:
        print("  ".join(f"{c:>16}" for c in cells))
    print(line)
    print("\n".join(failures(rows)))
    if args.markdown:
        write_markdown(rows, meta, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
