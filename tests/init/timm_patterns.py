"""Small models built the way timm builds its blocks (timm itself needs torchvision, which does not import beside
this CPU torch): fused ``qkv`` + ``proj`` attention, ``LayerScale``, cls token and position table, BatchNorm
ResNet blocks (timm zero-inits their last BN), depthwise convolutions and squeeze-excitation.

Only the computation matters to the traced roles, so the modules here follow timm's forward passes; none
declares a role, and each model has timm's ``get_classifier()`` and ``pretrained_cfg``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):  # timm.models.vision_transformer.Attention
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class LayerScale(nn.Module):  # timm.layers.LayerScale
    def __init__(self, dim: int, init_values: float = 1e-5) -> None:
        super().__init__()
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1, self.attn, self.ls1 = nn.LayerNorm(dim), Attention(dim, heads), LayerScale(dim)
        self.norm2, self.mlp, self.ls2 = nn.LayerNorm(dim), Mlp(dim, 4 * dim), LayerScale(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class VisionTransformer(nn.Module):  # timm vit_tiny's structure: cls token, learned positions, pre-LN blocks
    def __init__(self, dim: int = 32, depth: int = 2, heads: int = 4, classes: int = 5, image: int = 16) -> None:
        super().__init__()
        self.pretrained_cfg = {"input_size": (3, image, image)}
        self.patch_embed = nn.Conv2d(3, dim, 4, stride=4)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, (image // 4) ** 2 + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[Block(dim, heads) for _ in range(depth)])
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, classes)

    def get_classifier(self) -> nn.Module:
        return self.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        return self.head(self.norm(self.blocks(x))[:, 0])


class SqueezeExcite(nn.Module):  # timm.layers.SqueezeExcite
    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(channels, reduced, 1), nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.fc2(F.relu(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * scale.sigmoid()


class BasicBlock(nn.Module):  # timm.models.resnet.BasicBlock (zero_init_last: bn2.weight = 0)
    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.se = SqueezeExcite(cout, max(cout // 4, 1))
        self.downsample = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else None
        )
        nn.init.zeros_(self.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.se(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        return F.relu(out + shortcut)


class InvertedResidual(nn.Module):  # timm's EfficientNet block: expand, depthwise, SE, project
    def __init__(self, channels: int, expand: int = 4) -> None:
        super().__init__()
        mid = channels * expand
        self.conv_pw, self.bn1 = nn.Conv2d(channels, mid, 1, bias=False), nn.BatchNorm2d(mid)
        self.conv_dw, self.bn2 = nn.Conv2d(mid, mid, 3, 1, 1, groups=mid, bias=False), nn.BatchNorm2d(mid)
        self.se = SqueezeExcite(mid, channels // 2)
        self.conv_pwl, self.bn3 = nn.Conv2d(mid, channels, 1, bias=False), nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.silu(self.bn1(self.conv_pw(x)))
        out = self.se(F.silu(self.bn2(self.conv_dw(out))))
        return x + self.bn3(self.conv_pwl(out))


class ConvNet(nn.Module):  # a ResNet stage with a projection shortcut, then EfficientNet blocks
    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        self.pretrained_cfg = {"input_size": (3, 16, 16)}
        self.stem, self.bn = nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8)
        self.layers = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 16, 2), InvertedResidual(16), InvertedResidual(16))
        self.fc = nn.Linear(16, classes)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(F.relu(self.bn(self.stem(x))))
        return self.fc(x.mean((2, 3)))
