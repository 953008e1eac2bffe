"""Pixel stream to the fully connected layers' element stream, in ``hwc`` order."""

from __future__ import annotations

from amaranth import Const, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from rtl_gen.bits import at_most_one, lowest, one_hot_index, one_hot_select
from rtl_gen.conv.params import MAX_HEIGHT, MAX_WIDTH
from rtl_gen.neuron import element_layout

from .pixels import check_int, pixel_layout, value_shape

__all__ = ["Flatten"]


class Flatten(wiring.Component):
    """Send each pixel's ``C`` channels as elements ``{index, value, last}``, one per cycle.

    Element ``index = (h·W + w)·C + c`` is channel ``c`` of pixel ``(h, w)`` (docs/bundle.md,
    ``order "hwc"``); ``last`` marks index ``H·W·C - 1``. The format is
    :func:`rtl_gen.neuron.element_layout`, what :class:`rtl_gen.layer.Layer` takes.

    With ``drop_zeros`` an element whose value is 0 is not sent (the frame's last element
    always is) and costs no cycle: a priority encoder picks the next channel to send.

    Parameters
    ----------
    height, width, channels : int
        Shape of a frame (``>= 1`` each).
    bits : int
        Width of a value; ``signed`` picks its signedness.
    drop_zeros : bool
        Leave zero elements out.

    Attributes
    ----------
    i : stream.Signature(pixel_layout(C, shape)), in
        Pixels in raster order (``last`` ignored: the block counts). A pixel accepted in cycle
        ``t`` leaves as its ``n`` elements in cycles ``t + 1 .. t + n`` (ready sink); ``i.ready``
        is high when no pixel is held or the held pixel's final element is being transferred
        (``o.ready``): it falls for ``n - 1`` cycles after each accepted pixel with ``n >= 2``
        elements. One gate after ``o.ready`` (with two registers), never from ``i.valid``.
    o : stream.Signature(element_layout(H·W·C, shape)), out
        ``o.valid`` (a register) and the payload (a multiplexer of registers) depend on
        registers only.
    """

    latency = 1

    def __init__(
        self,
        *,
        height: int,
        width: int,
        channels: int,
        bits: int,
        signed: bool = False,
        drop_zeros: bool = False,
    ):
        try:
            self.height = check_int("height", height, 1, MAX_HEIGHT)
            self.width = check_int("width", width, 1, MAX_WIDTH)
            self.channels = check_int("channels", channels, 1)
            self.bits = check_int("bits", bits, 1)
            for name, flag in (("signed", signed), ("drop_zeros", drop_zeros)):
                if not isinstance(flag, bool):
                    raise ValueError(f"{name} must be a bool, not {flag!r}")
        except ValueError:
            self._MustUse__silence = True
            raise
        self.drop_zeros = drop_zeros
        self.shape = value_shape(self.bits, signed)
        self.features = self.height * self.width * self.channels
        super().__init__(
            {
                "i": In(stream.Signature(pixel_layout(self.channels, self.shape))),
                "o": Out(stream.Signature(element_layout(self.features, self.shape))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        cs, bits = self.channels, self.bits
        pixels = self.height * self.width

        held = Signal(cs * bits)
        todo = Signal(cs)  # channels of the held pixel still to send
        base = Signal(range(self.features))  # index of the held pixel's channel 0
        held_last = Signal()  # the held pixel is the frame's last
        pixel_no = Signal(range(pixels))  # pixels accepted in this frame
        next_base = Signal(range(self.features))  # index of the next pixel's channel 0

        # Whether a channel is left and whether at most one is (the pixel's final one) are
        # registers, loaded with ``todo``, so ``i.ready`` is one gate after ``o.ready`` and the
        # reader's FIFO does not wait for a search through the channels. After a pop ``final``
        # is "at most two were left", from the count of channels left (a register), not from
        # a search of ``todo`` once its lowest channel is gone: two carry chains in a row.
        busy = Signal()
        final = Signal(init=1)
        left_count = Signal(range(cs + 1))

        # The lowest channel still to send, one-hot and as a number: registers loaded with
        # ``todo``, so the element's value is an AND-OR of registers and its index one adder,
        # not a priority search through the channels in front of the FIFO's write port. After
        # a pop the rest is ``todo & ~first``: one carry chain (the next lowest), not two.
        first = Signal(cs)
        sel = Signal(range(cs))

        value = one_hot_select(first, [held.word_select(c, bits) for c in range(cs)])

        m.d.comb += [
            self.o.valid.eq(busy),
            self.o.payload.index.eq(base + sel),
            self.o.payload.value.eq(value),
            self.o.payload.last.eq(held_last & final),
            self.i.ready.eq(~busy | (self.o.ready & final)),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [
                todo.eq(todo & ~first),
                first.eq(lowest(todo & ~first)),
                sel.eq(one_hot_index(lowest(todo & ~first), len(sel))),
                busy.eq(~final),
                final.eq(left_count <= 2),
                left_count.eq(left_count - 1),
            ]

        pixel = Value.cast(self.i.payload.value)
        frame_last = pixel_no == pixels - 1
        send = Signal(cs)
        for c in range(cs):
            keep = pixel.word_select(c, bits).any() if self.drop_zeros else Const(1)
            if c == cs - 1:
                keep = keep | frame_last
            m.d.comb += send[c].eq(keep)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [
                held.eq(pixel),
                todo.eq(send),
                first.eq(lowest(send)),
                sel.eq(one_hot_index(lowest(send), len(sel))),
                busy.eq(send.any()),
                final.eq(at_most_one(send)),
                left_count.eq(sum(send[c] for c in range(cs))),
                held_last.eq(frame_last),
                pixel_no.eq(Mux(frame_last, 0, pixel_no + 1)),
                base.eq(next_base),
                next_base.eq(Mux(frame_last, 0, next_base + cs)),
            ]
        return m
