"""Fixed-point formats from calibration data.

All scales are powers of two, so requantisation between layers is a shift. An activation format is
its number of fractional bits ``f``: the largest ``f`` with ``range * 2**f`` inside the code
(``2**bits - 1`` unsigned after ReLU, ``2**(bits-1) - 1`` signed for the last layer), where
``range`` is the calibration maximum or a percentile of ``|activation|`` (values above saturate).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["activation_range", "dense_weight_frac_bits", "frac_bits_for", "int_layers"]


def frac_bits_for(value_range: float, bits: int, signed: bool) -> int:
    top = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    if value_range <= 0:
        return bits - 1
    return int(math.floor(math.log2(top / value_range)))


def activation_range(a: np.ndarray, method: str = "max", percentile: float = 99.99) -> float:
    a = np.abs(np.asarray(a, dtype=np.float64)).ravel()
    if not a.size:
        return 0.0
    if method == "max":
        return float(a.max())
    if method == "percentile":
        return float(np.percentile(a, percentile))
    raise ValueError(f"unknown calibration method {method!r} (max or percentile)")


def dense_weight_frac_bits(w: np.ndarray, bits: int = 16) -> int:
    """Fractional bits of a dense ``bits``-bit signed weight format that holds ``max |w|``."""
    return frac_bits_for(float(np.abs(w).max()), bits, signed=True)


def int_layers(
    names,
    weight_int,
    weight_frac_bits,
    biases,
    input_frac_bits: int,
    out_frac_bits,
    *,
    output_bits: int = 8,
    in_bits: int = 8,
    extra=None,
):
    """``(specs, arrays)`` of linear layers in the bundle's formats: the bias is rounded to the
    accumulator's format ``input_frac_bits + weight_frac_bits`` (round half up)."""
    from .integer_ref import acc_bits

    specs, arrays = [], {}
    fin = input_frac_bits
    in_signed = False
    n = len(names)
    for i, name in enumerate(names):
        w = np.asarray(weight_int[i], dtype=np.int64)
        wf = int(weight_frac_bits[i])
        b = np.floor(np.asarray(biases[i], dtype=np.float64) * 2.0 ** (fin + wf) + 0.5)
        b = np.clip(b, -(2**31), 2**31 - 1).astype(np.int64)
        last = i == n - 1
        spec = {
            "name": name,
            "kind": "linear",
            "in_features": int(w.shape[1]),
            "out_features": int(w.shape[0]),
            "weight_frac_bits": wf,
            "input_frac_bits": int(fin),
            "output_frac_bits": int(out_frac_bits[i]),
            "output_bits": output_bits,
            "activation": "none" if last else "relu",
        }
        shift = fin + wf - int(out_frac_bits[i])
        spec["acc_bits"] = acc_bits(w, b, in_bits, in_signed, shift)
        if extra:
            spec.update(extra[i])
        specs.append(spec)
        arrays[f"{name}.weight_int"] = w.astype(np.int32)
        arrays[f"{name}.bias_int"] = b.astype(np.int32)
        fin = int(out_frac_bits[i])
        in_bits, in_signed = output_bits, False
    return specs, arrays
