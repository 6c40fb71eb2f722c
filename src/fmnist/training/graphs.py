"""The training step (`forward_backward_update`: forward, loss, backward and the optimizer's
update, which every trainer step runs) and that step as one CUDA graph, captured once and
replayed for every full batch.

On a GPU a small model's step costs the issuing of its few hundred operations from Python,
not their arithmetic; a replayed graph issues them all at once. Augmentation, the weight
average and the running loss and accuracy stay outside the graph. The learning rate
reaches the captured update through one tensor per parameter group, refreshed from the
optimizer before each replay, so the schedule, the checkpoints and resume keep seeing the
plain floats they always did. A batch of another size (an epoch's last) runs as an
ordinary step on the same gradient memory.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fmnist.evaluate import autocast, to_input


def forward_backward_update(model, optimizer, images, labels, cfg, *, cache: bool = True):
    """Loss, gradients (added to any the parameters hold) and the optimizer's update for one
    uint8 batch; returns the (detached) loss and logits. `cache`: see `autocast`."""
    with autocast(images.device, cfg.precision, cache=cache):
        logits = model(to_input(images))
        loss = F.cross_entropy(logits, labels, label_smoothing=cfg.label_smoothing)
    loss.backward()
    optimizer.step()
    return loss.detach(), logits.detach()


class GraphedStep:
    """`step(images, labels) -> (loss, logits)` for uint8 batches: `warmup` ordinary steps
    (cuDNN's choice of algorithms, the optimizer's state), then the step captured and
    replayed. `capture=False` runs the same buffers and order without CUDA (for checks on
    any machine); a capture that fails leaves a note in `log` and ordinary steps."""

    def __init__(self, model, optimizer, cfg, *, warmup: int = 3, capture: bool = True, log=print):
        self.model, self.optimizer, self.cfg = model, optimizer, cfg
        self.warmup, self.capture, self.log = warmup, capture, log
        self.warmed = 0
        self.graph = None
        self.ready = False  # captured (or, without capture, past the warm-up)
        self.failed = False
        self.static_x = self.static_y = self.loss = self.logits = None
        self.lr: list[torch.Tensor] = []

    def _on_static(self, cache: bool = True):
        return forward_backward_update(
            self.model, self.optimizer, self.static_x, self.static_y, self.cfg, cache=cache
        )

    def _ordinary(self, images, labels):
        # once captured, the gradients live in the graph's memory: zeroed there, not replaced
        self.optimizer.zero_grad(set_to_none=self.graph is None)
        return forward_backward_update(self.model, self.optimizer, images, labels, self.cfg)

    def _warm(self, images, labels):
        if not self.capture:
            return self._ordinary(images, labels)
        # warm-up off the main stream, so the capture's stream starts clean (PyTorch's advice)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            out = self._ordinary(images, labels)
        torch.cuda.current_stream().wait_stream(side)
        return out

    def _prepare(self, images, labels) -> None:
        self.static_x = torch.empty_like(images)
        self.static_y = torch.empty_like(labels)
        self.lr = [
            torch.tensor(float(g["lr"]), dtype=torch.float32, device=images.device)
            for g in self.optimizer.param_groups
        ]
        if not self.capture:
            self.ready = True
            return
        groups = self.optimizer.param_groups
        kept = [(g["lr"], g["capturable"]) for g in groups]
        self.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        try:
            for g, lr in zip(groups, self.lr, strict=True):
                g["lr"], g["capturable"] = lr, True
            with torch.cuda.graph(graph):
                # autocast's cache of bf16 weights would outlive the capture: off here
                self.loss, self.logits = self._on_static(cache=False)
            self.graph, self.ready = graph, True
        except Exception as e:  # noqa: BLE001 (any failure: ordinary steps from here on)
            torch.cuda.synchronize()
            self.optimizer.zero_grad(set_to_none=True)
            self.failed = True
            self.log(f"note: CUDA graph capture failed ({type(e).__name__}: {e}); ordinary steps")
        finally:
            for g, (lr, capturable) in zip(groups, kept, strict=True):
                g["lr"], g["capturable"] = lr, capturable

    def __call__(self, images, labels):
        if self.failed or len(images) != self.cfg.batch_size:
            return self._ordinary(images, labels)
        if self.warmed < self.warmup:
            self.warmed += 1
            return self._warm(images, labels)
        if not self.ready:
            self._prepare(images, labels)
            if self.failed:
                return self._ordinary(images, labels)
        self.static_x.copy_(images)
        self.static_y.copy_(labels)
        for lr, g in zip(self.lr, self.optimizer.param_groups, strict=True):
            lr.fill_(g["lr"])
        if self.graph is not None:
            self.graph.replay()
            return self.loss, self.logits
        # without capture: the captured computation run as it is, on the same buffers and
        # learning-rate tensors
        self.optimizer.zero_grad(set_to_none=True)
        kept = [g["lr"] for g in self.optimizer.param_groups]
        for g, lr in zip(self.optimizer.param_groups, self.lr, strict=True):
            g["lr"] = lr
        try:
            return self._on_static()
        finally:
            for g, lr in zip(self.optimizer.param_groups, kept, strict=True):
                g["lr"] = lr
