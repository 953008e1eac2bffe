"""Line-buffer store and its rotation control.

The store is ``N`` separate :class:`amaranth.lib.memory.Memory` instances of ``W / P`` entries
of ``P`` pixels, each with one write port and one synchronous read port, so that each maps onto
one block RAM (or a LUT RAM for small ``W``). The control unit decides which buffer is filled
and which ``K`` buffers the window reads; buffers are used in ring order, because rows arrive in
order and are released in order. :func:`rotate_rows` puts the buffers' read data into window-row
order.
"""

from __future__ import annotations

import operator
from functools import reduce

from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BufferControl", "LineBufferStore", "rotate_rows"]


def _index_shape(count: int):
    return unsigned(max(1, (count - 1).bit_length()))


def rotate_rows(
    m: Module, rows, first, count: int, name: str = "row", *, and_or: bool = False
) -> list[Signal]:
    """``count`` signals, ``out[i] = rows[(first + i) mod len(rows)]``: window-row order.

    ``first`` is the ring index of the buffer that holds the oldest row the window needs.
    With ``and_or`` the selection is written as an OR of the inputs each masked by its
    ``first == b`` (the same logic as the ``Switch``, as continuous assignments): needed when
    every input is a register, because Icarus Verilog evaluates the ``always @*`` process of
    a ``Switch`` only once one of its inputs changes, and registers that keep their initial
    value would leave the outputs X.
    """
    ring = len(rows)
    width = len(rows[0])
    out = [Signal(width, name=f"{name}{i}") for i in range(count)]
    if and_or:
        for i in range(count):
            terms = [Mux(first == b, rows[(b + i) % ring], 0) for b in range(ring)]
            m.d.comb += out[i].eq(reduce(operator.or_, terms))
        return out
    with m.Switch(first):
        for b in range(ring):
            with m.Case(b):
                m.d.comb += [out[i].eq(rows[(b + i) % ring]) for i in range(count)]
    return out


class LineBufferStore(wiring.Component):
    """``N`` line buffers, each one image row of ``depth`` words.

    Parameters
    ----------
    line_buffers : int
        Number ``N`` of buffers, ``>= 1``.
    depth : int
        Entries per buffer: ``W / P`` beats of one image row.
    word_width : int
        Bits per entry: ``P`` pixels.

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
    r_data : View of ArrayLayout(word, N), out
        Entry ``r_addr`` of each buffer, one cycle after ``r_en`` was high (synchronous,
        non-transparent read: block-RAM inferable). A write and a read of the same entry in
        one cycle return the old word (read-before-write): the streaming mode relies on it,
        the row-scan modes never read a buffer that is being filled.
    """

    def __init__(self, line_buffers: int, depth: int, word_width: int):
        self.line_buffers = line_buffers
        self.depth = depth
        self.word_width = word_width
        addr = _index_shape(depth)
        super().__init__(
            {
                "w_en": In(1),
                "w_sel": In(_index_shape(line_buffers)),
                "w_addr": In(addr),
                "w_data": In(word_width),
                "r_en": In(1),
                "r_addr": In(addr),
                "r_data": Out(data.ArrayLayout(word_width, line_buffers)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        for n in range(self.line_buffers):
            buf = memory.Memory(shape=self.word_width, depth=self.depth, init=[])
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
