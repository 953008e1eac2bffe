"""Products of the MAC unit: a real multiplier, or a shift and a negation for power-of-two weights.

Both are combinational; the accumulator register lives in :class:`rtl_gen.neuron.Neuron`.
"""

from __future__ import annotations

from amaranth import Module, Mux, Shape, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["MulProduct", "ShiftProduct"]


def _product_width(x_shape: Shape, magnitude_bits: int) -> int:
    # signed product of x (unsigned widened by one sign bit) and a signed weight
    return x_shape.width + (0 if x_shape.signed else 1) + magnitude_bits


class MulProduct(wiring.Component):
    """``p = w * x`` with a multiplier (dense and codebook builds).

    Members
    -------
    x : ``In(x_shape)``
    w : ``In(signed(weight_bits))``
    p : ``Out(signed(...))`` the exact product, same cycle.
    """

    def __init__(self, *, x_shape, weight_bits: int):
        x_shape = Shape.cast(x_shape)
        if not isinstance(weight_bits, int) or weight_bits < 2:
            raise TypeError(f"weight_bits must be an integer >= 2, not {weight_bits!r}")
        width = x_shape.width + weight_bits + (0 if x_shape.signed else 1)
        super().__init__({"x": In(x_shape), "w": In(signed(weight_bits)), "p": Out(signed(width))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.p.eq(self.x * self.w)
        return m


class ShiftProduct(wiring.Component):
    """``p = 0`` if ``zero`` else ``±(x << exp)``: shift and negate, no multiplier (pow2 build).

    Members
    -------
    x : ``In(x_shape)``
    zero : ``In(1)`` the weight is 0 (pruned or filler entry).
    negative : ``In(1)`` the weight is ``-2**exp``.
    exp : ``In(unsigned(exp_bits))``
    p : ``Out(signed(...))``, same cycle.
    """

    def __init__(self, *, x_shape, exp_bits: int):
        x_shape = Shape.cast(x_shape)
        if not isinstance(exp_bits, int) or exp_bits < 0:
            raise TypeError(f"exp_bits must be a non-negative integer, not {exp_bits!r}")
        width = _product_width(x_shape, (1 << exp_bits) - 1 + 1)
        super().__init__(
            {
                "x": In(x_shape),
                "zero": In(1),
                "negative": In(1),
                "exp": In(unsigned(max(exp_bits, 1))),
                "p": Out(signed(width)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        shifted = self.x << self.exp
        m.d.comb += self.p.eq(Mux(self.zero, 0, Mux(self.negative, -shifted, shifted)))
        return m
