"""Golden model of the line-buffer convolution engine: arithmetic and cycles.

* :func:`conv2d` computes exactly what the hardware outputs (NumPy int64): the "valid"
  correlation of unsigned pixels with signed coefficients, plus bias, rounded arithmetic right
  shift, optional ReLU, saturation to the signed output width.
* :func:`output_beats` packs those results into the output stream's beats (``P`` lanes,
  ``keep``, ``last``).
* :func:`conv_cycles` predicts exactly how many clock cycles the hardware takes from the first
  beat accepted to the last result transferred, for a source that offers a beat every cycle
  and a sink that is always ready. The streaming mode (``N = K - 1``) takes one cycle per
  beat; the row-scan modes follow the row schedule (:func:`row_schedule`);
  :func:`conv_cycles_closed_form` gives the one-frame formula and :func:`first_output_cycle`
  the latency from the first beat in to the first result out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtl_gen.conv.params import ConvParams

__all__ = [
    "PIPELINE_LATENCY",
    "ROW_SCAN_READ_REGISTER",
    "RowSchedule",
    "accumulate",
    "conv2d",
    "conv_cycles",
    "conv_cycles_closed_form",
    "first_output_cycle",
    "output_beats",
    "row_schedule",
    "scale",
]

#: Cycles from the window reading a beat (in the streaming mode: accepting it) to that beat's
#: results on the output stream with no extra pipeline stage: line-buffer read (1) +
#: window/MAC register (1) + output register (1). Each extra stage (``pipeline``) adds one.
PIPELINE_LATENCY = 3
#: The row-scan modes (``N >= K``) register the line buffers' read data before the row
#: selection: one cycle more from read to result.
ROW_SCAN_READ_REGISTER = 1


def _latency(p: ConvParams, read_register: bool | None = None) -> int:
    """``L``: ``PIPELINE_LATENCY + pipeline``, plus the read register in the row-scan modes.

    ``read_register=False`` describes a row-scan front end built without it (the CNN's
    convolution layers, :class:`rtl_gen.cnn.conv_layer.ConvLayer`); ``None``: the engine's.
    """
    if read_register is None:
        read_register = p.mode != "streaming"
    read = ROW_SCAN_READ_REGISTER if read_register and p.mode != "streaming" else 0
    return PIPELINE_LATENCY + read + p.pipeline


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


def output_beats(results, params: ConvParams) -> list[tuple[list[int | None], int, int]]:
    """The output stream's beats for ``results`` (``(OH, OW)`` or ``(F, OH, OW)``).

    Each beat is ``(values, keep, last)``: ``P`` lane values (``None`` where ``keep`` is
    clear), the ``keep`` mask (bit ``p`` for lane ``p``; ``1`` when ``P == 1``) and the
    end-of-frame flag. Result ``(y, x)`` travels in the beat of input column ``x + K - 1``,
    lane ``(x + K - 1) mod P``; beats without a result are not sent.
    """
    res = np.asarray(results, dtype=np.int64)
    if res.ndim == 2:
        res = res[None]
    k, lanes, beats = params.kernel, params.pixels_per_clock, params.beats_per_row
    out = []
    for frame in res:
        for y in range(params.out_rows):
            for c in range((k - 1) // lanes, beats):
                values, keep = [], 0
                for p in range(lanes):
                    x = c * lanes + p - (k - 1)
                    if x >= 0:
                        values.append(int(frame[y, x]))
                        keep |= 1 << p
                    else:
                        values.append(None)
                out.append((values, keep, 0))
        out[-1] = (out[-1][0], out[-1][1], 1)
    return out


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
    pixels_per_clock: int = 1,
    pipeline: int | None = None,
    read_register: bool | None = None,
) -> RowSchedule:
    """Row-level schedule of the row-scan modes (``N >= K``), full-rate source, ready sink.

    ``width`` counts beats here when ``pixels_per_clock > 1``: a row is ``B = W/P`` beats.
    The rules are the engine's structure:

    * input row ``g`` goes to buffer ``g mod N``; it can start when row ``g - 1`` is complete
      and row ``g - N`` (the buffer's previous row) has been released; its ``B`` beats are
      then accepted on consecutive cycles;
    * output row ``r`` of frame ``f`` (job ``j``) reads its ``B`` beats on consecutive
      cycles, starting the cycle after both its last input row ``f·H + r + K - 1`` is complete
      and the previous job's last read;
    * job ``(f, r)`` releases input row ``f·H + r`` after its last read (the frame's last job,
      ``r = H - K``, releases its ``K`` rows), free again from the next cycle;
    * the last result is transferred ``latency = PIPELINE_LATENCY + 1 + pipeline`` cycles after
      the last read.
    """
    p = _params(width, height, kernel, line_buffers, frames, pixels_per_clock, pipeline)
    latency = _latency(p, read_register)
    if p.mode == "streaming":
        raise ValueError("row_schedule describes the row-scan modes (line_buffers >= kernel)")
    w, h, k, n = p.beats_per_row, height, kernel, line_buffers
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


def _params(width, height, kernel, line_buffers, frames, pixels_per_clock, pipeline=None):
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
        raise ValueError(f"frames must be an integer >= 1, not {frames!r}")
    return ConvParams(
        width=width,
        height=height,
        kernel=kernel,
        line_buffers=line_buffers,
        pixels_per_clock=pixels_per_clock,
        pipeline=pipeline,
    )


def conv_cycles(
    width: int,
    height: int,
    kernel: int,
    line_buffers: int,
    frames: int = 1,
    pixels_per_clock: int = 1,
    pipeline: int | None = None,
    read_register: bool | None = None,
) -> int:
    """Cycles from the first beat accepted to the last result transferred, both included.

    Exact for a source offering a beat every cycle and an always-ready sink; frames follow
    each other with no gap. Streaming mode (``N = K - 1``): a beat is accepted every cycle and
    the last beat's results leave ``latency`` cycles after it, ``F·H·W/P + latency``. Row-scan
    modes: see :func:`row_schedule` for the rules. ``latency`` is
    ``PIPELINE_LATENCY + pipeline`` streaming and one more in the row-scan modes (their read
    register, :data:`ROW_SCAN_READ_REGISTER`; ``read_register=False``: a row-scan front end
    without it, as in the CNN's layers); ``pipeline=None`` takes the engine's default
    (:func:`rtl_gen.conv.params.default_pipeline`).
    """
    p = _params(width, height, kernel, line_buffers, frames, pixels_per_clock, pipeline)
    latency = _latency(p, read_register)
    if p.mode == "streaming":
        return frames * height * p.beats_per_row + latency
    schedule = row_schedule(
        width, height, kernel, line_buffers, frames, pixels_per_clock, pipeline, read_register
    )
    return schedule.last_output + 1


def first_output_cycle(
    width: int,
    height: int,
    kernel: int,
    line_buffers: int,
    pixels_per_clock: int = 1,
    pipeline: int | None = None,
    read_register: bool | None = None,
) -> int:
    """Cycle of the first result's transfer, the first beat accepted at cycle 0.

    The first result needs column ``K - 1`` of row ``K - 1``, in beat ``b = (K - 1) // P`` of
    that row. Streaming: that beat is accepted at cycle ``(K - 1)·W/P + b``. Row-scan: the
    window reads it ``b`` cycles after the first scan starts, the cycle after row ``K - 1``
    is complete (``K·W/P``). Either way the result follows ``latency`` cycles later.
    """
    p = _params(width, height, kernel, line_buffers, 1, pixels_per_clock, pipeline)
    latency = _latency(p, read_register)
    b = (kernel - 1) // pixels_per_clock
    rows_before = kernel - 1 if p.mode == "streaming" else kernel
    return rows_before * p.beats_per_row + b + latency


def conv_cycles_closed_form(
    width: int,
    height: int,
    kernel: int,
    line_buffers: int,
    pixels_per_clock: int = 1,
    pipeline: int | None = None,
) -> int:
    """One frame, closed form of :func:`conv_cycles`, with ``B = W/P`` beats per row.

    * ``N == K - 1``: one beat per cycle, ``H·B + latency``;
    * ``N == K``: fill ``K`` rows (``K·B``), then alternate one output row (``B``) and one
      input row (``B``), the last output row not followed by a fill:
      ``K·B + (H-K+1)·B + (H-K)·B + latency = (2H - K + 1)·B + latency``;
    * ``N >= K + 1``: the input never stalls (``H·B``), the last output row is read after the
      last input row (``B``): ``(H + 1)·B + latency``.
    """
    p = _params(width, height, kernel, line_buffers, 1, pixels_per_clock, pipeline)
    latency = _latency(p)
    b, h, k = p.beats_per_row, height, kernel
    if p.mode == "streaming":
        return h * b + latency
    if p.mode == "serial":
        return (2 * h - k + 1) * b + latency
    return (h + 1) * b + latency
