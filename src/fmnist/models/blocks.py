"""Pieces the stronger models share: pixels standardised inside the model, and their
convolution blocks."""

from __future__ import annotations

import torch
from torch import nn

# Fashion-MNIST's training set: mean and standard deviation of the pixels in [0, 1].
PIXEL_MEAN, PIXEL_STD = 0.2860, 0.3530


class Normalize(nn.Module):
    """Standardize pixels inside the model, so every model takes pixels in [0, 1]."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(PIXEL_MEAN), persistent=False)
        self.register_buffer("std", torch.tensor(PIXEL_STD), persistent=False)

    def forward(self, x):
        return (x - self.mean) / self.std


def conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


def conv_bn_act(cin: int, cout: int, act: type[nn.Module] = nn.GELU) -> list[nn.Module]:
    # BatchNorm without a learned scale: the next convolution rescales anyway (airbench)
    bn = nn.BatchNorm2d(cout, momentum=0.4)
    bn.weight.requires_grad_(False)
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), bn, act()]


def conv_pool_bn_act(
    cin: int, cout: int, kernel: int = 3, act: type[nn.Module] = nn.GELU
) -> list[nn.Module]:
    # pooling before BatchNorm (no learned scale) and the activation: they run on a quarter
    # of the pixels
    bn = nn.BatchNorm2d(cout)
    bn.weight.requires_grad_(False)
    conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False)
    return [conv, nn.MaxPool2d(2), bn, act()]
