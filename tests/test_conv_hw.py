"""Hardware regression of the convolution engine: generated Verilog under cocotb.

One build per (simulator, K, N, P, image size) runs every test of ``tb/conv_tb.py``: a real
picture and random pictures at full rate (bit-exact, cycles and first-result latency equal to
the model), random input gaps with output backpressure (bit-exact), two frames back to back
(cycles equal to the model for two frames), and a reset in the middle of a frame followed by a
clean, exact frame. Every mode is covered: streaming (``N = K - 1``), serial (``N = K``) and
overlapped (``N >= K + 1``), with 1, 2 and 4 pixels per clock, K = 3 and 5, non-square images
and the smallest legal ones.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from rtl_gen.conv import ConvEngine, ConvParams
from sim.conv import simulate_conv
from sim.tools import SIMULATORS, available_simulators
from tb.conv_tb import real_image
from tb.golden.conv import conv2d, conv_cycles, first_output_cycle, output_beats

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


#: (K, N, P, W, H) and the corner of the arithmetic each configuration also exercises.
CONFIGS = {
    (3, 3, 1, WIDTH, HEIGHT): dict(shift=2, rounding="half_up", out_width=16, pipeline=1),
    (3, 4, 1, WIDTH, HEIGHT): dict(bias=-1234, shift=6, rounding="truncate", out_width=10),
    (5, 5, 1, WIDTH, HEIGHT): dict(shift=5, rounding="half_up", relu=True, out_width=8),
    (5, 6, 1, WIDTH, HEIGHT): dict(bias=777, shift=0, out_width=12),
    (3, 2, 1, WIDTH, HEIGHT): dict(bias=99, shift=4, rounding="half_up", out_width=9, pipeline=0),
    (5, 4, 1, WIDTH, HEIGHT): dict(shift=3, rounding="truncate", relu=True, out_width=10),
    (3, 2, 4, WIDTH, HEIGHT): dict(bias=-50, shift=5, out_width=8),
    (5, 4, 2, WIDTH, HEIGHT): dict(shift=6, relu=True, out_width=9),
    (3, 4, 2, WIDTH, HEIGHT): dict(shift=4, rounding="truncate", out_width=10),
    (5, 5, 4, WIDTH, HEIGHT): dict(bias=300, shift=7, out_width=8),
    (3, 2, 1, 3, 3): dict(shift=1, out_width=12),  # the smallest legal image
    (3, 2, 4, 4, 3): dict(shift=2, relu=True, out_width=11),  # one beat per row
}


def _params(kernel, line_buffers, ppc=1, width=WIDTH, height=HEIGHT) -> ConvParams:
    rng = np.random.default_rng(100 * kernel + 10 * line_buffers + ppc + width)
    full = rng.integers(-128, 128, size=(kernel, kernel))
    variant = dict(CONFIGS[(kernel, line_buffers, ppc, width, height)])
    if (kernel, line_buffers, ppc) != (3, 3, 1):
        variant.setdefault("coefficients", full)
    return ConvParams(
        width=width,
        height=height,
        kernel=kernel,
        line_buffers=line_buffers,
        pixels_per_clock=ppc,
        **variant,
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


def _config_id(config) -> str:
    k, n, ppc, w, h = config
    return f"k{k}n{n}p{ppc}_{w}x{h}"


@pytest.mark.hardware
@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("config", list(CONFIGS), ids=_config_id)
def test_conv_engine(simulator, config):
    if simulator not in available_simulators():
        pytest.skip(f"{simulator} is not installed")
    kernel, line_buffers, ppc, width, height = config
    params = _params(*config)
    image, name = real_image(params.height, params.width, params.pixel_width)
    seed = kernel * 10 + line_buffers + 100 * ppc
    run = simulate_conv(
        params,
        simulator,
        BUILD / f"{simulator}_{_config_id(config)}",
        real_image=image,
        real_image_name=name,
        random_images=_random_images(params, seed=seed),
        seed=seed,
    )
    assert run.passed, (
        f"{run.result.failed}/{run.result.tests} cocotb tests failed: {run.result.failures}\n"
        + run.result.log_tail()
    )
    assert run.result.tests == len(COCOTB_TESTS)
    assert set(run.measured) == COCOTB_TESTS

    def model(frames=1):
        return conv_cycles(
            width, height, kernel, line_buffers, frames, ppc, pipeline=params.pipeline
        )

    first = first_output_cycle(width, height, kernel, line_buffers, ppc, pipeline=params.pipeline)
    for test in ("test_real_image", "test_random_images", "test_reset_mid_frame"):
        for entry in run.measured[test]:
            assert entry["mismatches"] == 0
            assert entry["outputs"] == params.outputs_per_frame
            assert entry["cycles"] == entry["model_cycles"] == model()
            assert entry["first_output_cycle"] == first
    assert len(run.measured["test_random_images"]) == 3
    b2b = run.measured["test_back_to_back"][0]
    assert b2b["cycles"] == b2b["model_cycles"] == model(frames=2)
    stress = run.measured["test_gaps_and_backpressure"][0]
    assert stress["mismatches"] == 0 and stress["outputs"] == 2 * params.outputs_per_frame
    assert stress["cycles"] > model(frames=2)


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


# Amaranth's own simulator: every mode × P × K on small images, and the corner cases (K = 1
# with no line buffer, W = K, one beat per row, many buffers), without a build step.


def _grid():
    for k in (1, 3, 5):
        for ppc in (1, 2, 4):
            for n in (k - 1, k, k + 1):
                if n >= 0:
                    width = -(-max(2 * k, 4) // ppc) * ppc
                    yield dict(
                        width=width, height=k + 2, kernel=k, line_buffers=n, pixels_per_clock=ppc
                    )


EDGE_CASES = [
    *_grid(),
    dict(width=1, height=1, kernel=1, line_buffers=0, pixels_per_clock=1),
    dict(width=3, height=3, kernel=3, line_buffers=2, pixels_per_clock=1),
    dict(width=4, height=3, kernel=3, line_buffers=2, pixels_per_clock=4),
    dict(width=4, height=3, kernel=3, line_buffers=3, pixels_per_clock=4),
    dict(width=5, height=5, kernel=5, line_buffers=4, pixels_per_clock=1),
    dict(width=6, height=5, kernel=3, line_buffers=7, pixels_per_clock=2),
    *(
        dict(width=8, height=5, kernel=3, line_buffers=n, pixels_per_clock=ppc, pipeline=s)
        for s in (0, 1, 3, 4)
        for n, ppc in ((2, 1), (4, 2), (3, 4))
    ),
]


def _amaranth_run(params, frames, seed, gap=0.0, backpressure=0.0):
    """Stream ``frames`` through ``ConvEngine(params)`` in Amaranth's simulator.

    Returns the output beats as ``(values, keep, last)`` and the first-in, first-out and
    last-out cycles.
    """
    from amaranth.sim import Simulator

    rng = np.random.default_rng(seed)
    lanes = params.pixels_per_clock
    want = len(output_beats(conv2d(frames, params), params))
    dut = ConvEngine(params)
    beats = frames.reshape(-1, lanes).tolist()
    got, marks = [], {}

    async def bench(ctx):
        index, cycle, offer = 0, 0, False
        while len(got) < want:
            if index < len(beats):
                offer = offer or gap == 0 or rng.random() >= gap
            else:
                offer = False
            ctx.set(dut.i.valid, int(offer))
            if index < len(beats):
                ctx.set(dut.i.payload, beats[index][0] if lanes == 1 else beats[index])
            ready = backpressure == 0 or rng.random() >= backpressure
            ctx.set(dut.o.ready, int(ready))
            fire_in = offer and ctx.get(dut.i.ready)
            if ready and ctx.get(dut.o.valid):
                out = ctx.get(dut.o.payload)
                if lanes == 1:
                    got.append(([out.value], 1, out.last))
                else:
                    got.append((list(out.value), out.keep, out.last))
                marks.setdefault("first_out", cycle)
                marks["last_out"] = cycle
            if fire_in:
                marks.setdefault("first_in", cycle)
                index += 1
                offer = False
            await ctx.tick()
            cycle += 1
            assert cycle < 20 * len(beats) + 200, "timeout"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got, marks


def _case_id(c):
    return "w{width}h{height}k{kernel}n{line_buffers}p{pixels_per_clock}".format(**c) + (
        f"s{c['pipeline']}" if c.get("pipeline") else ""
    )


@pytest.mark.parametrize("case", EDGE_CASES, ids=_case_id)
def test_modes_in_amaranth_simulator(case):
    rng = np.random.default_rng(sum(case.values()))
    k, ppc = case["kernel"], case["pixels_per_clock"]
    params = ConvParams(
        **case, coefficients=rng.integers(-128, 128, size=(k, k)), shift=3, out_width=12
    )
    stages = params.pipeline
    frames = rng.integers(0, 256, size=(2, params.height, params.width))
    want = output_beats(conv2d(frames, params), params)
    shape = (params.width, params.height, k, params.line_buffers)
    for gap, backpressure in ((0.0, 0.0), (0.3, 0.4)):
        got, marks = _amaranth_run(params, frames, 7, gap, backpressure)
        assert [(keep, last) for _, keep, last in got] == [(keep, last) for _, keep, last in want]
        for (g_vals, keep, _), (w_vals, _, _) in zip(got, want, strict=True):
            assert [g for lane, g in enumerate(g_vals) if keep >> lane & 1] == [
                w for lane, w in enumerate(w_vals) if keep >> lane & 1
            ]
        if gap == 0.0:
            cycles = marks["last_out"] - marks["first_in"] + 1
            assert cycles == conv_cycles(*shape, frames=2, pixels_per_clock=ppc, pipeline=stages)
            assert marks["first_out"] - marks["first_in"] == first_output_cycle(
                *shape, pixels_per_clock=ppc, pipeline=stages
            )
