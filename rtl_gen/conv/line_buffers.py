"""Line-buffer store and its rotation control.

The store is ``N`` separate :class:`amaranth.lib.memory.Memory` instances of ``W`` entries, each
with one write port and one synchronous read port, so that each maps onto one block RAM (or a
LUT RAM for small ``W``). The control unit decides which buffer is filled and which ``K``
buffers the window reads; buffers are used in ring order, because rows arrive in order and are
released in order.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BufferControl", "LineBufferStore"]


def _index_shape(count: int):
    return unsigned(max(1, (count - 1).bit_length()))


class LineBufferStore(wiring.Component):
    """``N`` line buffers of ``W`` pixels each.

    Parameters
    ----------
    line_buffers : int
        Number ``N`` of buffers.
    width : int
        Entries per buffer: one image row of ``W`` pixels.
    pixel_width : int
        Bits per pixel.

    Attributes
    ----------
    w_en : Signal, in
        Write ``w_data`` to entry ``w_addr`` of buffer ``w_sel`` at the next clock edge.
    w_sel, w_addr, w_data : Signal, in
        Buffer index, column and pixel of the write.
    r_en : Signal, in
        Read enable of all buffers. When low, ``r_data`` keeps its value (the read side's
        stall).
    r_addr : Signal, in
        Column read from every buffer.
    r_data : View of ArrayLayout(pixel, N), out
        Entry ``r_addr`` of each buffer, one cycle after ``r_en`` was high (synchronous,
        non-transparent read: block-RAM inferable). A write and a read of the same entry in
        one cycle return the old pixel; the control unit never lets that happen on a buffer
        whose data is used.
    """

    def __init__(self, line_buffers: int, width: int, pixel_width: int):
        self.line_buffers = line_buffers
        self.width = width
        self.pixel_width = pixel_width
        addr = _index_shape(width)
        super().__init__(
            {
                "w_en": In(1),
                "w_sel": In(_index_shape(line_buffers)),
                "w_addr": In(addr),
                "w_data": In(pixel_width),
                "r_en": In(1),
                "r_addr": In(addr),
                "r_data": Out(data.ArrayLayout(pixel_width, line_buffers)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        for n in range(self.line_buffers):
            buf = memory.Memory(shape=self.pixel_width, depth=self.width, init=[])
            m.submodules[f"line{n}"] = buf
            wp = buf.write_port()
            rp = buf.read_port(domain="sync")
            m.d.comb += [
                wp.addr.eq(self.w_addr),
                wp.data.eq(self.w_data),
                wp.en.eq(self.w_en & (self.w_sel == n)),
                rp.addr.eq(self.r_addr),
                rp.en.eq(self.r_en),
                self.r_data[n].eq(rp.data),
            ]
        return m


class BufferControl(wiring.Component):
    """Rotation control of ``N`` line buffers: which one fills, which ``K`` the window reads.

    Each buffer is either *filling* (free, or receiving the current row) or *held* (a complete
    row the window still needs). Held rows are consecutive image rows, oldest at ring index
    ``base``; the buffer being filled is ``fill_sel``, the one after the newest held row.

    Parameters
    ----------
    line_buffers : int
        Number ``N`` of buffers.
    kernel : int
        Rows ``K`` the window needs at once.

    Attributes
    ----------
    row_done : Signal, in
        The fill side writes the last pixel of a row this cycle: that buffer becomes held.
    release_rows : Signal, in
        Number of oldest held rows the window releases this cycle (0, 1, or ``K`` at the end of
        a frame). They may be filled again from the next cycle.
    held : Signal, out
        Number of held rows.
    base : Signal, out
        Ring index of the oldest held row: the window's top row.
    fill_sel : Signal, out
        Ring index of the buffer being filled.
    can_fill : Signal, out
        ``held < N``: the buffer at ``fill_sel`` is free. Low when all buffers are held; with
        ``N == K`` this is the case whenever the window is working.
    can_compute : Signal, out
        ``held >= K``: the ``K`` rows from ``base`` on are complete, an output row can start.
        Both flags are registered-state functions, they never depend on this cycle's inputs.
    """

    def __init__(self, line_buffers: int, kernel: int):
        self.line_buffers = line_buffers
        self.kernel = kernel
        super().__init__(
            {
                "row_done": In(1),
                "release_rows": In(range(kernel + 1)),
                "held": Out(range(line_buffers + 1)),
                "base": Out(_index_shape(line_buffers)),
                "fill_sel": Out(_index_shape(line_buffers)),
                "can_fill": Out(1),
                "can_compute": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        n = self.line_buffers
        held = Signal(range(n + 1))
        base = Signal.like(self.base)
        fill_sel = Signal.like(self.fill_sel)

        m.d.sync += held.eq(held + self.row_done - self.release_rows)
        next_base = Signal(range(2 * n))
        m.d.comb += next_base.eq(base + self.release_rows)
        m.d.sync += base.eq(Mux(next_base >= n, next_base - n, next_base))
        with m.If(self.row_done):
            m.d.sync += fill_sel.eq(Mux(fill_sel == n - 1, 0, fill_sel + 1))

        m.d.comb += [
            self.held.eq(held),
            self.base.eq(base),
            self.fill_sel.eq(fill_sel),
            self.can_fill.eq(held < n),
            self.can_compute.eq(held >= self.kernel),
        ]
        return m
