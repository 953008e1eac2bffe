"""The K×(K+P−1) window, P multiply-accumulate trees, scaling and the output register.

A pipeline of ``3 + pipeline`` stages, all advancing together on one enable (``advance``) that
the output stream's backpressure drives:

* stage 1 (the cycle after a beat was issued to the line buffers): the front end presents the
  beat's ``K`` rows of ``P`` pixels in window-row order (``column``); with ``pipeline >= 2``
  they are registered first (the row selection then has a stage of its own). With the
  ``K - 1`` previous columns held in registers they form a window of ``K`` rows ×
  ``K + P - 1`` columns. Lane ``p`` multiplies window columns ``p .. p + K - 1`` by the
  ``K·K`` coefficients (products registered when ``pipeline >= 1``) and sums them in an adder
  tree (split by a register when ``pipeline >= 3``) into ``acc[p]``; with ``pipeline == 4``
  each lane first registers its own copy of its ``K × K`` window, so that every window
  register drives one multiplier and can sit next to it;
* then ``acc + bias`` is rounded, shifted, clamped (ReLU) and saturated into the output
  register, the stream's payload.

A result sits in the lane of the input column that completes its window: result ``(y, x)``
comes with column ``x + K - 1``, lane ``(x + K - 1) mod P``. With ``P > 1`` the first beat of
a row may hold fewer than ``P`` results; ``keep`` marks the lanes that hold one.
"""

from __future__ import annotations

from amaranth import C, Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .params import BASE_LATENCY, ConvParams, sum_width

__all__ = [
    "READ_TO_OUTPUT_LATENCY",
    "datapath_latency",
    "WindowMAC",
    "beat_tags",
    "first_result_beat",
    "output_layout",
]

#: Cycles from a beat issued to the line buffers (cycle ``t``) to its results being valid on
#: the stream (cycle ``t + 3``) with no extra pipeline stage: read data (1), window + MAC
#: register (1), output register (1).
READ_TO_OUTPUT_LATENCY = BASE_LATENCY


def datapath_latency(params: ConvParams) -> int:
    """Cycles from issue to results valid: ``READ_TO_OUTPUT_LATENCY + params.pipeline``."""
    return READ_TO_OUTPUT_LATENCY + params.pipeline


def output_layout(out_width: int, lanes: int = 1) -> data.StructLayout:
    """Payload of the output stream.

    One lane: ``{value: signed(out_width), last: 1}``. ``lanes > 1``: ``{value:
    ArrayLayout(signed(out_width), lanes), keep: lanes, last: 1}``, lane 0 in the low bits;
    ``keep[p]`` is set when lane ``p`` holds a result. ``last`` marks the frame's last beat.
    """
    if lanes == 1:
        return data.StructLayout({"value": signed(out_width), "last": unsigned(1)})
    return data.StructLayout(
        {
            "value": data.ArrayLayout(signed(out_width), lanes),
            "keep": unsigned(lanes),
            "last": unsigned(1),
        }
    )


def first_result_beat(kernel: int, lanes: int) -> int:
    """Index within a row of the first beat that completes a window: ``(K - 1) // P``."""
    return (kernel - 1) // lanes


def beat_tags(m: Module, beat, kernel: int, lanes: int) -> tuple[Signal, Signal]:
    """``(emit, keep)`` of the beat with index ``beat`` within its row.

    ``emit``: the beat completes at least one window (a column ``>= K - 1``). ``keep``: the
    lanes whose column is ``>= K - 1``; all ones except in the row's first result beat.
    """
    first = first_result_beat(kernel, lanes)
    partial = (kernel - 1) % lanes
    emit = Signal(name="emit")
    keep = Signal(lanes, name="keep")
    full = (1 << lanes) - 1
    m.d.comb += [
        emit.eq(beat >= first),
        keep.eq(Mux(beat == first, Const(full & ~((1 << partial) - 1), lanes), full)),
    ]
    return emit, keep


def _tree_sum(terms, levels: int | None = None):
    """Balanced adder tree (Amaranth widens each sum, so nothing overflows).

    With ``levels``, stop after that many levels of adders and return the partial sums.
    """
    terms = list(terms)
    level = 0
    while len(terms) > 1 and (levels is None or level < levels):
        paired = [a + b for a, b in zip(terms[0::2], terms[1::2], strict=False)]
        if len(terms) % 2:
            paired.append(terms[-1])
        terms = paired
        level += 1
    return terms[0] if levels is None else terms


class PipelineStages:
    """Registers that all load on a pipeline's ``advance`` (the window datapath's, a front
    end's, a CNN conv layer's)."""

    def __init__(self, m: Module, advance):
        self.m = m
        self.advance = advance

    def reg(self, value, name: str, *, init: int = 0, reset_less: bool = False) -> Signal:
        """``value`` registered on ``advance``."""
        value = Value.cast(value)
        out = Signal(value.shape(), name=name, init=init, reset_less=reset_less)
        with self.m.If(self.advance):
            self.m.d.sync += out.eq(value)
        return out


class WindowMAC(wiring.Component):
    """Window registers, ``P`` MAC trees, scaling and the output register.

    Parameters
    ----------
    params : ConvParams
        Engine parameters (kernel, pixels per clock, widths, shift, rounding, bias, ReLU).

    Attributes
    ----------
    issue : Signal, in
        A beat was issued to the line buffers this cycle (sampled when ``advance``).
    emit : Signal, in
        That beat completes at least one window: produce an output beat.
    keep : Signal(P), in
        The lanes of that beat that hold a result (see :func:`beat_tags`).
    last : Signal, in
        That output beat is the last one of the frame.
    column : View of ArrayLayout(P·pixel_width, K), in
        The beat's ``K`` window rows (row 0 = top), ``P`` pixels each, lane 0 in the low
        bits; valid the cycle after ``issue`` (the front end's read data).
    coefficients : Signal, in
        The ``K·K`` signed coefficients packed row-major, coefficient ``(i, j)`` at bits
        ``[(i·K + j)·coef_width +: coef_width]`` (the coefficient ROM's word).
    advance : Signal, out
        ``~o.valid | o.ready``: the pipeline moves. Combinationally depends on ``o.ready``;
        the front end's read enable and scan must use it.
    o : stream.Signature(output_layout(out_width, P)), out
        One beat per issued ``emit`` beat, :func:`datapath_latency` cycles after the issue when
        never stalled. ``o.valid`` is registered and stays high until the transfer.
    """

    def __init__(self, params: ConvParams):
        self.params = params
        k, lanes = params.kernel, params.pixels_per_clock
        super().__init__(
            {
                "issue": In(1),
                "emit": In(1),
                "keep": In(lanes),
                "last": In(1),
                "column": In(data.ArrayLayout(lanes * params.pixel_width, k)),
                "coefficients": In(k * k * params.coef_width),
                "advance": Out(1),
                "o": Out(stream.Signature(output_layout(params.out_width, lanes))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        p = self.params
        k, lanes, pw, cw = p.kernel, p.pixels_per_clock, p.pixel_width, p.coef_width

        advance = self.advance
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)

        stages = PipelineStages(m, advance)
        reg = stages.reg

        # Stage-0 tags follow the read into stage 1.
        shift = reg(self.issue, "s1_shift")
        emit = reg(self.issue & self.emit, "s1_emit")
        keep = reg(self.keep, "s1_keep")
        last = reg(self.issue & self.last, "s1_last")
        column = [self.column[i] for i in range(k)]
        if p.pipeline >= 2:  # the row selection gets a stage of its own
            column = [reg(column[i], f"column{i}") for i in range(k)]
            shift, emit, keep, last = (
                reg(shift, "c_shift"),
                reg(emit, "c_emit"),
                reg(keep, "c_keep"),
                reg(last, "c_last"),
            )

        # hist[i][j]: window row i, column j (0 = oldest) of the K-1 previous columns.
        hist = [[Signal(pw, name=f"hist{i}_{j}") for j in range(k - 1)] for i in range(k)]
        window = []
        for i in range(k):
            row = [*hist[i], *(column[i].word_select(q, pw) for q in range(lanes))]
            window.append(row)
            with m.If(advance & shift):
                m.d.sync += [hist[i][j].eq(row[lanes + j]) for j in range(k - 1)]

        coefs = [
            self.coefficients.word_select(i * k + j, cw).as_signed()
            for i in range(k)
            for j in range(k)
        ]
        # lane_window[lane][i][j]: the pixel lane `lane` multiplies by coefficient (i, j).
        lane_window = [
            [[window[i][lane + j] for j in range(k)] for i in range(k)] for lane in range(lanes)
        ]
        if p.pipeline >= 4:  # a copy of each lane's window, next to its multipliers
            lane_window = [
                [
                    [
                        _lane_reg(stages, lane_window[lane][i][j], lane, f"w{lane}_{i}_{j}")
                        for j in range(k)
                    ]
                    for i in range(k)
                ]
                for lane in range(lanes)
            ]
            emit, keep, last = reg(emit, "w_emit"), reg(keep, "w_keep"), reg(last, "w_last")
        lane_products = []
        for lane in range(lanes):
            products = [
                Cat(lane_window[lane][i][j], C(0, 1)).as_signed() * coefs[i * k + j]
                for i in range(k)
                for j in range(k)
            ]
            if p.pipeline >= 1:
                products = [reg(t, f"product{lane}_{n}") for n, t in enumerate(products)]
            lane_products.append(products)
        if p.pipeline >= 1:
            emit, keep, last = reg(emit, "m_emit"), reg(keep, "m_keep"), reg(last, "m_last")
        if p.pipeline >= 3:  # two adder levels, a register, the rest of the tree
            lane_products = [
                [reg(t, f"partial{lane}_{n}") for n, t in enumerate(_tree_sum(terms, 2))]
                for lane, terms in enumerate(lane_products)
            ]
            emit, keep, last = reg(emit, "t_emit"), reg(keep, "t_keep"), reg(last, "t_last")
        accs = []
        for lane, terms in enumerate(lane_products):
            acc = Signal(signed(sum_width(pw, cw, k)), name=f"acc{lane}")
            with m.If(advance):
                m.d.sync += acc.eq(_tree_sum(terms))
            accs.append(acc)
        s2_valid = reg(emit, "s2_valid")
        s2_keep = reg(keep, "s2_keep")
        s2_last = reg(last, "s2_last")

        # Stage 2: bias and rounding constant in one add, shift, ReLU, saturation.
        offset = p.bias
        if p.rounding == "half_up" and p.shift > 0:
            offset += 1 << (p.shift - 1)
        lo, hi = -(1 << (p.out_width - 1)), (1 << (p.out_width - 1)) - 1
        floor = 0 if p.relu else lo
        results = []
        for lane, acc in enumerate(accs):
            biased = Signal(signed(max(p.acc_width, p.shift + 1) + 1), name=f"biased{lane}")
            m.d.comb += biased.eq(acc + offset)
            shifted = Signal(signed(max(2, len(biased) - p.shift)), name=f"shifted{lane}")
            m.d.comb += shifted.eq(biased >> p.shift)
            clamped = Signal(signed(p.out_width), name=f"clamped{lane}")
            m.d.comb += clamped.eq(Mux(shifted > hi, hi, Mux(shifted < floor, floor, shifted)))
            results.append(clamped)
        payload = self.o.payload
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(s2_valid), payload.last.eq(s2_last)]
            if lanes == 1:
                m.d.sync += payload.value.eq(results[0])
            else:
                m.d.sync += [payload.value[q].eq(results[q]) for q in range(lanes)]
                m.d.sync += payload.keep.eq(s2_keep)
        return m


def _lane_reg(stages: PipelineStages, value, lane: int, name: str) -> Signal:
    """``value`` registered on ``advance`` for one lane, a copy synthesis keeps apart.

    Synthesis merges flip-flops, bit by bit, that have the same input, enable, reset and
    initial value, which would fold the lanes' copies of one pixel back into one register
    driving several lanes' multipliers. So the lanes' copies differ in every bit: odd
    lanes start at all ones, even lanes at zero, and lanes 2 and 3 have no reset (they
    are reset-less flip-flops, lanes 0 and 1 reset ones): four distinct kinds for the
    four lanes. Neither value reaches an output: the beat tags are reset to "no result"
    and every copy is loaded with its beat.
    """
    init = (1 << len(Value.cast(value))) - 1 if lane % 2 else 0
    return stages.reg(value, name, init=init, reset_less=lane % 4 >= 2)
