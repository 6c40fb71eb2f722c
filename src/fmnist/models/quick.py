"""The ladder's quick models: quick_cnn, and quick_w with a frozen whitening layer set from
the training images; their sizes."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fmnist.models.blocks import (
    Normalize,
    conv_bn_act,
    conv_pool_bn_act,
)
from fmnist.models.registry import ModelError, register, register_size


@dataclass(frozen=True)
class QuickCNNArgs:
    num_classes: int = 10  # outputs
    width: int = 16  # channels of the 5x5 first convolution; doubled at each of the next two


@register(
    "quick_cnn",
    QuickCNNArgs,
    description="three stages of one convolution (5x5, then 3x3) and max-pooling "
    "(16, 32, 64 channels), one linear layer",
)
class QuickCNN(nn.Module):
    """Three stages of conv, 2x2 max-pool, BatchNorm (no learned scale), GELU: 28 -> 14 -> 7
    -> 3 pixels, then one linear layer. Pooling before BatchNorm and GELU makes them run on a
    quarter of the pixels; at width 16 it costs 4.2 MFLOP per image and trains at about the
    seed CNN's images/s in channels-last (fmnist bench --ladder)."""

    def __init__(self, args: QuickCNNArgs):
        super().__init__()
        if not 1 <= args.width <= 256:
            raise ModelError(f"quick_cnn width must be 1 to 256, got {args.width}")
        layers: list[nn.Module] = [Normalize()]
        cin, cout, kernel = 1, args.width, 5
        for _ in range(3):
            layers += conv_pool_bn_act(cin, cout, kernel)
            cin, cout, kernel = cout, cout * 2, 3
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.classifier = nn.Linear(cin * 9, args.num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    def forward(self, x):
        return self.classifier(self.features(x))


class Whitening(nn.Conv2d):
    """quick_w's frozen first convolution. Its bias is not added here but by the model after
    the max-pooling that follows (the same function: pooling commutes with adding a constant
    per channel), so neither this convolution nor that pooling is on the gradient's path."""

    def forward(self, x):
        return self._conv_forward(x, self.weight, None)

    def pooled(self, x):
        """max_pool2d(self(x), 2) as one stride-2 convolution and a maximum: each of the
        pooling window's 4 offsets gets the filters shifted there (kernel k + 1), and the
        maximum is taken over the 4. oneDNN runs this layer's own shape (one input channel,
        a 2x2 or 3x3 kernel at every pixel) slowly, and the pooling reads all its output:
        the stride-2 form makes training steps of the narrow quick_w sizes a few percent
        faster (benchmarks/frontier/pooled-whitening-2026-12-06-epyc.json)."""
        shifted = [
            nn.functional.pad(self.weight, (dj, 1 - dj, di, 1 - di))
            for di in (0, 1)
            for dj in (0, 1)
        ]
        y = nn.functional.conv2d(x, torch.cat(shifted), stride=2)
        a, b, c, d = y.chunk(4, dim=1)
        return torch.maximum(torch.maximum(a, b), torch.maximum(c, d))


ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}


@dataclass(frozen=True)
class QuickWhitenedArgs:
    num_classes: int = 10  # outputs
    patch: int = 3  # side of the whitened patches: 2 * patch**2 frozen first filters
    width: int = 32  # channels of the second convolution; doubled at the third
    depth: int = 1  # convolutions per stage: 2 adds one after the pooling, as speed_cnn's
    # "relu": a cheaper step than GELU's (its backward pass above all); as accurate on
    # validation in rung90's one epoch (benchmarks/frontier/explore-2026-12-06-epyc.jsonl)
    activation: str = "gelu"
    # True: the whitening's bias stays at zero too, so no gradient is computed below the
    # first learned convolution: a cheaper step (benchmarks/frontier/frozen_bias.py)
    frozen_bias: bool = False


@register(
    "quick_w",
    QuickWhitenedArgs,
    description="a frozen whitening layer on 3x3 patches, then two stages of one 3x3 "
    "convolution and max-pooling (32, 64 channels)",
)
class QuickWhitened(nn.Module):
    """quick_cnn with a first convolution that is not learned: the eigenvectors of the
    training images' patch covariance, each scaled to unit variance, with its negative
    (patch whitening, as airbench does for CIFAR-10), set by `init_from_data` before the
    first step and then frozen; its bias learns (unless frozen_bias), added after the first
    pooling. Then two stages of conv, 2x2 max-pool, BatchNorm without a learned scale and
    GELU (or ReLU), and one linear layer."""

    def __init__(self, args: QuickWhitenedArgs):
        super().__init__()
        if args.patch not in (2, 3, 4, 5):
            raise ModelError(f"quick_w patch must be 2 to 5, got {args.patch}")
        if not 1 <= args.width <= 256:
            raise ModelError(f"quick_w width must be 1 to 256, got {args.width}")
        if args.depth not in (1, 2):
            raise ModelError(f"quick_w depth must be 1 or 2, got {args.depth}")
        if args.activation not in ACTIVATIONS:
            known = ", ".join(ACTIVATIONS)
            raise ModelError(f"quick_w activation must be one of {known}, got {args.activation!r}")
        act = ACTIVATIONS[args.activation]
        k = args.patch
        self.normalize = Normalize()
        # "same" padding, spelled out (PyTorch's "same" copies the input for an even k):
        # the extra row and column go after, as PyTorch places them
        before = (k - 1) // 2
        self.pad = nn.ZeroPad2d((before, k - 1 - before, before, k - 1 - before))
        self.whiten = Whitening(1, 2 * k * k, k)
        self.whiten.weight.requires_grad_(False)
        self.whiten.bias.requires_grad_(not args.frozen_bias)
        layers: list[nn.Module] = [nn.MaxPool2d(2), act()]
        cin, cout = 2 * k * k, args.width
        for _ in range(2):
            layers += conv_pool_bn_act(cin, cout, act=act)
            if args.depth == 2:
                layers += conv_bn_act(cout, cout, act=act)
            cin, cout = cout, cout * 2
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.classifier = nn.Linear(cin * 9, args.num_classes)
        for m in self.features.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    @torch.no_grad()
    def init_from_data(self, images: torch.Tensor, eps: float = 5e-3, limit: int = 2_000):
        """Whiten: `images` uint8 (N, 28, 28), the training images (the first `limit`).
        2,000 images (over a million patches) give the filters of 10,000 within 1.5% in a
        fifth of the time or less, and that time counts in every rung's seconds."""
        k = self.whiten.kernel_size[0]
        x = images[:limit].to(self.normalize.mean.device).float().div(255).unsqueeze(1)
        x = self.normalize(x).cpu()
        patches = nn.functional.unfold(x, k).transpose(1, 2).reshape(-1, k * k).double()
        eigenvalues, vectors = torch.linalg.eigh(torch.cov(patches.T))
        filters = (vectors.T / (eigenvalues.clamp(min=0) + eps).sqrt().unsqueeze(1)).float()
        w = torch.cat([filters, -filters]).view(2 * k * k, 1, k, k)
        self.whiten.weight.copy_(w.to(self.whiten.weight.device))
        self.whiten.bias.zero_()

    def forward(self, x):
        _pool, *rest = self.features  # the pooling the whitening computes with it, faster
        x = self.whiten.pooled(self.pad(self.normalize(x))) + self.whiten.bias.view(1, -1, 1, 1)
        for layer in rest:
            x = layer(x)
        return self.classifier(x)


# Sizes of quick_cnn and quick_w for the accuracy/time ladder, by name
register_size(
    "quick_m", "quick_cnn", width=24, description="quick_cnn at width 24: 24, 48, 96 channels"
)
register_size(
    "quick_w2",
    "quick_w",
    patch=2,
    description="a frozen whitening layer on 2x2 patches, then two stages of one 3x3 "
    "convolution and max-pooling (32, 64 channels)",
)
register_size(
    "quick_w2r24",
    "quick_w",
    patch=2,
    width=24,
    activation="relu",
    description="a frozen whitening layer on 2x2 patches, then two stages of one 3x3 "
    "convolution and max-pooling (24, 48 channels), ReLU",
)
register_size(
    "quick_w2r24f",
    "quick_w",
    patch=2,
    width=24,
    activation="relu",
    frozen_bias=True,
    description="quick_w2r24 with the whitening's bias frozen at zero: no gradient below "
    "the first learned convolution",
)
register_size(
    "quick_w2d24",
    "quick_w",
    patch=2,
    depth=2,
    width=24,
    description="a frozen whitening layer on 2x2 patches, then two 3x3 convolutions per "
    "stage, width 24",
)
register_size(
    "quick_w2d32",
    "quick_w",
    patch=2,
    depth=2,
    description="a frozen whitening layer on 2x2 patches, then two 3x3 convolutions per "
    "stage, width 32",
)
register_size(
    "quick_wd",
    "quick_w",
    depth=2,
    description="a frozen whitening layer then two 3x3 convolutions per stage, width 32",
)
register_size(
    "quick_wd40",
    "quick_w",
    depth=2,
    width=40,
    description="a frozen whitening layer then two 3x3 convolutions per stage, width 40",
)
register_size(
    "quick_wd48",
    "quick_w",
    depth=2,
    width=48,
    description="a frozen whitening layer then two 3x3 convolutions per stage, width 48",
)
register_size(
    "quick_wd64",
    "quick_w",
    depth=2,
    width=64,
    description="a frozen whitening layer then two 3x3 convolutions per stage, width 64",
)
