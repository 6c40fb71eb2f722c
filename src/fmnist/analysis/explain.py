"""Why did the model say Shirt? Attributions over the 28x28 input, from Captum:

- `gradcam`: LayerGradCam on the last convolution, upsampled to 28x28 (Selvaraju et al.);
- `ig`: IntegratedGradients from a black image (the dataset's background), 32 steps;
- `occlusion`: the drop in the class's logit when a 4x4 patch is blacked out (stride 2).

Faithfulness is measured, not assumed: the deletion test blacks out the most-attributed
pixels first and follows the predicted class's probability; a random order over the
item's own pixels is the reference. A method whose curve does not fall faster than the
random one is flagged.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fmnist.errors import FmnistError

METHODS = ("gradcam", "ig", "occlusion")


class ExplainError(FmnistError):
    pass


def captum_or_fail():
    """Captum's attribution module, or a one-line error naming the extra to install."""
    try:
        import captum.attr
    except ImportError:
        raise ExplainError(
            "fmnist explain needs Captum: pip install 'fashion-mnist-cnn[explain]'"
        ) from None
    return captum.attr


def last_conv(model: nn.Module) -> nn.Conv2d:
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ExplainError(f"model {getattr(model, 'model_name', '?')!r} has no convolution")
    return convs[-1]


def as_input(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float (N, 1, 28, 28) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).float().div(255).unsqueeze(1)


def attribute(model: nn.Module, images: np.ndarray, targets, method: str) -> np.ndarray:
    """Attributions (N, 28, 28) of each image for its target class."""
    if method not in METHODS:
        raise ExplainError(f"unknown method {method!r}; known: {', '.join(METHODS)}, all")
    attr = captum_or_fail()
    model = model.eval()
    x = as_input(images).to(next(model.parameters()).device)
    target = torch.as_tensor(np.asarray(targets), dtype=torch.long, device=x.device)
    with torch.enable_grad():
        if method == "gradcam":
            cam = attr.LayerGradCam(model, last_conv(model)).attribute(
                x, target=target, relu_attributions=True
            )
            out = attr.LayerAttribution.interpolate(cam, (28, 28), "bilinear")
        elif method == "ig":
            out = attr.IntegratedGradients(model).attribute(
                x, baselines=torch.zeros_like(x), target=target, n_steps=32,
                internal_batch_size=512,
            )  # fmt: skip
        else:
            out = attr.Occlusion(model).attribute(
                x, target=target, sliding_window_shapes=(1, 4, 4), strides=(1, 2, 2),
                baselines=0.0, perturbations_per_eval=max(1, 1024 // len(x)),
            )  # fmt: skip
    return out.detach().float().cpu().numpy()[:, 0]


@torch.inference_mode()
def probabilities(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    device = next(model.parameters()).device
    return torch.softmax(model.eval()(x.to(device)).float(), 1).cpu()


def deletion_curves(model, images, targets, order: np.ndarray, fractions) -> np.ndarray:
    """The target class's probability (N, len(fractions)) as the first pixels of each
    image's `order` (N, 784) are blacked out."""
    x = as_input(images)
    n = len(x)
    rows = torch.arange(n)
    target = torch.as_tensor(np.asarray(targets), dtype=torch.long)
    curves = []
    for f in fractions:
        k = int(round(f * 784))
        xs = x.clone().view(n, -1)
        if k:
            xs[rows[:, None], torch.from_numpy(order[:, :k])] = 0.0
        curves.append(probabilities(model, xs.view_as(x))[rows, target])
    return torch.stack(curves, 1).numpy()


DELETED = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)  # shares of the 784 pixels blacked out


def faithfulness(model, images: np.ndarray, methods=METHODS, seed: int = 0,
                 fractions=DELETED) -> dict:  # fmt: skip
    """Deletion test per method against a random order over the item's pixels: the mean
    area under the probability curve (lower falls faster), and whether the method beat
    random."""
    x = as_input(images)
    targets = probabilities(model, x).argmax(1).numpy()
    rng = np.random.default_rng(seed)
    flat = images.reshape(len(images), -1)
    # random: the item's pixels in a random order first, then the background's
    noise = rng.random(flat.shape)
    random_order = np.argsort(-(noise + (flat > 0)), axis=1)
    base = deletion_curves(model, images, targets, random_order, fractions)
    out = {"images": len(images), "fractions": [round(float(f), 3) for f in fractions],
           "random": {"auc": float(np.trapezoid(base.mean(0), fractions)),
                      "curve": base.mean(0).round(4).tolist()}}  # fmt: skip
    for method in methods:
        a = attribute(model, images, targets, method).reshape(len(images), -1)
        order = np.argsort(-a, axis=1, kind="stable")
        curve = deletion_curves(model, images, targets, order, fractions)
        auc = float(np.trapezoid(curve.mean(0), fractions))
        out[method] = {"auc": auc, "curve": curve.mean(0).round(4).tolist(),
                       "better_than_random": auc < out["random"]["auc"]}  # fmt: skip
    return out


def summary(a: np.ndarray) -> dict:
    """What a --json reader gets of one attribution map."""
    peak = np.unravel_index(int(np.abs(a).argmax()), a.shape)
    return {"min": float(a.min()), "max": float(a.max()), "mean_abs": float(np.abs(a).mean()),
            "peak": [int(peak[0]), int(peak[1])]}  # fmt: skip
