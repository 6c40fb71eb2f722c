"""speed_cnn: airbench's shape at 28x28, and its sizes for the ladder."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from fmnist.models.blocks import (
    Normalize,
    conv_bn_act,
)
from fmnist.models.registry import ModelError, register, register_size


@dataclass(frozen=True)
class SpeedCNNArgs:
    num_classes: int = 10  # outputs
    stem: int = 24  # channels of the 3x3 stem at 28x28 pixels
    width: int = 48  # channels of the first block (14x14); doubled at each of the next two
    blocks: int = 3  # blocks of conv-pool-conv: 14, 7, 3 pixels (2 stops at 7)


@register(
    "speed_cnn",
    SpeedCNNArgs,
    description="airbench's shape: a learned 3x3 convolution of 24 channels at 28x28, then "
    "three blocks of convolution, max-pooling, convolution (48, 96, 192 channels)",
)
class SpeedCNN(nn.Module):
    """airbench's shape at 28x28: a 3x3 stem, then blocks of conv, 2x2 max-pool, conv;
    global max pooling and a linear layer whose logits are scaled down (1/9, as airbench)."""

    def __init__(self, args: SpeedCNNArgs):
        super().__init__()
        if not 1 <= args.blocks <= 3:
            raise ModelError(f"speed_cnn blocks must be 1, 2 or 3, got {args.blocks}")
        layers: list[nn.Module] = [Normalize(), *conv_bn_act(1, args.stem)]
        cin = args.stem
        for i in range(args.blocks):
            cout = args.width * 2**i
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.MaxPool2d(2)]
            layers += conv_bn_act(cout, cout)[1:]  # BN and GELU after the pool
            layers += conv_bn_act(cout, cout)
            cin = cout
        layers += [nn.AdaptiveMaxPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(cin, args.num_classes, bias=False)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    def forward(self, x):
        return self.classifier(self.features(x)) / 9


# Sizes of speed_cnn for the accuracy/time ladder (fmnist bench --ladder), by name, so a
# recipe names one; MFLOP per image in `fmnist models`.
register_size(
    "speed_s",
    "speed_cnn",
    stem=8,
    width=16,
    description="speed_cnn, narrow: a first convolution of 8 channels, blocks of 16, 32, 64",
)
register_size(
    "speed_m",
    "speed_cnn",
    stem=16,
    width=24,
    description="speed_cnn, medium: a first convolution of 16 channels, blocks of 24, 48, 96",
)
register_size(
    "speed_l",
    "speed_cnn",
    stem=16,
    width=32,
    description="speed_cnn, large: a first convolution of 16 channels, blocks of 32, 64, 128",
)
