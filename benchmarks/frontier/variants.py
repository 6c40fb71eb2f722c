"""Training ideas measured on the validation split without a place in the package (none
paid): alternating flips, Muon on the convolution filters, residual second convolutions,
progressive image size, a whitening bias frozen after a few epochs, a strided third
convolution, dirac initialisation, lookahead and Nesterov SGD; `nobiasdecay`, which paid,
is now the package's `bias_decay` off. From the repository root:
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 \\
        python benchmarks/frontier/variants.py OUT.jsonl CANDIDATE VARIANT
VARIANT, comma-separated:
- `altflip`: airbench's derandomized mirroring; each image mirrored on every other epoch,
  the first epoch's choice random (seeded), in place of `flip`'s coin per image and epoch.
- `muon=S`: the convolution filters (reshaped to output channels x the rest) step by Muon
  (Nesterov momentum `mom`, 0.95 unless given, orthogonalised by five Newton-Schulz steps in
  fp32 with torch.optim.Muon's coefficients) at S times the learning rate with its
  `match_rms_adamw` scaling (0.2 x the square root of the larger side), so the recipe's
  rate and schedule apply unchanged; decoupled weight decay at the recipe's rate, not S
  times it. Every other parameter stays with AdamW. PyTorch's own Muon takes only 2-D
  parameters and orthogonalises in bfloat16, which a CPU without native bf16 emulates (it
  halved images/s here).
- `residual`: quick_w at depth 2 with each stage's second convolution (conv, BatchNorm,
  GELU) added to its input, x + f(x): a residual branch of one convolution.
- `small=S`: progressive image size; the first half of the epochs on the images resized
  to S x S pixels (antialiased bilinear, as uint8), the rest at 28 (quick_w takes 24: its
  three poolings still end at 3 x 3).
- `freeze=N`: quick_w's whitening bias (added after the first pooling) learns for the
  first N epochs only, as airbench trains its whitening bias for its first few epochs: from
  then on the first learned convolution needs no gradient for its input.
- `stride`: quick_w at depth 2 with the second stage's first convolution at stride 2 (7 to
  4 pixels) in place of the convolution and 2x2 max-pooling (7 to 3 pixels): 15.05 against
  17.83 MFLOP for quick_wd64.
- `relu`: every GELU of the model a ReLU (a cheaper activation and its gradient).
- `dirac`: every learned convolution with at least as many outputs as inputs starts with
  its first filters as the identity (dirac), the rest as initialised, as airbench does.
- `lookahead=K`: AdamW wrapped in lookahead: every K steps the slow weights move halfway
  (`alpha`, 0.5 unless given) to the fast ones, which then start again from them.
- `nobiasdecay`: no weight decay on biases and other one-dimensional parameters (the
  package's `bias_decay` off).
- `biaslr=S`, with `nobiasdecay`: the one-dimensional parameters (BatchNorm and whitening
  biases, the classifier's bias) at S times the learning rate.
- `sgd=LR`: SGD with Nesterov momentum 0.9 at peak learning rate LR on the recipe's
  schedule, weight decay `sgdwd` (5e-4 unless given) added to the gradient.
Records as explore.py's, with the variant added to the name and as `variant`, and each
epoch's seconds and images/s (`epochs`).
"""

import dataclasses
import math
import sys

import explore  # this folder
import torch
import torch.nn.functional as F

from fmnist.training import build, optim
from fmnist.training import train as training

NS_COEFFICIENTS = (3.4445, -4.775, 2.0315)  # torch.optim.Muon's defaults


def orthogonalise(g: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """Muon's quintic Newton-Schulz iteration toward the nearest semi-orthogonal matrix."""
    a, b, c = NS_COEFFICIENTS
    tall = g.size(0) > g.size(1)
    x = g.T if tall else g
    x = x / x.norm().clamp(min=1e-7)
    for _ in range(steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if tall else x


class ConvMuon(torch.optim.Optimizer):
    """Muon on the 4-D (convolution) parameters, AdamW on the rest; one learning rate, so a
    scheduler drives both."""

    def __init__(self, model, cfg, scale: float, momentum: float):
        trained = [p for p in model.parameters() if p.requires_grad]
        conv = [p for p in trained if p.ndim == 4]
        rest = [p for p in trained if p.ndim != 4]
        groups = [dict(params=conv, muon=True), dict(params=rest, muon=False)]
        super().__init__(groups, dict(lr=cfg.lr, weight_decay=cfg.weight_decay))
        # the rest in the package's groups (with bias_decay off, biases and BatchNorm shifts
        # undecayed), less the filters
        rest_groups = [
            {**group, "params": [p for p in group["params"] if p.ndim != 4 and p.requires_grad]}
            for group in optim.parameter_groups(model, cfg)
        ]
        self.adam = torch.optim.AdamW(
            rest_groups, lr=cfg.lr, eps=cfg.adam_eps, weight_decay=cfg.weight_decay, fused=True
        )
        self.scale, self.momentum = scale, momentum

    @torch.no_grad()
    def step(self, closure=None):
        filters, rest = self.param_groups
        for group in self.adam.param_groups:
            group["lr"] = rest["lr"]
        self.adam.step()
        lr, decay, mom = filters["lr"], filters["weight_decay"], self.momentum
        for p in filters["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if "momentum" not in state:
                state["momentum"] = torch.zeros_like(p.grad)
            buf = state["momentum"]
            buf.lerp_(p.grad, 1 - mom)
            update = p.grad.lerp(buf, mom).reshape(len(p), -1)
            rows, cols = update.shape
            p.mul_(1 - lr * decay)
            step = lr * self.scale * 0.2 * math.sqrt(max(rows, cols))
            p.add_(orthogonalise(update.float()).view_as(p).to(p.dtype), alpha=-step)


class Lookahead(torch.optim.AdamW):
    """AdamW whose weights, every k steps, are pulled back halfway (alpha) from where the
    fast steps took them toward the slow copy, which then becomes them."""

    def __init__(self, params, k: int, alpha: float, **kwargs):
        super().__init__(params, **kwargs)
        self.k, self.alpha, self.count = k, alpha, 0
        self.slow = [p.detach().clone() for g in self.param_groups for p in g["params"]]

    @torch.no_grad()
    def step(self, closure=None):
        super().step(closure)
        self.count += 1
        if self.count % self.k == 0:
            fast = [p for g in self.param_groups for p in g["params"]]
            torch._foreach_lerp_(self.slow, fast, self.alpha)
            torch._foreach_copy_(fast, self.slow)


def with_relu(model):
    """Every GELU of the model replaced by a ReLU."""
    for m in list(model.modules()):
        for child_name, child in list(m.named_children()):
            if isinstance(child, torch.nn.GELU):
                setattr(m, child_name, torch.nn.ReLU())
    return model


def with_dirac(model):
    """Learned convolutions with out >= in channels: the first `in` filters the identity."""
    for m in model.features.modules():
        if isinstance(m, torch.nn.Conv2d) and m.out_channels >= m.in_channels:
            if m.weight.requires_grad:
                with torch.no_grad():
                    torch.nn.init.dirac_(m.weight[: m.in_channels])
    return model


class Residual(torch.nn.Sequential):
    def forward(self, x):
        return x + super().forward(x)


def with_residuals(model):
    """quick_w at depth 2 with every conv, BatchNorm, GELU run after a GELU made residual."""
    layers, out = list(model.features), []
    while layers:
        m = layers.pop(0)
        out.append(m)
        if isinstance(m, torch.nn.GELU) and len(layers) >= 3:
            conv, bn, act = layers[:3]
            if isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d):
                if isinstance(act, torch.nn.GELU) and conv.in_channels == conv.out_channels:
                    out.append(Residual(*layers[:3]))
                    del layers[:3]
    model.features = torch.nn.Sequential(*out)
    return model


def with_strided_third(model):
    """quick_w at depth 2 with the second stage's first convolution at stride 2 (7 -> 4
    pixels) in place of conv then 2x2 max-pooling (7 -> 3 pixels)."""
    layers = list(model.features)
    convs = [i for i, m in enumerate(layers) if isinstance(m, torch.nn.Conv2d)]
    i = convs[2]
    old = layers[i]
    assert isinstance(layers[i + 1], torch.nn.MaxPool2d)
    new = torch.nn.Conv2d(old.in_channels, old.out_channels, 3, stride=2, padding=1, bias=False)
    torch.nn.init.kaiming_normal_(new.weight, nonlinearity="relu")
    layers[i : i + 2] = [new]
    model.features = torch.nn.Sequential(*layers)
    old = model.classifier
    model.classifier = torch.nn.Linear(old.in_features * 16 // 9, old.out_features)
    return model


def resized(images: torch.Tensor, size: int) -> torch.Tensor:
    x = images.unsqueeze(1).float()
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).squeeze(1)


def install(variant: dict) -> None:
    """Route the package's training loop through the variant."""
    # the names the run looks up: build.py builds the model, optimizer and schedule,
    # train.py runs each epoch
    build_fn, epoch_fn = build.build_optimizer, training.train_epoch
    create = build.create_any

    def create_any(name, args=None):
        model = create(name, args)
        if variant.get("stride"):
            model = with_strided_third(model)
        if variant.get("dirac"):
            model = with_dirac(model)
        if variant.get("relu"):
            model = with_relu(model)
        return with_residuals(model) if variant.get("residual") else model

    build.create_any = create_any
    explore.create_model = lambda name: create_any(name)

    def build_optimizer(model, cfg):
        if "muon" in variant:
            return ConvMuon(model, cfg, variant["muon"], variant.get("mom", 0.95))
        if "sgd" in variant:
            trained = [p for p in model.parameters() if p.requires_grad]
            group = dict(params=trained, lr_scale=variant["sgd"] / cfg.lr)
            decay = variant.get("sgdwd", 5e-4)
            return torch.optim.SGD([group], lr=cfg.lr, momentum=0.9, nesterov=True,
                                   weight_decay=decay)  # fmt: skip
        if "nobiasdecay" in variant:
            cfg = dataclasses.replace(cfg, bias_decay=False)
        if "lookahead" in variant:
            k, alpha = int(variant["lookahead"]), variant.get("alpha", 0.5)
            optimizer = Lookahead(
                optim.parameter_groups(model, cfg), k, alpha,
                lr=cfg.lr, eps=cfg.adam_eps, weight_decay=cfg.weight_decay, fused=True,
            )  # fmt: skip
        else:
            optimizer = build_fn(model, cfg)
        if "biaslr" in variant:  # the one-dimensional group's scale, applied below
            if len(optimizer.param_groups) != 2:
                raise SystemExit("biaslr=S goes with nobiasdecay")
            optimizer.param_groups[1]["lr_scale"] = variant["biaslr"]
        return optimizer

    schedule = build.build_scheduler

    def build_scheduler(optimizer, cfg, total_steps):
        scheduler = schedule(optimizer, cfg, total_steps)
        for group in optimizer.param_groups:
            scale = group.get("lr_scale", 1.0)
            for key in ("lr", "initial_lr", "max_lr", "min_lr"):
                if key in group:
                    group[key] *= scale
        return scheduler

    build.build_scheduler = build_scheduler
    state = {"epoch": 0, "first": None}

    def train_epoch(model, optimizer, images, labels, cfg, *args, **kwargs):
        if "freeze" in variant:
            state["trained"] = state.get("trained", 0) + 1
            if state["trained"] > variant["freeze"]:
                model.whiten.bias.requires_grad_(False)
                model.whiten.bias.grad = None
        if variant.get("altflip"):
            if state["first"] is None or len(state["first"]) != len(images):
                seeded = torch.Generator().manual_seed(cfg.seed + 7)
                state["first"], state["epoch"] = torch.rand(len(images), generator=seeded) < 0.5, 0
            flip = state["first"] ^ bool(state["epoch"] % 2)
            state["epoch"] += 1
            images = torch.where(flip.view(-1, 1, 1), images.flip(-1), images)
            cfg = dataclasses.replace(cfg, augment="none")
        if variant.get("small"):
            state["small"] = state.get("small", 0) + 1
            if state["small"] <= cfg.epochs // 2:
                images = resized(images, int(variant["small"]))
        return epoch_fn(model, optimizer, images, labels, cfg, *args, **kwargs)

    build.build_optimizer, training.train_epoch = build_optimizer, train_epoch


def main(out: str, name: str, tag: str) -> None:
    variant = {}
    for item in tag.split(","):
        key, _, value = item.partition("=")
        variant[key] = float(value) if value else True
    install(variant)
    append, run = explore.append_record, explore.train
    runs = []

    def train(*args, **kwargs):
        runs.append(run(*args, **kwargs))
        return runs[-1]

    def append_variant(path, row):
        # each epoch's seconds and images/s as well: a variant may change the cost of some
        epochs = [{k: r[k] for k in ("epoch", "epoch_s", "images_per_s")} for r in runs[-1].history]
        append(path, {**row, "name": f"{row['name']}+{tag}", "variant": variant,
                      "epochs": epochs})  # fmt: skip

    explore.train, explore.append_record = train, append_variant
    explore.main(out, [name])


if __name__ == "__main__":
    main(*sys.argv[1:4])
