"""Power-of-two (multiplier-less) weights: every alive weight becomes ``±2**k`` with
``k in [kmax - max_exp, kmax]`` where ``2**kmax`` is a per-layer power-of-two scale, i.e. integer
weights ``±2**e``, ``e in [0, max_exp]`` with ``weight_frac_bits = max_exp - kmax``.
Sign + ``exp_bits`` exponent bits; one code is reserved for zero, so ``max_exp = 2**exp_bits - 2``.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["Pow2Format", "best_kmax", "codebook", "encode", "finetune", "snap"]


class Pow2Format:
    def __init__(self, kmax: int, exp_bits: int = 3):
        self.kmax = int(kmax)
        self.exp_bits = exp_bits
        self.max_exp = (1 << exp_bits) - 2

    @property
    def kmin(self) -> int:
        return self.kmax - self.max_exp

    @property
    def weight_frac_bits(self) -> int:
        return -self.kmin

    def __repr__(self):
        return f"Pow2Format(kmax={self.kmax}, exp_bits={self.exp_bits})"


def snap(w, mask, fmt: Pow2Format):
    """Nearest ``±2**k`` (k clamped to the format's range) for alive weights, 0 elsewhere."""
    t = torch.as_tensor(w)
    a = t.abs().clamp_min(1e-30)
    lo = torch.floor(torch.log2(a))
    # nearest in the linear domain: between 2**lo and 2**(lo+1) the midpoint is 1.5 * 2**lo
    k = torch.where(a >= 1.5 * torch.pow(2.0, lo), lo + 1, lo)
    k = k.clamp(fmt.kmin, fmt.kmax)
    out = torch.sign(t) * torch.pow(2.0, k)
    out = torch.where(t == 0, torch.ones_like(out) * torch.pow(torch.tensor(2.0), fmt.kmin), out)
    return torch.where(torch.as_tensor(mask), out, torch.zeros_like(out)).to(t.dtype)


def best_kmax(w, mask, exp_bits: int = 3) -> Pow2Format:
    """Scale exponent minimising the squared snapping error of the alive weights."""
    t = torch.as_tensor(w)[torch.as_tensor(mask)]
    top = int(np.ceil(np.log2(float(t.abs().max()) + 1e-30)))
    best = None
    for kmax in range(top - 2, top + 1):
        fmt = Pow2Format(kmax, exp_bits)
        err = float(((snap(t, torch.ones_like(t, dtype=torch.bool), fmt) - t) ** 2).sum())
        if best is None or err < best[0]:
            best = (err, fmt)
    return best[1]


def codebook(fmt: Pow2Format, bits: int) -> np.ndarray:
    """``[0, +2**0..+2**max_exp, -2**0..-2**max_exp, 0...]`` padded to ``2**bits`` entries."""
    mags = [1 << e for e in range(fmt.max_exp + 1)]
    book = [0, *mags, *(-m for m in mags)]
    if len(book) > 1 << bits:
        raise ValueError(f"{len(book)} pow2 values do not fit a {bits}-bit codebook")
    return np.array(book + [0] * ((1 << bits) - len(book)), dtype=np.int32)


def encode(w_snapped, fmt: Pow2Format):
    """``(weight_int, codes, sign, exp)`` of snapped weights."""
    w = np.asarray(torch.as_tensor(w_snapped).detach(), dtype=np.float64)
    sign = np.sign(w).astype(np.int8)
    nz = sign != 0
    e = np.zeros(w.shape, dtype=np.int8)
    e[nz] = np.round(np.log2(np.abs(w[nz]))).astype(np.int64) - fmt.kmin
    if nz.any() and (e[nz].min() < 0 or e[nz].max() > fmt.max_exp):
        raise ValueError("weights are not snapped to the format")
    weight_int = (sign.astype(np.int64) << e.astype(np.int64)) * nz
    codes = np.where(nz, np.where(sign > 0, 1 + e, 1 + fmt.max_exp + 1 + e), 0).astype(np.uint8)
    return weight_int.astype(np.int32), codes, sign, e


def finetune(
    model,
    masks: dict,
    formats: dict,
    x,
    y,
    *,
    epochs=5,
    lr=1e-4,
    batch=64,
    seed=0,
    quiet=True,
    val=None,
    history: list | None = None,
    schedule: str = "constant",
    augment: str = "none",
    distill=None,
):
    """Straight-through fine-tuning: the forward pass uses the snapped weights, the gradient
    updates the float shadow weights (masked). Ends with the snapped weights in the model.

    ``val=(x_val, y_val)``: after every epoch the snapped model's validation accuracy is measured
    (appended to ``history``); the model ends with the snapped weights and biases of the best
    epoch (the latest of equal ones). ``schedule``: ``constant`` learning rate, or ``cosine``
    (decayed to 0 over the steps of all epochs, so the shadow weights settle on their snap).
    ``augment``: the training batches are augmented (`train.augment_batch`); ``distill``: a
    `train.Distillation`."""
    import copy

    from tqdm import tqdm

    from .train import AUGMENTATIONS, accuracy, augment_batch, task_loss

    if augment not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {augment!r} ({', '.join(AUGMENTATIONS)})")
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.as_tensor(np.asarray(x)), torch.as_tensor(np.asarray(y))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"unknown pow2 learning-rate schedule {schedule!r} (constant, cosine)")
    steps = epochs * ((len(x) + batch - 1) // batch)
    sched = (
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
        if schedule == "cosine"
        else None
    )
    shadow = {m: m.weight.detach().clone() for m in masks}
    best = None
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        for i in tqdm(
            range(0, len(x), batch),
            desc=f"pow2 {epoch + 1}/{epochs}",
            leave=False,
            disable=True if quiet else None,  # None: off when not a terminal (logs)
        ):
            idx = perm[i : i + batch]
            with torch.no_grad():
                for m, mask in masks.items():
                    m.weight.copy_(snap(shadow[m], mask, formats[m]))
            opt.zero_grad()
            xb = x[idx] if augment == "none" else augment_batch(x[idx], augment, gen)
            task_loss(model(xb), y[idx], xb, distill).backward()
            with torch.no_grad():
                for m, mask in masks.items():
                    m.weight.grad.mul_(mask)
                    m.weight.copy_(shadow[m])
            opt.step()
            if sched is not None:
                sched.step()
            with torch.no_grad():
                for m, mask in masks.items():
                    m.weight.mul_(mask)
                    shadow[m] = m.weight.detach().clone()
        if val is not None:
            with torch.no_grad():
                for m, mask in masks.items():
                    m.weight.copy_(snap(shadow[m], mask, formats[m]))
            acc = accuracy(model, *val)
            if history is not None:
                history.append(acc)
            if best is None or acc >= best[0]:
                best = (acc, copy.deepcopy(model.state_dict()))
            with torch.no_grad():
                for m in masks:
                    m.weight.copy_(shadow[m])
    with torch.no_grad():
        for m, mask in masks.items():
            m.weight.copy_(snap(shadow[m], mask, formats[m]))
    if best is not None:
        model.load_state_dict(best[1])
    return model
