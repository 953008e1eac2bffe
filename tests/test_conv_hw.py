"""Hardware regression of the convolution engine: generated Verilog under cocotb.

One build per (simulator, K, N) runs every test of ``tb/conv_tb.py``: a real picture and
random pictures at full rate (bit-exact, cycles equal to the model), random input gaps with
output backpressure (bit-exact), two frames back to back (cycles equal to the model for two
frames), and a reset in the middle of a frame followed by a clean, exact frame.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from rtl_gen.conv import ConvEngine, ConvParams
from sim.conv import simulate_conv
from sim.tools import SIMULATORS, available_simulators
from tb.conv_tb import real_image
from tb.golden.conv import conv2d, conv_cycles

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "tests" / "conv"
WIDTH, HEIGHT = 16, 12
COCOTB_TESTS = {
    "test_real_image",
    "test_random_images",
    "test_gaps_and_backpressure",
    "test_back_to_back",
    "test_reset_mid_frame",
}


def _params(kernel: int, line_buffers: int) -> ConvParams:
    """Each configuration also exercises a different corner of the arithmetic."""
    rng = np.random.default_rng(100 * kernel + line_buffers)
    full = rng.integers(-128, 128, size=(kernel, kernel))
    variants = {
        (3, 3): dict(shift=2, rounding="half_up", out_width=16),
        (3, 4): dict(coefficients=full, bias=-1234, shift=6, rounding="truncate", out_width=10),
        (5, 5): dict(coefficients=full, shift=5, rounding="half_up", relu=True, out_width=8),
        (5, 6): dict(coefficients=full, bias=777, shift=0, out_width=12),
    }
    return ConvParams(
        width=WIDTH,
        height=HEIGHT,
        kernel=kernel,
        line_buffers=line_buffers,
        **variants[(kernel, line_buffers)],
    )


def _random_images(params: ConvParams, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    top = (1 << params.pixel_width) - 1
    shape = (params.height, params.width)
    return [
        rng.integers(0, top + 1, size=shape),
        rng.integers(0, top + 1, size=shape),
        np.full(shape, top),  # extreme sums: saturation, accumulator range
    ]


@pytest.mark.hardware
@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("kernel,line_buffers", [(3, 3), (3, 4), (5, 5), (5, 6)])
def test_conv_engine(simulator, kernel, line_buffers):
    if simulator not in available_simulators():
        pytest.skip(f"{simulator} is not installed")
    params = _params(kernel, line_buffers)
    image, name = real_image(params.height, params.width, params.pixel_width)
    run = simulate_conv(
        params,
        simulator,
        BUILD / f"{simulator}_k{kernel}_n{line_buffers}",
        real_image=image,
        real_image_name=name,
        random_images=_random_images(params, seed=kernel * 10 + line_buffers),
        seed=kernel * 10 + line_buffers,
    )
    assert run.passed, (
        f"{run.result.failed}/{run.result.tests} cocotb tests failed: {run.result.failures}\n"
        + run.result.log_tail()
    )
    assert run.result.tests == len(COCOTB_TESTS)
    assert set(run.measured) == COCOTB_TESTS

    one = conv_cycles(WIDTH, HEIGHT, kernel, line_buffers)
    for test in ("test_real_image", "test_random_images", "test_reset_mid_frame"):
        for entry in run.measured[test]:
            assert entry["mismatches"] == 0
            assert entry["outputs"] == params.outputs_per_frame
            assert entry["cycles"] == entry["model_cycles"] == one
    assert len(run.measured["test_random_images"]) == 3
    b2b = run.measured["test_back_to_back"][0]
    assert (
        b2b["cycles"]
        == b2b["model_cycles"]
        == conv_cycles(WIDTH, HEIGHT, kernel, line_buffers, frames=2)
    )
    stress = run.measured["test_gaps_and_backpressure"][0]
    assert stress["mismatches"] == 0 and stress["outputs"] == 2 * params.outputs_per_frame
    assert stress["cycles"] > conv_cycles(WIDTH, HEIGHT, kernel, line_buffers, frames=2)


@pytest.mark.hardware
def test_make_sim_front_door(tmp_path, monkeypatch):
    """``python -m sim.conv`` (what ``make sim`` runs) on a small image: table, JSON, exit 0."""
    simulators = available_simulators()
    if not simulators:
        pytest.skip("no simulator installed")
    import sim.conv

    monkeypatch.setattr(sim.conv, "BUILD_ROOT", tmp_path)
    args = ["--line-buffers", "4", "--kernel", "3", "--width", "10", "--height", "8"]
    assert sim.conv.main([*args, "--sim", simulators[0]]) == 0
    results = json.loads((tmp_path / "conv_n4_k3_10x8" / "results.json").read_text())
    for key in (
        "line_buffers",
        "kernel",
        "width",
        "height",
        "cycles",
        "model_cycles",
        "outputs",
        "mismatches",
        "simulator",
    ):
        assert key in results
    assert results["cycles"] == results["model_cycles"] == conv_cycles(10, 8, 3, 4)
    assert results["mismatches"] == 0 and results["outputs"] == 8 * 6
    assert results["speedup_vs_n_eq_k"] == pytest.approx(
        conv_cycles(10, 8, 3, 3) / conv_cycles(10, 8, 3, 4), abs=1e-4
    )
    assert results["baseline"] == "simulated"
    assert sim.conv.main([*args, "--sim", simulators[0]]) == 0
    assert (
        json.loads((tmp_path / "conv_n4_k3_10x8" / "results.json").read_text())["baseline"]
        == "cached"
    )


# Amaranth's own simulator: corner cases (K = 1, W = K, many buffers) without a build step.

EDGE_CASES = [
    dict(width=5, height=4, kernel=1, line_buffers=1),
    dict(width=5, height=4, kernel=1, line_buffers=2),
    dict(width=3, height=3, kernel=3, line_buffers=3),
    dict(width=3, height=4, kernel=3, line_buffers=4),
    dict(width=6, height=5, kernel=3, line_buffers=7),
    dict(width=5, height=5, kernel=5, line_buffers=5),
]


@pytest.mark.parametrize(
    "case", EDGE_CASES, ids=lambda c: "w{width}h{height}k{kernel}n{line_buffers}".format(**c)
)
def test_edge_cases_in_amaranth_simulator(case):
    from amaranth.sim import Simulator

    rng = np.random.default_rng(sum(case.values()))
    k = case["kernel"]
    params = ConvParams(
        **case, coefficients=rng.integers(-128, 128, size=(k, k)), shift=3, out_width=12
    )
    frames = rng.integers(0, 256, size=(2, params.height, params.width))
    want = conv2d(frames, params).reshape(-1).tolist()
    dut = ConvEngine(params)
    pixels = frames.reshape(-1).tolist()
    got, lasts, marks = [], [], {}

    async def bench(ctx):
        dut_i, dut_o = dut.i, dut.o
        ctx.set(dut_o.ready, 1)
        index, cycle = 0, 0
        while len(got) < len(want):
            if index < len(pixels):
                ctx.set(dut_i.valid, 1)
                ctx.set(dut_i.payload, pixels[index])
            else:
                ctx.set(dut_i.valid, 0)
            fire_in = index < len(pixels) and ctx.get(dut_i.ready)
            if ctx.get(dut_o.valid):
                got.append(ctx.get(dut_o.payload.value))
                lasts.append(ctx.get(dut_o.payload.last))
                marks["last_out"] = cycle
            if fire_in:
                marks.setdefault("first_in", cycle)
                index += 1
            await ctx.tick()
            cycle += 1
            assert cycle < 10 * len(pixels) + 100, "timeout"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == want
    per_frame = params.outputs_per_frame
    assert lasts == [int((i + 1) % per_frame == 0) for i in range(len(want))]
    cycles = marks["last_out"] - marks["first_in"] + 1
    assert cycles == conv_cycles(params.width, params.height, k, params.line_buffers, frames=2)
