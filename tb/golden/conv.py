"""Golden model of the line-buffer convolution engine: arithmetic and cycles.

* :func:`conv2d` computes exactly what the hardware outputs (NumPy int64): the "valid"
  correlation of unsigned pixels with signed coefficients, plus bias, rounded arithmetic right
  shift, optional ReLU, saturation to the signed output width.
* :func:`conv_cycles` predicts exactly how many clock cycles the hardware takes from the first
  pixel accepted to the last result transferred, for a source that offers a pixel every cycle
  and a sink that is always ready. It follows the engine's row schedule
  (:func:`row_schedule`); :func:`conv_cycles_closed_form` gives the one-frame formula.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtl_gen.conv.params import ConvParams

__all__ = [
    "PIPELINE_LATENCY",
    "RowSchedule",
    "accumulate",
    "conv2d",
    "conv_cycles",
    "conv_cycles_closed_form",
    "row_schedule",
    "scale",
]

#: Cycles from the window reading a column to that column's result on the output stream:
#: line-buffer read (1) + window/MAC register (1) + output register (1).
PIPELINE_LATENCY = 3


def accumulate(image, params: ConvParams) -> np.ndarray:
    """Raw sums of products, shape ``(H-K+1, W-K+1)`` (or with a leading frames axis).

    ``acc[y, x] = sum_{i,j} coefficients[i, j] * image[y + i, x + j]`` (no kernel flip).
    """
    img = params.check_image(image)
    k = params.kernel
    coefs = params.coefficients
    oh, ow = params.out_rows, params.out_cols
    acc = np.zeros(img.shape[:-2] + (oh, ow), dtype=np.int64)
    for i in range(k):
        for j in range(k):
            acc += coefs[i, j] * img[..., i : i + oh, j : j + ow]
    return acc


def scale(acc, params: ConvParams) -> np.ndarray:
    """Bias, rounding shift, ReLU and saturation, exactly as the hardware's output stage."""
    acc = np.asarray(acc, dtype=np.int64)
    lo_acc = -(1 << (params.acc_width - 1))
    hi_acc = (1 << (params.acc_width - 1)) - 1
    total = acc + params.bias
    if total.size and (total.min() < lo_acc or total.max() > hi_acc):
        raise AssertionError("accumulator overflow: the accumulator width formula is wrong")
    if params.rounding == "half_up" and params.shift > 0:
        total = total + (1 << (params.shift - 1))
    shifted = total >> params.shift  # arithmetic: floor division by 2**shift
    lo = 0 if params.relu else -(1 << (params.out_width - 1))
    hi = (1 << (params.out_width - 1)) - 1
    return np.clip(shifted, lo, hi)


def conv2d(image, params: ConvParams) -> np.ndarray:
    """Expected engine outputs for one frame ``(H, W)`` or frames ``(F, H, W)``, int64."""
    return scale(accumulate(image, params), params)


@dataclass(frozen=True)
class RowSchedule:
    """Cycle numbers (first pixel accepted = cycle 0) of every row event of a run.

    ``fill_start[g]`` / ``fill_end[g]``: first / last pixel of input row ``g`` (rows counted
    across frames) accepted. ``read_start[j]`` / ``read_end[j]``: the window reads column 0 /
    ``W - 1`` for output row ``j`` (counted across frames). ``last_output``: cycle in which
    the last result is transferred.
    """

    fill_start: list[int]
    fill_end: list[int]
    read_start: list[int]
    read_end: list[int]
    last_output: int


def row_schedule(
    width: int,
    height: int,
    kernel: int,
    line_buffers: int,
    frames: int = 1,
    latency: int = PIPELINE_LATENCY,
) -> RowSchedule:
    """Row-level schedule of the engine for a full-rate source and an always-ready sink.

    The rules are the engine's structure:

    * input row ``g`` goes to buffer ``g mod N``; it can start when row ``g - 1`` is complete
      and row ``g - N`` (the buffer's previous row) has been released; its ``W`` pixels are
      then accepted on consecutive cycles;
    * output row ``r`` of frame ``f`` (job ``j``) reads its ``W`` columns on consecutive
      cycles, starting the cycle after both its last input row ``f·H + r + K - 1`` is complete
      and the previous job's last read;
    * job ``(f, r)`` releases input row ``f·H + r`` after its last read (the frame's last job,
      ``r = H - K``, releases its ``K`` rows), free again from the next cycle;
    * the last result is transferred ``latency`` cycles after the last read.
    """
    w, h, k, n = width, height, kernel, line_buffers
    ConvParams(width=w, height=h, kernel=k, line_buffers=n)  # validates
    if frames < 1:
        raise ValueError(f"frames must be an integer >= 1, not {frames!r}")
    jobs_per_frame = h - k + 1
    rows = frames * h
    fill_start = [0] * rows
    fill_end = [0] * rows
    read_start: list[int] = []
    read_end: list[int] = []

    def releasing_job(g: int) -> int:
        f, r = divmod(g, h)
        return f * jobs_per_frame + min(r, h - k)

    g = 0  # next input row to schedule
    for j in range(frames * jobs_per_frame):
        f, r = divmod(j, jobs_per_frame)
        need = f * h + r + k - 1
        # Fill every row up to the one this job needs; a row's buffer must be released first.
        while g <= need:
            start = fill_end[g - 1] + 1 if g else 0
            if g >= n:
                freed_by = releasing_job(g - n)
                if freed_by >= j:
                    raise AssertionError("schedule deadlock")  # impossible for N >= K
                start = max(start, read_end[freed_by] + 1)
            fill_start[g] = start
            fill_end[g] = start + w - 1
            g += 1
        start = fill_end[need] + 1
        if read_end:
            start = max(start, read_end[-1] + 1)
        read_start.append(start)
        read_end.append(start + w - 1)
    return RowSchedule(fill_start, fill_end, read_start, read_end, read_end[-1] + latency)


def conv_cycles(
    width: int,
    height: int,
    kernel: int,
    line_buffers: int,
    frames: int = 1,
    latency: int = PIPELINE_LATENCY,
) -> int:
    """Cycles from the first pixel accepted to the last result transferred, both included.

    Exact for a source offering a pixel every cycle and an always-ready sink; frames follow
    each other with no gap. See :func:`row_schedule` for the rules.
    """
    return row_schedule(width, height, kernel, line_buffers, frames, latency).last_output + 1


def conv_cycles_closed_form(
    width: int, height: int, kernel: int, line_buffers: int, latency: int = PIPELINE_LATENCY
) -> int:
    """One frame, closed form of :func:`conv_cycles`.

    * ``N == K``: fill ``K`` rows (``K·W``), then alternate one output row (``W``) and one
      input row (``W``), the last output row not followed by a fill:
      ``K·W + (H-K+1)·W + (H-K)·W + latency = (2H - K + 1)·W + latency``;
    * ``N >= K + 1``: the input never stalls (``H·W``), the last output row is read after the
      last input row (``W``): ``(H + 1)·W + latency``.
    """
    w, h, k, n = width, height, kernel, line_buffers
    if n == k:
        return (2 * h - k + 1) * w + latency
    return (h + 1) * w + latency
