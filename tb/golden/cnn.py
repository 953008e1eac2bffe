"""Golden models of the CNN blocks (rtl_gen/cnn): values and cycles, plain NumPy.

Values follow docs/bundle.md, "Version 2": :func:`conv_layer`, :func:`maxpool2`,
:func:`flatten_hwc` on ``(C, H, W)`` arrays (or ``(F, C, H, W)``, frames back to back).

Cycle models (``*_times``): given ``arrivals[k]``, the cycle from which input beat ``k`` is
offered (the source offers it from ``max(arrivals[k], accepted[k-1] + 1)`` on and holds it
until it is taken) and an always-ready sink, they return the cycle each input beat is
accepted and the cycle each output beat is transferred. They compose: the output cycles of
one block are the next block's arrivals. The composition is exact as long as every block
accepts each beat in the cycle it is offered (``accepted == arrivals``, which the models
return so that a caller can check it): a block that stalls pushes back on its upstream
block, which these per-block models do not describe.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "conv_layer",
    "conv_layer_latency",
    "conv_layer_times",
    "flatten_elements",
    "flatten_hwc",
    "flatten_times",
    "maxpool2",
    "maxpool2_times",
    "pixel_beats",
    "requantise",
]


def requantise(acc, shift: int, activation: str, out_bits: int) -> np.ndarray:
    """Round half up with an arithmetic shift (``shift < 0``: left shift), then clip."""
    acc = np.asarray(acc, dtype=np.int64)
    if shift > 0:
        y = (acc + (1 << (shift - 1))) >> shift
    else:
        y = acc << -shift
    if activation == "relu":
        return np.clip(y, 0, (1 << out_bits) - 1)
    if activation == "none":
        return np.clip(y, -(1 << (out_bits - 1)), (1 << (out_bits - 1)) - 1)
    raise ValueError(f"activation must be 'relu' or 'none', not {activation!r}")


def conv_layer(x, weights, bias, shift: int, activation: str, out_bits: int) -> np.ndarray:
    """``acc[o, r, s] = sum_{c,i,j} w[o, c, i, j] * x[c, r + i, s + j] + b[o]``, requantised.

    ``x``: ``(C_in, H, W)`` or ``(F, C_in, H, W)``; returns ``(..., C_out, H-K+1, W-K+1)``.
    """
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(weights, dtype=np.int64)
    k = w.shape[-1]
    oh, ow = x.shape[-2] - k + 1, x.shape[-1] - k + 1
    acc = np.zeros(x.shape[:-3] + (w.shape[0], oh, ow), dtype=np.int64)
    for i in range(k):
        for j in range(k):
            patch = x[..., i : i + oh, j : j + ow]  # (..., C_in, oh, ow)
            acc += np.einsum("oc,...chw->...ohw", w[:, :, i, j], patch)
    acc += np.asarray(bias, dtype=np.int64)[:, None, None]
    return requantise(acc, shift, activation, out_bits)


def maxpool2(x) -> np.ndarray:
    """2x2, stride-2 max-pool of ``(..., C, H, W)``; a trailing odd row or column is dropped."""
    x = np.asarray(x)
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    x = x[..., :h, :w]
    return x.reshape(x.shape[:-2] + (h // 2, 2, w // 2, 2)).max(axis=(-3, -1))


def flatten_hwc(x) -> np.ndarray:
    """``(C, H, W)`` to features in ``hwc`` order: feature ``(h·W + w)·C + c`` is ``x[c, h, w]``.

    ``(F, C, H, W)`` gives ``(F, H·W·C)``.
    """
    x = np.asarray(x)
    return np.moveaxis(x, -3, -1).reshape(x.shape[:-3] + (-1,))


def pixel_beats(x) -> np.ndarray:
    """The pixel stream of ``(C, H, W)`` or ``(F, C, H, W)``: ``(F·H·W, C)``, raster order."""
    x = np.asarray(x)
    return np.moveaxis(x, -3, -1).reshape(-1, x.shape[-3])


def flatten_elements(x, drop_zeros: bool = False) -> list[tuple[int, int, int]]:
    """The Flatten block's elements ``(index, value, last)`` for ``(C, H, W)`` or frames."""
    x = np.asarray(x)
    frames = flatten_hwc(x.reshape((-1,) + x.shape[-3:]))
    out = []
    for features in frames:
        n = len(features)
        for index, value in enumerate(features.tolist()):
            if value != 0 or not drop_zeros or index == n - 1:
                out.append((index, value, int(index == n - 1)))
    return out


def conv_layer_latency(weights, levels_per_stage: int = 2) -> int:
    """Cycles from a pixel read from the line buffers (streaming: accepted) to its output.

    ``4 + S``: read, column register, the column's copy beside each copy of the window (the
    window is copied per few filters), ``S`` adder-tree stages, output register. A filter's tree
    has ``n = nonzero weights + 1`` leaves (the constant: bias and rounding), so
    ``ceil(log2(n))`` adder levels; the trees are cut every ``levels_per_stage`` levels and all
    filters share the deepest one: ``S = max(1, ceil(levels / levels_per_stage))``.
    """
    w = np.asarray(weights)
    leaves = 1 + int(np.count_nonzero(w.reshape(w.shape[0], -1), axis=1).max())
    levels = math.ceil(math.log2(leaves)) if leaves > 1 else 0
    return 4 + max(1, math.ceil(levels / levels_per_stage))


def _serial_accepts(arrivals) -> np.ndarray:
    """A block that is always ready: beat ``k`` is taken at ``max(arrivals[k], prev + 1)``."""
    accepted = np.empty(len(arrivals), dtype=np.int64)
    t = -1
    for k, a in enumerate(np.asarray(arrivals, dtype=np.int64).tolist()):
        t = max(a, t + 1)
        accepted[k] = t
    return accepted


def _frames(arrivals, pixels: int) -> int:
    if len(arrivals) == 0 or len(arrivals) % pixels:
        raise ValueError(f"arrivals must hold whole frames of {pixels} pixels, not {len(arrivals)}")
    return len(arrivals) // pixels


def conv_layer_times(
    arrivals, height: int, width: int, kernel: int, line_buffers: int, latency: int
) -> tuple[np.ndarray, np.ndarray]:
    """Cycles of a ConvLayer's input acceptances and output transfers (ready sink).

    Streaming (``N = K - 1``): the layer is ready whenever its sink is, so pixel ``k`` is taken
    at ``max(arrivals[k], accepted[k-1] + 1)`` and the output it completes (row and column
    ``>= K - 1``) leaves ``latency`` cycles later. Row scan (``N >= K``), the engine's rules
    (docs/conv.md) with any arrivals: the first pixel of input row ``g`` (counted across
    frames) waits until row ``g - N`` was released as well, i.e. the cycle after the last read
    of the job that releases it; output row ``r`` of frame ``f`` reads its ``W`` columns on
    consecutive cycles, starting the cycle after both its last input row
    (``f·H + r + K - 1``) is complete and the previous job's last read; the job releases row
    ``f·H + r`` (the frame's last one its ``K`` rows); a read of column ``>= K - 1`` gives an
    output ``latency`` cycles later.
    """
    h, w, k, n = height, width, kernel, line_buffers
    frames = _frames(arrivals, h * w)
    arrivals = np.asarray(arrivals, dtype=np.int64)
    if n == k - 1:
        accepted = _serial_accepts(arrivals)
        rows, cols = np.divmod(np.arange(len(arrivals)) % (h * w), w)
        emits = (rows >= k - 1) & (cols >= k - 1)
        return accepted, accepted[emits] + latency

    jobs_per_frame = h - k + 1
    accepted = np.empty(len(arrivals), dtype=np.int64)
    fill_end = [0] * (frames * h)
    read_end: list[int] = []
    outputs = []

    def releasing_job(g: int) -> int:
        f, r = divmod(g, h)
        return f * jobs_per_frame + min(r, h - k)

    g, t = 0, -1  # next input row; last acceptance
    for j in range(frames * jobs_per_frame):
        f, r = divmod(j, jobs_per_frame)
        need = f * h + r + k - 1
        while g <= need:
            start = t + 1
            if g >= n:
                start = max(start, read_end[releasing_job(g - n)] + 1)
            for c in range(w):
                t = max(int(arrivals[g * w + c]), start if c == 0 else t + 1)
                accepted[g * w + c] = t
            fill_end[g] = t
            g += 1
        start = fill_end[need] + 1
        if read_end:
            start = max(start, read_end[-1] + 1)
        read_end.append(start + w - 1)
        outputs.extend(start + c + latency for c in range(k - 1, w))
    return accepted, np.asarray(outputs, dtype=np.int64)


def maxpool2_times(arrivals, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Cycles of a MaxPool2's acceptances and transfers (ready sink): it is always ready, and
    pixel ``(2r + 1, 2s + 1)`` gives output ``(r, s)`` the next cycle (latency 1)."""
    frames = _frames(arrivals, height * width)
    accepted = _serial_accepts(arrivals)
    rows, cols = np.divmod(np.arange(frames * height * width) % (height * width), width)
    completes = (rows % 2 == 1) & (cols % 2 == 1) & (cols < width // 2 * 2)
    return accepted, accepted[completes] + 1


def flatten_times(arrivals, counts) -> tuple[np.ndarray, np.ndarray]:
    """Cycles of a Flatten's acceptances and element transfers (ready sink).

    ``counts[k]``: elements pixel ``k`` sends (``C``, or its nonzero channels with
    ``drop_zeros``, the frame's last channel always counted). A pixel taken at ``t`` sends
    them at ``t + 1 .. t + n``; the next pixel can be taken at ``t + max(1, n)`` (in the cycle
    of the final element's transfer).
    """
    counts = np.asarray(counts, dtype=np.int64)
    accepted = np.empty(len(arrivals), dtype=np.int64)
    outputs = []
    free = 0  # first cycle the next pixel can be taken
    for k, a in enumerate(np.asarray(arrivals, dtype=np.int64).tolist()):
        t = max(a, free)
        accepted[k] = t
        n = int(counts[k])
        outputs.extend(range(t + 1, t + n + 1))
        free = t + max(1, n)
    return accepted, np.asarray(outputs, dtype=np.int64)
