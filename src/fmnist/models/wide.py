"""wide_cnn: three stages of two 3x3 convolutions, and its wider sizes."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from fmnist.models.blocks import (
    Normalize,
    conv_bn,
)
from fmnist.models.registry import register, register_size


@dataclass(frozen=True)
class WideCNNArgs:
    num_classes: int = 10  # outputs
    width: int = 32  # channels of the first block; doubled at each of the next two
    dropout: float = 0.3  # before the classifier


@register(
    "wide_cnn",
    WideCNNArgs,
    description="three stages of two 3x3 convolutions with BatchNorm (32, 64, 128 channels), "
    "max-pooling between them, global average pooling, one linear layer",
)
class WideCNN(nn.Module):
    """Three blocks of two 3x3 conv-BN-ReLU layers (28, 14, 7 pixels), global pooling, linear."""

    def __init__(self, args: WideCNNArgs):
        super().__init__()
        w = args.width
        self.features = nn.Sequential(
            Normalize(),
            conv_bn(1, w),
            conv_bn(w, w),
            nn.MaxPool2d(2),
            conv_bn(w, 2 * w),
            conv_bn(2 * w, 2 * w),
            nn.MaxPool2d(2),
            conv_bn(2 * w, 4 * w),
            conv_bn(4 * w, 4 * w),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(args.dropout), nn.Linear(4 * w, args.num_classes)
        )

    def forward(self, x):
        return self.classifier(self.features(x))


# wider wide_cnn, for a GPU, where a step costs more than its FLOPs
register_size(
    "wide_cnn64", "wide_cnn", width=64, description="wide_cnn at width 64: 64, 128, 256 channels"
)
register_size(
    "wide_cnn96", "wide_cnn", width=96, description="wide_cnn at width 96: 96, 192, 384 channels"
)
