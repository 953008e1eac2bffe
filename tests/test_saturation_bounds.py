"""Arithmetic at its edges: results at hi, hi + 1, lo, lo - 1, 0 and -1, accumulators at
their extremes.

Random images almost never land on a bound, so a bound moved by one (``> hi`` written
``> hi + 1``) would pass every other test. Here the inputs are chosen so that the value
before saturation takes each bound and its neighbours, in the conv engine, the CNN's conv
layer and whole neurons of every build, and so that every accumulator reaches the extremes
its width is sized for; the hardware (Amaranth's simulator running the generated design) must
equal the golden model bit for bit.
"""

import numpy as np
import pytest
from amaranth.sim import Simulator

from rtl_gen.cnn import ConvLayer
from rtl_gen.conv import ConvParams
from rtl_gen.layer import Layer
from rtl_gen.neuron import LayerWeights
from rtl_gen.neuron.activation import CircuitActivation, LutActivation
from tb.golden import mlp as golden_mlp
from tb.golden.cnn import conv_layer, pixel_beats
from tb.golden.conv import conv2d
from tb.golden.mlp import activate, requantise

from .test_cnn_blocks import run_stream
from .test_conv_hw import _amaranth_run
from .test_neuron_units import dense_vector, stream_vectors


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


@pytest.mark.parametrize("rounding", ["half_up", "truncate"])
@pytest.mark.parametrize("shift", [1, 3])
def test_conv_engine_rounding_edges(rounding, shift):
    """K = 1, coefficient 1: ``acc + bias`` sweeps -128..127, so every residue modulo
    ``2**shift`` is met on both sides of zero, the ties (``x.5``, which half-up rounds up,
    towards +inf also for negatives) among them."""
    image = np.arange(256, dtype=np.int64).reshape(16, 16)
    params = ConvParams(
        width=16,
        height=16,
        kernel=1,
        line_buffers=1,
        coefficients=[[1]],
        bias=-128,
        shift=shift,
        rounding=rounding,
        out_width=8,
    )
    want = conv2d(image, params).reshape(-1)
    assert _engine_outputs(params, image) == want.tolist()
    total = image.reshape(-1) - 128
    half = 1 << (shift - 1)
    ties = total[(total % (1 << shift)) == half]
    assert len(ties) and (ties < 0).any()
    if rounding == "half_up":  # -half rounds to 0, +half to 1 (shift 1: -1 -> 0, 1 -> 1)
        assert want[total == -half][0] == 0 and want[total == half][0] == 1
    else:
        assert want[total == -1][0] == -1 and want[total == (1 << shift) - 1][0] == 0


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("pixels_per_clock", [2, 4])
def test_conv_engine_bounds_in_every_lane(pixels_per_clock, relu):
    """The same bounds through the P-lane datapath with K = 3 and rounding (shift 2): the
    centre pixel alone (coefficient 4) decides a result, ``pixel + bias / 4``; the image
    places each of the critical pixels under every lane's window centre, so that in every
    lane the results take hi, hi + 1, lo, lo - 1, 0 and -1 before the clamp."""
    lanes, k = pixels_per_clock, 3
    coefs = np.zeros((k, k), dtype=np.int64)
    coefs[1, 1] = 4  # acc = 4·pixel: after the shift by 2 the result is pixel + bias / 4
    # bias 4: pixels 126..128 give hi .. hi + 2; bias -4·129: pixels 0..2 give lo - 1 ..
    # lo + 1 and 128, 129 give -1, 0
    critical = [0, 1, 2, 126, 127, 128, 129, 130]
    rows, cols = np.mgrid[0:8, 0:32]
    image = np.array(critical)[(cols + 3 * rows) % len(critical)]
    lo, hi = -128, 127
    for bias in (-4 * 129, 4):
        params = ConvParams(
            width=32,
            height=8,
            kernel=k,
            line_buffers=2,
            pixels_per_clock=lanes,
            coefficients=coefs,
            bias=bias,
            shift=2,
            out_width=8,
            relu=relu,
        )
        assert _engine_outputs(params, image) == conv2d(image, params).reshape(-1).tolist()
        # the values before the clamp, per lane: result (y, x) travels in lane (x + K - 1) % P
        before = image[1:-1, 1:-1] + bias // 4
        lane = (np.arange(params.out_cols) + k - 1) % lanes
        for q in range(lanes):
            seen = set(before[:, lane == q].reshape(-1).tolist())
            assert seen >= ({hi, hi + 1} if bias > 0 else {lo, lo - 1, 0, -1}), q


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


@pytest.mark.parametrize(
    "line_buffers,pipeline,lanes", [(2, 0, 1), (3, 3, 1), (4, 4, 1), (2, 2, 4), (4, 3, 2)]
)
def test_conv_engine_accumulator_extremes(line_buffers, pipeline, lanes):
    """Every coefficient at the bottom (-128) or top (+127) of ``coef_width`` times pixels of
    0 or 255, with the bias at either end of ``bias_width``: the sum of products and
    ``acc + bias`` reach the extremes the widths are sized for (``sum_width``,
    ``acc_width``). With shift 0 and ``out_width = acc_width`` the output is ``acc + bias``
    itself, so a bit lost anywhere on the way shows; with an 8-bit output the same sums must
    saturate to the right end (a wrapped sum would flip it)."""
    k = 3
    image = np.zeros((6, 8), dtype=np.int64)
    image[:3] = 255  # windows over rows 0..2: every pixel 255; rows 3..5: every pixel 0
    image[3:, ::2] = 255  # and windows with a mix
    for coef in (-128, 127):
        for bias_end in (-1, 1):
            base = ConvParams(width=8, height=6, kernel=k, line_buffers=line_buffers)
            bias = (
                -(1 << (base.bias_width - 1)) if bias_end < 0 else (1 << (base.bias_width - 1)) - 1
            )
            for out_width in (base.acc_width, 8):
                params = ConvParams(
                    width=8,
                    height=6,
                    kernel=k,
                    line_buffers=line_buffers,
                    pixels_per_clock=lanes,
                    pipeline=pipeline,
                    coefficients=np.full((k, k), coef),
                    bias=bias,
                    shift=0,
                    out_width=out_width,
                )
                want = conv2d(image, params).reshape(-1)
                got = _engine_outputs(params, image)
                assert got == want.tolist(), (coef, bias, out_width)
            # the all-255 window hits the sum's extreme (9 · coef · 255) exactly
            assert want[0] == np.clip(9 * coef * 255 + bias, -128, 127)


def _cnn_conv_outputs(dut, frames):
    """Every output pixel (all channels) of ``frames`` from the conv layer at full rate."""
    beats = pixel_beats(frames)
    k = dut.kernel
    n_out = len(frames) * (dut.height - k + 1) * (dut.width - k + 1)
    _, got, _ = run_stream(dut, beats, 8, n_out, np.zeros(len(beats), dtype=np.int64))
    return [list(p.value) for p in got]


@pytest.mark.parametrize("weight_format", ["pow2", "dense"])
@pytest.mark.parametrize("activation", ["relu", "none"])
def test_cnn_conv_layer_saturates_exactly_at_the_bounds(weight_format, activation):
    """The CNN's conv layer (rtl_gen/cnn/conv_layer.py), K = 1: filter ``o`` computes
    ``w · pixel + bias[o]``; weights ±1 (shift 0) and ±64 (shift 6, the rounding constant on
    the tree's constant leaf) over pixels 0..255 and biases that move the sweep across
    each bound: every value from lo - 2 to hi + 2 reaches the clamp, 0 and -1 among them."""
    out_bits = 8
    lo, hi = (0, 255) if activation == "relu" else (-128, 127)
    frames = np.arange(256, dtype=np.int64).reshape(1, 1, 16, 16)
    driven = set()
    for magnitude, shift in ((1, 0), (64, 6)):
        # per filter (weight sign, bias in units of the weight): sweeps around lo and hi
        cases = [(1, lo - 2), (1, hi - 253), (-1, lo + 253), (-1, hi + 2)]
        weights = np.array([[[[s * magnitude]]] for s, _ in cases])
        bias = np.array([b * magnitude for _, b in cases])
        dut = ConvLayer(
            height=16,
            width=16,
            in_channels=1,
            weights=weights,
            bias=bias,
            shift=shift,
            activation=activation,
            out_bits=out_bits,
            weight_format=weight_format,
        )
        want = conv_layer(frames, weights, bias, shift, activation, out_bits)
        assert _cnn_conv_outputs(dut, frames) == pixel_beats(want).tolist()
        acc = np.einsum("o,...->o...", weights.reshape(-1), frames[0, 0]) + bias[:, None, None]
        driven.update(requantise(acc, shift).reshape(-1).tolist())
    assert driven >= {hi, hi + 1, hi + 2, lo, lo - 1, lo - 2, 0, -1}


@pytest.mark.parametrize("shift", [1, 2])
def test_cnn_conv_layer_rounding_ties(shift):
    """Weight 1, bias -128: ``acc`` sweeps -128..127, every residue modulo ``2**shift`` on both
    sides of zero; the rounding constant rides on the tree's constant leaf."""
    frames = np.arange(256, dtype=np.int64).reshape(1, 1, 16, 16)
    weights, bias = np.ones((1, 1, 1, 1), dtype=np.int64), np.array([-128])
    dut = ConvLayer(
        height=16, width=16, in_channels=1, weights=weights, bias=bias, shift=shift,
        activation="none", out_bits=8,
    )  # fmt: skip
    want = conv_layer(frames, weights, bias, shift, "none", 8)
    assert _cnn_conv_outputs(dut, frames) == pixel_beats(want).tolist()
    flat = want.reshape(-1)
    half = 1 << (shift - 1)
    assert flat[128 - half] == 0 and flat[128 + half] == 1  # -half -> 0, +half -> 1


def test_cnn_conv_layer_accumulator_extremes():
    """Two input channels, K = 3, every weight at the pow2 extreme ±64 and pixels 0 or 255:
    the adder tree's root reaches ±18 · 64 · 255 plus a bias of ±2**20; with 22-bit signed
    outputs and shift 0 every bit of it is visible, with 8 bits it saturates to the right end."""
    k, cin = 3, 2
    frames = np.zeros((1, cin, 5, 7), dtype=np.int64)
    frames[..., :3, :] = 255
    frames[:, 1, 3:, ::2] = 255
    weights = np.stack([np.full((cin, k, k), 64), np.full((cin, k, k), -64)])
    for bias in ([1 << 20, -(1 << 20)], [-(1 << 20), (1 << 20) - 1]):
        bias = np.array(bias)
        for out_bits in (22, 8):
            dut = ConvLayer(
                height=5,
                width=7,
                in_channels=cin,
                weights=weights,
                bias=bias,
                shift=0,
                activation="none",
                out_bits=out_bits,
            )
            want = conv_layer(frames, weights, bias, 0, "none", out_bits)
            assert _cnn_conv_outputs(dut, frames) == pixel_beats(want).tolist(), (bias, out_bits)
        full = conv_layer(frames, weights, bias, 0, "none", 22)
        assert full[0, :, 0, 0].tolist() == (18 * 255 * np.array([64, -64]) + bias).tolist()


#: q targets around every bound: the signed 8-bit output (and the 8-bit LUT input), the
#: ReLU floor and the unsigned 8-bit top
NEURON_TARGETS = [*range(-130, -125), *range(-2, 2), *range(126, 130), *range(254, 258)]
NEURON_BUILDS = [("dense", "csr"), ("codebook", "csr"), ("pow2", "csr"), ("pow2", "direct")]


def _edge_layer(build: str, weights, bias, *, shift, activation, output_bits):
    """A layer of ``weights`` (``(out, in)``) in ``build``'s format: pow2 or codebook CSR, or
    dense."""
    weights = np.asarray(weights, dtype=np.int64)
    fmt = "dense" if build == "dense" else build
    kw = {}
    if fmt != "dense":
        book = [0, *sorted({int(w) for w in weights.reshape(-1) if w})]
        book += [0] * (16 - len(book))
        codes = np.array([[book.index(int(w)) if w else 0 for w in row] for row in weights])
        rel, code, rowptr = golden_mlp._csr(codes, 4)
        kw = dict(codebook=book, csr_rel=rel, csr_code=code, csr_rowptr=rowptr)
    return LayerWeights(
        name="edge",
        weight_int=weights,
        bias_int=np.asarray(bias),
        shift=shift,
        activation=activation,
        output_bits=output_bits,
        output_frac_bits=4,
        weight_format=fmt,
        **kw,
    )


@pytest.mark.parametrize(
    ("build", "layout"), NEURON_BUILDS, ids=[f"{b}-{a}" for b, a in NEURON_BUILDS]
)
@pytest.mark.parametrize("activation", ["none", "relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("shift", [0, 3])
def test_neuron_builds_saturate_exactly_at_the_bounds(build, layout, activation, shift):
    """Whole neurons (ROM, product, accumulator, requantisation, activation) of every build in
    a layer in Amaranth's simulator. Neuron 0 has weights (1, 32) and bias -4096, neuron 1 the
    negatives: input vectors are chosen so that ``acc`` is ``t << shift`` and, with a shift,
    the two rounding edges around it (``t`` and ``t - 1`` after rounding), for every ``t``
    in :data:`NEURON_TARGETS`. The outputs must equal the golden model bit for bit."""
    layer = _edge_layer(
        build,
        [[1, 32], [-1, -32]],
        [-4096, 4096],
        shift=shift,
        activation=activation,
        output_bits=8,
    )
    accs = []
    for t in NEURON_TARGETS:
        accs.append(t << shift)
        if shift:
            accs += [(t << shift) - (1 << (shift - 1)), (t << shift) - (1 << (shift - 1)) - 1]
    vectors = np.array([[(a + 4096) % 32, (a + 4096) // 32] for a in accs])
    assert vectors.min() >= 0 and vectors.max() <= 255
    dut = Layer(layer, build=build, layout=layout)
    runs = stream_vectors(dut, vectors, sparse=False)
    got = [dense_vector(outputs, 2) for outputs, _ in runs]
    want = golden_mlp.layer_forward(layer, vectors)
    assert got == want.tolist()
    q = requantise(np.array(accs), shift)
    assert set(q.tolist()) >= set(NEURON_TARGETS)  # each bound met, neuron 1 meets -t


@pytest.mark.parametrize(
    ("build", "layout"), NEURON_BUILDS, ids=[f"{b}-{a}" for b, a in NEURON_BUILDS]
)
def test_neuron_builds_accumulator_extremes(build, layout):
    """Every weight at its format's extreme (dense ±2**15, pow2 ±64, codebook ±200) and inputs
    0 or 255: the accumulator reaches both ends of ``LayerWeights.acc_range`` with the layer's
    ``acc_bits`` (the narrowest width that holds them). Activation ``none`` with
    ``output_bits = acc_bits`` and shift 0 shows ``acc`` itself; with 8 bits it saturates to
    the right end."""
    big, small = {"dense": (32767, -32768), "pow2": (64, -64), "codebook": (200, -200)}[build]
    n = 6
    weights = [[big] * n, [small] * n, [big, small] * (n // 2)]
    bias = [-3, 5, 0]
    vectors = np.array([[255] * n, [0] * n, [255, 0] * (n // 2), [0, 255] * (n // 2)])
    probe = _edge_layer(build, weights, bias, shift=0, activation="none", output_bits=8)
    acc_bits = probe.acc_bits()
    lo, hi = probe.acc_range()
    assert (lo, hi) == (n * small * 255 + 5, n * big * 255 - 3)
    for output_bits in (acc_bits, 8):
        layer = _edge_layer(
            build, weights, bias, shift=0, activation="none", output_bits=output_bits
        )
        dut = Layer(layer, build=build, layout=layout)
        runs = stream_vectors(dut, vectors, sparse=False)
        got = [dense_vector(outputs, 3) for outputs, _ in runs]
        assert got == golden_mlp.layer_forward(layer, vectors).tolist(), output_bits
        if output_bits == acc_bits:
            assert got[0][:2] == [n * big * 255 - 3, n * small * 255 + 5]
            assert max(max(r) for r in got) == hi and min(min(r) for r in got) == lo


@pytest.mark.parametrize(
    ("build", "layout"), NEURON_BUILDS, ids=[f"{b}-{a}" for b, a in NEURON_BUILDS]
)
@pytest.mark.parametrize("sign", [1, -1])
def test_neuron_accumulator_width_one_sided(build, layout, sign):
    """Weights of one sign only, so that one end of ``acc_range`` alone sets ``acc_bits``
    (with both signs, as above, the two ends need the same width and a width one bit short on
    either side would go unnoticed). The accumulator reaches that end; with ``output_bits =
    acc_bits`` and shift 0 the output is the accumulator itself."""
    big = sign * {"dense": 32767 if sign > 0 else 32768, "pow2": 64, "codebook": 200}[build]
    n = 6
    weights = [[big] * n, [big, 0] * (n // 2)]
    bias = [-sign, 0]
    vectors = np.array([[255] * n, [0] * n, [255, 0] * (n // 2)])
    probe = _edge_layer(build, weights, bias, shift=0, activation="none", output_bits=8)
    lo, hi = probe.acc_range()
    end = n * big * 255 - sign
    assert (lo, hi) == ((-1, end) if sign > 0 else (end, 1))
    layer = _edge_layer(
        build, weights, bias, shift=0, activation="none", output_bits=probe.acc_bits()
    )
    runs = stream_vectors(Layer(layer, build=build, layout=layout), vectors, sparse=False)
    got = [dense_vector(outputs, 2) for outputs, _ in runs]
    assert got == golden_mlp.layer_forward(layer, vectors).tolist()
    assert got[0][0] == end


@pytest.mark.parametrize("activation", ["none", "relu"])
@pytest.mark.parametrize("output_bits", [1, 2, 8])
def test_activation_nonzero_is_y_nonzero_for_every_accumulator(activation, output_bits):
    """The layer's zero-skip mask comes from ``nonzero`` (a few of the accumulator's bits, no
    adder): for every value of a 7-bit accumulator and shifts on both sides of 0 and past its
    width, it must be ``y != 0`` exactly."""
    acc_bits = 7
    accs = list(range(-(1 << (acc_bits - 1)), 1 << (acc_bits - 1)))
    for shift in (-2, 0, 1, 2, 3, 6, 7, 9):
        dut = CircuitActivation(
            acc_bits=acc_bits, shift=shift, activation=activation, output_bits=output_bits
        )
        got = []

        async def bench(ctx, dut=dut, got=got):
            for acc in accs:
                ctx.set(dut.acc, acc)
                got.append((ctx.get(dut.y), ctx.get(dut.nonzero)))

        sim = Simulator(dut)
        sim.add_testbench(bench)
        sim.run()
        want = activate(requantise(np.array(accs), shift), activation, output_bits)
        assert [nz for _, nz in got] == [int(v != 0) for v in want.tolist()], shift


@pytest.mark.parametrize("function", ["sigmoid", "tanh"])
def test_table_nonzero_next_is_next_cycles_nonzero(function):
    """A table activation's ``nonzero_next`` (a one-bit table of the same address, read
    combinationally) is the ``nonzero`` of the next cycle, for every value of an 11-bit
    accumulator and shifts that saturate the address on both sides: a lockstep layer
    registers its zero-skip masks from it."""
    acc_bits = 11
    accs = list(range(-(1 << (acc_bits - 1)), 1 << (acc_bits - 1)))
    for shift in (0, 2, 4):
        dut = LutActivation(
            acc_bits=acc_bits, shift=shift, function=function, output_bits=4, frac_bits=2,
            lut_bits=6,
        )  # fmt: skip
        early, late = [], []

        async def bench(ctx, dut=dut, early=early, late=late):
            for acc in accs:
                ctx.set(dut.acc, acc)
                early.append(ctx.get(dut.nonzero_next))
                await ctx.tick()
                late.append(ctx.get(dut.nonzero))
                assert late[-1] == int(ctx.get(dut.y) != 0)

        sim = Simulator(dut)
        sim.add_clock(1e-6)
        sim.add_testbench(bench)
        sim.run()
        assert early == late, shift
        assert 0 < sum(late) < len(late), shift  # both kinds of result occur
