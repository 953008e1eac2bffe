"""The convolution engine (rtl_gen/conv/engine.py) in each line-buffer mode, bounded proofs.

The engine computes, so no payload passes unchanged; its proof counts beats and checks where
they sit. Properties, with the solver driving any pixels, any ``valid`` (held until taken) and
any ``o.ready``:

* the stream rules at the output (``valid`` never falls, payload stable while stalled);
* nothing invented or duplicated: an output beat only when an accepted input beat that
  completes a window is still owed one (``0 <= owed``), never more frames out than in;
* exactly one ``last`` per frame, on the frame's last output beat: a beat counter of the
  harness, independent of the engine's row and column counters, must be at
  ``beats_per_frame - 1`` exactly when ``last`` is set; with ``P > 1`` also ``keep`` per beat;
* nothing lost: while a frame whose last beat was accepted is owed, a frame's ``last`` leaves
  within :func:`drain_bound` cycles in which the sink is ready (so its count, above, is
  complete);
* the accumulator never overflows: with every coefficient at the most negative value (the
  bound the width is sized for), each lane's accumulator and biased sum stay within the
  exact range of any input in range;
* no valid output after a reset before an input beat; ``i.ready`` (netlist) depends on no
  input in the row-scan modes and only on ``o.ready`` in the streaming mode; ``o.valid`` and
  the payload on no input.
"""

from __future__ import annotations

import numpy as np
from amaranth import Module, Mux, Signal, signed
from amaranth.asserts import AnySeq
from amaranth.back import rtlil
from amaranth.hdl import Assert

from . import props
from .mutants import mutant_build
from .sby import Proof

PIXEL_WIDTH = 4
COEF_WIDTH = 4


def params(line_buffers: int, width: int = 6, height: int = 6, pixels_per_clock: int = 1):
    from rtl_gen.conv import ConvParams

    k = 3
    low = -(1 << (COEF_WIDTH - 1))
    return ConvParams(
        width=width,
        height=height,
        kernel=k,
        line_buffers=line_buffers,
        pixels_per_clock=pixels_per_clock,
        coefficients=np.full((k, k), low),
        pixel_width=PIXEL_WIDTH,
        coef_width=COEF_WIDTH,
        bias=3,
        shift=2,
        out_width=8,
    )


def acc_bounds(p) -> tuple[int, int]:
    """Exact range of a window's sum of products for pixels in ``0 .. 2**pixel_width - 1``."""
    top = (1 << p.pixel_width) - 1
    c = p.coefficients.reshape(-1)
    return int(np.minimum(c * top, 0).sum()), int(np.maximum(c * top, 0).sum())


def harness(p):
    from rtl_gen.conv import ConvEngine

    m = Module()
    dut = ConvEngine(p)
    m.submodules.dut = frag = props.elaborated(dut)
    i, o = dut.i, dut.o
    lanes = p.pixels_per_clock

    props.drive_source(m, i)
    m.d.comb += o.ready.eq(AnySeq(1))
    props.source_rules(m, i)
    props.sink_rules(m, o)
    props.idle_after_reset(m, i, o)
    check_frames(m, p, i, o)

    # the accumulator and the biased sum stay within the exact range of any input
    lo, hi = acc_bounds(p)
    offset = p.bias + ((1 << (p.shift - 1)) if p.rounding == "half_up" and p.shift else 0)
    for lane in range(lanes):
        acc = props.find_signal(frag, f"acc{lane}", under=("mac",))
        biased = props.find_signal(frag, f"biased{lane}", under=("mac",))
        m.d.comb += Assert((acc >= lo) & (acc <= hi))
        m.d.comb += Assert((biased >= lo + offset) & (biased <= hi + offset))
    return m


def check_frames(m, p, i, o) -> None:
    """Beats counted in and out of an engine with parameters ``p`` (input ``i``, output ``o``:
    ``valid``, ``ready``, ``o.payload.last`` and, with ``P > 1``, ``o.payload.keep``): nothing
    invented, one ``last`` per frame on its last beat, ``keep`` per beat, never more frames
    out than in, a finished frame drained within :func:`drain_bound` ready cycles; cover: a
    frame's ``last`` leaves."""
    from rtl_gen.conv.window import first_result_beat

    k, lanes, beats, h = p.kernel, p.pixels_per_clock, p.beats_per_row, p.height
    first = first_result_beat(k, lanes)
    out_beats_row = beats - first
    out_beats_frame = p.out_rows * out_beats_row
    take, give = i.valid & i.ready, o.valid & o.ready

    # input position, counted by the harness
    in_col = Signal(range(beats))
    in_row = Signal(range(h))
    in_end = Signal()  # this input beat ends a frame
    m.d.comb += in_end.eq(take & (in_col == beats - 1) & (in_row == h - 1))
    with m.If(take):
        m.d.sync += in_col.eq(0 if beats == 1 else (in_col + 1) % beats)
        with m.If(in_col == beats - 1):
            m.d.sync += in_row.eq(in_row + 1)
            with m.If(in_row == h - 1):
                m.d.sync += in_row.eq(0)

    # nothing invented: each input beat that completes a window is owed one output beat
    owed = Signal(signed(10))
    allow = take & (in_row >= k - 1) & (in_col >= first)
    m.d.sync += owed.eq(owed + allow - give)
    with m.If(give):
        m.d.comb += Assert(owed > 0)

    # one `last` per frame, on its last beat; the lanes of each beat (P > 1)
    out_idx = Signal(range(out_beats_frame))
    out_col = Signal(range(out_beats_row))
    with m.If(o.valid):
        m.d.comb += Assert(o.payload.last == (out_idx == out_beats_frame - 1))
        if lanes > 1:
            full = (1 << lanes) - 1
            partial = full & ~((1 << ((k - 1) % lanes)) - 1)
            m.d.comb += Assert(o.payload.keep == Mux(out_col == 0, partial, full))
    with m.If(give):
        m.d.sync += [
            out_idx.eq(_wrap(out_idx, out_beats_frame)),
            out_col.eq(_wrap(out_col, out_beats_row)),
        ]

    # frames: never more out than in; nothing lost: a finished frame's last beat leaves within
    # a bounded number of cycles in which the sink is ready
    frames_in = Signal(range(4))
    frames_out = Signal(range(4))
    with m.If(in_end & (frames_in != 3)):
        m.d.sync += frames_in.eq(frames_in + 1)
    give_last = give & o.payload.last
    with m.If(give_last & (frames_out != 3)):
        m.d.sync += frames_out.eq(frames_out + 1)
    with m.If(give_last):
        m.d.comb += Assert(frames_out < frames_in)
    bound = drain_bound(p)
    waited = Signal(range(bound + 2))
    with m.If(give_last | (frames_in == frames_out)):
        m.d.sync += waited.eq(0)
    with m.Elif(o.ready):
        m.d.sync += waited.eq(waited + 1)
    m.d.comb += Assert(waited <= bound)
    props.cover(m, give_last)


def drain_bound(p) -> int:
    """Cycles with ``o.ready`` high, while a finished frame is owed, until a frame's ``last``
    leaves: from a frame's last input beat, the pipeline (``L``) plus the last output row's
    scan (serial) or the two rows the scan may still have to do when the spare buffer let the
    input run ahead (overlapped); from the previous frame's ``last``, when the next frame is
    already in (overlapped), all its output rows and the pipeline."""
    rows = {"streaming": 0, "serial": 1, "overlapped": 2}[p.mode]
    after_input = p.latency + rows * p.beats_per_row + 1
    if p.mode != "overlapped":
        return after_input
    return max(after_input, p.out_rows * p.beats_per_row + p.latency + 1)


def _wrap(counter, modulus):
    return 0 if modulus == 1 else (counter + 1) % modulus


def ready_netlist(p):
    from rtl_gen.conv import ConvEngine

    # streaming: i.ready = ~o.valid | o.ready by design (docs/conv.md); row-scan: registers only
    sources = ["i__valid", "i__payload"] + ([] if p.mode == "streaming" else ["o__ready"])
    return rtlil.convert(ConvEngine(p), name="dut"), sources, ["i__ready"]


def output_netlist(p):
    from rtl_gen.conv import ConvEngine

    text = rtlil.convert(ConvEngine(p), name="dut")
    return text, ["i__valid", "i__payload", "o__ready"], ["o__valid", "o__payload"]


#: (line buffers, pixels per clock, bmc depth): K = 3, 4x4 images; each depth covers a whole
#: frame from reset (streaming 21 cycles, serial 30, overlapped 26, P = 2: 13) and the
#: earliest frame end plus :func:`drain_bound` (so "nothing lost" is checked, not vacuous)
CASES = [(2, 1, 26), (3, 1, 36), (4, 1, 33), (2, 2, 20)]
WIDTH = HEIGHT = 4


def _name(n, ppc):
    return f"conv_n{n}_p{ppc}"


def _proofs():
    out = []
    for n, ppc, depth in CASES:
        p = params(n, WIDTH, HEIGHT, ppc)
        tag = _name(n, ppc)
        fast = ppc == 2
        out += [
            Proof(f"{tag}_bmc", lambda p=p: harness(p), "bmc", depth, fast=fast),
            Proof(f"{tag}_cover", lambda p=p: harness(p), "cover", depth, fast=fast),
            Proof(f"{tag}_ready_netlist", lambda p=p: ready_netlist(p), "netlist", fast=True),
            Proof(f"{tag}_output_netlist", lambda p=p: output_netlist(p), "netlist", fast=True),
        ]
    return out


PROOFS = _proofs()

#: deliberate bugs, each must make the named proof fail
MUTANTS = {
    # the first result beat of each row is not emitted: a beat lost per row
    "emit": ("rtl_gen.conv.window", "emit.eq(beat >= first)", "emit.eq(beat > first)"),
    # the output register loads while the sink stalls: payload changes under backpressure
    "stall": (
        "rtl_gen.conv.window",
        "        with m.If(advance):\n            m.d.sync += [self.o.valid.eq(s2_valid)",
        "        with m.If(1):\n            m.d.sync += [self.o.valid.eq(s2_valid)",
    ),
    # the accumulator one bit narrower than the bound it is sized for
    "acc": (
        "rtl_gen.conv.window",
        'acc = Signal(signed(sum_width(pw, cw, k)), name=f"acc{lane}")',
        'acc = Signal(signed(sum_width(pw, cw, k) - 1), name=f"acc{lane}")',
    ),
    # the last result stage's valid bit is not reset: a result can follow a reset
    "reset": (
        "rtl_gen.conv.window",
        's2_valid = reg(emit, "s2_valid")',
        's2_valid = reg(emit, "s2_valid", reset_less=True)',
    ),
    # the streaming front end marks the frame's last beat one row early
    "last": ("rtl_gen.conv.streaming", "(row == h - 1)),", "(row == h - 2)),"),
    # the row-scan ready also lets a beat in when the sink is ready: a combinational path
    "ready": (
        "rtl_gen.conv.row_scan",
        "self.i.ready.eq(ctrl.can_fill),",
        "self.i.ready.eq(ctrl.can_fill | self.advance),",
    ),
}


def _mutant_proofs():
    p2, p3, pp = params(2, WIDTH, HEIGHT), params(3, WIDTH, HEIGHT), params(2, WIDTH, HEIGHT, 2)
    return [
        Proof(
            "conv_emit_bug",
            mutant_build(MUTANTS["emit"], lambda: harness(pp)),
            "bmc",
            20,
            "fail",
            fast=True,
        ),
        Proof(
            "conv_stall_bug", mutant_build(MUTANTS["stall"], lambda: harness(pp)), "bmc", 20, "fail"
        ),
        Proof("conv_acc_bug", mutant_build(MUTANTS["acc"], lambda: harness(pp)), "bmc", 20, "fail"),
        Proof(
            "conv_reset_bug", mutant_build(MUTANTS["reset"], lambda: harness(pp)), "bmc", 20, "fail"
        ),
        Proof(
            "conv_last_bug", mutant_build(MUTANTS["last"], lambda: harness(p2)), "bmc", 26, "fail"
        ),
        Proof(
            "conv_ready_bug",
            mutant_build(MUTANTS["ready"], lambda: ready_netlist(p3)),
            "netlist",
            0,
            "fail",
        ),
    ]


MUTANT_PROOFS = _mutant_proofs()
