"""Saturation and ReLU bounds hit exactly: results at hi, hi + 1, lo, lo - 1, 0 and -1.

Random images almost never land on a bound, so a bound moved by one (``> hi`` written
``> hi + 1``) would pass every other test. Here the inputs are chosen so that the value
before saturation takes each bound and its neighbours, and the hardware (Amaranth's simulator
running the generated design) must equal the golden model bit for bit.
"""

import numpy as np
import pytest
from amaranth.sim import Simulator

from rtl_gen.conv import ConvParams
from rtl_gen.neuron.activation import CircuitActivation
from tb.golden.conv import conv2d
from tb.golden.mlp import activate, requantise

from .test_conv_hw import _amaranth_run


def _engine_outputs(params: ConvParams, image: np.ndarray) -> list[int]:
    """Every result of one frame, in raster order, from the engine in Amaranth's simulator."""
    beats, _ = _amaranth_run(params, image, seed=0)
    return [v for values, keep, _ in beats for lane, v in enumerate(values) if keep >> lane & 1]


@pytest.mark.parametrize("line_buffers", [0, 1, 2])
@pytest.mark.parametrize("relu", [False, True])
def test_conv_engine_saturates_exactly_at_the_bounds(line_buffers, relu):
    """K = 1, so a result is ``coefficient · pixel + bias``, shift 0, 8-bit output.

    With coefficient +1 and bias -128 pixels 0..255 give -128..127 (in range), with bias
    -129 / +1 they reach lo - 1 and hi + 1; with coefficient -1 they sweep downwards. Every
    value from lo - 2 to hi + 2 is produced, 0 and -1 among them.
    """
    out_width = 8
    cases = [(1, -129), (1, 1), (-1, 0), (-1, 127)]
    image = np.arange(256, dtype=np.int64).reshape(16, 16)
    driven = set()
    lo, hi = -(1 << (out_width - 1)), (1 << (out_width - 1)) - 1
    for coefficient, bias in cases:
        params = ConvParams(
            width=16,
            height=16,
            kernel=1,
            line_buffers=line_buffers,
            coefficients=[[coefficient]],
            bias=bias,
            shift=0,
            out_width=out_width,
            relu=relu,
        )
        want = conv2d(image, params).reshape(-1)
        driven.update((coefficient * image + bias).reshape(-1).tolist())
        got = _engine_outputs(params, image)
        assert got == want.tolist(), (coefficient, bias)
        assert max(got) <= hi and min(got) >= (0 if relu else lo)
    assert driven >= {hi, hi + 1, hi + 2, lo, lo - 1, lo - 2, 0, -1}


@pytest.mark.parametrize("pixels_per_clock", [2, 4])
def test_conv_engine_bounds_in_every_lane(pixels_per_clock):
    """The same bounds through the P-lane datapath with K = 3 and rounding (shift 2)."""
    coefs = np.zeros((3, 3), dtype=np.int64)
    coefs[1, 1] = 4  # acc = 4·pixel: after the shift by 2 the result is pixel + bias / 4
    image = np.arange(256, dtype=np.int64).reshape(8, 32) % 256
    for bias in (-4 * 129, 4):
        params = ConvParams(
            width=32,
            height=8,
            kernel=3,
            line_buffers=2,
            pixels_per_clock=pixels_per_clock,
            coefficients=coefs,
            bias=bias,
            shift=2,
            out_width=8,
        )
        assert _engine_outputs(params, image) == conv2d(image, params).reshape(-1).tolist()


@pytest.mark.parametrize("activation,shift", [("none", 0), ("relu", 0), ("none", 2), ("relu", 3)])
def test_neuron_activation_saturates_exactly_at_the_bounds(activation, shift):
    output_bits = 8
    signed = activation == "none"
    lo = -(1 << (output_bits - 1)) if signed else 0
    hi = (1 << (output_bits - 1)) - 1 if signed else (1 << output_bits) - 1
    # Accumulators whose requantised value is every integer from lo - 3 to hi + 3 (and 0, -1).
    targets = np.arange(min(lo, -1) - 3, hi + 4)
    accs = targets << shift if shift >= 0 else targets
    dut = CircuitActivation(
        acc_bits=16, shift=shift, activation=activation, output_bits=output_bits
    )
    got = []

    async def bench(ctx):
        for acc in accs.tolist():
            ctx.set(dut.acc, acc)
            got.append(ctx.get(dut.y))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    q = requantise(accs, shift)
    assert set(q.tolist()) >= {hi, hi + 1, lo, lo - 1, 0, -1}
    want = activate(q, activation, output_bits).tolist()
    assert got == want
