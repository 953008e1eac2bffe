"""The whole CNN (``rtl_gen.cnn.Cnn``) in Amaranth's simulator: a small random LeNet-like network,
scores bit-exact under stalls and backpressure, every image's cycles equal to the composed model
at full rate, in every line-buffer mode."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from rtl_gen.cnn.network import Cnn
from rtl_gen.cnn.spec import CnnSpec, ConvSpec, PoolSpec
from tb.golden import cnn_network as golden
from tb.golden.mlp import synthetic_layer


def _pow2(rng, shape, zeros=0.4):
    w = rng.choice([-1, 1], size=shape) * (1 << rng.integers(0, 6, size=shape))
    w[rng.random(shape) < zeros] = 0
    return w


def small_spec(seed=0, size=14, channels=(2, 3), kernel=3, hidden=8) -> CnnSpec:
    """conv(K) 1->c1, pool, conv(K) c1->c2, pool, flatten, fc -> hidden -> 4."""
    rng = np.random.default_rng(seed)
    c1, c2 = channels
    s1 = size - kernel + 1
    conv1 = ConvSpec("conv1", (1, size, size), _pow2(rng, (c1, 1, kernel, kernel)),
                     rng.integers(-200, 400, c1), 5, "relu", 8, 8)  # fmt: skip
    pool1 = PoolSpec("pool1", (c1, s1, s1), 8)
    p1 = s1 // 2
    conv2 = ConvSpec("conv2", (c1, p1, p1), _pow2(rng, (c2, c1, kernel, kernel)),
                     rng.integers(-200, 400, c2), 6, "relu", 8, 8)  # fmt: skip
    s2 = p1 - kernel + 1
    pool2 = PoolSpec("pool2", (c2, s2, s2), 8)
    features = c2 * (s2 // 2) ** 2
    fc1 = synthetic_layer(rng, features, hidden, shift=6, density=0.6)
    fc2 = synthetic_layer(rng, hidden, 4, activation="none", shift=5, density=0.8)
    return CnnSpec((1, size, size), 8, (conv1, pool1, conv2, pool2), (fc1, fc2))


def run_cnn(dut: Cnn, images, arrivals=None, backpressure=0.0, seed=0, one_at_a_time=False):
    """Drive ``images`` (``(n, H*W)``) pixel by pixel; returns per image the scores and the cycle
    of its last score, and every pixel's acceptance cycle. Pixel ``k`` is offered from
    ``max(arrivals[k], accepted[k-1] + 1)``; with ``one_at_a_time`` an image's first pixel waits
    for the previous image's last score (and ``arrivals`` counts from there)."""
    rng = np.random.default_rng(seed)
    pixels = np.asarray(images, dtype=np.int64).reshape(-1)
    per_image = np.asarray(images).shape[1]
    classes = dut.spec.classes
    if arrivals is None:
        arrivals = np.zeros(len(pixels), dtype=np.int64)
    scores, ends, accepted = [], [], []
    starts = []

    async def bench(ctx):
        k, cycle, vec = 0, 0, [0] * classes
        base = 0
        while len(ends) < len(images):
            image = k // per_image
            waiting = one_at_a_time and k < len(pixels) and image > len(ends)
            if one_at_a_time and k < len(pixels) and k % per_image == 0 and not waiting:
                if len(starts) == image:
                    starts.append(cycle)
                    base = cycle
            due = base + arrivals[k] if one_at_a_time and k < len(pixels) else None
            if k < len(pixels) and not one_at_a_time:
                due = arrivals[k]
            offer = (
                k < len(pixels) and not waiting and cycle >= max(due, accepted[-1] + 1 if k else 0)
            )
            ctx.set(dut.inp.valid, int(offer))
            if k < len(pixels):
                ctx.set(dut.inp.payload.value.as_value(), int(pixels[k]))
            ready = backpressure == 0 or rng.random() >= backpressure
            ctx.set(dut.out.ready, int(ready))
            fire = offer and ctx.get(dut.inp.ready)
            if ready and ctx.get(dut.out.valid):
                p = ctx.get(dut.out.payload)
                vec[p.index] = p.value
                if p.last:
                    scores.append(vec)
                    ends.append(cycle)
                    vec = [0] * classes
            if fire:
                accepted.append(cycle)
                k += 1
            await ctx.tick()
            cycle += 1
            assert cycle < 40 * len(pixels) + 2000, "timeout"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return np.array(scores), np.array(ends), np.array(accepted), np.array(starts)


def _timing(dut: Cnn, images, arrivals=None):
    return golden.cnn_timing(
        dut.spec.stages, dut.spec.fc, images, arrivals=arrivals, **dut.timing_arguments
    )


MODES = {"streaming": 2, "serial": 3, "overlapped": 4}


@pytest.mark.parametrize("mode", MODES)
def test_cnn_back_to_back_exact(mode):
    """Three images back to back at full rate: scores bit-exact, every pixel's acceptance and
    every image's last score in the cycle the composed model gives."""
    spec = small_spec(seed=1)
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, size=(3, 14 * 14))
    dut = Cnn(spec, line_buffers=MODES[mode], layout="direct")
    scores, ends, accepted, _ = run_cnn(dut, images)
    _, want = golden.cnn_forward(spec.stages, spec.fc, images)
    np.testing.assert_array_equal(scores, want)
    timing = _timing(dut, images)
    assert accepted.tolist() == timing.pixel_accepts.tolist()
    assert ends.tolist() == timing.image_end


@pytest.mark.parametrize("mode", ["streaming", "serial"])
def test_cnn_stalls_and_backpressure(mode):
    spec = small_spec(seed=2, channels=(3, 2))
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(3, 14 * 14))
    images[1, :50] = 0
    dut = Cnn(spec, line_buffers=MODES[mode], layout="direct")
    arrivals = np.cumsum(rng.choice([0, 1, 1, 2, 5], size=images.size))
    scores, *_ = run_cnn(dut, images, arrivals=arrivals, backpressure=0.4, seed=5)
    np.testing.assert_array_equal(scores, golden.cnn_forward(spec.stages, spec.fc, images)[1])


def test_cnn_model_with_arrivals():
    """Pixels offered with random gaps: the model follows them exactly."""
    spec = small_spec(seed=4)
    rng = np.random.default_rng(9)
    images = rng.integers(0, 256, size=(2, 14 * 14))
    arrivals = np.cumsum(rng.choice([0, 1, 1, 3], size=images.size))
    dut = Cnn(spec, line_buffers=2, layout="direct")
    _, ends, accepted, _ = run_cnn(dut, images, arrivals=arrivals)
    timing = _timing(dut, images, arrivals)
    assert accepted.tolist() == timing.pixel_accepts.tolist()
    assert ends.tolist() == timing.image_end


def test_bad_line_buffers():
    spec = small_spec()
    with pytest.raises(ValueError, match=r"line_buffers of conv1 must be an integer >= K - 1"):
        Cnn(spec, line_buffers=1)
    with pytest.raises(ValueError, match="one N per conv layer"):
        Cnn(spec, line_buffers=[2, 2, 2])


def dense_spec(seed=0, size=14, channels=(2, 3), kernel=3) -> CnnSpec:
    """The dense-baseline kind of network: any integer conv weights, dense fc layers."""
    rng = np.random.default_rng(seed)
    c1, c2 = channels
    s1 = size - kernel + 1
    p1 = s1 // 2
    s2 = p1 - kernel + 1

    def weights(shape):
        w = rng.integers(-150, 300, size=shape)
        w[rng.random(shape) < 0.2] = 0
        return w

    conv1 = ConvSpec("conv1", (1, size, size), weights((c1, 1, kernel, kernel)),
                     rng.integers(-2000, 4000, c1), 10, "relu", 8, 8, "dense")  # fmt: skip
    conv2 = ConvSpec("conv2", (c1, p1, p1), weights((c2, c1, kernel, kernel)),
                     rng.integers(-2000, 4000, c2), 11, "relu", 8, 8, "dense")  # fmt: skip
    features = c2 * (s2 // 2) ** 2
    fc1 = synthetic_layer(rng, features, 6, weight_format="dense", shift=7, density=0.8)
    fc2 = synthetic_layer(rng, 6, 4, weight_format="dense", activation="none", shift=6, density=0.9)
    stages = (conv1, PoolSpec("pool1", (c1, s1, s1), 8), conv2, PoolSpec("pool2", (c2, s2, s2), 8))
    return CnnSpec((1, size, size), 8, stages, (fc1, fc2))


@pytest.mark.parametrize("mode", ["streaming", "overlapped"])
def test_dense_baseline_cnn_exact(mode):
    """The dense baseline (conv multipliers, dense fc layers walking every input, no
    zero-skipping): scores bit-exact and every cycle as the composed model, back to back."""
    spec = dense_spec(seed=5)
    rng = np.random.default_rng(11)
    images = rng.integers(0, 256, size=(3, 14 * 14))
    dut = Cnn(spec, line_buffers=MODES[mode], zero_skip=False)
    assert dut.layouts == ["csr", "csr"]
    scores, ends, accepted, _ = run_cnn(dut, images)
    _, want = golden.cnn_forward(spec.stages, spec.fc, images)
    np.testing.assert_array_equal(scores, want)
    assert len(np.unique(want)) > 4  # the scores are not all clipped to one value
    timing = _timing(dut, images)
    assert accepted.tolist() == timing.pixel_accepts.tolist()
    assert ends.tolist() == timing.image_end


def test_dense_fc1_with_zero_skip_is_not_modelled():
    spec = dense_spec()
    dut = Cnn(spec, zero_skip=True)
    with pytest.raises(NotImplementedError, match="dense one without zero-skip"):
        _timing(dut, np.zeros((1, 14 * 14), dtype=np.int64))
