"""The CNN blocks (rtl_gen/cnn) in Amaranth's simulator against tb/golden/cnn.py.

Every block: random arrivals with an always-ready sink (outputs bit-exact, every acceptance and
every output transfer on the model's cycle), a full-rate source (the same, and the engine's
frame counts for the conv layer), random input gaps with output backpressure (bit-exact).
"""

import re

import numpy as np
import pytest
from amaranth import Elaboratable, Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from rtl_gen.cnn import ConvLayer, Flatten, MaxPool2
from tb.golden.cnn import (
    conv_layer,
    conv_layer_latency,
    conv_layer_times,
    flatten_elements,
    flatten_times,
    maxpool2,
    maxpool2_times,
    pixel_beats,
)
from tb.golden.conv import conv_cycles, first_output_cycle


def _pack(values, bits):
    word = 0
    for c, v in enumerate(values):
        word |= (int(v) & ((1 << bits) - 1)) << (c * bits)
    return word


def run_stream(dut, beats, bits, n_out, arrivals, backpressure=0.0, seed=0):
    """Offer pixel ``k`` (channel values ``beats[k]``) from ``max(arrivals[k], accepted + 1)``.

    Returns the acceptance cycles, the output payloads and their transfer cycles.
    """
    rng = np.random.default_rng(seed)
    words = [_pack(b, bits) for b in beats]
    accepted, outputs, out_cycles = [], [], []

    async def bench(ctx):
        k, cycle = 0, 0
        while len(outputs) < n_out or k < len(words):
            offer = k < len(words) and cycle >= max(arrivals[k], accepted[-1] + 1 if k else 0)
            ctx.set(dut.i.valid, int(offer))
            if k < len(words):
                ctx.set(dut.i.payload.value.as_value(), words[k])
            ready = backpressure == 0 or rng.random() >= backpressure
            ctx.set(dut.o.ready, int(ready))
            fire_in = offer and ctx.get(dut.i.ready)
            if ready and ctx.get(dut.o.valid):
                outputs.append(ctx.get(dut.o.payload))
                out_cycles.append(cycle)
            if fire_in:
                accepted.append(cycle)
                k += 1
            await ctx.tick()
            cycle += 1
            assert cycle < 50 * (len(words) + n_out) + 200, "timeout"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return np.array(accepted), outputs, np.array(out_cycles)


def _arrivals(count, rng, mode):
    if mode == "full":
        return np.zeros(count, dtype=np.int64)
    return np.cumsum(rng.choice([0, 1, 1, 1, 2, 3, 7], size=count))


def _pow2_weights(rng, shape, zeros=0.4):
    w = rng.choice([-1, 1], size=shape) * (1 << rng.integers(0, 7, size=shape))
    w[rng.random(shape) < zeros] = 0
    return w


# (H, W, C_in, C_out, K, N, arithmetic)
CONV_CASES = [
    (12, 12, 1, 2, 3, 2, dict(shift=6, activation="relu", out_bits=8)),
    (9, 11, 2, 3, 3, 3, dict(shift=7, activation="none", out_bits=8)),
    (12, 12, 3, 4, 3, 4, dict(shift=8, activation="relu", out_bits=6, levels_per_stage=3)),
    (9, 11, 2, 3, 3, 5, dict(shift=-1, activation="none", out_bits=12)),
    (9, 11, 2, 2, 5, 4, dict(shift=8, activation="relu", out_bits=8)),
    (3, 3, 2, 2, 3, 3, dict(shift=4, activation="none", out_bits=9)),  # W = H = K
    (4, 5, 2, 3, 1, 1, dict(shift=0, activation="relu", out_bits=8, levels_per_stage=1)),
    (7, 8, 2, 6, 3, 4, dict(shift=7, activation="relu", out_bits=8)),  # two window copies
]


def _conv_id(case):
    h, w, ci, co, k, n, _ = case
    return f"{h}x{w}_c{ci}to{co}_k{k}n{n}"


@pytest.mark.parametrize("case", CONV_CASES, ids=_conv_id)
def test_conv_layer(case):
    h, w, cin, cout, k, n, arith = case
    rng = np.random.default_rng(sum(case[:6]))
    weights = _pow2_weights(rng, (cout, cin, k, k))
    weights[0, :, :, :] = 0  # a filter pruned away entirely: its output is the bias alone
    weights[-1, 0, k // 2, k // 2] = 64
    bias = rng.integers(-3000, 3000, size=cout)
    frames = rng.integers(0, 256, size=(3, cin, h, w))
    dut_args = dict(height=h, width=w, in_channels=cin, weights=weights, bias=bias, line_buffers=n)
    levels = arith.get("levels_per_stage", 2)
    arith_golden = {key: v for key, v in arith.items() if key != "levels_per_stage"}
    want = pixel_beats(conv_layer(frames, weights, bias, **arith_golden))
    out_pixels = (h - k + 1) * (w - k + 1)
    want_last = [int((i + 1) % out_pixels == 0) for i in range(len(want))]
    beats = pixel_beats(frames)
    latency = conv_layer_latency(weights, levels)

    for mode, backpressure in (("full", 0.0), ("random", 0.0), ("random", 0.35)):
        dut = ConvLayer(**dut_args, **arith)
        assert dut.latency == latency
        arrivals = _arrivals(len(beats), rng, mode)
        accepted, got, out_cycles = run_stream(
            dut, beats, 8, len(want), arrivals, backpressure, seed=len(beats)
        )
        assert [list(p.value) for p in got] == want.tolist()
        assert [p.last for p in got] == want_last
        if backpressure:
            continue
        model_in, model_out = conv_layer_times(arrivals, h, w, k, n, latency)
        assert accepted.tolist() == model_in.tolist()
        assert out_cycles.tolist() == model_out.tolist()
        if mode == "full" and dut.stages <= 3:  # the engine's own frame and latency counts
            # (the layer's row-scan front end has no read register)
            cycles = conv_cycles(w, h, k, n, frames=3, pipeline=dut.pipeline, read_register=False)
            assert out_cycles[-1] - accepted[0] + 1 == cycles
            first = first_output_cycle(w, h, k, n, pipeline=dut.pipeline, read_register=False)
            assert out_cycles[0] - accepted[0] == first


@pytest.mark.parametrize(
    "h,w,channels,signed",
    [(12, 12, 3, False), (9, 11, 2, False), (5, 7, 1, True), (3, 3, 2, False), (2, 2, 1, False)],
)
def test_maxpool2(h, w, channels, signed):
    rng = np.random.default_rng(h * w + channels)
    lo, hi = (-128, 128) if signed else (0, 256)
    frames = rng.integers(lo, hi, size=(3, channels, h, w))
    beats = pixel_beats(frames)
    want = pixel_beats(maxpool2(frames))
    per_frame = (h // 2) * (w // 2)
    for mode, backpressure in (("full", 0.0), ("random", 0.0), ("random", 0.5)):
        dut = MaxPool2(height=h, width=w, channels=channels, bits=8, signed=signed)
        arrivals = _arrivals(len(beats), rng, mode)
        accepted, got, out_cycles = run_stream(
            dut, beats, 8, len(want), arrivals, backpressure, seed=h
        )
        assert [list(p.value) for p in got] == want.tolist()
        assert [p.last for p in got] == [int((i + 1) % per_frame == 0) for i in range(len(want))]
        if not backpressure:
            model_in, model_out = maxpool2_times(arrivals, h, w)
            assert accepted.tolist() == model_in.tolist()
            assert out_cycles.tolist() == model_out.tolist()


@pytest.mark.parametrize("drop_zeros", [False, True])
@pytest.mark.parametrize("h,w,channels,signed", [(3, 4, 4, False), (2, 3, 3, True)])
def test_flatten(h, w, channels, signed, drop_zeros):
    rng = np.random.default_rng(h * w * channels + drop_zeros)
    lo, hi = (-8, 8) if signed else (0, 16)
    frames = rng.integers(lo, hi, size=(3, channels, h, w))
    frames[rng.random(frames.shape) < 0.5] = 0  # many zeros, some pixels all zero
    frames[0, :, 1, 1] = 0
    frames[1, :, -1, -1] = 0  # the frame's last element is zero: still sent
    beats = pixel_beats(frames)
    want = flatten_elements(frames, drop_zeros)
    counts = [
        channels
        if not drop_zeros
        else int(np.count_nonzero(b)) + int((k + 1) % (h * w) == 0 and b[-1] == 0)
        for k, b in enumerate(beats.tolist())
    ]
    for mode, backpressure in (("full", 0.0), ("random", 0.0), ("random", 0.4)):
        dut = Flatten(
            height=h, width=w, channels=channels, bits=5, signed=signed, drop_zeros=drop_zeros
        )
        arrivals = _arrivals(len(beats), rng, mode)
        accepted, got, out_cycles = run_stream(
            dut, beats, 5, len(want), arrivals, backpressure, seed=h
        )
        assert [(p.index, p.value, p.last) for p in got] == want
        if not backpressure:
            model_in, model_out = flatten_times(arrivals, counts)
            assert accepted.tolist() == model_in.tolist()
            assert out_cycles.tolist() == model_out.tolist()


GOOD_CONV = dict(
    height=8, width=8, in_channels=1, weights=np.ones((2, 1, 3, 3), int), bias=[0, 0], shift=2
)
W = "weights"
BAD = [
    (ConvLayer, {W: np.full((2, 1, 3, 3), 3)}, "weights[0, 0, 0, 0] = 3 is not 0 or ±2**e"),
    (ConvLayer, {"weight_format": "int8"},
     "weight_format must be one of ('pow2', 'dense'), not 'int8'"),
    (
        ConvLayer,
        {W: np.ones((2, 2, 3, 3), int)},
        "weights must have shape (out_channels, in_channels=1, K, K), not (2, 2, 3, 3)",
    ),
    (ConvLayer, {W: np.ones((2, 1, 2, 2), int)}, "weights must have an odd kernel size"),
    (ConvLayer, {W: np.full((2, 1, 3, 3), 0.5)}, "weights must be integers, not dtype float64"),
    (ConvLayer, dict(line_buffers=1), "line_buffers must be an integer >= 2, not 1"),
    (ConvLayer, dict(height=2), "height must be an integer >= 3, not 2"),
    (ConvLayer, dict(width=5000), "width must be an integer <= 4096, not 5000"),
    (ConvLayer, dict(in_channels=0), "in_channels must be an integer >= 1, not 0"),
    (ConvLayer, dict(bias=[1, 2, 3]), "bias must be 2 integers (one per filter), not int64 of"),
    (ConvLayer, dict(shift=1.5), "shift must be an integer, not 1.5"),
    (ConvLayer, dict(activation="tanh"), "activation must be one of ('relu', 'none'), not 'tanh'"),
    (ConvLayer, dict(activation="none", out_bits=1), "out_bits must be an integer >= 2, not 1"),
    (ConvLayer, dict(in_bits=0), "in_bits must be an integer >= 1, not 0"),
    (ConvLayer, dict(levels_per_stage=0), "levels_per_stage must be an integer >= 1, not 0"),
    (MaxPool2, dict(height=1), "height must be an integer >= 2, not 1"),
    (MaxPool2, dict(channels=0), "channels must be an integer >= 1, not 0"),
    (MaxPool2, dict(signed=1), "signed must be a bool, not 1"),
    (Flatten, dict(bits=0), "bits must be an integer >= 1, not 0"),
    (Flatten, dict(drop_zeros="yes"), "drop_zeros must be a bool, not 'yes'"),
]  # fmt: skip
GOOD = {
    ConvLayer: GOOD_CONV,
    MaxPool2: dict(height=4, width=4, channels=2, bits=8),
    Flatten: dict(height=4, width=4, channels=2, bits=8),
}


@pytest.mark.parametrize("block,override,message", BAD, ids=[m[:40] for _, _, m in BAD])
def test_bad_parameters(block, override, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        block(**(GOOD[block] | override))


def _arith_cells(weights):
    from amaranth.back import rtlil

    dut = ConvLayer(height=8, width=8, in_channels=2, weights=weights, bias=[1, -2, 3], shift=3)
    text = rtlil.convert(dut)
    return {op: len(re.findall(rf"cell \${op}\b", text)) for op in ("add", "sub", "mul", "neg")}


def test_shift_and_add_only_and_pruned_weights_cost_nothing():
    """One adder or subtractor per nonzero weight, no multiplier, no negation."""
    rng = np.random.default_rng(5)
    weights = _pow2_weights(rng, (3, 2, 3, 3), zeros=0.3)
    empty = _arith_cells(np.zeros_like(weights))  # the front end's counters only
    cells = _arith_cells(weights)
    assert cells["mul"] == cells["neg"] == 0
    assert cells["add"] + cells["sub"] - empty["add"] - empty["sub"] == np.count_nonzero(weights)


@pytest.mark.parametrize("h,w,cin,cout,n", [(28, 28, 1, 4, 4), (12, 12, 4, 10, 4)])
def test_conv_layer_lenet_sizes(h, w, cin, cout, n):
    """LeNet-5's conv1 and conv2 (K = 5, half the weights pruned), one frame at full rate."""
    rng = np.random.default_rng(h + cout)
    weights = _pow2_weights(rng, (cout, cin, 5, 5), zeros=0.5)
    bias = rng.integers(-500, 500, size=cout)
    frame = rng.integers(0, 256, size=(1, cin, h, w))
    want = pixel_beats(conv_layer(frame, weights, bias, 7, "relu", 8))
    dut = ConvLayer(
        height=h, width=w, in_channels=cin, weights=weights, bias=bias, shift=7, line_buffers=n
    )
    arrivals = np.zeros(h * w, dtype=np.int64)
    accepted, got, out_cycles = run_stream(dut, pixel_beats(frame), 8, len(want), arrivals)
    assert [list(p.value) for p in got] == want.tolist()
    model_in, model_out = conv_layer_times(arrivals, h, w, 5, n, dut.latency)
    assert accepted.tolist() == model_in.tolist()
    assert out_cycles.tolist() == model_out.tolist()
    assert out_cycles[-1] + 1 == conv_cycles(w, h, 5, n, pipeline=dut.pipeline, read_register=False)


class _Chain(Elaboratable):
    """conv -> pool -> conv -> pool -> flatten, wired stream to stream."""

    def __init__(self, blocks):
        self.blocks = blocks
        self.i, self.o = blocks[0].i, blocks[-1].o

    def elaborate(self, platform):
        m = Module()
        for n, block in enumerate(self.blocks):
            m.submodules[f"b{n}"] = block
        for a, b in zip(self.blocks, self.blocks[1:], strict=False):
            wiring.connect(m, a.o, b.i)
        return m


def test_chain_values_and_composed_cycles():
    """The blocks chained as in LeNet-5 (small): bit-exact with stalls; at full rate no block
    stalls its upstream one, so the composed cycle models give every element's cycle."""
    rng = np.random.default_rng(11)
    w1, w2 = _pow2_weights(rng, (2, 1, 3, 3)), _pow2_weights(rng, (2, 2, 3, 3))
    b1, b2 = rng.integers(-300, 300, 2), rng.integers(-300, 300, 2)
    frames = rng.integers(0, 256, size=(2, 1, 14, 14))
    conv = dict(shift=5, activation="relu", out_bits=8)
    x1 = conv_layer(frames, w1, b1, **conv)
    x2 = conv_layer(maxpool2(x1), w2, b2, **conv)
    want = flatten_elements(maxpool2(x2), drop_zeros=False)

    def chain():
        return _Chain(
            [
                ConvLayer(height=14, width=14, in_channels=1, weights=w1, bias=b1, **conv),
                MaxPool2(height=12, width=12, channels=2, bits=8),
                ConvLayer(height=6, width=6, in_channels=2, weights=w2, bias=b2, **conv),
                MaxPool2(height=4, width=4, channels=2, bits=8),
                Flatten(height=2, width=2, channels=2, bits=8),
            ]
        )

    beats = pixel_beats(frames)
    arrivals = _arrivals(len(beats), rng, "random")
    _, got, _ = run_stream(chain(), beats, 8, len(want), arrivals, backpressure=0.3, seed=3)
    assert [(p.index, p.value, p.last) for p in got] == want

    dut = chain()
    arrivals = np.zeros(len(beats), dtype=np.int64)
    accepted, got, out_cycles = run_stream(dut, beats, 8, len(want), arrivals)
    assert [(p.index, p.value, p.last) for p in got] == want
    t_in, t = conv_layer_times(arrivals, 14, 14, 3, 2, dut.blocks[0].latency)
    assert t_in.tolist() == accepted.tolist()
    t_in, t2 = maxpool2_times(t, 12, 12)
    assert t_in.tolist() == t.tolist()  # accepted as offered: the composition is exact
    t_in, t3 = conv_layer_times(t2, 6, 6, 3, 2, dut.blocks[2].latency)
    assert t_in.tolist() == t2.tolist()
    t_in, t4 = maxpool2_times(t3, 4, 4)
    assert t_in.tolist() == t3.tolist()
    t_in, t5 = flatten_times(t4, [2] * len(t4))
    assert t_in.tolist() == t4.tolist()
    assert out_cycles.tolist() == t5.tolist()
