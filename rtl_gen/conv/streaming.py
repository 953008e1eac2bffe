"""Front end of the streaming mode (``N = K - 1``): the incoming beat is the window's bottom row."""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import wiring

from .front import front_signature
from .line_buffers import LineBufferStore, rotate_rows
from .params import ConvParams
from .window import beat_tags

__all__ = ["StreamingRows"]


class StreamingRows(wiring.Component):
    """``K - 1`` line buffers read and written at the incoming beat's column.

    Row ``g`` of the input (counted since reset) is written into buffer ``g mod (K - 1)``. When
    a beat of row ``r`` at column beat ``c`` is accepted, every buffer is read at ``c`` and the
    beat is written into the buffer that held row ``r - K + 1``, at the same entry, in the same
    cycle: the read returns the old row (read-before-write), which is the window's top row. So
    the window's ``K`` rows are the ``K - 1`` buffers (oldest first) and the incoming beat,
    and a result leaves :func:`~rtl_gen.conv.window.datapath_latency` cycles after the beat
    that completes its window.

    There is no elasticity: ``i.ready`` is the window pipeline's ``advance``
    (``~o.valid | o.ready``), so output backpressure stalls the input in the same cycle.
    ``i.ready`` depends combinationally on the engine's ``o.ready``, never on ``i.valid``.

    See :func:`rtl_gen.conv.front.front_signature` for the ports.
    """

    def __init__(self, params: ConvParams):
        if params.line_buffers != params.kernel - 1:
            raise ValueError(
                f"StreamingRows needs line_buffers == kernel - 1, not {params.line_buffers}"
            )
        self.params = params
        super().__init__(front_signature(params))

    def elaborate(self, platform):
        m = Module()
        p = self.params
        beats, h, k, n = p.beats_per_row, p.height, p.kernel, p.line_buffers
        lanes = p.pixels_per_clock

        col = Signal(range(beats))
        row = Signal(range(h))
        accept = Signal()
        last_col = Signal()
        emit, keep = beat_tags(m, col, k, lanes)
        m.d.comb += [
            self.i.ready.eq(self.advance),
            accept.eq(self.i.valid & self.advance),
            last_col.eq(col == beats - 1),
            self.issue.eq(accept),
            self.emit.eq(emit & (row >= k - 1)),
            self.keep.eq(keep),
            self.last.eq(last_col & (row == h - 1)),
        ]
        with m.If(accept):
            m.d.sync += col.eq(Mux(last_col, 0, col + 1))
            with m.If(last_col):
                m.d.sync += row.eq(Mux(row == h - 1, 0, row + 1))

        s1_beat = Signal.like(self.i.payload)
        with m.If(self.advance):
            m.d.sync += s1_beat.eq(self.i.payload)
        m.d.comb += self.column[k - 1].eq(s1_beat)
        if n == 0:  # K = 1: the window is the incoming beat alone
            return m

        m.submodules.store = store = LineBufferStore(n, beats, lanes * p.pixel_width)
        fill_sel = Signal(range(max(2, n)))  # holds the oldest row; written during this row
        with m.If(accept & last_col):
            m.d.sync += fill_sel.eq(Mux(fill_sel == n - 1, 0, fill_sel + 1))
        m.d.comb += [
            store.w_en.eq(accept),
            store.w_sel.eq(fill_sel),
            store.w_addr.eq(col),
            store.w_data.eq(self.i.payload),
            store.r_en.eq(self.advance),
            store.r_addr.eq(col),
        ]
        s1_sel = Signal.like(fill_sel)
        with m.If(self.advance):
            m.d.sync += s1_sel.eq(fill_sel)
        rows = rotate_rows(m, list(store.r_data), s1_sel, n)
        m.d.comb += [self.column[i].eq(rows[i]) for i in range(n)]
        return m
