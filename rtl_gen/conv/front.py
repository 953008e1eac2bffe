"""What the two front ends of the convolution engine share: their signature."""

from __future__ import annotations

from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .params import ConvParams

__all__ = ["front_signature"]


def front_signature(params: ConvParams) -> wiring.Signature:
    """Ports between a front end (line buffers and their control) and :class:`WindowMAC`.

    ``i``: the engine's input beats (``P`` pixels, lane 0 in the low bits). ``advance``: the
    window pipeline moves this cycle. ``issue``/``emit``/``keep``/``last``: a beat was issued
    this cycle and its tags (see :class:`rtl_gen.conv.window.WindowMAC`). ``column``: that
    beat's ``K`` window rows, valid the cycle after ``issue``.
    """
    lanes, k = params.pixels_per_clock, params.kernel
    word = lanes * params.pixel_width
    return wiring.Signature(
        {
            "i": In(stream.Signature(word)),
            "advance": In(1),
            "issue": Out(1),
            "emit": Out(1),
            "keep": Out(lanes),
            "last": Out(1),
            "column": Out(data.ArrayLayout(word, k)),
        }
    )
