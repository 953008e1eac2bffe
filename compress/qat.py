"""Quantisation-aware fine-tuning of the power-of-two LeNet-5 (``Config.qat_epochs``).

After the fixed-point calibration the network's integer arithmetic is known exactly
(``docs/bundle.md``): input codes, pow2 weight codes, biases rounded half up to the accumulator
format, a round-half-up requantisation shift per layer, saturating ReLU (signed saturation for
the logits), 2x2 max pooling. :func:`forward` runs that arithmetic in PyTorch on the model's own
parameters, bit for bit as `compress.integer_ref.forward` runs it on the bundle, and lets the
gradient through the roundings (straight-through estimator), so the network being trained is
the integer network. :func:`finetune` trains the biases (and optionally the power-of-two weights,
straight through their snapping as in `compress.pow2.finetune`) with that forward, keeping the
epoch with the best integer accuracy on the validation split.

Exactness: every value in the forward is an integer code held in floating point; a layer is
computed in float32 when every partial sum of its products is below ``2**24`` in magnitude
(float32 holds it exactly), else in float64 (below ``2**53``). Convolutions are one im2col
matrix product (``F.unfold``), never a transformed (Winograd, FFT) algorithm.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from . import pow2
from .models import prunable
from .train import AUGMENTATIONS, augment_batch

__all__ = ["QatResult", "finetune", "forward", "frac_bits_of", "input_codes", "predict"]


def frac_bits_of(specs: list) -> dict:
    """Output fraction bits of every weight layer of a bundle's layer list, by name."""
    return {
        sp["name"]: int(sp["output_frac_bits"])
        for sp in specs
        if sp.get("kind", "linear") in ("conv2d", "linear")
    }


def input_codes(x, input_spec: dict) -> torch.Tensor:
    """The bundle's input codes of float images ``x`` (`compress.integer_ref.quantize_inputs`:
    ``clip(floor(x * 2**frac_bits + 0.5), 0, 2**bits - 1)``), kept as a float tensor of ``x``'s
    shape."""
    x = torch.as_tensor(np.asarray(x)).to(torch.float64)
    q = torch.floor(x * 2.0 ** input_spec["frac_bits"] + 0.5)
    return q.clamp(0, (1 << input_spec["bits"]) - 1).to(torch.float32)


def _ste(exact, x):
    """``exact`` in the forward, the gradient of ``x`` in the backward."""
    return x + (exact - x).detach()


def _round_half_up(x):
    return _ste(torch.floor(x + 0.5), x)


def _layer_dtype(w_int, b_int, in_max: int):
    """float32 when every partial sum of the layer fits float32's 24-bit mantissa, else
    float64."""
    bound = float(w_int.detach().abs().flatten(1).sum(1).max()) * in_max
    bound += float(b_int.detach().abs().max())
    if bound < 2**24:
        return torch.float32
    if bound < 2**53:
        return torch.float64
    raise ValueError("a layer's partial sums exceed 2**53: not exact in floating point")


def _weight_int(m, wf: int, snapped=None):
    """The layer's integer weights ``w * 2**wf`` (``snapped``: the snapped weights to use, with
    the gradient of ``m.weight`` passed straight through)."""
    w = m.weight if snapped is None else _ste(snapped, m.weight)
    return w * 2.0**wf


def forward(model, specs: list, x_codes, *, snap=None, input_bits: int = 8):
    """The bundle's integer forward of ``model`` (a LeNet-5 whose weights are snapped to their
    power-of-two formats) with the layer formats of ``specs`` (a bundle's ``layers``: every
    weight layer's ``input_frac_bits``, ``weight_frac_bits``, ``output_frac_bits``,
    ``output_bits``, ``activation``), on input codes ``x_codes`` ``(n, C, H, W)``.

    Returns the last layer's integer outputs ``(n, classes)`` as a float tensor, equal to
    `compress.integer_ref.forward` of the bundle built from the same model and formats, with a
    straight-through gradient to the biases (and the weights). ``snap``: ``{module: snapped
    weight}`` to use in place of ``module.weight`` (the weight's gradient passes straight
    through), for training the power-of-two weights through their snapping."""
    layers = prunable(model)
    x = torch.as_tensor(x_codes)
    in_max = (1 << input_bits) - 1
    for spec in specs:
        kind, name = spec.get("kind", "linear"), spec["name"]
        if kind == "maxpool2d":
            x = F.max_pool2d(x, 2)
            continue
        if kind == "flatten":
            # PyTorch's (c, h, w) order with the model's own fc1 columns: the same products as
            # the bundle's hwc order with its permuted columns
            x = x.flatten(1)
            continue
        m = layers[name]
        fin, wf, fout = spec["input_frac_bits"], spec["weight_frac_bits"], spec["output_frac_bits"]
        w = _weight_int(m, wf, None if snap is None else snap.get(m))
        # as the bundle's bias: rounded half up in float64, clipped to 32 bits
        b = _round_half_up(m.bias.double() * 2.0 ** (fin + wf)).clamp(-(2**31), 2**31 - 1)
        dtype = _layer_dtype(w, b, in_max)
        xd, wd, bd = x.to(dtype), w.to(dtype), b.to(dtype)
        if kind == "conv2d":
            k = int(spec["kernel_size"])
            n, _, h, wi = xd.shape
            cols = F.unfold(xd, k)  # (n, C*K*K, L), rows in (c, i, j) order like the weights
            acc = wd.flatten(1) @ cols + bd[:, None]
            acc = acc.reshape(n, len(wd), h - k + 1, wi - k + 1)
        else:
            if xd.dim() > 2:
                xd = xd.flatten(1)
            acc = xd @ wd.t() + bd
        shift = fin + wf - fout
        if shift > 0:
            y = _ste(torch.floor((acc + 2.0 ** (shift - 1)) * 2.0**-shift), acc * 2.0**-shift)
        else:
            y = acc * 2.0**-shift
        bits = spec["output_bits"]
        if spec["activation"] == "relu":
            y = y.clamp(0, (1 << bits) - 1)
            in_max = (1 << bits) - 1
        else:
            # the logits saturate in the forward; the gradient passes the saturation
            y = _ste(y.clamp(-(1 << (bits - 1)), (1 << (bits - 1)) - 1), y)
        x = y.to(torch.float32) if dtype == torch.float32 else y
    return x


@torch.no_grad()
def predict(model, specs: list, input_spec: dict, x, batch: int = 1000) -> np.ndarray:
    """Integer-forward class predictions (first maximum, as ``np.argmax``) of float images."""
    out = []
    for i in range(0, len(x), batch):
        logits = forward(model, specs, input_codes(x[i : i + batch], input_spec))
        out.append(np.argmax(logits.numpy(), axis=1))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def _accuracy(model, specs, input_spec, x, y) -> float:
    return float(np.mean(predict(model, specs, input_spec, x) == np.asarray(y)))


@dataclass
class QatResult:
    val_before: float  # integer validation accuracy before the fine-tuning
    val_accuracy: float  # ... of the epoch kept (val_before when no epoch beat it)
    epoch_val: list = field(default_factory=list)  # integer validation accuracy per epoch
    kept_epoch: int = 0  # 1-based; 0: the model before the fine-tuning kept


def finetune(
    model,
    masks: dict,
    formats: dict,
    specs: list,
    input_spec: dict,
    data,
    *,
    epochs: int,
    lr: float,
    batch: int = 64,
    seed: int = 0,
    weights: bool = False,
    augment: str = "none",
    schedule: str = "cosine",
) -> QatResult:
    """Quantisation-aware fine-tuning with :func:`forward` and the formats of ``specs``: the
    biases (and with ``weights`` the masked power-of-two weights, through float shadow weights
    snapped in every forward) trained with Adam on the training images, the integer validation
    accuracy measured after every epoch; the model ends with the parameters of the best epoch
    (the latest of equal ones), or as it was if no epoch beat it. Ends snapped."""
    if augment not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {augment!r} ({', '.join(AUGMENTATIONS)})")
    gen = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(np.asarray(data.x_train))
    y = torch.as_tensor(np.asarray(data.y_train))
    val_before = _accuracy(model, specs, input_spec, data.x_val, data.y_val)
    best = (val_before, copy.deepcopy(model.state_dict()), 0)
    layers = list(masks)
    params = [m.bias for m in layers]
    if weights:
        params += [m.weight for m in layers]
    opt = torch.optim.Adam(params, lr=lr)
    steps = max(epochs * ((len(x) + batch - 1) // batch), 1)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if schedule == "cosine" else None
    history = []
    for epoch in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch):
            idx = perm[i : i + batch]
            xb = x[idx] if augment == "none" else augment_batch(x[idx], augment, gen)
            snapped = None
            if weights:
                with torch.no_grad():
                    snapped = {m: pow2.snap(m.weight, masks[m], formats[m]) for m in layers}
            opt.zero_grad()
            logits = forward(model, specs, input_codes(xb, input_spec), snap=snapped)
            F.cross_entropy(logits * 2.0 ** -specs_out_frac(specs), y[idx]).backward()
            if weights:
                for m in layers:
                    m.weight.grad.mul_(masks[m])
            opt.step()
            if sched is not None:
                sched.step()
            if weights:
                with torch.no_grad():
                    for m in layers:
                        m.weight.mul_(masks[m])
        state = copy.deepcopy(model.state_dict())
        if weights:
            _snap_model(model, masks, formats)
        acc = _accuracy(model, specs, input_spec, data.x_val, data.y_val)
        history.append(acc)
        if acc >= best[0]:
            best = (acc, copy.deepcopy(model.state_dict()), epoch + 1)
        model.load_state_dict(state)  # the shadow weights train on
    model.load_state_dict(best[1])
    _snap_model(model, masks, formats)
    return QatResult(val_before, best[0], history, best[2])


def specs_out_frac(specs: list) -> int:
    """Fraction bits of the logits (the last weight layer's output format)."""
    return list(frac_bits_of(specs).values())[-1]


@torch.no_grad()
def _snap_model(model, masks, formats) -> None:
    for m, mk in masks.items():
        m.weight.copy_(pow2.snap(m.weight, mk, formats[m]))
