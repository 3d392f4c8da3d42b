r"""Transformers: a GPT-style decoder for language modelling and a ViT-style encoder for images.

Both stack the same pre-norm block

.. math::

    x \leftarrow x + \alpha_1\,\mathrm{Attn}(\mathrm{N}_1(x)), \qquad
    x \leftarrow x + \alpha_2\,\mathrm{MLP}(\mathrm{N}_2(x)),

with ``N`` a LayerNorm, an RMSNorm or nothing (``norm="none"``), and
:math:`\alpha` a :class:`~detinit.nn.ScalarGate` when ``gate=True`` (ReZero /
SkipInit set it to 0, every other scheme to 1), else absent. The blocks
declare the roles of their layers, so :func:`detinit.initialize` knows the
query / key / value / output projections and the MLP without guessing from
names. Three attention layouts compute the same function and exist so that
every layout users write is exercised:

* ``"fused"``: one ``Linear(d, 3d)`` for q, k, v (nanoGPT's ``c_attn``), role ``"attn_qkv"``;
* ``"separate"``: three ``Linear(d, d)``;
* ``"torch"``: ``nn.MultiheadAttention`` (its fused ``in_proj_weight``).

>>> model = GPT(vocab_size=65, context=32, depth=2, width=64, heads=4)
>>> from detinit import initialize
>>> _ = initialize(model, "zero")
>>> logits = model(torch.zeros(3, 32, dtype=torch.long))
>>> logits.shape, bool(logits.abs().max() == 0)  # ZerO: the classifier starts at 0
(torch.Size([3, 32, 65]), True)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..contract import checked_arguments
from ..nn import ScalarGate
from ._layers import check_choice
from .registry import register_model

TRANSFORMER_NORMS = ("layernorm", "rmsnorm", "none")
LAYOUTS = ("fused", "separate", "torch")
POSITIONS = ("learned", "sinusoidal", "none")


def make_norm(norm: str, width: int, bias: bool = True) -> nn.Module:
    """``nn.LayerNorm``, ``nn.RMSNorm`` or ``nn.Identity`` for ``norm="none"``."""
    check_choice("norm", norm, TRANSFORMER_NORMS)
    if norm == "layernorm":
        return nn.LayerNorm(width, bias=bias)
    return nn.RMSNorm(width) if norm == "rmsnorm" else nn.Identity()


class SelfAttention(nn.Module):
    """Multi-head self-attention (causal or not) in one of three parameter layouts.

    Args:
        width: model width ``d``; heads: number of heads (``d % heads == 0``).
        causal: mask future positions (decoder) or not (encoder).
        layout: ``"fused"``, ``"separate"`` or ``"torch"`` (see the module docstring).
        bias: biases on the projections.
        dropout: dropout on the attention probabilities.
    """

    def __init__(
        self,
        width: int,
        heads: int,
        *,
        causal: bool = True,
        layout: str = "fused",
        bias: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_choice("layout", layout, LAYOUTS)
        if width % heads:
            raise ValueError(f"width={width} must be divisible by heads={heads}")
        self.width, self.heads, self.causal, self.layout, self.dropout = width, heads, causal, layout, dropout
        if layout == "fused":
            self.qkv = nn.Linear(width, 3 * width, bias=bias)
        elif layout == "separate":
            self.query = nn.Linear(width, width, bias=bias)
            self.key = nn.Linear(width, width, bias=bias)
            self.value = nn.Linear(width, width, bias=bias)
        if layout == "torch":
            self.mha = nn.MultiheadAttention(width, heads, dropout=dropout, bias=bias, batch_first=True)
        else:
            self.proj = nn.Linear(width, width, bias=bias)

    def detinit_roles(self) -> dict[str, str]:
        if self.layout == "fused":
            return {"qkv": "attn_qkv", "proj": "attn_out"}
        if self.layout == "separate":
            return {"query": "attn_query", "key": "attn_key", "value": "attn_value", "proj": "attn_out"}
        return {}  # nn.MultiheadAttention's roles are built in

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.width // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        if self.layout == "torch":
            mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1) if self.causal else None
            return self.mha(x, x, x, attn_mask=mask, need_weights=False, is_causal=self.causal)[0]
        if self.layout == "fused":
            q, k, v = self.qkv(x).split(d, dim=2)
        else:
            q, k, v = self.query(x), self.key(x), self.value(x)
        y = F.scaled_dot_product_attention(
            self._heads(q),
            self._heads(k),
            self._heads(v),
            is_causal=self.causal,
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class FeedForward(nn.Module):
    """``Linear(d, r d) -> GELU -> Linear(r d, d)``; roles ``branch`` and ``branch_last``."""

    def __init__(self, width: int, ratio: int = 4, bias: bool = True) -> None:
        super().__init__()
        self.fc = nn.Linear(width, ratio * width, bias=bias)
        self.proj = nn.Linear(ratio * width, width, bias=bias)

    def detinit_roles(self) -> dict[str, str]:
        return {"fc": "branch", "proj": "branch_last"}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))


class TransformerBlock(nn.Module):
    """Pre-norm residual block: attention branch then MLP branch (see the module docstring).

    ``dropout`` applies to each branch's output before it joins the residual stream.
    """

    def __init__(
        self,
        width: int,
        heads: int,
        *,
        causal: bool = True,
        norm: str = "layernorm",
        gate: bool = False,
        layout: str = "fused",
        mlp_ratio: int = 4,
        bias: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = make_norm(norm, width, bias)
        self.attn = SelfAttention(width, heads, causal=causal, layout=layout, bias=bias, dropout=dropout)
        self.gate1 = ScalarGate() if gate else nn.Identity()
        self.norm2 = make_norm(norm, width, bias)
        self.mlp = FeedForward(width, mlp_ratio, bias)
        self.gate2 = ScalarGate() if gate else nn.Identity()
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.gate1(self.attn(self.norm1(x))))
        return x + self.drop(self.gate2(self.mlp(self.norm2(x))))


def sinusoidal_positions(context: int, width: int) -> torch.Tensor:
    r"""Vaswani et al.'s fixed encodings: :math:`\sin(p/10000^{2i/d})`, :math:`\cos(\cdot)` interleaved.

    >>> sinusoidal_positions(4, 6).shape
    torch.Size([4, 6])
    """
    position = torch.arange(context, dtype=torch.float64)[:, None]
    freq = torch.exp(torch.arange(0, width, 2, dtype=torch.float64) * (-math.log(10000.0) / width))
    table = torch.zeros(context, width, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq)[:, : width // 2]
    return table.float()


class _Stack(nn.Module):
    """Positions, blocks and a final norm: what the decoder and the encoder share."""

    detinit_channel_dim = -1  # activations are (batch, tokens, channels): for the diagnostics

    def _build_stack(
        self,
        tokens: int,
        position: str,
        depth: int,
        width: int,
        heads: int,
        causal: bool,
        norm: str,
        gate: bool,
        layout: str,
        **block: object,
    ) -> None:
        """Positions for ``tokens`` places, ``depth`` blocks and the final norm."""
        check_choice("position", position, POSITIONS)
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.position = position
        if position == "learned":
            self.pos = nn.Embedding(tokens, width)
        elif position == "sinusoidal":
            self.register_buffer("pos_table", sinusoidal_positions(tokens, width), persistent=False)
        self.blocks = nn.ModuleList(
            TransformerBlock(width, heads, causal=causal, norm=norm, gate=gate, layout=layout, **block)  # type: ignore[arg-type]
            for _ in range(depth)
        )
        self.norm = make_norm(norm, width, bool(block.get("bias", True)))

    def detinit_buffers_(self) -> None:
        """Recompute the constant buffers (sinusoidal positions) after a meta-device model is materialised."""
        if self.position == "sinusoidal":
            tokens, width = self.pos_table.shape
            self.pos_table.copy_(sinusoidal_positions(tokens, width))

    def _add_positions(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        if self.position == "learned":
            return x + self.pos(torch.arange(t, device=x.device))
        if self.position == "sinusoidal":
            return x + self.pos_table[:t].to(x.dtype)
        return x


class GPT(_Stack):
    """A GPT-style decoder-only language model: tokens ``(B, T)`` -> next-token logits ``(B, T, V)``.

    Args:
        vocab_size: number of tokens ``V``.
        context: longest sequence ``T`` (learned positions have ``T`` rows).
        depth: blocks.
        width: model width ``d``.
        heads: attention heads.
        norm: ``"layernorm"`` (pre-LN, GPT-2), ``"rmsnorm"`` or ``"none"``.
        gate: a scalar gate on every branch (ReZero / SkipInit need it).
        layout: attention parameter layout, ``"fused"``, ``"separate"`` or ``"torch"``.
        position: ``"learned"`` (role ``"position"``), ``"sinusoidal"`` (a fixed buffer) or ``"none"``.
        mlp_ratio: MLP expansion.
        bias: biases in every layer.
        dropout: dropout (attention, branches, embeddings).
        tie_weights: the head shares the token embedding (GPT-2). Under ZerO the
            shared matrix gets the embedding's Hadamard rows and the final norm's
            scale starts at 0 (role ``"classifier_norm"``), so the output is 0 at
            init; without a final norm (``norm="none"``) ZerO refuses the tie.

    >>> GPT(vocab_size=10, context=8, depth=1, width=16, heads=2)(torch.zeros(2, 8, dtype=torch.long)).shape
    torch.Size([2, 8, 10])
    """

    @checked_arguments(ranges={"dropout": (0.0, 1.0)})
    def __init__(
        self,
        vocab_size: int,
        context: int = 128,
        depth: int = 4,
        width: int = 128,
        heads: int = 4,
        *,
        norm: str = "layernorm",
        gate: bool = False,
        layout: str = "fused",
        position: str = "learned",
        mlp_ratio: int = 4,
        bias: bool = True,
        dropout: float = 0.0,
        tie_weights: bool = False,
    ) -> None:
        super().__init__()
        self.vocab_size, self.context = vocab_size, context
        self.tok = nn.Embedding(vocab_size, width)
        self.drop = nn.Dropout(dropout)
        self._build_stack(
            context,
            position,
            depth,
            width,
            heads,
            True,
            norm,
            gate,
            layout,
            mlp_ratio=mlp_ratio,
            bias=bias,
            dropout=dropout,
        )
        self.head = nn.Linear(width, vocab_size, bias=False)
        if tie_weights:
            self.head.weight = self.tok.weight

    def detinit_roles(self) -> dict[str, str]:
        roles = {"pos": "position"} if self.position == "learned" else {}
        if self.head.weight is self.tok.weight and any(True for _ in self.norm.parameters()):
            roles["norm"] = "classifier_norm"  # a tied head's zero goes on the final norm's scale
        return roles

    def get_classifier(self) -> nn.Module:
        return self.head

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dim() != 2 or tokens.dtype not in (torch.long, torch.int32):
            raise ValueError(
                f"GPT expects integer tokens of shape (batch, time), got {tuple(tokens.shape)} {tokens.dtype}"
            )
        if tokens.shape[1] > self.context:
            raise ValueError(f"sequence length {tokens.shape[1]} exceeds the model's context {self.context}")
        vocab = self.tok.num_embeddings  # checked on the device, without a sync (a CUDA device-side assert)
        torch._assert_async(((tokens >= 0) & (tokens < vocab)).all(), f"GPT: token ids must lie in [0, {vocab})")
        x = self.drop(self._add_positions(self.tok(tokens)))
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


class ViT(_Stack):
    """A small Vision Transformer encoder: non-overlapping patches -> Linear -> blocks -> mean pool -> classifier.

    The patch embedding is a ``Linear(C p^2, d)`` on flattened patches (not a
    strided convolution: ZerO's Algorithm 2 would give a ``p x p`` stride-``p``
    kernel its centre tap only, so each token would see one pixel of its patch).

    >>> vit = ViT(num_classes=10, in_chans=1, image_size=28, patch=7, depth=1, width=32, heads=2)
    >>> vit(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    @checked_arguments(ranges={"dropout": (0.0, 1.0)})
    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 1,
        image_size: int = 28,
        patch: int = 4,
        depth: int = 4,
        width: int = 128,
        heads: int = 4,
        *,
        norm: str = "layernorm",
        gate: bool = False,
        layout: str = "fused",
        position: str = "learned",
        mlp_ratio: int = 4,
        bias: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if image_size % patch:
            raise ValueError(f"image_size={image_size} must be divisible by patch={patch}")
        self.patch, self.image_size = patch, image_size
        self.embed = nn.Linear(in_chans * patch * patch, width)
        self._build_stack(
            (image_size // patch) ** 2,
            position,
            depth,
            width,
            heads,
            False,
            norm,
            gate,
            layout,
            mlp_ratio=mlp_ratio,
            bias=bias,
            dropout=dropout,
        )
        self.head = nn.Linear(width, num_classes)

    def detinit_roles(self) -> dict[str, str]:
        return {"pos": "position"} if self.position == "learned" else {}

    def get_classifier(self) -> nn.Module:
        return self.head

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"ViT built for {self.image_size}x{self.image_size} images got input {tuple(images.shape)}; "
                "pass image_size= to the constructor"
            )
        p = self.patch
        patches = F.unfold(images, kernel_size=p, stride=p).transpose(1, 2)  # (B, tokens, C p^2)
        x = self._add_positions(self.embed(patches))
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x).mean(1))


@register_model("gpt", "zero", "GPT-style decoder (pre-LN; depth/width/heads/context/norm/gate/layout options)")
def gpt(vocab_size: int = 256, context: int = 128, **kwargs: object) -> GPT:
    return GPT(vocab_size, context, **kwargs)  # type: ignore[arg-type]


@register_model("gpt2_small", "gpt2", "GPT-2 small shape: 12 blocks, width 768, 12 heads, context 1024, tied head")
def gpt2_small(vocab_size: int = 50257, context: int = 1024, **kwargs: object) -> GPT:
    options = {"depth": 12, "width": 768, "heads": 12, "tie_weights": True} | kwargs
    return GPT(vocab_size, context, **options)  # type: ignore[arg-type]


@register_model("vit", "zero", "ViT-style encoder on image patches (patch/depth/width/heads/norm/gate/layout options)")
def vit(num_classes: int = 10, in_chans: int = 1, image_size: int = 28, **kwargs: object) -> ViT:
    return ViT(num_classes, in_chans, image_size, **kwargs)  # type: ignore[arg-type]
