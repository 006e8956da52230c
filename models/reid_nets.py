"""Re-identification networks: OSNet-style and ResNet trunks with a BNNeck head.

Imported lazily by the builders in :mod:`cv.models.reid` (this module imports
torch). Every network here has the same tensor contract:

* input ``(N, 3, H, W) float32``, RGB, ``(x / 255 - mean) / std`` with the
  ImageNet mean and std; ``H × W`` is ``256 × 128`` for the shipped models (any
  size works: the trunk ends in global average pooling);
* **train mode**: ``forward(x) -> (logits (N, C), features (N, D))``, the
  identity logits after the BNNeck and the features *before* it (the triplet
  loss works on these, the ID loss on the logits: BoT's BNNeck);
* **eval mode**: ``forward(x) -> (N, D) float32``, the features after the BNNeck,
  L2-normalised (cosine similarity is a dot product).

OSNet follows Zhou et al., "Omni-Scale Feature Learning for Person
Re-Identification" (ICCV 2019) as torchreid builds it: omni-scale residual
blocks whose four streams stack 1 to 4 "lite" 3×3 convolutions (a 1×1
convolution followed by a depthwise 3×3), fused by a unified aggregation gate
shared across streams. The ResNet trunks are torchvision's, built without
pretrained weights (nothing downloads) and with the last stride set to 1
(BoT), so a 256 × 128 input leaves a 16 × 8 final map.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class ConvBnRelu(nn.Sequential):
    """Convolution, batch norm, ReLU (the ReLU left out when ``relu`` is false)."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int = 1,
        *,
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
        relu: bool = True,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, out_ch, kernel, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class LiteConv3x3(nn.Sequential):
    """The 'lite' 3×3 convolution: a 1×1 convolution, then a depthwise 3×3, BN, ReLU."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, 1, bias=False),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, groups=out_ch, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )


class ChannelGate(nn.Module):
    """The unified aggregation gate: per-channel weights from the pooled input.

    One gate is shared by the four streams of a block, so each stream is weighted
    by the same learned function of its own content.
    """

    def __init__(self, channels: int, *, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = F.adaptive_avg_pool2d(x, 1)
        w = torch.sigmoid(self.fc2(F.relu(self.fc1(w))))
        return x * w


class OSBlock(nn.Module):
    """Omni-scale residual bottleneck: four streams of 1-4 lite convolutions.

    Receptive fields of 3, 5, 7 and 9 pixels are mixed per channel by the gate,
    so one block sees both a logo and a whole coat.
    """

    def __init__(self, in_ch: int, out_ch: int, *, bottleneck_reduction: int = 4) -> None:
        super().__init__()
        mid = out_ch // bottleneck_reduction
        self.conv1 = ConvBnRelu(in_ch, mid)
        self.streams = nn.ModuleList(
            nn.Sequential(*[LiteConv3x3(mid, mid) for _ in range(depth)]) for depth in (1, 2, 3, 4)
        )
        self.gate = ChannelGate(mid)
        self.conv3 = ConvBnRelu(mid, out_ch, relu=False)
        self.downsample = ConvBnRelu(in_ch, out_ch, relu=False) if in_ch != out_ch else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv1(x)
        x2 = sum(self.gate(stream(x1)) for stream in self.streams)
        out = self.conv3(x2)
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class BNNeckHead(nn.Module):
    """BatchNorm neck and identity classifier (BoT).

    The BatchNorm's shift is frozen at zero, as in BoT, so the normalised
    embedding stays centred; the classifier has no bias.
    """

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(dim)
        self.bn.bias.requires_grad_(False)
        self.classifier = nn.Linear(dim, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)

    def forward(self, features: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        neck = self.bn(features)
        if self.training:
            return self.classifier(neck), features
        return F.normalize(neck, dim=1)


class ReidNet(nn.Module):
    """A trunk, global average pooling, an optional embedding layer, and the BNNeck.

    Args:
        trunk: Image -> ``(N, trunk_dim, h, w)`` feature map.
        trunk_dim: Channels of the trunk's output.
        num_classes: Training identities (the classifier's outputs).
        feature_dim: Embedding size ``D``; a layer maps ``trunk_dim`` to it
            (``Linear`` + BN + ReLU, torchreid's OSNet ``fc``) unless it is
            ``None`` or equal to ``trunk_dim``.

    Attributes:
        feature_dim: The embedding size ``D``.
    """

    def __init__(
        self, trunk: nn.Module, trunk_dim: int, *, num_classes: int, feature_dim: int | None
    ) -> None:
        super().__init__()
        self.trunk = trunk
        self.feature_dim = feature_dim or trunk_dim
        self.fc: nn.Module | None = None
        if self.feature_dim != trunk_dim:
            self.fc = nn.Sequential(
                nn.Linear(trunk_dim, self.feature_dim),
                nn.BatchNorm1d(self.feature_dim),
                nn.ReLU(inplace=True),
            )
        self.head = BNNeckHead(self.feature_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        # Flatten by the channel count, not the batch, so the ONNX graph keeps a
        # dynamic batch axis.
        f = F.adaptive_avg_pool2d(self.trunk(x), 1).flatten(1)
        if self.fc is not None:
            f = self.fc(f)
        return self.head(f)


def _init_weights(module: nn.Module) -> None:
    """Kaiming-normal convolutions, unit batch norms, small linear layers (torchreid)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def osnet(*, channels: Sequence[int], num_classes: int, feature_dim: int | None = 512) -> ReidNet:
    """An OSNet with the given stage widths (``[64, 256, 384, 512]`` is x1.0).

    Stem: 7×7 stride-2 convolution and 3×3 stride-2 max pooling; three stages of
    two omni-scale blocks, the first two followed by a 1×1 convolution and 2×2
    average pooling; a final 1×1 convolution. A 256 × 128 input leaves 16 × 8.
    """
    c0, c1, c2, c3 = channels

    def stage(in_ch: int, out_ch: int, *, reduce: bool) -> list[nn.Module]:
        layers: list[nn.Module] = [OSBlock(in_ch, out_ch), OSBlock(out_ch, out_ch)]
        if reduce:
            layers += [ConvBnRelu(out_ch, out_ch), nn.AvgPool2d(2, stride=2)]
        return layers

    trunk = nn.Sequential(
        ConvBnRelu(3, c0, 7, stride=2, padding=3),
        nn.MaxPool2d(3, stride=2, padding=1),
        *stage(c0, c1, reduce=True),
        *stage(c1, c2, reduce=True),
        *stage(c2, c3, reduce=False),
        ConvBnRelu(c3, c3),
    )
    net = ReidNet(trunk, c3, num_classes=num_classes, feature_dim=feature_dim)
    _init_weights(net)
    # Each residual branch starts at zero (its last BN's scale), so a fresh network is
    # close to its shortcut path: training from scratch converges much faster
    # (Goyal et al., "Accurate, Large Minibatch SGD", 2017).
    for m in net.modules():
        if isinstance(m, OSBlock):
            nn.init.zeros_(m.conv3[1].weight)
    nn.init.normal_(net.head.classifier.weight, std=0.001)
    return net


def resnet_bnneck(depth: int, *, num_classes: int, feature_dim: int | None = None) -> ReidNet:
    """A torchvision ResNet-18 or -50 trunk (no pretrained weights), last stride 1.

    Raises:
        ValueError: If ``depth`` is not 18 or 50.
    """
    from torchvision.models import resnet18, resnet50

    if depth not in (18, 50):
        raise ValueError(f"ResNet depth must be 18 or 50, got {depth}")
    base = (resnet18 if depth == 18 else resnet50)(weights=None)
    block = base.layer4[0]
    # BoT's last-stride trick: the first block of stage 4 keeps the resolution.
    first_conv = block.conv1 if depth == 18 else block.conv2
    first_conv.stride = (1, 1)
    assert block.downsample is not None
    block.downsample[0].stride = (1, 1)
    trunk = nn.Sequential(
        base.conv1,
        base.bn1,
        base.relu,
        base.maxpool,
        base.layer1,
        base.layer2,
        base.layer3,
        base.layer4,
    )
    trunk_dim = 512 if depth == 18 else 2048
    net = ReidNet(trunk, trunk_dim, num_classes=num_classes, feature_dim=feature_dim)
    if net.fc is not None:
        _init_weights(net.fc)
    return net
