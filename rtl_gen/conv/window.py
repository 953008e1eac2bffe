"""The K×K window, multiply-accumulate tree, scaling and output register.

A three-stage pipeline, all stages advancing together on one enable (``advance``) that the
output stream's backpressure drives:

* stage 1 (the cycle after a column read was issued): the ``K`` pixels of the column, taken
  from the line buffers in window-row order, plus the ``K - 1`` previous columns held in
  registers, form the window; ``K·K`` products and their sum are registered as ``acc``;
* stage 2: ``acc + bias`` is rounded, shifted, clamped (ReLU) and saturated into the output
  register;
* the output register is the stream's payload.
"""

from __future__ import annotations

from amaranth import C, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .params import ConvParams, sum_width

__all__ = ["READ_TO_OUTPUT_LATENCY", "WindowMAC", "output_layout"]

#: Cycles from a column read issued (cycle ``t``) to its output being valid on the stream
#: (cycle ``t + 3``): read data (1), window + MAC register (1), output register (1).
READ_TO_OUTPUT_LATENCY = 3


def output_layout(out_width: int) -> data.StructLayout:
    """Payload of the output stream: the signed result and the end-of-frame marker."""
    return data.StructLayout({"value": signed(out_width), "last": unsigned(1)})


def _tree_sum(terms):
    """Balanced adder tree (Amaranth widens each sum, so nothing overflows)."""
    terms = list(terms)
    while len(terms) > 1:
        paired = [a + b for a, b in zip(terms[0::2], terms[1::2], strict=False)]
        if len(terms) % 2:
            paired.append(terms[-1])
        terms = paired
    return terms[0]


class WindowMAC(wiring.Component):
    """Window registers, MAC, scaling and the output register of the convolution engine.

    Parameters
    ----------
    params : ConvParams
        Engine parameters (kernel, line buffers, widths, shift, rounding, bias, ReLU).

    Attributes
    ----------
    issue : Signal, in
        A column read was issued to the line buffers this cycle (sampled when ``advance``).
    emit : Signal, in
        That column completes a window (column index ``>= K - 1``): produce an output.
    last : Signal, in
        That output is the last one of the frame.
    base : Signal, in
        Ring index of the line buffer holding the window's top row, at issue time.
    rows : View of ArrayLayout(pixel, N), in
        Line-buffer read data, valid the cycle after ``issue``.
    coefficients : Signal, in
        The ``K·K`` signed coefficients packed row-major, coefficient ``(i, j)`` at bits
        ``[(i·K + j)·coef_width +: coef_width]`` (the coefficient ROM's word).
    advance : Signal, out
        ``~o.valid | o.ready``: the pipeline moves. Combinationally depends on ``o.ready``;
        the line-buffer read enable and the column scan must use it.
    o : stream.Signature(output_layout(out_width)), out
        One result per issued ``emit`` column, :data:`READ_TO_OUTPUT_LATENCY` cycles after
        the issue when never stalled. ``o.valid`` is registered and stays high until the
        transfer.
    """

    def __init__(self, params: ConvParams):
        self.params = params
        n, k = params.line_buffers, params.kernel
        super().__init__(
            {
                "issue": In(1),
                "emit": In(1),
                "last": In(1),
                "base": In(range(max(2, n))),
                "rows": In(data.ArrayLayout(params.pixel_width, n)),
                "coefficients": In(k * k * params.coef_width),
                "advance": Out(1),
                "o": Out(stream.Signature(output_layout(params.out_width))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        p = self.params
        k, n, pw, cw = p.kernel, p.line_buffers, p.pixel_width, p.coef_width

        advance = self.advance
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)

        # Stage-0 tags follow the read into stage 1.
        s1_shift = Signal()
        s1_emit = Signal()
        s1_last = Signal()
        s1_base = Signal.like(self.base)
        with m.If(advance):
            m.d.sync += [
                s1_shift.eq(self.issue),
                s1_emit.eq(self.issue & self.emit),
                s1_last.eq(self.issue & self.last),
                s1_base.eq(self.base),
            ]

        # Column in window-row order: window row i comes from buffer (base + i) mod N.
        column = [Signal(pw, name=f"column{i}") for i in range(k)]
        with m.Switch(s1_base):
            for b in range(n):
                with m.Case(b):
                    m.d.comb += [column[i].eq(self.rows[(b + i) % n]) for i in range(k)]

        # hist[i][j]: window row i, column j (0 = oldest) of the K-1 previous columns.
        hist = [[Signal(pw, name=f"hist{i}_{j}") for j in range(k - 1)] for i in range(k)]
        with m.If(advance & s1_shift):
            for i in range(k):
                for j in range(k - 1):
                    src = hist[i][j + 1] if j + 1 < k - 1 else column[i]
                    m.d.sync += hist[i][j].eq(src)
        window = [[*hist[i], column[i]] for i in range(k)]

        coefs = [
            self.coefficients.word_select(i * k + j, cw).as_signed()
            for i in range(k)
            for j in range(k)
        ]
        products = [
            Cat(window[i][j], C(0, 1)).as_signed() * coefs[i * k + j]
            for i in range(k)
            for j in range(k)
        ]
        acc = Signal(signed(sum_width(pw, cw, k)))
        s2_valid = Signal()
        s2_last = Signal()
        with m.If(advance):
            m.d.sync += [acc.eq(_tree_sum(products)), s2_valid.eq(s1_emit), s2_last.eq(s1_last)]

        # Stage 2: bias and rounding constant in one add, shift, ReLU, saturation.
        offset = p.bias
        if p.rounding == "half_up" and p.shift > 0:
            offset += 1 << (p.shift - 1)
        biased = Signal(signed(max(p.acc_width, p.shift + 1) + 1))
        m.d.comb += biased.eq(acc + offset)
        shifted = Signal(signed(max(2, len(biased) - p.shift)))
        m.d.comb += shifted.eq(biased >> p.shift)
        lo, hi = -(1 << (p.out_width - 1)), (1 << (p.out_width - 1)) - 1
        clamped = Signal(signed(p.out_width))
        floor = 0 if p.relu else lo
        m.d.comb += clamped.eq(Mux(shifted > hi, hi, Mux(shifted < floor, floor, shifted)))
        with m.If(advance):
            m.d.sync += [
                self.o.valid.eq(s2_valid),
                self.o.payload.value.eq(clamped),
                self.o.payload.last.eq(s2_last),
            ]
        return m
