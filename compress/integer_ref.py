"""Integer-exact reference forward pass of a bundle (NumPy int64, ``docs/bundle.md``).

The hardware golden model must agree with it bit for bit.
"""

from __future__ import annotations

import numpy as np

__all__ = ["acc_bits", "forward", "layer_forward", "predict", "quantize_inputs", "requantise"]


def _parts(bundle):
    if isinstance(bundle, tuple):
        return bundle
    if isinstance(bundle, dict) and "manifest" in bundle:
        return bundle["manifest"], bundle["arrays"]
    return bundle.manifest, bundle.arrays


def quantize_inputs(bundle_or_manifest, x_float) -> np.ndarray:
    """``clip(round(x * 2**frac_bits), 0, 2**bits - 1)`` as uint8 (round half up), flattened."""
    if isinstance(bundle_or_manifest, dict) and "input" in bundle_or_manifest:
        spec = bundle_or_manifest["input"]
    else:
        spec = _parts(bundle_or_manifest)[0]["input"]
    x = np.asarray(x_float, dtype=np.float64).reshape(len(x_float), -1)
    q = np.floor(x * (1 << spec["frac_bits"]) + 0.5)
    q = np.clip(q, 0, (1 << spec["bits"]) - 1).astype(np.int64)
    return q.astype(np.uint8) if spec["bits"] <= 8 else q


def requantise(acc, shift: int) -> np.ndarray:
    acc = np.asarray(acc, dtype=np.int64)
    if shift > 0:
        return (acc + (1 << (shift - 1))) >> shift
    if shift < 0:
        return acc << -shift
    return acc


def layer_forward(spec: dict, weight_int, bias_int, x) -> np.ndarray:
    """One linear layer on integer codes ``x`` ``(n, in)``."""
    w = np.asarray(weight_int, dtype=np.int64).reshape(spec["out_features"], -1)
    acc = np.asarray(x, dtype=np.int64) @ w.T + np.asarray(bias_int, dtype=np.int64)
    shift = spec["input_frac_bits"] + spec["weight_frac_bits"] - spec["output_frac_bits"]
    y = requantise(acc, shift)
    bits = spec["output_bits"]
    if spec["activation"] == "relu":
        return np.clip(y, 0, (1 << bits) - 1)
    if spec["activation"] == "none":
        return np.clip(y, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    raise ValueError(f"activation {spec['activation']!r} is not in the integer reference")


def forward(bundle, x_codes, baseline: bool = False, all_layers: bool = False):
    """Last layer's integer outputs ``(n, classes)`` (every layer's with ``all_layers``)."""
    manifest, arrays = _parts(bundle)
    specs = manifest["baseline"]["layers"] if baseline else manifest["layers"]
    prefix = "baseline." if baseline else ""
    x = np.asarray(x_codes, dtype=np.int64)
    x = x.reshape(len(x), -1)
    outs = []
    for spec in specs:
        if spec.get("kind", "linear") != "linear":
            raise ValueError(f"layer {spec['name']}: only linear layers are supported")
        x = layer_forward(
            spec,
            arrays[f"{prefix}{spec['name']}.weight_int"],
            arrays[f"{prefix}{spec['name']}.bias_int"],
            x,
        )
        outs.append(x)
    return outs if all_layers else x


def predict(bundle, x_codes, baseline: bool = False) -> np.ndarray:
    return np.argmax(forward(bundle, x_codes, baseline), axis=1)


def acc_bits(weight_int, bias_int, in_bits: int, in_signed: bool, shift: int) -> int:
    """Signed accumulator width with no overflow for any input in range (rounding included)."""
    w = np.asarray(weight_int, dtype=np.int64).reshape(len(bias_int), -1)
    b = np.asarray(bias_int, dtype=np.int64)
    xmin = -(1 << (in_bits - 1)) if in_signed else 0
    xmax = (1 << (in_bits - 1)) - 1 if in_signed else (1 << in_bits) - 1
    hi = np.maximum(w * xmax, w * xmin).sum(axis=1) + b
    lo = np.minimum(w * xmax, w * xmin).sum(axis=1) + b
    lo, hi = int(min(lo.min(), b.min(), 0)), int(max(hi.max(), 0))
    hi += 1 << max(shift - 1, 0)
    bits = 2
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits
