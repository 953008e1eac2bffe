"""Golden model of the whole CNN (``rtl_gen.cnn.Cnn``): class scores and every cycle, NumPy.

Values: :func:`cnn_forward` chains :mod:`tb.golden.cnn`'s blocks and :mod:`tb.golden.mlp`'s
layers exactly as docs/bundle.md (version 2) defines the network.

Cycles: :func:`cnn_timing` composes the per-block models of :mod:`tb.golden.cnn` (which take
the cycle each input beat is first offered and return when it is accepted and when outputs
leave), the FIFOs between the parts (a beat written in cycle ``t`` is offered from ``t + 2``)
and the fully connected layers' model. The composition is exact when no stage ever stalls the
one before it except where a FIFO absorbs it; the model checks that every FIFO stays below its
depth and every pool/conv stage takes each beat in the cycle it is offered, and raises
:class:`TimingModelError` otherwise.

The network's parameters come as duck-typed objects (``stages`` with ``weights``, ``bias``,
``shift``, ``activation``, ``out_bits``, ``in_shape``; ``fc`` layers as :mod:`tb.golden.mlp`
takes them): nothing here imports the hardware generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import cnn as blocks
from . import mlp

__all__ = [
    "FIFO_LATENCY", "SLICE_LATENCY", "CnnTiming", "TimingModelError", "cnn_forward", "cnn_timing",
]  # fmt: skip

#: A beat written into a FIFO in cycle ``t`` is offered on its read side from ``t + 2``.
FIFO_LATENCY = 2
#: A beat a register slice (skid buffer) takes in cycle ``t`` is offered from ``t + 1``.
SLICE_LATENCY = 1


class TimingModelError(AssertionError):
    """The network stalls where the composed model cannot follow (a FIFO would fill)."""


def _is_conv(stage) -> bool:
    return hasattr(stage, "weights")


def cnn_forward(stages, fc, images) -> tuple[np.ndarray, np.ndarray]:
    """``(features, scores)`` for ``images`` of shape ``(n, C*H*W)`` (bundle order) or
    ``(n, C, H, W)``: the flattened ``hwc`` features entering the first linear layer and the
    last layer's outputs."""
    x = np.asarray(images, dtype=np.int64)
    x = x.reshape((len(x), *stages[0].in_shape)) if stages else x
    for stage in stages:
        if _is_conv(stage):
            x = blocks.conv_layer(
                x, stage.weights, stage.bias, stage.shift, stage.activation, stage.out_bits
            )
        else:
            x = blocks.maxpool2(x)
    features = blocks.flatten_hwc(x)
    return features, mlp.mlp_forward(list(fc), features)[-1]


@dataclass
class CnnTiming:
    """Cycles of one run (first pixel offered in cycle 0).

    ``image_end[i]``: the cycle image ``i``'s last score is transferred. ``stage_accepts``:
    per stage, the acceptance cycles of its input beats. ``fifo_peak``: the largest occupancy
    each FIFO reaches.
    """

    pixel_accepts: np.ndarray
    image_end: list[int]
    fifo_peak: dict

    @property
    def cycles(self) -> int:
        """First pixel offered to the last score transferred, both counted."""
        return int(self.image_end[-1]) + 1


def _fifo(name, written, taken, depth, peaks):
    """Peak occupancy of a FIFO (beats written at ``written``, leaving at ``taken``)."""
    written, taken = np.asarray(written), np.asarray(taken)
    events = np.concatenate([written, taken])
    if len(events) == 0:
        peaks[name] = 0
        return
    level = np.searchsorted(np.sort(written), events, side="right") - np.searchsorted(
        np.sort(taken), events, side="right"
    )
    peak = int(level.max())
    peaks[name] = peak
    if peak >= depth - 1:  # its ready is registered with one entry of slack
        raise TimingModelError(
            f"FIFO {name} would hold {peak} beats (depth {depth}, ready up to {depth - 2}): "
            "the stages stall each other and the composed model does not apply"
        )


def _check_unstalled(name, offered, accepted):
    if not np.array_equal(offered, accepted):
        k = int(np.flatnonzero(np.asarray(offered) != np.asarray(accepted))[0])
        raise TimingModelError(
            f"{name} stalls its input (beat {k} offered in cycle {offered[k]}, taken in "
            f"{accepted[k]}): no FIFO absorbs it, the composed model does not apply"
        )


def _fc1_latency(layout: str, build: str, zero_skip: bool) -> int:
    """Cycles from fc1 accepting an image's last element to that element's product being in
    every accumulator, for the first fc layers this model follows: each element is taken the
    cycle the FIFO offers it (never stalled). Direct layout: every neuron reads the element's
    word at once. Dense build without zero-skipping (the baseline): every element is the next
    column of every neuron's one-word-per-input ROM, so each neuron takes it from its input
    queue ``QUEUE_LATENCY`` cycles after the accept, then its product stage."""
    if layout == "direct":
        return mlp.DIRECT_LATENCY
    if build == "dense" and not zero_skip:
        return mlp.QUEUE_LATENCY + mlp.PRODUCT_LATENCY + mlp.GATHER_LATENCY
    raise NotImplementedError(
        "the CNN timing model needs a direct first fc layer, or a dense one without zero-skip"
    )


def cnn_timing(
    stages,
    fc,
    images,
    *,
    line_buffers,
    latencies,
    fifo_depths: dict,
    zero_skip: bool,
    layouts,
    build: str,
    slices=(),
    arrivals=None,
) -> CnnTiming:
    """Every cycle of ``images`` (``(n, C*H*W)``) sent back to back at full rate (or pixel
    ``k`` offered from ``arrivals[k]``) into the network, an always-ready sink for the scores.

    ``line_buffers`` (per conv stage), ``latencies`` (per stage), ``fifo_depths`` (by stage
    name, ``"flatten"``, ``"fc"``), ``slices`` (the stages followed by a register slice) and
    ``layouts`` (per fc layer) describe the hardware build.
    """
    x = np.asarray(images, dtype=np.int64)
    n = len(x)
    shape = stages[0].in_shape
    frames = x.reshape((n, *shape))
    pixels = n * shape[1] * shape[2]
    offered = np.arange(pixels) if arrivals is None else np.asarray(arrivals, dtype=np.int64)
    peaks: dict = {}
    t = offered
    pixel_accepts = None
    values = frames
    n_iter = iter(line_buffers)
    for index, (stage, latency) in enumerate(zip(stages, latencies, strict=True)):
        c, h, w = stage.in_shape
        if _is_conv(stage):
            nbuf = next(n_iter)
            if stage.name in fifo_depths:
                arrive = t + FIFO_LATENCY
                accepted, out = blocks.conv_layer_times(arrive, h, w, stage.kernel, nbuf, latency)
                _fifo(stage.name, t, accepted, fifo_depths[stage.name], peaks)
            else:
                accepted, out = blocks.conv_layer_times(t, h, w, stage.kernel, nbuf, latency)
                if index > 0:
                    _check_unstalled(stage.name, t, accepted)
            values = blocks.conv_layer(
                values, stage.weights, stage.bias, stage.shift, stage.activation, stage.out_bits
            )
        else:
            accepted, out = blocks.maxpool2_times(t, h, w)
            _check_unstalled(stage.name, t, accepted)
            values = blocks.maxpool2(values)
        if pixel_accepts is None:
            pixel_accepts = accepted
        t = out + SLICE_LATENCY if stage.name in slices else out
    # the flatten, behind its pixel FIFO
    c, h, w = values.shape[-3:]
    elements = blocks.flatten_elements(values, drop_zeros=zero_skip)
    frame = np.concatenate(([0], np.cumsum([e[2] for e in elements[:-1]], dtype=np.int64)))
    pixel = frame * (h * w) + np.array([e[0] for e in elements]) // c
    counts = np.bincount(pixel, minlength=n * h * w)
    accepted, element_times = blocks.flatten_times(t + FIFO_LATENCY, counts)
    _fifo("flatten", t, accepted, fifo_depths["flatten"], peaks)
    # the fully connected layers, behind the element FIFO and its register slice, one image at
    # a time
    arrive = element_times + FIFO_LATENCY + SLICE_LATENCY
    image_end = []
    outs = mlp.mlp_forward(list(fc), blocks.flatten_hwc(values))
    layouts = mlp.layer_layouts(list(fc), build, layouts)
    start = 0
    fifo_taken = []
    fc1_last = -1  # the cycle fc1 took the previous image's last element
    busy = [-1] * len(fc)  # per layer, the cycle its previous image's last result was taken
    for i in range(n):
        # elements of image i: up to and including its last one
        end = start
        while not elements[end][2]:
            end += 1
        end += 1
        mine = elements[start:end]
        acc = []
        tt = fc1_last
        for k, _ in enumerate(mine):
            tt = max(int(arrive[start + k]), tt + 1)
            acc.append(tt)
        fifo_taken.extend(acc)
        fc1_last = acc[-1]
        first_valid = acc[-1] + mlp.RESULT_LATENCY + _fc1_latency(layouts[0], build, zero_skip)
        if i > 0 and acc[0] <= busy[0]:
            raise TimingModelError(f"image {i} reaches {fc[0].name} before image {i - 1} left it")
        for li in range(1, len(fc)):
            hidden_elems = mlp._elements(outs[li - 1][i], zero_skip)
            direct = layouts[li] == "direct"
            cols = None if direct else mlp.entry_columns(fc[li], build)
            accepts, finish = mlp.layer_timing(cols, hidden_elems, first_valid)
            extra = mlp.DIRECT_LATENCY if direct else mlp.PRODUCT_LATENCY + mlp.GATHER_LATENCY
            if i > 0 and accepts[0] <= busy[li]:
                raise TimingModelError(
                    f"image {i} reaches {fc[li].name} before image {i - 1} left it"
                )
            busy[li - 1] = accepts[-1]  # the previous layer's last result is taken
            first_valid = finish + mlp.RESULT_LATENCY + extra
        image_end.append(first_valid + fc[-1].weight_int.shape[0] - 1)
        busy[-1] = image_end[-1]
        start = end
    # the slice takes an element from the FIFO one cycle before fc1 does (fc1 never stalls here)
    fifo_taken = np.asarray(fifo_taken) - SLICE_LATENCY
    _fifo("fc", element_times, fifo_taken, fifo_depths["fc"], peaks)
    return CnnTiming(np.asarray(pixel_accepts), image_end, peaks)
