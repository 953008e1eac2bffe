"""Parameter validation of the convolution engine: one clear ValueError, before elaboration."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Fragment

from rtl_gen.conv import ConvEngine, ConvParams, accumulator_width, sum_width
from tb.golden.conv import conv2d, conv_cycles

ROOT = Path(__file__).resolve().parents[1]

BAD = [
    (dict(line_buffers=1), "line_buffers must be an integer >= kernel - 1 (2), not 1"),
    (dict(kernel=5, line_buffers=3), "line_buffers must be an integer >= kernel - 1 (4), not 3"),
    (dict(line_buffers=3.5), "line_buffers must be an integer >= kernel - 1 (2), not 3.5"),
    (dict(kernel=1, line_buffers=-1), "line_buffers must be an integer >= kernel - 1 (0), not -1"),
    (dict(pixels_per_clock=3), "pixels_per_clock must be one of (1, 2, 4), not 3"),
    (dict(pixels_per_clock=8), "pixels_per_clock must be one of (1, 2, 4), not 8"),
    (dict(pixels_per_clock=True), "pixels_per_clock must be one of (1, 2, 4), not True"),
    (dict(width=30, pixels_per_clock=4), "width (30) must be a multiple of pixels_per_clock (4)"),
    (dict(width=100000), "width must be an integer <= 4096, not 100000"),
    (dict(pipeline=5), "pipeline must be an integer <= 4, not 5"),
    (dict(pipeline=-1), "pipeline must be an integer >= 0, not -1"),
    (dict(height=5000), "height must be an integer <= 4096, not 5000"),
    (dict(kernel=4), "kernel must be an odd integer >= 1, not 4"),
    (dict(kernel=0), "kernel must be an integer >= 1, not 0"),
    (dict(kernel=-3), "kernel must be an integer >= 1, not -3"),
    (dict(width=2), "width must be an integer >= kernel (3), not 2"),
    (dict(height=1), "height must be an integer >= kernel (3), not 1"),
    (dict(pixel_width=0), "pixel_width must be an integer >= 1, not 0"),
    (dict(coef_width=1), "coef_width must be an integer >= 2, not 1"),
    (dict(out_width=1), "out_width must be an integer >= 2, not 1"),
    (dict(shift=-1), "shift must be an integer >= 0, not -1"),
    (dict(rounding="nearest"), "rounding must be one of ('half_up', 'truncate'), not 'nearest'"),
    (dict(relu=1), "relu must be a bool, not 1"),
    (
        dict(coefficients=np.ones((5, 5), int)),
        "coefficients must have shape (3, 3) for kernel 3, not (5, 5)",
    ),
    (dict(coefficients=[1, 2, 3]), "coefficients must have shape (3, 3) for kernel 3, not (3,)"),
    (
        dict(coefficients=[[0, 0, 0], [0, 128, 0], [0, 0, 0]]),
        "coefficients[1, 1] = 128 does not fit coef_width 8 (signed range -128 .. 127)",
    ),
    (
        dict(coefficients=[[0, 0, 0], [0, 0, 0], [0, 0, -9]], coef_width=4),
        "coefficients[2, 2] = -9 does not fit coef_width 4 (signed range -8 .. 7)",
    ),
    (dict(coefficients=np.full((3, 3), 0.5)), "coefficients must be integers"),
    (dict(bias=1 << 19), "bias 524288 does not fit bias_width 20 (signed range -524288 .. "),
    (dict(bias=5, bias_width=3), "bias 5 does not fit bias_width 3 (signed range -4 .. 3)"),
]


@pytest.mark.parametrize("override,message", BAD)
def test_bad_parameters_name_the_parameter_and_value(override, message):
    kw = dict(width=28, height=28, kernel=3, line_buffers=4) | override
    with pytest.raises(ValueError, match=re.escape(message)):
        ConvParams(**kw)
    # The component constructor checks the same, before any elaboration.
    with pytest.raises(ValueError, match=re.escape(message)):
        ConvEngine(**kw)


def test_good_parameters_and_derived_widths():
    p = ConvParams(width=28, height=20, kernel=5, line_buffers=6)
    assert (p.out_rows, p.out_cols, p.outputs_per_frame) == (16, 24, 16 * 24)
    assert sum_width(8, 8, 3) == 8 + 8 + 4
    assert sum_width(8, 8, 1) == 16
    assert accumulator_width(8, 8, 5, 10) == 8 + 8 + 5 + 1
    assert p.acc_width == 8 + 8 + 5 + 1
    again = ConvParams(**p.to_dict())
    assert again.to_dict() == p.to_dict()
    engine = ConvEngine(p, line_buffers=5)
    assert engine.params.line_buffers == 5 and engine.params.kernel == 5
    Fragment.get(engine, None)  # elaborates
    with pytest.raises(TypeError, match="params must be a ConvParams"):
        ConvEngine({"width": 3})


def test_engine_signature():
    engine = ConvEngine(width=8, height=6, kernel=3, line_buffers=4, pixel_width=6, out_width=12)
    assert engine.i.payload.shape().width == 6
    assert engine.o.payload.value.shape().width == 12
    assert engine.o.payload.last.shape().width == 1
    Fragment.get(engine, None)


@pytest.mark.parametrize(
    "shape",
    [(28, 27), (27, 28), (28,), (2, 2, 28, 28), (3, 3)],
    ids=lambda s: "x".join(map(str, s)),
)
def test_wrong_image_shape_is_rejected(shape):
    p = ConvParams(width=28, height=28)
    with pytest.raises(ValueError, match=r"image must have shape \(height, width\) = \(28, 28\)"):
        conv2d(np.zeros(shape, dtype=int), p)


def test_image_pixels_must_fit_pixel_width():
    p = ConvParams(width=4, height=4, pixel_width=4)
    with pytest.raises(ValueError, match=r"image pixels must lie in 0 \.\. 15 \(pixel_width 4\)"):
        conv2d(np.full((4, 4), 16), p)
    with pytest.raises(ValueError, match="image must hold integer pixels"):
        conv2d(np.full((4, 4), 1.0), p)


def test_cycle_model_validates_too():
    with pytest.raises(ValueError, match=re.escape("line_buffers must be an integer >= kernel")):
        conv_cycles(28, 28, 3, 1)
    with pytest.raises(ValueError, match=re.escape("must be a multiple of pixels_per_clock")):
        conv_cycles(30, 28, 3, 2, pixels_per_clock=4)


def test_sim_image_shape_checked_before_building(tmp_path):
    from sim.conv import simulate_conv

    p = ConvParams(width=8, height=6)
    with pytest.raises(ValueError, match=r"real_image must have shape"):
        simulate_conv(p, "icarus", tmp_path, real_image=np.zeros((6, 9), dtype=int))
    assert not (tmp_path / "icarus" / "sim.vvp").exists()


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["--line-buffers", "1"],
            "error: line_buffers must be an integer >= kernel - 1 (2), not 1",
        ),
        (
            ["--pixels-per-clock", "3"],
            "error: pixels_per_clock must be one of (1, 2, 4), not 3",
        ),
        (
            ["--pixels-per-clock", "4", "--width", "30"],
            "error: width (30) must be a multiple of pixels_per_clock (4)",
        ),
        (["--width", "100000"], "error: width must be an integer <= 4096, not 100000"),
        (
            ["--width", "1024", "--height", "1024"],
            "error: a 1024x1024 frame (1048576 pixels) is too large to simulate here: "
            "at most 262144 pixels (e.g. 512x512)",
        ),
        (["--kernel", "4"], "error: kernel must be an odd integer >= 1, not 4"),
        (["--width", "2"], "error: width must be an integer >= kernel (3), not 2"),
        (
            ["--sim", "modelsim"],
            "error: sim must be one of ('icarus', 'verilator'), not 'modelsim'",
        ),
    ],
)
def test_make_sim_bad_parameters_one_line_exit_2(args, message):
    out = subprocess.run(
        [sys.executable, "-m", "sim.conv", *args], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 2
    assert out.stderr.strip() == message
    assert "Traceback" not in out.stdout + out.stderr
