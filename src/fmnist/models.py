"""Model registry: @register(name, ArgsDataclass, description=...), create_model(name, **kw),
list_models(), describe(name).

Every model takes float pixels in [0, 1] shaped (N, 1, 28, 28) and returns logits (N, 10).
Its architecture arguments live in a small dataclass, saved beside the weights.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from fmnist.errors import FmnistError

_REGISTRY: dict[str, tuple[type, type]] = {}
_DESCRIPTIONS: dict[str, str] = {}  # name -> one line in plain words, for `fmnist models`


class ModelError(FmnistError):
    pass


def register(name: str, args_cls: type, *, description: str = "") -> Callable[[type], type]:
    """Register a model class under `name`; `description` is one line saying what it is
    (without one: the first line of the class's docstring)."""

    def wrap(cls: type) -> type:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = (cls, args_cls)
        _DESCRIPTIONS[name] = description or (cls.__doc__ or "").strip().split("\n")[0]
        cls.model_name = name
        return cls

    return wrap


def register_size(name: str, base: str, *, description: str = "", **defaults) -> None:
    """Register model `base` again as `name` with other argument defaults: a size a recipe
    can name (its arguments stay overridable, and a model file records them all)."""
    base_cls, base_args = _REGISTRY[base]
    args_cls = dataclasses.make_dataclass(
        f"{base_args.__name__}_{name}",
        [(k, type(v), dataclasses.field(default=v)) for k, v in defaults.items()],
        bases=(base_args,),
        frozen=True,
    )
    sizes = ", ".join(f"{k}={v}" for k, v in defaults.items())
    register(name, args_cls, description=description or f"{base} with {sizes}")(
        type(name, (base_cls,), {})
    )


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def describe(name: str) -> str:
    """What model `name` is, in one line."""
    if name not in _REGISTRY:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    return _DESCRIPTIONS[name]


def create_model(name: str, **kwargs) -> nn.Module:
    if name not in _REGISTRY:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    cls, args_cls = _REGISTRY[name]
    known = {f.name for f in dataclasses.fields(args_cls)}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise ModelError(
            f"model {name!r} has no argument {', '.join(unknown)}; "
            f"its arguments: {', '.join(sorted(known)) or 'none'}"
        )
    args = args_cls(**kwargs)
    check_args(name, args)
    model = cls(args)
    model.args = args
    return model


# What any architecture argument may be: whole numbers are sizes (channels, blocks, layers,
# classes), fractions are dropout rates. An architecture checks its own finer rules.
INT_RANGE = (1, 4096)
CLASSES_RANGE = (2, 1000)
FLOAT_RANGE = (0.0, 1.0)  # low included, high excluded


def check_args(name: str, args) -> None:
    """Refuse an argument of the wrong type or out of range, naming it."""
    for f in dataclasses.fields(args):
        value, kind = getattr(args, f.name), type(f.default)
        if kind is int:
            low, high = CLASSES_RANGE if f.name == "num_classes" else INT_RANGE
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ModelError(
                    f"model {name!r}: {f.name} must be a whole number from {low} to {high}, "
                    f"got {value!r}"
                )
        elif kind is float:
            low, high = FLOAT_RANGE
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not ok or not math.isfinite(value) or not low <= value < high:
                raise ModelError(
                    f"model {name!r}: {f.name} must be a number in [{low}, {high}), got {value!r}"
                )


def model_args(model: nn.Module) -> dict:
    return dataclasses.asdict(model.args)


# ----------------------------------------------------------------------------
# The tutorial's CNN, reproduced exactly
# ----------------------------------------------------------------------------


def keras_init_(module: nn.Module) -> None:
    """Keras defaults: Glorot-uniform kernels, zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def keras_batchnorm(channels: int) -> nn.BatchNorm2d:
    # Keras BatchNormalization(epsilon=1e-3, momentum=0.99); PyTorch's momentum is 1 - Keras's.
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class MaxPool2x2(nn.MaxPool2d):
    """nn.MaxPool2d(2, 2); where no gradient is needed on the CPU, the same values from four
    strided views, about 5x faster than the CPU kernel on these small maps (inference).
    Training keeps the kernel: its indices make the backward pass cheaper than any
    rewrite we measured. Exports as MaxPool2d."""

    def __init__(self):
        super().__init__(2, 2)

    def forward(self, x):
        if (
            x.device.type != "cpu"
            or x.shape[-1] % 2
            or x.shape[-2] % 2
            or (torch.is_grad_enabled() and x.requires_grad)
            or torch.onnx.is_in_onnx_export()
            or torch.jit.is_tracing()
        ):
            return super().forward(x)
        top = torch.maximum(x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2])
        return torch.maximum(top, torch.maximum(x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2]))


@dataclass(frozen=True)
class SeedCNNArgs:
    num_classes: int = 10  # outputs
    dropout: float = 0.2  # after each of the two hidden dense layers


@register(
    "seed_cnn",
    SeedCNNArgs,
    description="the tutorial's CNN: two 5x5 convolutions (6 and 16 channels), each with "
    "BatchNorm and max-pooling, then dense layers of 128, 32 and 10",
)
class SeedCNN(nn.Module):
    """Conv 6@5x5, BN, MaxPool, Conv 16@5x5, BN, MaxPool, Dense 128, Dense 32, Dense 10.

    Keras's order is Conv2D(activation='relu') then BatchNormalization, so ReLU comes
    before BatchNorm here too.
    """

    def __init__(self, args: SeedCNNArgs):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2),
            nn.ReLU(),
            keras_batchnorm(6),
            MaxPool2x2(),
            nn.Conv2d(6, 16, 5, padding=2),
            nn.ReLU(),
            keras_batchnorm(16),
            MaxPool2x2(),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 7 * 7, 128),
            nn.ReLU(),
            nn.Dropout(args.dropout),
            nn.Linear(128, 32),
            nn.ReLU(),
            nn.Dropout(args.dropout),
            nn.Linear(32, args.num_classes),
        )
        keras_init_(self)

    # Inference on a CPU in blocks of this many images: the first layer's output then stays
    # in cache (measured: about 100,000 images/s in blocks of 256, 45,000 in one block of 1000).
    cpu_block = 256

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            len(x) > self.cpu_block
            and x.device.type == "cpu"
            and not self.training  # BatchNorm in training uses the statistics of the batch
            and not (torch.is_grad_enabled() and x.requires_grad)
            and not (torch.onnx.is_in_onnx_export() or torch.jit.is_tracing())
        ):
            return torch.cat([self.classifier(self.features(b)) for b in x.split(self.cpu_block)])
        return self.classifier(self.features(x))


# ----------------------------------------------------------------------------
# Stronger models
# ----------------------------------------------------------------------------

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


@dataclass(frozen=True)
class SpeedCNNArgs:
    num_classes: int = 10  # outputs
    stem: int = 24  # channels of the 3x3 stem at 28x28 pixels
    width: int = 48  # channels of the first block (14x14); doubled at each of the next two
    blocks: int = 3  # blocks of conv-pool-conv: 14, 7, 3 pixels (2 stops at 7)


def conv_bn_gelu(cin: int, cout: int) -> list[nn.Module]:
    # BatchNorm without a learned scale: the next convolution rescales anyway (airbench)
    bn = nn.BatchNorm2d(cout, momentum=0.4)
    bn.weight.requires_grad_(False)
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), bn, nn.GELU()]


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
        layers: list[nn.Module] = [Normalize(), *conv_bn_gelu(1, args.stem)]
        cin = args.stem
        for i in range(args.blocks):
            cout = args.width * 2**i
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.MaxPool2d(2)]
            layers += conv_bn_gelu(cout, cout)[1:]  # BN and GELU after the pool
            layers += conv_bn_gelu(cout, cout)
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


def conv_pool_bn_gelu(cin: int, cout: int, kernel: int = 3) -> list[nn.Module]:
    # pooling before BatchNorm (no learned scale) and GELU: they run on a quarter of the pixels
    bn = nn.BatchNorm2d(cout)
    bn.weight.requires_grad_(False)
    conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False)
    return [conv, nn.MaxPool2d(2), bn, nn.GELU()]


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
            layers += conv_pool_bn_gelu(cin, cout, kernel)
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


@dataclass(frozen=True)
class QuickWhitenedArgs:
    num_classes: int = 10  # outputs
    patch: int = 3  # side of the whitened patches: 2 * patch**2 frozen first filters
    width: int = 32  # channels of the second convolution; doubled at the third
    depth: int = 1  # convolutions per stage: 2 adds one after the pooling, as speed_cnn's


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
    first step and then frozen; its bias learns, added after the first pooling. Then two
    stages of conv, 2x2 max-pool, BatchNorm without a learned scale and GELU, and one linear
    layer."""

    def __init__(self, args: QuickWhitenedArgs):
        super().__init__()
        if args.patch not in (2, 3, 4, 5):
            raise ModelError(f"quick_w patch must be 2 to 5, got {args.patch}")
        if not 1 <= args.width <= 256:
            raise ModelError(f"quick_w width must be 1 to 256, got {args.width}")
        if args.depth not in (1, 2):
            raise ModelError(f"quick_w depth must be 1 or 2, got {args.depth}")
        k = args.patch
        self.normalize = Normalize()
        # "same" padding, spelled out (PyTorch's "same" copies the input for an even k):
        # the extra row and column go after, as PyTorch places them
        before = (k - 1) // 2
        self.pad = nn.ZeroPad2d((before, k - 1 - before, before, k - 1 - before))
        self.whiten = Whitening(1, 2 * k * k, k)
        self.whiten.weight.requires_grad_(False)
        layers: list[nn.Module] = [nn.MaxPool2d(2), nn.GELU()]
        cin, cout = 2 * k * k, args.width
        for _ in range(2):
            layers += conv_pool_bn_gelu(cin, cout)
            if args.depth == 2:
                layers += conv_bn_gelu(cout, cout)
            cin, cout = cout, cout * 2
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.classifier = nn.Linear(cin * 9, args.num_classes)
        for m in self.features.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    @torch.no_grad()
    def init_from_data(self, images: torch.Tensor, eps: float = 5e-3, limit: int = 10_000):
        """Whiten: `images` uint8 (N, 28, 28), the training images (the first `limit`)."""
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
        pool, *rest = self.features
        x = pool(self.whiten(self.pad(self.normalize(x)))) + self.whiten.bias.view(1, -1, 1, 1)
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


# ----------------------------------------------------------------------------
# Summary
# ----------------------------------------------------------------------------


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable parameters, non-trainable statistics such as BatchNorm's running mean/var)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    stats = sum(
        b.numel() for name, b in model.named_buffers() if not name.endswith("num_batches_tracked")
    )
    return trainable, stats


def flops(model: nn.Module, input_shape: tuple[int, ...] = (1, 1, 28, 28)) -> int:
    """Floating-point operations of one forward pass per image (2 per multiply-add)."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            per_output = (
                module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            )
            total += 2 * output[0].numel() * per_output
        elif isinstance(module, nn.Linear):
            total += 2 * module.in_features * module.out_features

    hooks = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(input_shape, device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return total


def summary(model: nn.Module, input_shape: tuple[int, ...] = (1, 1, 28, 28)) -> str:
    """A Keras-like table of the leaf layers: type, output shape, parameters."""
    rows: list[tuple[str, str, int]] = []
    hooks = []

    def hook(module, _inputs, output):
        n = sum(p.numel() for p in module.parameters(recurse=False))
        n += sum(b.numel() for b in module.buffers(recurse=False) if b.dtype.is_floating_point)
        name = module._summary_name
        rows.append((name, str(tuple(["N", *output.shape[1:]])).replace("'", ""), n))

    for name, m in model.named_modules():
        if len(list(m.children())) == 0:
            m._summary_name = f"{name} ({type(m).__name__})"
            hooks.append(m.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            model(torch.zeros(input_shape, device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    trainable, stats = count_parameters(model)
    width = max(36, *(len(r[0]) + 2 for r in rows))
    line = "-" * (width + 34)
    out = [f'Model: "{model.model_name}"', line]
    out.append(f"{'Layer (type)':<{width}}{'Output Shape':<22}{'Param #':>12}")
    out.append("=" * (width + 34))
    out += [f"{n:<{width}}{s:<22}{p:>12,}" for n, s, p in rows]
    out.append("=" * (width + 34))
    out.append(f"Total params: {trainable + stats:,}")
    out.append(f"Trainable params: {trainable:,}")
    out.append(f"Non-trainable params: {stats:,}")
    out.append(f"Forward pass: {flops(model, (1, *input_shape[1:])) / 1e6:,.2f} MFLOP per image")
    out.append(line)
    return "\n".join(out)
