"""resnet20: the CIFAR ResNet of basic blocks, for 28x28 images."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fmnist.models.blocks import (
    Normalize,
    conv_bn,
)
from fmnist.models.registry import ModelError, register


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


@dataclass(frozen=True)
class ResNetArgs:
    num_classes: int = 10  # outputs
    depth: int = 20  # 6n + 2 layers, as in He et al. 2016's CIFAR ResNets
    width: int = 16  # channels of the first stage; doubled at each of the next two


@register(
    "resnet20",
    ResNetArgs,
    description="the CIFAR ResNet-20 of He et al. (2016): three stages of three residual "
    "blocks of two 3x3 convolutions (16, 32, 64 channels)",
)
class ResNet(nn.Module):
    """The CIFAR ResNet of He et al. (2016): three stages of n basic blocks (28, 14, 7 pixels)."""

    def __init__(self, args: ResNetArgs):
        super().__init__()
        if (args.depth - 2) % 6:
            raise ModelError(f"resnet depth must be 6n + 2 (20, 32, 44, ...), got {args.depth}")
        n, w = (args.depth - 2) // 6, args.width
        layers: list[nn.Module] = [Normalize(), conv_bn(1, w)]
        cin = w
        for stage, cout in enumerate((w, 2 * w, 4 * w)):
            for block in range(n):
                stride = 2 if stage > 0 and block == 0 else 1
                layers.append(BasicBlock(cin, cout, stride))
                cin = cout
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(cin, args.num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for block in self.modules():
            if isinstance(block, BasicBlock):
                nn.init.zeros_(block.bn2.weight)  # each block starts as the identity

    def forward(self, x):
        return self.classifier(self.features(x))
