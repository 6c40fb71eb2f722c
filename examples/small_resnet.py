"""A small ResNet: fmnist train --model examples/small_resnet.py:SmallResNet"""

from torch import nn


def conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    conv = nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Block(nn.Module):
    """Two 3x3 convolutions and a shortcut; `stride` 2 halves the image and widens it."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, cout, stride), conv_bn(cout, cout))
        self.skip = nn.Identity() if stride == 1 else nn.Conv2d(cin, cout, 1, stride)

    def forward(self, x):
        return self.body(x) + self.skip(x)


class SmallResNet(nn.Module):
    """(N, 1, 28, 28) pixels in [0, 1] -> (N, 10) logits: 28x28, 14x14, 7x7 stages."""

    def __init__(self, width: int = 16):
        super().__init__()
        w = width
        self.stem = conv_bn(1, w)
        self.stages = nn.Sequential(Block(w, w, 1), Block(w, 2 * w, 2), Block(2 * w, 4 * w, 2))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * w, 10))

    def forward(self, x):
        return self.head(self.stages(self.stem(x - 0.29)))
