"""Top of the streaming N-line-buffer convolution engine."""

from __future__ import annotations

import dataclasses

from amaranth import Module, Mux, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .line_buffers import BufferControl, LineBufferStore
from .params import ConvParams
from .window import READ_TO_OUTPUT_LATENCY, WindowMAC, output_layout

__all__ = ["ConvEngine", "pack_coefficients"]


def pack_coefficients(params: ConvParams) -> int:
    """The coefficient ROM word: ``K·K`` two's-complement fields, row-major, (0, 0) lowest."""
    mask = (1 << params.coef_width) - 1
    word = 0
    for index, coef in enumerate(params.coefficients.reshape(-1).tolist()):
        word |= (int(coef) & mask) << (index * params.coef_width)
    return word


class ConvEngine(wiring.Component):
    """Streaming 2-D convolution ("valid" region) over ``N`` rotating line buffers.

    Pixels enter in raster order, one per transfer; results leave in raster order,
    ``(H - K + 1) × (W - K + 1)`` per frame, the last one of each frame marked. Frames follow
    each other with no gap and no separator: the engine counts rows and columns.

    Parameters
    ----------
    params : ConvParams, optional
        Validated parameters. Keyword arguments build one (``ConvEngine(width=28, height=28,
        line_buffers=4)``) or override fields of ``params``. A bad value raises
        :class:`ValueError` here, before any elaboration.

    Attributes
    ----------
    i : stream.Signature(pixel_width), in
        Pixels, unsigned. ``i.ready`` is high while the line buffer being filled is free, and
        depends only on registered state (never on ``i.valid``). It falls at the start of a
        row when all ``N`` buffers hold rows the window still needs: with ``N == K`` this
        happens for every row after the first ``K`` of a frame, for as long as the window
        takes to finish its current output row (about ``W`` cycles); with ``N >= K + 1`` and
        an always-ready sink it never falls.
    o : stream.Signature(output_layout(out_width)), out
        ``payload.value`` (signed ``out_width``) and ``payload.last`` (end of frame).
        ``o.valid`` is registered. Backpressure (``o.ready`` low) stalls the whole window
        pipeline and, through the held line buffers, eventually the input.

    Notes
    -----
    Timing, for a full-rate source and an always-ready sink:

    * a row is complete in the cycle its last pixel is accepted; the window starts reading the
      next output row's first column on the following cycle (when its ``K`` rows are held and
      the window is idle), reads one column per cycle, and the output for column ``c`` is
      valid :data:`latency` (3) cycles after column ``c`` was read;
    * a buffer is released the cycle after the window read its last column, so that, with
      ``N == K``, a frame takes ``(2H - K + 1)·W + 3`` cycles and, with ``N >= K + 1``,
      ``(H + 1)·W + 3`` cycles from the first pixel accepted to the last result transferred
      (both ends included). ``tb.golden.conv.conv_cycles`` gives the exact count for any
      number of frames.
    """

    #: Cycles from a column read to its result being valid on ``o``.
    latency = READ_TO_OUTPUT_LATENCY

    def __init__(self, params: ConvParams | None = None, /, **kwargs):
        try:
            if params is None:
                params = ConvParams(**kwargs)
            elif not isinstance(params, ConvParams):
                raise TypeError(f"params must be a ConvParams, not {params!r}")
            elif kwargs:
                params = dataclasses.replace(params, **kwargs)
        except (TypeError, ValueError):
            self._MustUse__silence = True  # never built: no "created but never used" warning
            raise
        self.params = params
        super().__init__(
            {
                "i": In(stream.Signature(params.pixel_width)),
                "o": Out(stream.Signature(output_layout(params.out_width))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        p = self.params
        w, h, k, n = p.width, p.height, p.kernel, p.line_buffers

        m.submodules.coef_rom = rom = memory.Memory(
            shape=k * k * p.coef_width, depth=1, init=[pack_coefficients(p)]
        )
        rom_read = rom.read_port(domain="sync")
        m.submodules.store = store = LineBufferStore(n, w, p.pixel_width)
        m.submodules.control = ctrl = BufferControl(n, k)
        m.submodules.mac = mac = WindowMAC(p)
        wiring.connect(m, wiring.flipped(self.o), mac.o)
        m.d.comb += [mac.coefficients.eq(rom_read.data), mac.rows.eq(store.r_data)]

        # Fill side: write accepted pixels into the free buffer, column by column.
        fill_col = Signal(range(w))
        accept = Signal()
        m.d.comb += [
            self.i.ready.eq(ctrl.can_fill),
            accept.eq(self.i.valid & self.i.ready),
            store.w_en.eq(accept),
            store.w_sel.eq(ctrl.fill_sel),
            store.w_addr.eq(fill_col),
            store.w_data.eq(self.i.payload),
            ctrl.row_done.eq(accept & (fill_col == w - 1)),
        ]
        with m.If(accept):
            m.d.sync += fill_col.eq(Mux(fill_col == w - 1, 0, fill_col + 1))

        # Compute side: scan the columns of the K held rows, one per cycle.
        active = Signal()
        col = Signal(range(w))
        out_row = Signal(range(h - k + 1))
        cur = Signal(range(w))
        last_col = Signal()
        last_row = Signal()
        issue = Signal()
        m.d.comb += [
            cur.eq(Mux(active, col, 0)),
            last_col.eq(cur == w - 1),
            last_row.eq(out_row == h - k),
            issue.eq((active | ctrl.can_compute) & mac.advance),
            store.r_en.eq(mac.advance),
            store.r_addr.eq(cur),
            mac.issue.eq(issue),
            mac.emit.eq(cur >= k - 1),
            mac.last.eq(last_col & last_row),
            mac.base.eq(ctrl.base),
        ]
        with m.If(issue):
            with m.If(last_col):
                m.d.sync += [active.eq(0), col.eq(0)]
                m.d.sync += out_row.eq(Mux(last_row, 0, out_row + 1))
                m.d.comb += ctrl.release_rows.eq(Mux(last_row, k, 1))
            with m.Else():
                m.d.sync += [active.eq(1), col.eq(cur + 1)]
        return m
