"""ResNet-20 for 32x32 CIFAR images (He et al. 2016, section 4.2), as in akamaster's weights.

Re-implemented from the architecture description in ``../shared/data/weights/README.md`` so the
shared CIFAR-10 state dict (``module.``-prefixed keys) loads: 3x3 stem with 16 channels, three
stages of three basic blocks (16, 32, 64 channels), parameter-free "option A" shortcuts,
global average pooling and a 10-way linear layer.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class _ShortcutA(nn.Module):
    """Identity, or every second pixel with the channels zero-padded (no parameters)."""

    def __init__(self, planes: int) -> None:
        super().__init__()
        self.pad = planes // 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        changes = stride != 1 or in_planes != planes
        self.shortcut: nn.Module = _ShortcutA(planes) if changes else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """``conv1, bn1, layer1..3, avgpool, linear``; ``features`` is everything before the pooling."""

    def __init__(self, blocks_per_stage: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        in_planes = 16
        stages = []
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = []
            for i in range(blocks_per_stage):
                blocks.append(BasicBlock(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.linear = nn.Linear(64, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, 3, H, W) -> (batch, 64, H/4, W/4) feature map."""
        x = F.relu(self.bn1(self.conv1(x)))
        return self.layer3(self.layer2(self.layer1(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.features(x).mean(dim=(2, 3)))


def cifar_resnet20(num_classes: int = 10) -> CifarResNet:
    return CifarResNet(3, num_classes)
