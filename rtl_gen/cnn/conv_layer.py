"""A multi-channel convolution layer: power-of-two weights shift and add (no multiplier); the
dense baseline's weights multiply."""

from __future__ import annotations

import math

import numpy as np
from amaranth import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from rtl_gen.conv.params import MAX_HEIGHT, MAX_WIDTH, ConvParams
from rtl_gen.conv.row_scan import RowScan
from rtl_gen.conv.streaming import StreamingRows
from rtl_gen.conv.window import PipelineStages
from rtl_gen.skid import SkidFifo

from .pixels import check_int, pixel_layout, value_shape

__all__ = ["ACTIVATIONS", "WEIGHT_FORMATS", "ConvLayer", "tree_stages"]

ACTIVATIONS = ("relu", "none")
#: ``"pow2"``: every weight 0 or ``±2**e``, wired as a shift; ``"dense"``: any integer, one
#: constant multiplier per nonzero weight (the uncompressed baseline).
WEIGHT_FORMATS = ("pow2", "dense")

#: Filters that read one copy of the window registers (each copy with its own enable copies),
#: so no window register drives the adder trees of every filter across the layer.
FILTERS_PER_WINDOW = 4

#: Entries of the output buffer: the output register and two spares, as the enable copies see
#: a pop one cycle late (a registered copy per leaf of copies).
OUTPUT_DEPTH = 3


def tree_stages(weights: np.ndarray, levels_per_stage: int) -> int:
    """Register stages of the adder trees: every filter sums its nonzero weights' terms and one
    constant (bias and rounding), ``n`` leaves in ``ceil(log2(n))`` adder levels, registered
    after every ``levels_per_stage`` levels; at least one stage (the accumulator register)."""
    leaves = 1 + int(np.count_nonzero(weights.reshape(len(weights), -1), axis=1).max())
    levels = math.ceil(math.log2(leaves)) if leaves > 1 else 0
    return max(1, math.ceil(levels / levels_per_stage))


def _check_weights(weights, in_channels: int, weight_format: str) -> np.ndarray:
    arr = np.asarray(weights)
    if arr.ndim != 4 or arr.shape[1] != in_channels or arr.shape[2] != arr.shape[3]:
        raise ValueError(
            f"weights must have shape (out_channels, in_channels={in_channels}, K, K), "
            f"not {arr.shape}"
        )
    k = arr.shape[2]
    if k % 2 == 0 or arr.shape[0] < 1:
        raise ValueError(f"weights must have an odd kernel size K and >= 1 filter, not {arr.shape}")
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"weights must be integers, not dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    mag = np.abs(arr)
    bad = np.argwhere((mag & (mag - 1)) != 0)
    if len(bad) and weight_format == "pow2":
        index = tuple(int(v) for v in bad[0])
        raise ValueError(
            f"weights[{', '.join(map(str, index))}] = {int(arr[index])} is not 0 or ±2**e "
            "(weight_format 'pow2' has no multipliers: power-of-two weights only)"
        )
    arr.setflags(write=False)
    return arr


class ConvLayer(wiring.Component):
    """Multi-channel "valid" convolution, stride 1, odd ``K``.

    ``y[o, r, s] = act(requant(sum_{c,i,j} w[o, c, i, j] * x[c, r + i, s + j] + b[o]))`` with
    ``requant`` as in docs/bundle.md: ``(acc + 2**(shift-1)) >> shift`` (round half up,
    arithmetic shift) for ``shift > 0``, ``acc << -shift`` for ``shift < 0``; ``act`` clips to
    ``[0, 2**out_bits - 1]`` (``"relu"``) or the signed ``out_bits`` range (``"none"``).

    The line buffers and their control are the engine's front ends
    (:class:`~rtl_gen.conv.streaming.StreamingRows` for ``N = K - 1``,
    :class:`~rtl_gen.conv.row_scan.RowScan` for ``N >= K``) with one pixel word of
    ``in_channels × in_bits`` bits. All ``out_channels`` filters compute in parallel, one
    input pixel per clock. A weight ``±2**e`` is the window pixel shifted by ``e`` (wiring),
    added or subtracted in a balanced adder tree; a zero weight generates nothing. With
    ``weight_format="dense"`` (the uncompressed baseline) a nonzero weight ``±w`` is the pixel
    times the constant ``w``, a multiplier in the first adder level; the timing is the same. Each
    filter's tree also sums one constant leaf (bias plus the rounding constant); registers
    cut it every ``levels_per_stage`` adder levels (:func:`tree_stages` stages ``S``).

    Parameters
    ----------
    height, width : int
        Input image size, ``>= K``.
    in_channels : int
        ``C_in >= 1``.
    weights : array_like of int, shape ``(C_out, C_in, K, K)``
        ``weight_format="pow2"``: each 0 or ``±2**e``, anything else raises :class:`ValueError`.
    weight_format : str
        ``"pow2"`` (default: shift-and-add, no multiplier) or ``"dense"`` (any integer weights,
        constant multipliers).
    bias : array_like of int, shape ``(C_out,)``
        Added to the sum of products (accumulator format).
    shift : int
        Requantisation shift (negative: left shift).
    activation : str
        ``"relu"`` (unsigned ``out_bits`` output) or ``"none"`` (signed ``out_bits``).
    out_bits, in_bits : int
        Output width; unsigned input pixel width per channel.
    line_buffers : int
        ``N >= K - 1``: ``K - 1`` streaming, ``K`` serial, ``>= K + 1`` overlapped (as the
        engine, docs/conv.md).
    levels_per_stage : int
        Adder levels between pipeline registers (default 2).

    Attributes
    ----------
    i : stream.Signature(pixel_layout(C_in, unsigned(in_bits))), in
        Pixels in raster order, frames back to back; ``last`` is ignored (the layer counts).
        ``i.ready`` comes from registers only (never from ``i.valid`` or ``o.ready``).
        Streaming mode: the pipeline's enable; row-scan modes: also low while all ``N``
        buffers hold rows the window still needs.
    o : stream.Signature(pixel_layout(C_out, out shape)), out
        Output pixels in raster order, ``last`` on a frame's final pixel. ``o.valid`` and the
        payload are registers, the head of a three-entry output buffer (a
        :class:`~rtl_gen.skid.SkidFifo` per group of :data:`FILTERS_PER_WINDOW` channels, in
        lockstep).

    Notes
    -----
    Latency (:attr:`latency`): an output is valid ``L = 4 + S`` cycles after the line buffers
    read (streaming: accept) the input pixel that completes its window: read (1), window
    column register (1), its copy beside each window copy (1, :data:`FILTERS_PER_WINDOW`),
    ``S`` adder-tree stages, output register (1). With a full-rate
    source and a ready sink a frame takes ``H·W + L`` cycles (streaming), ``(2H - K + 1)·W
    + L`` (serial), ``(H + 1)·W + L`` (overlapped), as ``tb.golden.conv.conv_cycles`` with
    ``pipeline = 1 + S`` (:attr:`pipeline`) and ``read_register=False`` (the row-scan front
    end is built without the engine's read register: the layer's line buffers are small);
    ``tb.golden.cnn.conv_layer_times`` gives every beat's cycle.

    Backpressure: the pipeline (line-buffer reads, window, adder trees) moves while its enable
    is high, a register that is high when the three-entry output buffer (:data:`OUTPUT_DEPTH`)
    will hold at most two results as the enable counts them: it sees a pop one cycle late (a
    registered copy), so its count may exceed the buffer's occupancy by one, never fall short.
    A sink that stops stops the pipeline two cycles later, and it restarts two cycles after the
    sink does; the results under way wait in the buffer. The enable is a register per
    line-buffer front, per channel of each window row and of each row of each window copy, per
    adder-tree stage of each filter and per output slice; each leaf of copies (a row, a row of
    a window copy, a filter, a slice) has its own registered copy of the pop and of the result
    tag, so no net fans out from one register, or from ``o.ready``, to every pipeline register
    or every enable copy of the layer. With a sink that is always ready the enable never falls
    and the timing above is exact.
    """

    def __init__(
        self,
        *,
        height: int,
        width: int,
        in_channels: int,
        weights,
        bias,
        shift: int,
        activation: str = "relu",
        out_bits: int = 8,
        in_bits: int = 8,
        line_buffers: int | None = None,
        levels_per_stage: int = 2,
        weight_format: str = "pow2",
    ):
        try:
            self._validate(
                height, width, in_channels, weights, bias, shift, activation, out_bits, in_bits,
                line_buffers, levels_per_stage, weight_format,
            )  # fmt: skip
        except ValueError:
            self._MustUse__silence = True
            raise
        super().__init__(
            {
                "i": In(
                    stream.Signature(
                        pixel_layout(self.in_channels, value_shape(self.in_bits, False))
                    )
                ),
                "o": Out(stream.Signature(pixel_layout(self.out_channels, self.out_shape))),
            }
        )

    def _validate(
        self, height, width, in_channels, weights, bias, shift, activation, out_bits, in_bits,
        line_buffers, levels_per_stage, weight_format,
    ):  # fmt: skip
        if weight_format not in WEIGHT_FORMATS:
            raise ValueError(
                f"weight_format must be one of {WEIGHT_FORMATS}, not {weight_format!r}"
            )
        self.weight_format = weight_format
        self.in_channels = check_int("in_channels", in_channels, 1)
        self.weights = _check_weights(weights, self.in_channels, weight_format)
        self.out_channels, _, k, _ = self.weights.shape
        self.kernel = k
        self.height = check_int("height", height, k, MAX_HEIGHT)
        self.width = check_int("width", width, k, MAX_WIDTH)
        b = np.asarray(bias)
        if b.shape != (self.out_channels,) or b.dtype.kind not in "iu":
            raise ValueError(
                f"bias must be {self.out_channels} integers (one per filter), "
                f"not {b.dtype} of shape {b.shape}"
            )
        self.bias = b.astype(np.int64)
        if isinstance(shift, bool) or not isinstance(shift, (int, np.integer)):
            raise ValueError(f"shift must be an integer, not {shift!r}")
        self.shift = int(shift)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, not {activation!r}")
        self.activation = activation
        self.out_bits = check_int("out_bits", out_bits, 1 if activation == "relu" else 2)
        self.in_bits = check_int("in_bits", in_bits, 1)
        n = k - 1 if line_buffers is None else line_buffers
        self.line_buffers = check_int("line_buffers", n, k - 1)
        self.levels_per_stage = check_int("levels_per_stage", levels_per_stage, 1)
        self.out_shape = value_shape(self.out_bits, activation == "none")
        self.front_params = ConvParams(
            width=self.width,
            height=self.height,
            kernel=k,
            line_buffers=self.line_buffers,
            pixel_width=self.in_channels * self.in_bits,
        )

    @property
    def mode(self) -> str:
        """``"streaming"``, ``"serial"`` or ``"overlapped"`` (see the engine's docs)."""
        return self.front_params.mode

    @property
    def stages(self) -> int:
        """Adder-tree register stages ``S`` (:func:`tree_stages`)."""
        return tree_stages(self.weights, self.levels_per_stage)

    @property
    def latency(self) -> int:
        """Cycles from a pixel's line-buffer read (streaming: accept) to its output: ``4 + S``."""
        return 4 + self.stages

    @property
    def pipeline(self) -> int:
        """Register stages between the window column and the output register, ``1 + S`` (the
        column's copy beside each window copy and the adder trees): ``tb.golden.conv``'s
        ``pipeline``."""
        return 1 + self.stages

    def _constant(self, o: int) -> int:
        if self.shift > 0:
            return int(self.bias[o]) + (1 << (self.shift - 1))
        return int(self.bias[o])

    def elaborate(self, platform):
        m = Module()
        k, bits = self.kernel, self.in_bits
        front_type = StreamingRows if self.mode == "streaming" else RowScan
        m.submodules.front = front = front_type(self.front_params)

        copies = range(-(-self.out_channels // FILTERS_PER_WINDOW))
        in_channels = range(self.in_channels)
        # enable copies by leaf: the copies of a leaf share one copy of the output buffer's
        # pop (registered) and of the result tag
        copy_leaves = {"front": ["front"]}
        for i in range(k):
            copy_leaves[f"row{i}"] = [f"row{i}_c{c}" for c in in_channels]
            for g in copies:
                copy_leaves[f"row{i}_w{g}"] = [f"row{i}_w{g}_c{c}" for c in in_channels]
        for o in range(self.out_channels):
            copy_leaves[f"f{o}"] = [f"f{o}_s{t}" for t in range(self.stages)]
        for g in copies:
            copy_leaves[f"out{g}"] = [f"out{g}"]
        pop = Signal()
        tag_in = Signal()  # the result tag one register before the adder trees' outputs
        run, emits = {}, {}  # emits: each leaf's copy of the result tag
        for leaf, names in copy_leaves.items():
            emit = Signal(name=f"{leaf}_emit")
            popped = Signal(name=f"{leaf}_popped")
            made = [self._enable_copy(m, name, emit, popped) for name in names]
            # the leaf's copies of the last tag register and of the pop, each with an input of
            # its own (so synthesis keeps them apart): the tag loads on the leaf's enable, the
            # pop is ANDed with "the buffer is not empty", true whenever a result leaves
            run_0, count_0 = made[0]
            with m.If(run_0):
                m.d.sync += emit.eq(tag_in)
            m.d.sync += popped.eq(pop & count_0.any())
            emits[leaf] = emit
            for name, (copy_run, _) in zip(names, made, strict=True):
                run[name] = copy_run
        stage = {name: PipelineStages(m, run[name]).reg for name in run}
        reg = stage["front"]

        m.d.comb += [
            front.i.valid.eq(self.i.valid),
            front.i.payload.eq(Value.cast(self.i.payload.value)),
            self.i.ready.eq(front.i.ready),
            front.advance.eq(run["front"]),
        ]
        # Tags follow the read data (stage 1), the registered column (stage 2), then its copy
        # beside each window copy (stage 3); each row has its own copy of the shift tag, next
        # to its registers. A column is registered per channel, each with its own enable copy.
        tag = reg(reg(reg(front.issue & front.emit, "s1_emit"), "c_emit"), "w_emit")
        last = reg(reg(reg(front.issue & front.last, "s1_last"), "c_last"), "w_last")
        columns, shifts = [], []
        for i in range(k):
            row = stage[f"row{i}_c0"]
            columns.append([
                stage[f"row{i}_c{c}"](front.column[i][c * bits : (c + 1) * bits], f"column{i}_c{c}")
                for c in in_channels
            ])  # fmt: skip
            shifts.append(row(row(front.issue, f"s1_shift{i}"), f"c_shift{i}"))
        windows = [self._window(m, columns, shifts, stage, run, f"w{g}") for g in copies]

        stages = self.stages
        accs = []
        for o in range(self.out_channels):
            window = windows[o // FILTERS_PER_WINDOW]
            leaves = [(Const(self._constant(o)), False)]
            for c, i, j in zip(*np.nonzero(self.weights[o]), strict=True):
                w = int(self.weights[o, c, i, j])
                pixel = window[i][j].word_select(int(c), bits)
                if self.weight_format == "dense":
                    leaves.append((pixel * Const(abs(w)), w < 0))
                else:
                    leaves.append((pixel << (abs(w).bit_length() - 1), w < 0))
            accs.append(self._tree(m, leaves, stages, stage, f"f{o}"))
        for _ in range(stages - 1):  # each leaf registers the tag's last stage itself
            tag = reg(tag, "t_emit")
        for _ in range(stages):
            last = reg(last, "t_last")
        m.d.comb += tag_in.eq(tag)

        if self.activation == "relu":
            lo, hi = 0, (1 << self.out_bits) - 1
        else:
            lo, hi = -(1 << (self.out_bits - 1)), (1 << (self.out_bits - 1)) - 1
        values = []
        for acc in accs:
            scaled = acc >> self.shift if self.shift >= 0 else acc << -self.shift
            values.append(Mux(scaled > hi, hi, Mux(scaled < lo, lo, scaled)))
        # The output buffer is a register slice per group of FILTERS_PER_WINDOW channels, each
        # pushed by its own enable copy (the slices move in lockstep; the first also carries
        # ``last``): its spare entry holds the result the pipeline pushes in the cycle the sink
        # stops. A push always fits (the enable copies count the entries), so the slices' own
        # ``i.ready`` is not needed.
        slices = []
        bits = self.out_shape.width
        for g in copies:
            first = g * FILTERS_PER_WINDOW
            channels = range(first, min(self.out_channels, first + FILTERS_PER_WINDOW))
            width = len(channels) * bits + (g == 0)
            out_slice = SkidFifo(width, OUTPUT_DEPTH)
            m.submodules[f"out_slice{g}"] = out_slice
            payload = Signal(width, name=f"result{g}")
            for n, o in enumerate(channels):
                m.d.comb += [
                    payload[n * bits : (n + 1) * bits].eq(values[o]),
                    self.o.payload.value[o].eq(out_slice.o.payload[n * bits : (n + 1) * bits]),
                ]
            if g == 0:
                m.d.comb += [payload[-1].eq(last), self.o.payload.last.eq(out_slice.o.payload[-1])]
            m.d.comb += [
                out_slice.i.valid.eq(run[f"out{g}"] & emits[f"out{g}"]),
                out_slice.i.payload.eq(payload),
                out_slice.o.ready.eq(self.o.ready),
            ]
            slices.append(out_slice)
        m.d.comb += [
            self.o.valid.eq(slices[0].o.valid),
            pop.eq(self.o.valid & self.o.ready),
        ]
        return m

    def _window(self, m, columns, shifts, stage, run, copy):
        """One copy of the K x K window: per row and channel, a register of the column and the
        K - 1 registers it shifts into, with their own enable copy and shift tag."""
        k, bits = self.kernel, self.in_bits
        window = []
        for i in range(k):
            parts = [[] for _ in range(k)]  # per window column, its channels
            for c in range(self.in_channels):
                name = f"row{i}_{copy}_c{c}"
                row = stage[name]
                column = row(columns[i][c], f"column{i}_{copy}_c{c}")
                shift_in = row(shifts[i], f"w_shift{i}_{copy}_c{c}")
                hist = [Signal(bits, name=f"hist{i}_{j}_{copy}_c{c}") for j in range(k - 1)]
                window_row = [*hist, column]
                with m.If(run[name] & shift_in):
                    m.d.sync += [hist[j].eq(window_row[j + 1]) for j in range(k - 1)]
                for j in range(k):
                    parts[j].append(window_row[j])
            window.append([Cat(*part) for part in parts])
        return window

    @staticmethod
    def _enable_copy(m, name, emit, popped):
        """One copy of the pipeline's enable: a register, high when the output buffer (three
        entries) will hold at most two results, as this copy counts them: ``count`` = results
        pushed up to the previous cycle minus results popped up to the cycle before (the pop
        arrives registered, ``popped``, so no net reaches every copy in the cycle of a pop).
        The count is at least the buffer's occupancy, so the result the pipeline may push next
        fits; a push is ``run & emit``, from this copy. Registers that feed back into
        themselves, so synthesis cannot merge the copies. Returns ``(run, count)``."""
        count = Signal(2, name=f"{name}_count")
        run = Signal(init=1, name=f"{name}_run")
        push = run & emit
        up, down = push & ~popped, popped & ~push
        # count ± 1 as logic, not an adder (the layer's adders are its weights')
        low = count[0] ^ (up | down)
        high = count[1] ^ (up & count[0]) ^ (down & ~count[0])
        m.d.sync += [count.eq(Cat(low, high)), run.eq(~(low & high))]
        return run, count

    def _tree(self, m, leaves, stages, stage_regs, name):
        """Sum ``(value, negative)`` leaves in a balanced tree, registered every
        ``levels_per_stage`` levels, ``stages`` registers in all (stage ``t`` with
        ``stage_regs[f"{name}_s{t}"]``, its own copy of the enable). A leaf's sign is applied
        where it meets a positive one (``a - b``), so a negation never costs a level; the
        constant leaf is positive, hence so is the root."""
        terms = leaves
        for stage in range(stages):
            for _ in range(self.levels_per_stage):
                if len(terms) == 1:
                    break
                paired = []
                for (a, na), (b, nb) in zip(terms[0::2], terms[1::2], strict=False):
                    if na == nb:
                        paired.append((a + b, na))
                    else:
                        paired.append((b - a, False) if na else (a - b, False))
                if len(terms) % 2:
                    paired.append(terms[-1])
                terms = paired
            reg = stage_regs[f"{name}_s{stage}"]
            terms = [(reg(v, f"{name}_s{stage}_{n}"), neg) for n, (v, neg) in enumerate(terms)]
        (root, negative), *rest = terms
        assert not negative and not rest
        return root
