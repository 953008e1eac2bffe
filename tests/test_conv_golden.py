"""The golden model of the convolution engine: arithmetic against SciPy/PyTorch, cycle model."""

import numpy as np
import pytest
import scipy.signal

from rtl_gen.conv import READ_TO_OUTPUT_LATENCY, ConvEngine, ConvParams
from tb.golden.conv import (
    PIPELINE_LATENCY,
    ROW_SCAN_READ_REGISTER,
    accumulate,
    conv2d,
    conv_cycles,
    conv_cycles_closed_form,
    first_output_cycle,
    output_beats,
    row_schedule,
    scale,
)


def _random_params(rng, kernel, **kw):
    coefs = rng.integers(-128, 128, size=(kernel, kernel))
    return ConvParams(
        width=19, height=13, kernel=kernel, line_buffers=kernel + 1, coefficients=coefs, **kw
    )


@pytest.mark.parametrize("kernel", [1, 3, 5])
def test_accumulate_matches_scipy_correlate2d(kernel):
    rng = np.random.default_rng(kernel)
    p = _random_params(rng, kernel)
    image = rng.integers(0, 256, size=(p.height, p.width))
    want = scipy.signal.correlate2d(image, p.coefficients, mode="valid")
    np.testing.assert_array_equal(accumulate(image, p), want)


def test_conv2d_matches_torch_conv2d():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    p = _random_params(rng, 3, shift=5, rounding="half_up", out_width=9, bias=-300)
    frames = rng.integers(0, 256, size=(2, p.height, p.width))
    x = torch.tensor(frames[:, None], dtype=torch.float64)
    w = torch.tensor(p.coefficients[None, None], dtype=torch.float64)
    acc = torch.nn.functional.conv2d(x, w).numpy()[:, 0].astype(np.int64) + p.bias
    want = np.clip(np.floor((acc + 16) / 32).astype(np.int64), -256, 255)
    np.testing.assert_array_equal(conv2d(frames, p), want)


def test_rounding_truncation_relu_saturation():
    base = dict(width=3, height=3, kernel=3, coefficients=np.zeros((3, 3), int))
    acc = np.array([-6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 1000, -1000])
    half = ConvParams(**base, shift=2, rounding="half_up", out_width=8)
    # (acc + 2) >> 2: round half up, including for negative values (-6/4 = -1.5 -> -1).
    np.testing.assert_array_equal(
        scale(acc, half), [-1, -1, -1, -1, 0, 0, 0, 0, 1, 1, 1, 1, 2, 127, -128]
    )
    trunc = ConvParams(**base, shift=2, rounding="truncate", out_width=8)
    np.testing.assert_array_equal(
        scale(acc, trunc), [-2, -2, -1, -1, -1, -1, 0, 0, 0, 0, 1, 1, 1, 127, -128]
    )
    relu = ConvParams(**base, shift=0, relu=True, out_width=4)
    np.testing.assert_array_equal(scale(acc, relu), [0] * 7 + [1, 2, 3, 4, 5, 6, 7, 0])
    biased = ConvParams(**base, shift=1, bias=3, out_width=16)
    np.testing.assert_array_equal(scale(np.array([0, 1, -4]), biased), [2, 2, 0])


@pytest.mark.parametrize("pixel_width,coef_width,kernel", [(8, 8, 1), (8, 8, 3), (4, 6, 5)])
def test_accumulator_width_holds_the_extremes(pixel_width, coef_width, kernel):
    lo, hi = -(1 << (coef_width - 1)), (1 << (coef_width - 1)) - 1
    top = (1 << pixel_width) - 1
    for coef in (lo, hi):
        p = ConvParams(
            width=kernel,
            height=kernel,
            kernel=kernel,
            line_buffers=kernel,
            pixel_width=pixel_width,
            coef_width=coef_width,
            coefficients=np.full((kernel, kernel), coef),
            shift=0,
        )
        acc = accumulate(np.full((kernel, kernel), top), p)
        assert acc.item() == coef * top * kernel * kernel
        assert -(1 << (p.acc_width - 1)) <= acc.item() < (1 << (p.acc_width - 1))
        scale(acc, p)  # raises on overflow
    # K = 1 needs every bit of pixel_width + coef_width (+1 for the bias).
    if kernel == 1:
        assert lo * top < -(1 << (pixel_width + coef_width - 2))


def test_model_latency_is_the_engine_latency():
    assert PIPELINE_LATENCY == READ_TO_OUTPUT_LATENCY
    assert ROW_SCAN_READ_REGISTER == 1
    for stages in range(5):
        engine = ConvEngine(width=8, height=5, line_buffers=2, pipeline=stages)
        engine._MustUse__silence = True  # not elaborated here
        assert engine.latency == PIPELINE_LATENCY + stages == engine.params.latency
        assert conv_cycles(8, 5, 3, 2, pipeline=stages) == 8 * 5 + PIPELINE_LATENCY + stages
        # The row-scan modes register the line buffers' read data: one cycle more.
        for n in (3, 4):
            engine = ConvEngine(width=8, height=5, line_buffers=n, pipeline=stages)
            engine._MustUse__silence = True
            latency = PIPELINE_LATENCY + ROW_SCAN_READ_REGISTER + stages
            assert engine.latency == latency == engine.params.latency
        assert conv_cycles(8, 5, 3, 4, pipeline=stages) == 6 * 8 + latency
        assert first_output_cycle(8, 5, 3, 4, pipeline=stages) == 3 * 8 + 2 + latency


SIZES = [(3, 3), (5, 4), (8, 8), (16, 12), (28, 28), (33, 7), (64, 64)]


@pytest.mark.parametrize(
    "width,height,kernel",
    [(w, h, k) for w, h in SIZES for k in (1, 3, 5) if min(w, h) >= k],
)
def test_cycle_model_closed_form(width, height, kernel):
    for ppc in (1, 2, 4):
        if width % ppc:
            continue
        for n in range(kernel - 1, kernel + 4):
            assert conv_cycles(
                width, height, kernel, n, pixels_per_clock=ppc
            ) == conv_cycles_closed_form(width, height, kernel, n, pixels_per_clock=ppc)


@pytest.mark.parametrize("width,height", SIZES)
def test_cycle_model_spare_buffer_reaches_one_pixel_per_clock(width, height):
    k = 3
    for n in range(k + 1, k + 5):
        assert conv_cycles(width, height, k, n) <= height * width + width + 16
        assert conv_cycles(width, height, k, n, frames=3, pipeline=0) == (
            3 * height * width + width + PIPELINE_LATENCY + ROW_SCAN_READ_REGISTER
        )
    # More buffers never hurt; N = K is the slowest.
    cycles = [conv_cycles(width, height, k, n) for n in range(k, k + 5)]
    assert cycles == sorted(cycles, reverse=True)


def test_cycle_model_targets():
    assert conv_cycles(28, 28, 3, 3) / conv_cycles(28, 28, 3, 4) >= 1.85
    assert conv_cycles(224, 224, 3, 3) / conv_cycles(224, 224, 3, 4) >= 1.95
    # The row-scan modes' read register costs one cycle per frame: 1515 + 1, 815 + 1.
    assert conv_cycles(28, 28, 3, 3, pipeline=0) == 1516
    assert conv_cycles(28, 28, 3, 4, pipeline=0) == 816
    # The default pipeline (two extra stages for K = 3) costs two cycles per frame, no more.
    assert conv_cycles(28, 28, 3, 4) == 816 + 2
    assert (
        conv_cycles(28, 28, 3, 4, frames=5) == conv_cycles(28, 28, 3, 4, frames=5, pipeline=0) + 2
    )


def test_streaming_targets():
    """N = K - 1: H·W + 3 per frame (FINN's window generator: 785 at 28x28 without a MAC)."""
    assert conv_cycles(28, 28, 3, 2, pipeline=0) == 787 == 28 * 28 + 3
    assert conv_cycles(224, 224, 3, 2, pipeline=0) == 50179
    for frames in (1, 2, 4, 8):
        assert conv_cycles(28, 28, 3, 2, frames=frames, pipeline=0) == frames * 28 * 28 + 3
        assert conv_cycles(28, 28, 3, 2, frames=frames) == frames * 28 * 28 + 3 + 2
    # FINN does not overlap frames (F·785): fewer cycles from F = 4 on without extra stages,
    # from F = 6 on with the default two.
    assert conv_cycles(28, 28, 3, 2, frames=4, pipeline=0) < 4 * 785
    assert conv_cycles(28, 28, 3, 2, frames=6) < 6 * 785
    # First result: window (0, 0) completes with pixel (K-1, K-1), 3 cycles of pipeline.
    assert first_output_cycle(28, 28, 3, 2, pipeline=0) == 2 * 28 + 2 + 3 <= (3 - 1) * 28 + 6
    assert first_output_cycle(28, 28, 3, 4, pipeline=0) == 3 * 28 + 2 + 3 + 1 == 90
    assert first_output_cycle(28, 28, 3, 2) == 61 + 2
    assert conv_cycles(28, 28, 3, 2) < conv_cycles(28, 28, 3, 4) < conv_cycles(28, 28, 3, 3)


@pytest.mark.parametrize("line_buffers", [2, 3, 4])
def test_pixels_per_clock_targets(line_buffers):
    w = h = 224
    four = conv_cycles(w, h, 3, line_buffers, pixels_per_clock=4)
    one = conv_cycles(w, h, 3, line_buffers)
    assert four <= h * w // 4 + w + 16 or line_buffers == 3  # N = K serializes
    assert 3.9 < one / four <= 4
    assert conv_cycles(w, h, 3, 2, pixels_per_clock=4, pipeline=0) == h * w // 4 + 3 == 12547


def test_output_beats_pack_results_by_input_column():
    p1 = ConvParams(width=8, height=5, kernel=3, line_buffers=2)
    results = np.arange(6 * 3).reshape(3, 6)
    beats = output_beats(results, p1)
    assert [v[0] for v, _, _ in beats] == results.reshape(-1).tolist()
    assert [keep for _, keep, _ in beats] == [1] * 18
    assert [last for _, _, last in beats] == [0] * 17 + [1]
    # P = 4, K = 3: result x comes with column x + 2, so a row's first beat has lanes 2, 3.
    p4 = ConvParams(width=8, height=5, kernel=3, line_buffers=2, pixels_per_clock=4)
    beats = output_beats(results, p4)
    assert len(beats) == 3 * 2
    assert beats[0] == ([None, None, 0, 1], 0b1100, 0)
    assert beats[1] == ([2, 3, 4, 5], 0b1111, 0)
    assert beats[-1] == ([14, 15, 16, 17], 0b1111, 1)
    # P = 2, K = 5: the first beat holds no result and is not sent.
    p2 = ConvParams(width=8, height=5, kernel=5, line_buffers=4, pixels_per_clock=2)
    beats = output_beats(np.arange(4).reshape(1, 4), p2)
    assert beats == [([0, 1], 0b11, 0), ([2, 3], 0b11, 1)]


def test_schedule_serializes_with_n_equal_k():
    s = row_schedule(10, 8, 3, 3)
    # Fill of row K waits for the first output row's last read, then they alternate.
    assert s.fill_start[3] == s.read_end[0] + 1
    for j in range(1, len(s.read_start)):
        assert s.read_start[j] == s.fill_end[j + 2] + 1
    s4 = row_schedule(10, 8, 3, 4)
    assert s4.fill_start == [10 * g for g in range(8)]


def test_back_to_back_frames_with_n_equal_k():
    # The next frame's first row cannot start before the last output row released its rows.
    s = row_schedule(12, 9, 3, 3, frames=2)
    assert s.fill_start[9] == s.read_end[9 - 3] + 1
    # So every frame costs the full serialized time: F·(2H - K + 1)·W + latency.
    for frames in (1, 2, 3):
        assert conv_cycles(12, 9, 3, 3, frames=frames, pipeline=0) == (
            frames * (2 * 9 - 3 + 1) * 12 + 3 + 1
        )


def test_frames_must_be_positive():
    with pytest.raises(ValueError, match="frames must be an integer >= 1, not 0"):
        conv_cycles(8, 8, 3, 4, frames=0)
    with pytest.raises(ValueError, match="frames must be an integer >= 1, not 0"):
        conv_cycles(8, 8, 3, 2, frames=0)


def test_row_schedule_is_for_the_row_scan_modes():
    with pytest.raises(ValueError, match="row-scan modes"):
        row_schedule(8, 8, 3, 2)
