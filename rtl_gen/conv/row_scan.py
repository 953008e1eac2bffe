"""Front end of the row-scan modes (``N >= K``): fill a free buffer, scan the ``K`` held rows."""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import wiring

from .front import front_signature
from .line_buffers import BufferControl, LineBufferStore, rotate_rows
from .params import ConvParams
from .window import PipelineStages, beat_tags

__all__ = ["RowScan"]


class RowScan(wiring.Component):
    """Fill side and column scan of the ``N >= K`` line-buffer modes.

    Input beats are written into the free buffer at their beat index; a row is *held* once its
    last beat is written. When ``K`` rows are held and the scan is idle, the scan reads beats
    ``0 .. W/P - 1`` of all buffers, one per cycle (when ``advance``), starting the cycle after
    the row completed; after the last beat of output row ``r`` it releases row ``r`` (the
    frame's last output row releases its ``K`` rows), free again from the next cycle.

    ``i.ready`` is high while the buffer being filled is free; it depends only on registered
    state. With ``N == K`` it falls for every row after the first ``K`` of a frame, for as long
    as the scan takes to finish its current output row (``W/P`` cycles); with ``N >= K + 1``
    and an always-ready sink it never falls.

    With ``read_register`` the buffers' read data is registered (on ``advance``) before the
    row selection, so a block RAM's data output drives nothing but that register; ``issue``
    and its tags then leave one stage later too, so that ``column`` is still valid the cycle
    after ``issue``: one cycle of latency more, the scan itself unchanged
    (:attr:`ConvParams.read_stage`).

    See :func:`rtl_gen.conv.front.front_signature` for the ports.
    """

    def __init__(self, params: ConvParams, *, read_register: bool = False):
        if params.line_buffers < params.kernel:
            raise ValueError(f"RowScan needs line_buffers >= kernel, not {params.line_buffers}")
        self.params = params
        self.read_register = bool(read_register)
        super().__init__(front_signature(params))

    def elaborate(self, platform):
        m = Module()
        p = self.params
        beats, h, k, n = p.beats_per_row, p.height, p.kernel, p.line_buffers
        lanes = p.pixels_per_clock
        stages = PipelineStages(m, self.advance)

        m.submodules.store = store = LineBufferStore(n, beats, lanes * p.pixel_width)
        m.submodules.control = ctrl = BufferControl(n, k)

        # Fill side: write accepted beats into the free buffer, beat by beat.
        fill_col = Signal(range(beats))
        accept = Signal()
        m.d.comb += [
            self.i.ready.eq(ctrl.can_fill),
            accept.eq(self.i.valid & self.i.ready),
            store.w_en.eq(accept),
            store.w_sel.eq(ctrl.fill_sel),
            store.w_addr.eq(fill_col),
            store.w_data.eq(self.i.payload),
            ctrl.row_done.eq(accept & (fill_col == beats - 1)),
        ]
        with m.If(accept):
            m.d.sync += fill_col.eq(Mux(fill_col == beats - 1, 0, fill_col + 1))

        # Compute side: scan the beats of the K held rows, one per cycle.
        active = Signal()
        col = Signal(range(beats))
        out_row = Signal(range(h - k + 1))
        cur = Signal(range(beats))
        last_col = Signal()
        last_row = Signal()
        issue = Signal()
        emit, keep = beat_tags(m, cur, k, lanes)
        m.d.comb += [
            cur.eq(Mux(active, col, 0)),
            last_col.eq(cur == beats - 1),
            last_row.eq(out_row == h - k),
            issue.eq((active | ctrl.can_compute) & self.advance),
            store.r_en.eq(self.advance),
            store.r_addr.eq(cur),
        ]
        tags = [issue, emit, keep, last_col & last_row]
        if self.read_register:  # the tags follow the read data through its register
            names = ("r_issue", "r_emit", "r_keep", "r_last")
            tags = [stages.reg(tag, name) for tag, name in zip(tags, names, strict=True)]
        m.d.comb += [
            port.eq(tag)
            for port, tag in zip((self.issue, self.emit, self.keep, self.last), tags, strict=True)
        ]
        with m.If(issue):
            with m.If(last_col):
                m.d.sync += [active.eq(0), col.eq(0)]
                m.d.sync += out_row.eq(Mux(last_row, 0, out_row + 1))
                m.d.comb += ctrl.release_rows.eq(Mux(last_row, k, 1))
            with m.Else():
                m.d.sync += [active.eq(1), col.eq(cur + 1)]

        # Read data arrives the cycle after the issue: rotate it into window-row order with
        # the ring index the issue saw.
        base = stages.reg(ctrl.base, "s1_base")
        r_data = list(store.r_data)
        if self.read_register:
            r_data = [stages.reg(r_data[b], f"r_data{b}") for b in range(n)]
            base = stages.reg(base, "s2_base")
        rows = rotate_rows(m, r_data, base, k, and_or=self.read_register)
        m.d.comb += [self.column[i].eq(rows[i]) for i in range(k)]
        return m
