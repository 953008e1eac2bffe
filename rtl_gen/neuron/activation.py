"""Requantisation and activation units of a neuron.

Both units take the neuron's accumulator (``acc``, signed) and apply the bundle's requantisation
``q = (acc + 2**(shift-1)) >> shift`` (arithmetic shift, round half up; ``acc << -shift`` when
``shift < 0``), then the activation:

:class:`CircuitActivation` (combinational, no latency)
    ``"relu"``: ``clip(q, 0, 2**output_bits - 1)``, unsigned.
    ``"none"``: ``clip(q, -2**(output_bits-1), 2**(output_bits-1) - 1)``, signed (hard saturation).

:class:`LutActivation` (one ROM, synchronous read: one cycle of latency)
    ``"sigmoid"`` / ``"tanh"``. The table input is ``q`` saturated to ``lut_bits`` signed bits,
    i.e. the real range ``[-2**(lut_bits-1), 2**(lut_bits-1) - 1] * 2**-frac_bits``
    (``[-8, 7.9375]`` for 8 bits and 4 fractional bits); the table has ``2**lut_bits`` words
    addressed by the two's complement bits of the saturated ``q``. The output has the same
    ``frac_bits`` fractional bits: ``round_half_up(f(q * 2**-frac_bits) * 2**frac_bits)``
    saturated to ``output_bits``, unsigned for sigmoid and signed for tanh. :func:`lut_table`
    gives the contents.
"""

from __future__ import annotations

import math

from amaranth import Const, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

__all__ = [
    "CircuitActivation",
    "LutActivation",
    "lut_table",
    "output_shape",
    "requantise",
]

LUT_FUNCTIONS = {
    "sigmoid": lambda v: 1.0 / (1.0 + math.exp(-v)),
    "tanh": math.tanh,
}


def output_shape(activation: str, output_bits: int) -> Shape:
    """Shape of an activation's output: unsigned for relu and sigmoid, signed otherwise."""
    if activation in ("relu", "sigmoid"):
        return unsigned(output_bits)
    return signed(output_bits)


def _check(name, value, minimum=1):
    if not isinstance(value, int) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise TypeError(f"{name} must be {kind}, not {value!r}")


def requantise(acc, shift: int):
    """Amaranth expression of the rounding shift (``acc`` is a signed value)."""
    if shift > 0:
        return (acc + (1 << (shift - 1))) >> shift
    if shift < 0:
        return acc << -shift
    return acc


def _saturate(m, value, shape: Shape, name: str):
    out = m.d.comb
    lo = -(1 << (shape.width - 1)) if shape.signed else 0
    hi = (1 << (shape.width - 1)) - 1 if shape.signed else (1 << shape.width) - 1
    result = Signal(shape, name=name)
    out += result.eq(Mux(value < lo, lo, Mux(value > hi, hi, value)))
    return result


def _nonzero(acc, shift: int, shape: Shape):
    """``y != 0`` from the accumulator's bits, without the rounding adder or the saturation:
    ``q >= 1`` is ``acc >= 2**(shift-1)`` (``acc >= 1`` for ``shift <= 0``) and ``q <= -1`` is
    ``acc < -2**(shift-1)`` (``acc < 0``); saturation keeps zero at zero and the rest apart
    from it, except that a 1-bit signed output has no positive value."""
    width = len(acc)
    sign = acc[width - 1]
    if shift > 0:
        # empty when 2**(shift-1) is out of range
        magnitude = acc[min(shift - 1, width - 1) : width - 1]
        positive = ~sign & magnitude.any()
        negative = sign & ~magnitude.all()
    else:
        positive = ~sign & acc[: width - 1].any()
        negative = sign
    if not shape.signed:
        return positive
    return negative | positive if shape.width > 1 else negative


def lut_table(function: str, lut_bits: int, frac_bits: int, output_bits: int) -> list[int]:
    """Words of the activation table, addressed by the two's complement bits of ``q``."""
    if function not in LUT_FUNCTIONS:
        raise ValueError(f"function must be one of {tuple(LUT_FUNCTIONS)}, not {function!r}")
    shape = output_shape(function, output_bits)
    lo = -(1 << (output_bits - 1)) if shape.signed else 0
    hi = (1 << (output_bits - 1)) - 1 if shape.signed else (1 << output_bits) - 1
    words = []
    for addr in range(1 << lut_bits):
        q = addr - (1 << lut_bits) if addr >= 1 << (lut_bits - 1) else addr
        y = math.floor(LUT_FUNCTIONS[function](q / (1 << frac_bits)) * (1 << frac_bits) + 0.5)
        words.append(min(max(y, lo), hi) & ((1 << output_bits) - 1))
    return words


class CircuitActivation(wiring.Component):
    """Requantisation and ReLU or hard saturation, combinational.

    Parameters
    ----------
    acc_bits : int
        Width of the signed accumulator.
    shift : int
        Requantisation shift.
    activation : ``"relu"`` or ``"none"``
    output_bits : int

    Members
    -------
    acc : ``In(signed(acc_bits))``
    y : ``Out(output_shape(activation, output_bits))``, valid in the same cycle.
    nonzero : ``Out(1)``
        ``y != 0``, in the same cycle, from a few of the accumulator's bits (no adder).
    """

    def __init__(self, *, acc_bits: int, shift: int, activation: str, output_bits: int):
        _check("acc_bits", acc_bits, 2)
        _check("output_bits", output_bits)
        if not isinstance(shift, int):
            raise TypeError(f"shift must be an integer, not {shift!r}")
        if activation not in ("relu", "none"):
            raise ValueError(f"a circuit activation is 'relu' or 'none', not {activation!r}")
        self.shift = shift
        self.activation = activation
        super().__init__(
            {
                "acc": In(signed(acc_bits)),
                "y": Out(output_shape(activation, output_bits)),
                "nonzero": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        q = requantise(self.acc, self.shift)
        m.d.comb += [
            self.y.eq(_saturate(m, q, self.y.shape(), "saturated")),
            self.nonzero.eq(_nonzero(self.acc, self.shift, self.y.shape())),
        ]
        return m


class LutActivation(wiring.Component):
    """Requantisation and a sigmoid or tanh table (ROM with synchronous read).

    Parameters
    ----------
    acc_bits, shift, output_bits : int
        As for :class:`CircuitActivation`.
    function : ``"sigmoid"`` or ``"tanh"``
    frac_bits : int
        Fractional bits of ``q`` and of the output.
    lut_bits : int
        Table address width (``2**lut_bits`` words of ``output_bits`` bits).

    Members
    -------
    acc : ``In(signed(acc_bits))``
    y : ``Out(output_shape(function, output_bits))``; ``y`` in cycle ``t + 1`` is the table word
        of ``acc`` in cycle ``t`` (one cycle of latency).
    nonzero : ``Out(1)``
        ``y != 0``, in the same cycle as ``y``.
    nonzero_next : ``Out(1)``
        ``nonzero`` of the next cycle: the table word of ``acc`` in this cycle is not zero (a
        one-bit constant table of the same address, read combinationally).
    """

    def __init__(
        self,
        *,
        acc_bits: int,
        shift: int,
        function: str,
        output_bits: int,
        frac_bits: int,
        lut_bits: int = 8,
    ):
        _check("acc_bits", acc_bits, 2)
        _check("output_bits", output_bits)
        _check("lut_bits", lut_bits, 2)
        _check("frac_bits", frac_bits, 0)
        if not isinstance(shift, int):
            raise TypeError(f"shift must be an integer, not {shift!r}")
        if function not in LUT_FUNCTIONS:
            raise ValueError(f"a LUT activation is one of {tuple(LUT_FUNCTIONS)}, not {function!r}")
        self.shift = shift
        self.function = function
        self.lut_bits = lut_bits
        self.table = lut_table(function, lut_bits, frac_bits, output_bits)
        super().__init__(
            {
                "acc": In(signed(acc_bits)),
                "y": Out(output_shape(function, output_bits)),
                "nonzero": Out(1),
                "nonzero_next": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        q = requantise(self.acc, self.shift)
        address = _saturate(m, q, signed(self.lut_bits), "lut_input")
        m.submodules.table = table = memory.Memory(
            shape=self.y.shape().width, depth=len(self.table), init=self.table
        )
        port = table.read_port()
        m.d.comb += [
            port.addr.eq(address.as_unsigned()),
            self.y.eq(port.data),
            self.nonzero.eq(port.data.any()),
        ]
        # a word select of one constant (a continuous assignment in Verilog, see
        # rtl_gen.neuron.neuron._table), not an ``always @*`` case block
        nonzero_words = sum(int(w != 0) << i for i, w in enumerate(self.table))
        m.d.comb += self.nonzero_next.eq(
            Const(nonzero_words, len(self.table)).word_select(address.as_unsigned(), 1)
        )
        return m
