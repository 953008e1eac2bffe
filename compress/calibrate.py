"""Integer layers of the LeNet-300-100 bundle: fixed-point calibration of the power-of-two model
and the dense 16-bit baseline, each choosing the activation range (max or a percentile) that
gives the best integer accuracy on the training data."""

from __future__ import annotations

import numpy as np
import torch

from . import fixedpoint, integer_ref, pow2
from .models import linear_layers

__all__ = ["calibrate_pow2", "dense_baseline", "input_spec"]


def input_spec(data) -> dict:
    """The bundle's ``input`` entry: unsigned 8-bit pixels with ``data.input_frac_bits``."""
    return {"shape": [data.features], "bits": 8, "frac_bits": data.input_frac_bits, "signed": False}


def _train_accuracy(specs, arrays, data, xq) -> float:
    """Integer accuracy of ``(specs, arrays)`` on the quantised calibration inputs ``xq``."""
    man = {"input": input_spec(data), "layers": specs}
    return float(np.mean(integer_ref.predict((man, arrays), xq) == data.y_train[: len(xq)]))


def calibrate_pow2(cfg, model, masks: dict, formats: dict, data, log):
    """Integer layers for the power-of-two model.

    Parameters
    ----------
    cfg : Config
        ``calib_samples``, ``output_bits``, ``exp_bits`` and ``index_bits`` are used.
    model : MLP
        The model with snapped power-of-two weights.
    masks, formats : dict
        Alive-weight mask and ``pow2.Pow2Format`` by module.
    data : Dataset
    log : callable

    Returns
    -------
    tuple
        ``(method, specs, arrays, codes)``: the chosen calibration label, the layer specs and
        integer arrays of the bundle, and ``{name: (codes, sign, exponent, mask)}``.
    """
    lnames = list(linear_layers(model))
    mods = [linear_layers(model)[n] for n in lnames]
    xcal = torch.as_tensor(data.x_train[: cfg.calib_samples])
    with torch.no_grad():
        acts = [a.numpy() for a in model.hidden_activations(xcal)]
    wint, extra, codes = [], [], {}
    for n, m in zip(lnames, mods, strict=True):
        fmt = formats[m]
        w_i, c, sgn, e = pow2.encode(m.weight.detach(), fmt)
        wint.append(w_i)
        codes[n] = (c, sgn, e, masks[m].numpy())
        extra.append(
            {
                "weight_format": "pow2",
                "exp_bits": cfg.exp_bits,
                "pow2_max_exp": fmt.max_exp,
                "codebook_bits": cfg.exp_bits + 1,
                "index_bits": cfg.index_bits,
            }
        )
    biases = [m.bias.detach().numpy() for m in mods]
    xq = integer_ref.quantize_inputs({"input": input_spec(data)}, data.x_train[: cfg.calib_samples])
    best = None
    for method, pct in (
        ("max", None),
        ("percentile", 99.999),
        ("percentile", 99.99),
        ("percentile", 99.9),
    ):
        fr = []
        for i, a in enumerate(acts):
            last = i == len(acts) - 1
            rng = fixedpoint.activation_range(a, method, pct or 100)
            fr.append(fixedpoint.frac_bits_for(rng, cfg.output_bits, signed=last))
        specs, arrays = fixedpoint.int_layers(
            lnames,
            wint,
            [f.weight_frac_bits for f in (formats[m] for m in mods)],
            biases,
            data.input_frac_bits,
            fr,
            output_bits=cfg.output_bits,
            extra=extra,
        )
        acc = _train_accuracy(specs, arrays, data, xq)
        label = method if pct is None else f"percentile {pct}"
        log(f"calibration {label}: frac bits {fr}, train integer accuracy {100 * acc:.2f}%")
        if best is None or acc > best[0] + 1e-12:
            best = (acc, label, specs, arrays)
    return best[1], best[2], best[3], codes


def dense_baseline(cfg, original, data, log):
    """Dense 16-bit integer layers of the uncompressed float model, calibrated like
    `calibrate_pow2` (percentile 100, 99.999, 99.99, 99.9).

    Returns
    -------
    tuple
        ``(specs, arrays, test_accuracy)`` with the array names prefixed by ``baseline.``.
    """
    lnames = list(linear_layers(original))
    mods = [linear_layers(original)[n] for n in lnames]
    xcal = torch.as_tensor(data.x_train[: cfg.calib_samples])
    with torch.no_grad():
        acts = [a.numpy() for a in original.hidden_activations(xcal)]
    wf = [fixedpoint.dense_weight_frac_bits(m.weight.detach().numpy(), 16) for m in mods]
    wint = [
        np.floor(m.weight.detach().numpy().astype(np.float64) * 2.0**f + 0.5).astype(np.int64)
        for m, f in zip(mods, wf, strict=True)
    ]
    xq = integer_ref.quantize_inputs({"input": input_spec(data)}, data.x_train[: cfg.calib_samples])
    best = None
    for pct in (100.0, 99.999, 99.99, 99.9):
        fr = [
            fixedpoint.frac_bits_for(
                fixedpoint.activation_range(a, "percentile", pct),
                cfg.output_bits,
                signed=i == len(acts) - 1,
            )
            for i, a in enumerate(acts)
        ]
        specs, arrays = fixedpoint.int_layers(
            lnames,
            wint,
            wf,
            [m.bias.detach().numpy() for m in mods],
            data.input_frac_bits,
            fr,
            output_bits=cfg.output_bits,
            extra=[{"weight_format": "dense", "weight_bits": 16}] * len(mods),
        )
        acc = _train_accuracy(specs, arrays, data, xq)
        if best is None or acc > best[0] + 1e-12:
            best = (acc, specs, arrays)
    specs, arrays = best[1], best[2]
    man = {"input": input_spec(data), "layers": specs}
    xt = integer_ref.quantize_inputs(man, data.x_test)
    test_acc = float(np.mean(integer_ref.predict((man, arrays), xt) == data.y_test))
    log(f"dense 16-bit baseline: integer accuracy {100 * test_acc:.2f}%")
    return specs, {f"baseline.{k}": v for k, v in arrays.items()}, test_acc
