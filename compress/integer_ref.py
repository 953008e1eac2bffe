"""Integer-exact reference forward pass of a bundle (NumPy int64, ``docs/bundle.md``).

The hardware golden model must agree with it bit for bit.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "acc_bits",
    "activate",
    "conv2d_forward",
    "flatten_forward",
    "forward",
    "layer_forward",
    "maxpool2d_forward",
    "predict",
    "quantize_inputs",
    "requantise",
]


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


def activate(spec: dict, acc) -> np.ndarray:
    """Requantise the accumulator ``acc`` of a linear or conv2d layer and apply its activation
    (saturating ReLU, or signed saturation for ``"none"``)."""
    shift = spec["input_frac_bits"] + spec["weight_frac_bits"] - spec["output_frac_bits"]
    y = requantise(acc, shift)
    bits = spec["output_bits"]
    if spec["activation"] == "relu":
        return np.clip(y, 0, (1 << bits) - 1)
    if spec["activation"] == "none":
        return np.clip(y, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    raise ValueError(f"activation {spec['activation']!r} is not in the integer reference")


def layer_forward(spec: dict, weight_int, bias_int, x) -> np.ndarray:
    """One linear layer on integer codes ``x`` ``(n, in)``."""
    w = np.asarray(weight_int, dtype=np.int64).reshape(spec["out_features"], -1)
    x = np.asarray(x, dtype=np.int64)
    dtype = _product_dtype(w, x)
    acc = (x.astype(dtype) @ w.T.astype(dtype)).astype(np.int64)
    return activate(spec, acc + np.asarray(bias_int, dtype=np.int64))


def _product_dtype(w, x):
    """float64 when every partial sum of ``x @ w.T`` has a magnitude below ``2**53`` (then
    float64 holds it exactly and the product, computed by BLAS, is several times faster than
    NumPy's integer one), else int64."""
    xmax = int(np.abs(x).max(initial=0))
    exact = int(np.abs(w).sum(axis=1).max(initial=0)) * xmax < 2**53
    return np.float64 if exact else np.int64


# images per im2col block: bounds the (C*K*K, rows) patch matrix to a few tens of MB
_CONV_BLOCK = 512


def conv2d_forward(spec: dict, weight_int, bias_int, x) -> np.ndarray:
    """A ``conv2d`` layer (stride 1, valid, correlation) on ``x`` ``(n, C, H, W)``: im2col and one
    exact matrix product per block of images; returns ``(n, O, H-K+1, W-K+1)``."""
    k = int(spec["kernel_size"])
    w = np.asarray(weight_int, dtype=np.int64).reshape(spec["out_channels"], -1)
    b = np.asarray(bias_int, dtype=np.int64)[:, None, None, None]
    dtype = _product_dtype(w, x)
    x, wd = np.asarray(x).astype(dtype), w.astype(dtype)
    n, c, h, wi = x.shape
    ho, wo = h - k + 1, wi - k + 1
    out = np.empty((n, len(w), ho, wo), dtype=np.int64)
    for s in range(0, n, _CONV_BLOCK):
        xb = x[s : s + _CONV_BLOCK].transpose(1, 0, 2, 3)  # (C, m, H, W)
        # patch matrix: row c * K * K + i * K + j holds x[:, c, y + i, x + j] for every (m, y, x)
        cols = np.empty((c, k, k, xb.shape[1], ho, wo), dtype=dtype)
        for i in range(k):
            for j in range(k):
                cols[:, i, j] = xb[:, :, i : i + ho, j : j + wo]
        acc = (wd @ cols.reshape(c * k * k, -1)).astype(np.int64)
        acc = acc.reshape(len(w), xb.shape[1], ho, wo) + b
        out[s : s + xb.shape[1]] = activate(spec, acc).transpose(1, 0, 2, 3)
    return out


def maxpool2d_forward(spec: dict, x) -> np.ndarray:
    """2x2 stride-2 max pooling of ``x`` ``(n, C, H, W)`` (a trailing odd row/column dropped)."""
    _, _, h, w = x.shape
    x = x[:, :, : h // 2 * 2, : w // 2 * 2]
    top = np.maximum(x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2])
    return np.maximum(top, np.maximum(x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2]))


def flatten_forward(spec: dict, x) -> np.ndarray:
    """``(n, C, H, W)`` to ``(n, C*H*W)`` with feature ``(h * W + w) * C + c`` (order hwc)."""
    order = spec.get("order", "hwc")
    if order != "hwc":
        raise ValueError(f"layer {spec['name']}: flatten order {order!r} is not 'hwc'")
    return x.transpose(0, 2, 3, 1).reshape(len(x), -1)


def _input_tensor(manifest: dict, x_codes) -> np.ndarray:
    x = np.asarray(x_codes, dtype=np.int64)
    shape = list(manifest["input"].get("shape", []))
    if len(shape) == 3:
        return x.reshape(len(x), *shape)
    return x.reshape(len(x), -1)


def forward(bundle, x_codes, baseline: bool = False, all_layers: bool = False):
    """Last layer's integer outputs ``(n, classes)`` of a version-1 or -2 bundle on input codes
    ``x_codes`` ``(n, features)`` (``(c, h, w)`` order for an image input). With ``all_layers``,
    every layer's output: ``(n, C, H, W)`` for conv2d/maxpool2d, ``(n, features)`` otherwise."""
    manifest, arrays = _parts(bundle)
    specs = manifest["baseline"]["layers"] if baseline else manifest["layers"]
    prefix = "baseline." if baseline else ""
    x = _input_tensor(manifest, x_codes)
    outs = []
    for spec in specs:
        kind = spec.get("kind", "linear")
        name = spec["name"]
        if kind in ("linear", "conv2d"):
            step = layer_forward if kind == "linear" else conv2d_forward
            if kind == "linear":
                x = x.reshape(len(x), -1)
            x = step(
                spec, arrays[f"{prefix}{name}.weight_int"], arrays[f"{prefix}{name}.bias_int"], x
            )
        elif kind == "maxpool2d":
            x = maxpool2d_forward(spec, x)
        elif kind == "flatten":
            x = flatten_forward(spec, x)
        else:
            raise ValueError(f"layer {name}: kind {kind!r} is not in the integer reference")
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
