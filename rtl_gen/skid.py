"""A two-entry register slice for ``amaranth.lib.stream``: every output is a register."""

from __future__ import annotations

from amaranth import Module, Shape, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SkidBuffer"]


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
