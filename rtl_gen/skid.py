"""Register slices for ``amaranth.lib.stream``: every output is a register."""

from __future__ import annotations

from amaranth import Module, Shape, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SkidBuffer", "SkidFifo"]


class SkidBuffer(wiring.Component):
    """Cuts every combinational path through a stream: ``o.valid``, ``o.payload`` and
    ``i.ready`` all come from registers, at full throughput.

    Parameters
    ----------
    shape : shape-like or Layout
        Payload shape.

    Attributes
    ----------
    i : stream.Signature(shape), in
        ``i.ready`` is high while the spare register is empty; it never depends on ``i.valid``
        or on ``o.ready`` in the same cycle.
    o : stream.Signature(shape), out
        A payload accepted in cycle ``t`` is offered from cycle ``t + 1`` (one cycle of
        latency). While ``o.ready`` stays high, one payload passes per cycle. When ``o.ready``
        falls, the payload accepted in that cycle waits in the spare register; after the
        transfer of the output register's payload in cycle ``t``, the next one is offered in
        cycle ``t + 1``.
    """

    def __init__(self, shape):
        if not isinstance(shape, data.Layout):
            shape = Shape.cast(shape)
        self.shape = shape
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        width = Shape.cast(self.shape).width
        spare_valid = Signal()
        spare = Signal(width)
        out_valid = Signal()
        out = Signal(width)
        take_in = self.i.valid & self.i.ready
        m.d.comb += [
            self.i.ready.eq(~spare_valid),
            self.o.valid.eq(out_valid),
            self.o.payload.eq(out),
        ]
        with m.If(~out_valid | self.o.ready):  # the output register may load
            with m.If(spare_valid):
                m.d.sync += [out.eq(spare), out_valid.eq(1), spare_valid.eq(0)]
            with m.Else():
                m.d.sync += out_valid.eq(take_in)
                with m.If(take_in):
                    m.d.sync += out.eq(self.i.payload)
        with m.Elif(take_in):  # the sink stalls: park the payload
            m.d.sync += [spare.eq(self.i.payload), spare_valid.eq(1)]
        return m


class SkidFifo(wiring.Component):
    """A register slice with ``depth - 1`` spare entries: :class:`SkidBuffer`'s timing, more room.

    Parameters
    ----------
    shape : shape-like or Layout
        Payload shape.
    depth : int
        Entries in all, ``>= 2`` (the output register and ``depth - 1`` spares).

    Attributes
    ----------
    i : stream.Signature(shape), in
        ``i.ready`` is high while a spare entry is free; it comes from a register (the count of
        spares in use), never from ``i.valid`` or ``o.ready`` in the same cycle.
    o : stream.Signature(shape), out
        A payload accepted in cycle ``t`` into an empty buffer is offered from cycle ``t + 1``;
        payloads leave in the order they came, one per cycle while ``o.ready`` stays high.
        ``o.valid`` and ``o.payload`` are registers.
    """

    def __init__(self, shape, depth: int):
        if not isinstance(depth, int) or depth < 2:
            self._MustUse__silence = True
            raise ValueError(f"depth must be an integer >= 2, not {depth!r}")
        if not isinstance(shape, data.Layout):
            shape = Shape.cast(shape)
        self.shape = shape
        self.depth = depth
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        width = Shape.cast(self.shape).width
        spares = [Signal(width, name=f"spare{k}") for k in range(self.depth - 1)]
        used = Signal(range(self.depth))  # spares in use, spares[0] the oldest
        head_valid = Signal()
        head = Signal(width)
        take_in = self.i.valid & self.i.ready
        m.d.comb += [
            self.i.ready.eq(used < len(spares)),
            self.o.valid.eq(head_valid),
            self.o.payload.eq(head),
        ]
        with m.If(~head_valid | self.o.ready):  # the output register may load
            with m.If(used != 0):
                m.d.sync += [head.eq(spares[0]), head_valid.eq(1), used.eq(used - 1 + take_in)]
                for k, spare in enumerate(spares):
                    with m.If(take_in & (used == k + 1)):
                        m.d.sync += spare.eq(self.i.payload)
                    if k + 1 < len(spares):
                        with m.Elif(used > k + 1):
                            m.d.sync += spare.eq(spares[k + 1])
            with m.Else():
                m.d.sync += head_valid.eq(take_in)
                with m.If(take_in):
                    m.d.sync += head.eq(self.i.payload)
        with m.Elif(take_in):  # the sink stalls: park the payload in the first free spare
            m.d.sync += used.eq(used + 1)
            for k, spare in enumerate(spares):
                with m.If(used == k):
                    m.d.sync += spare.eq(self.i.payload)
        return m
