"""Streaming 2x2, stride-2 max-pool over a pixel stream."""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, Value
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from rtl_gen.conv.params import MAX_HEIGHT, MAX_WIDTH

from .pixels import check_int, pixel_layout, value_shape

__all__ = ["MaxPool2"]


class MaxPool2(wiring.Component):
    """2x2 max-pool, stride 2, no padding: ``y[c, r, s] = max(x[c, 2r:2r+2, 2s:2s+2])``.

    Pixels of the even row of a row pair are paired (columns ``2s``, ``2s + 1``) and their
    channel-wise maximum is written to entry ``s`` of a :class:`amaranth.lib.memory.Memory`
    of ``W // 2`` words; in the odd row, entry ``s`` is read when column ``2s`` is accepted and
    the output is the maximum of it and the two pixels. A trailing odd column or row is
    accepted and dropped. Frames follow each other with no gap; the block counts rows and
    columns (the input ``last`` is ignored).

    Parameters
    ----------
    height, width : int
        Input size, ``>= 2``.
    channels : int
        ``C >= 1``, all in one beat.
    bits : int
        Width of a channel value.
    signed : bool
        Values are signed (compared as such).

    Attributes
    ----------
    i : stream.Signature(pixel_layout(C, shape)), in
        Input pixels in raster order. ``i.ready`` is high except when the pixel would complete
        an output while the output register still holds one the sink has not taken
        (``~o.valid | o.ready`` or a non-completing pixel): it depends combinationally on
        ``o.ready`` and on registers, never on ``i.valid``.
    o : stream.Signature(pixel_layout(C, shape)), out
        ``(H // 2) × (W // 2)`` pixels per frame in raster order, ``last`` on the final one.
        Latency 1: the output is valid the cycle after the pixel ``(2r + 1, 2s + 1)`` is
        accepted; ``o.valid`` and the payload are registers.
    """

    latency = 1

    def __init__(self, *, height: int, width: int, channels: int, bits: int, signed=False):
        try:
            self.height = check_int("height", height, 2, MAX_HEIGHT)
            self.width = check_int("width", width, 2, MAX_WIDTH)
            self.channels = check_int("channels", channels, 1)
            self.bits = check_int("bits", bits, 1)
            if not isinstance(signed, bool):
                raise ValueError(f"signed must be a bool, not {signed!r}")
        except ValueError:
            self._MustUse__silence = True
            raise
        self.shape = value_shape(self.bits, signed)
        layout = pixel_layout(self.channels, self.shape)
        super().__init__({"i": In(stream.Signature(layout)), "o": Out(stream.Signature(layout))})

    def elaborate(self, platform):
        m = Module()
        w, h, cs = self.width, self.height, self.channels
        half = w // 2

        col = Signal(range(w))
        row = Signal(range(h))
        last_col = col == w - 1
        last_row = row == h - 1
        in_pair = col < 2 * half
        odd_col = col[0]
        odd_row = row[0]
        pooled_row = row < 2 * (h // 2)
        completes = Signal()
        accept = Signal()
        m.d.comb += [
            completes.eq(odd_row & odd_col & in_pair),
            self.i.ready.eq(~completes | ~self.o.valid | self.o.ready),
            accept.eq(self.i.valid & self.i.ready),
        ]
        with m.If(accept):
            m.d.sync += col.eq(Mux(last_col, 0, col + 1))
            with m.If(last_col):
                m.d.sync += row.eq(Mux(last_row, 0, row + 1))

        def channel(word, c):
            return (
                Value.cast(word).word_select(c, self.bits).as_signed()
                if self.shape.signed
                else (Value.cast(word).word_select(c, self.bits))
            )

        def maximum(a, b):
            return [
                Mux(channel(a, c) > channel(b, c), channel(a, c), channel(b, c)) for c in range(cs)
            ]

        # One compare per path: entry s of the memory (the even row's maximum of the pair) is
        # read ahead, when the pixel before column 2s of an odd row arrives, and folded into
        # ``left`` with column 2s; column 2s + 1 is then compared once, with ``left``.
        # Only a completing pixel can be refused (i.ready low), so the partial maxima, the
        # memory and ``left`` need not wait for the sink: their enables use i.valid alone (a
        # refused pixel repeats the same read).
        pixel = Value.cast(self.i.payload.value)
        width_bits = len(pixel)
        left = Signal(width_bits)  # column 2s of the current row (odd rows: with entry s)
        m.submodules.partial = mem = memory.Memory(shape=width_bits, depth=half, init=[])
        wp = mem.write_port()
        # transparent for W < 4 only (one entry: the even row's last pair writes the entry the
        # next pixel's read wants); otherwise a write and the read ahead never meet
        rp = mem.read_port(domain="sync", transparent_for=(wp,) if half == 1 else ())
        pair_max = Signal(width_bits)
        next_odd_row = Mux(last_col, ~odd_row & (row != h - 1), odd_row)
        next_pair = Mux(last_col, 0, (col + 1) >> 1)
        m.d.comb += [
            pair_max.eq(Cat(*maximum(left, pixel))),
            wp.addr.eq(col >> 1),
            wp.data.eq(pair_max),
            wp.en.eq(self.i.valid & odd_col & in_pair & ~odd_row & pooled_row),
            rp.addr.eq(next_pair),
            rp.en.eq(self.i.valid & next_odd_row & (last_col | odd_col & (col != 2 * half - 1))),
        ]
        with m.If(self.i.valid & ~odd_col):
            m.d.sync += left.eq(Mux(odd_row, Cat(*maximum(pixel, rp.data)), pixel))

        # The output register loads whenever it may (its enable is not gated by i.valid: a
        # short path from o.ready); o.valid says whether the load was an output.
        advance = ~self.o.valid | self.o.ready
        with m.If(advance):
            m.d.sync += [
                self.o.valid.eq(accept & completes),
                self.o.payload.value.eq(pair_max),
                self.o.payload.last.eq((row == 2 * (h // 2) - 1) & (col == 2 * half - 1)),
            ]
        return m
