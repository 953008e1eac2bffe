"""Training and evaluation on CPU: tqdm progress, deterministic seeds, masks kept exactly zero."""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

__all__ = [
    "AUGMENTATIONS",
    "Distillation",
    "augment_batch",
    "evaluate",
    "seed_everything",
    "task_loss",
    "test_line",
    "train",
]

# training-time augmentation of image batches (``train(augment=...)``, ``Config.augment``):
# "none", "shift" (random shift by up to ``SHIFT`` pixels, zero fill), "flip" (horizontal
# mirror with probability 1/2) or "shift+flip"
AUGMENTATIONS = ("none", "shift", "flip", "shift+flip")
SHIFT = 2


@dataclass(frozen=True)
class Distillation:
    """Knowledge distillation from a frozen ``teacher`` (the float model): the loss becomes
    ``(1 - weight)`` times the cross-entropy plus ``weight * temperature**2`` times the KL
    divergence from the teacher's softened outputs to the model's (both at ``temperature``)."""

    teacher: torch.nn.Module
    weight: float
    temperature: float = 4.0

    def __post_init__(self):
        if not 0 < self.weight <= 1:
            raise ValueError(f"distillation weight must be in (0, 1], not {self.weight!r}")
        if not self.temperature > 0:
            raise ValueError(f"distillation temperature must be > 0, not {self.temperature!r}")
        self.teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)


def task_loss(out, y, xb, distill: Distillation | None = None):
    """The training loss of outputs ``out`` for inputs ``xb`` with labels ``y``: the
    cross-entropy, blended with the teacher's (:class:`Distillation`) when given."""
    loss = F.cross_entropy(out, y)
    if distill is None:
        return loss
    t = distill.temperature
    with torch.no_grad():
        soft = F.softmax(distill.teacher(xb) / t, dim=1)
    kl = F.kl_div(F.log_softmax(out / t, dim=1), soft, reduction="batchmean")
    return (1 - distill.weight) * loss + distill.weight * t * t * kl


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _tensor(x):
    return torch.as_tensor(np.asarray(x))


@torch.no_grad()
def evaluate(model, x, y, batch: int = 1000) -> tuple[float, int, int]:
    """``(average loss, correct, total)`` on ``(x, y)``."""
    model.eval()
    x, y = _tensor(x), _tensor(y)
    loss, correct = 0.0, 0
    for i in range(0, len(x), batch):
        out = model(x[i : i + batch])
        loss += F.cross_entropy(out, y[i : i + batch], reduction="sum").item()
        correct += int((out.argmax(1) == y[i : i + batch]).sum())
    return loss / max(len(x), 1), correct, len(x)


def test_line(loss: float, correct: int, total: int) -> str:
    return (
        f"Test set: Average loss: {loss:.4f}, Accuracy: {correct}/{total} "
        f"({100.0 * correct / max(total, 1):.2f}%)"
    )


def augment_batch(x, mode: str, gen: torch.Generator, shift: int = SHIFT) -> torch.Tensor:
    """A randomly augmented copy of the image batch ``x`` (``(B, C, H, W)``); the labels are
    unchanged. ``shift``: every image moves by its own ``(dy, dx)``, each uniform in
    ``[-shift, shift]``, the pixels shifted in are zero (the background of Fashion-MNIST and
    MNIST). ``flip``: every image is mirrored left-right with probability 1/2. The draws come
    from ``gen``, so a seeded generator gives the same batch every time."""
    if mode not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {mode!r} ({', '.join(AUGMENTATIONS)})")
    x = torch.as_tensor(x)
    if x.dim() != 4:
        raise ValueError(f"augmentation needs image batches (B, C, H, W), not {tuple(x.shape)}")
    b, _, h, w = x.shape
    if "shift" in mode and shift > 0:
        d = torch.randint(-shift, shift + 1, (2, b), generator=gen)
        pad = torch.nn.functional.pad(x, (shift, shift, shift, shift))
        # output pixel (i, j) of image n is input pixel (i - dy, j - dx): padded (i - dy + s, ...)
        rows = torch.arange(h)[None, :] - d[0][:, None] + shift  # (B, H)
        cols = torch.arange(w)[None, :] - d[1][:, None] + shift  # (B, W)
        n = torch.arange(b)[:, None, None]
        x = pad.permute(0, 2, 3, 1)[n, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if "flip" in mode:
        flip = torch.rand(b, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return x.contiguous()


def accuracy(model, x, y) -> float:
    _, correct, total = evaluate(model, x, y)
    return correct / max(total, 1)


#: Smoothing of the L_p penalty at zero, in weight units (far below a pruning threshold).
LP_EPSILON = 1e-3


def lp_penalty(w, p: float):
    """``sum((w**2 + eps**2) ** (p / 2))``, ``eps`` = :data:`LP_EPSILON`: the L_p "norm" to the
    power p (0 < p < 1), which approaches the count of nonzero weights (L0) as ``p -> 0``
    and pulls small weights to zero harder than L1 (seed 002: p = 1/10 pruned 93 % of the
    weights). Smoothed so the gradient at zero is finite: its size peaks near ``|w| = eps``."""
    return (w.square() + LP_EPSILON**2).pow(p / 2).sum()


def _weighted(model):
    return [m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]


def train(
    model,
    x,
    y,
    *,
    epochs: int = 10,
    lr: float = 1e-3,
    batch: int = 64,
    seed: int = 0,
    masks: dict | None = None,
    l1: float = 0.0,
    lp: float = 0.0,
    lp_p: float = 0.5,
    weight_decay: float = 0.0,
    hook=None,
    desc: str = "train",
    quiet: bool = False,
    optimizer=None,
    val=None,
    history: list | None = None,
    schedule: str = "constant",
    augment: str = "none",
    distill: Distillation | None = None,
):
    """Adam training. ``masks`` (``{module: bool tensor}``): gradients of pruned weights are
    zeroed and the mask is re-applied after every step, so pruned weights stay exactly zero even
    with Adam's momentum. ``hook(model)`` runs after every step (e.g. weight sharing updates).

    ``val=(x_val, y_val)``: epoch selection on the validation split. The validation accuracy is
    measured after every epoch (appended to ``history``) and the model ends with the parameters
    of the best epoch (the latest of equal ones). ``schedule``: ``constant`` learning rate or
    ``cosine`` (decayed to 0 over all the steps). ``augment``: the training batches are
    augmented (`augment_batch`, drawn from the same seeded generator as the batch order).
    ``l1``, ``lp``: weights of the L1 and L_p (:func:`lp_penalty`, exponent ``lp_p``)
    regularisation of every Linear and Conv2d weight, added to the loss.
    ``distill``: the loss blends in a teacher's (:func:`task_loss`)."""
    if augment not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {augment!r} ({', '.join(AUGMENTATIONS)})")
    if lp and not 0 < lp_p < 1:
        raise ValueError(f"lp_p must be in (0, 1), not {lp_p!r} (p = 1 is --l1)")
    gen = torch.Generator().manual_seed(seed)
    x, y = _tensor(x), _tensor(y)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = optimizer or torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    n = len(x)
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"unknown learning-rate schedule {schedule!r} (constant, cosine)")
    steps = max(epochs * ((n + batch - 1) // batch), 1)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if schedule == "cosine" else None
    best = None
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        bar = tqdm(
            range(0, n, batch),
            desc=f"{desc} {epoch + 1}/{epochs}",
            leave=False,
            disable=True if quiet else None,  # None: off when not a terminal (logs)
            mininterval=1.0,
        )
        for i in bar:
            idx = perm[i : i + batch]
            opt.zero_grad()
            xb = x[idx] if augment == "none" else augment_batch(x[idx], augment, gen)
            loss = task_loss(model(xb), y[idx], xb, distill)
            if l1:  # L1 regularisation pushes weights toward zero before pruning
                loss = loss + l1 * sum(m.weight.abs().sum() for m in _weighted(model))
            if lp:
                loss = loss + lp * sum(lp_penalty(m.weight, lp_p) for m in _weighted(model))
            loss.backward()
            if masks:
                for m, mask in masks.items():
                    if m.weight.grad is not None:
                        m.weight.grad.mul_(mask)
            opt.step()
            if sched is not None:
                sched.step()
            if masks:
                with torch.no_grad():
                    for m, mask in masks.items():
                        m.weight.mul_(mask)
            if hook is not None:
                hook(model)
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
        if val is not None:
            acc = accuracy(model, *val)
            if history is not None:
                history.append(acc)
            if best is None or acc >= best[0]:
                best = (acc, copy.deepcopy(model.state_dict()))
    if best is not None and epochs:
        model.load_state_dict(best[1])
    return model
