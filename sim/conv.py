"""``make sim``: build the line-buffer convolution engine, simulate a real image, check it.

    python -m sim.conv --line-buffers 4 --kernel 3 --width 28 --height 28 \
        [--pixels-per-clock 1] [--pipeline 2] --sim icarus [--waves]

Prints a short table (line buffers and mode, kernel, image size, cycles and first-result
cycle from RTL and model, line-buffer bits, outputs checked, mismatches, speedup against
N = K) and writes ``sim/build/conv_n{N}_k{K}_{W}x{H}[_p{P}][_s{S}]/results.json`` (``_s``
for a pipeline other than the default). Exit status: 0 when bit-exact with the cycle counts
the model predicts, 1 on a mismatch or simulation failure, 2 on bad parameters.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from rtl_gen.conv import ConvEngine, ConvParams
from rtl_gen.conv.params import default_pipeline
from rtl_gen.verilog import to_verilog

from .runner import SimResult, SimulatorMissing, run_cocotb
from .tools import SIMULATORS, available_simulators, default_simulator

__all__ = ["BUILD_ROOT", "ConvRun", "build_dir_name", "main", "simulate_conv"]

BUILD_ROOT = Path(__file__).resolve().parent / "build"
TOPLEVEL = "conv_engine"
TEST_MODULE = "tb.conv_tb"
#: Largest frame ``make sim`` simulates: 512x512 takes about 15 s in Icarus per run (20k
#: cycles/s), larger frames take minutes to hours and gigabytes of waveform.
MAX_SIM_PIXELS = 512 * 512


def _pipeline_text(params: ConvParams) -> str:
    """``2 extra stages (latency 5 cycles)``; the row-scan modes name their read register."""
    read = " + read register" if params.read_stage else ""
    return f"{params.pipeline} extra stages{read} (latency {params.latency} cycles)"


def build_dir_name(params: ConvParams) -> str:
    name = f"conv_n{params.line_buffers}_k{params.kernel}_{params.width}x{params.height}"
    if params.pixels_per_clock > 1:
        name += f"_p{params.pixels_per_clock}"
    if params.pipeline != default_pipeline(params.kernel, params.pixels_per_clock):
        name += f"_s{params.pipeline}"
    return name


class ConvRun:
    """One simulation of the engine: the runner's verdict and what the testbench measured."""

    def __init__(self, result: SimResult, measured: dict, wall_seconds: float):
        self.result = result
        self.measured = measured
        self.wall_seconds = wall_seconds

    def entries(self, test: str = "test_real_image") -> list[dict]:
        return self.measured.get(test, [])

    @property
    def passed(self) -> bool:
        return self.result.passed


def simulate_conv(
    params: ConvParams,
    simulator: str,
    build_dir,
    *,
    real_image: np.ndarray | None = None,
    real_image_name: str = "real",
    random_images: list[np.ndarray] | None = None,
    testcase: str | list[str] | None = None,
    seed: int = 1,
    gap: float = 0.3,
    backpressure: float = 0.4,
    waves: bool = False,
) -> ConvRun:
    """Build ``ConvEngine(params)`` for ``simulator`` in ``build_dir`` and run ``tb.conv_tb``.

    The images and parameters reach the cocotb tests through a JSON file
    (``$CONV_TB_CONFIG``); the tests' measurements come back through ``$CONV_TB_REPORT``.
    Images are checked against ``params`` first (shape, pixel range): a bad one raises
    :class:`ValueError` before anything is built.
    """
    config = {"params": params.to_dict(), "seed": seed, "gap": gap, "backpressure": backpressure}
    if real_image is not None:
        config["real_image"] = params.check_image(real_image, "real_image").tolist()
        config["real_image_name"] = real_image_name
    if random_images:
        config["random_images"] = [
            params.check_image(img, "random_images").tolist() for img in random_images
        ]
    build_dir = Path(build_dir)
    sim_dir = build_dir / simulator
    sim_dir.mkdir(parents=True, exist_ok=True)
    config_path = sim_dir / "tb_config.json"
    report_path = sim_dir / "tb_report.json"
    config_path.write_text(json.dumps(config))
    report_path.unlink(missing_ok=True)
    started = time.perf_counter()
    result = run_cocotb(
        ConvEngine(params),
        toplevel=TOPLEVEL,
        test_module=TEST_MODULE,
        build_dir=build_dir,
        simulator=simulator,
        extra_env={"CONV_TB_CONFIG": str(config_path), "CONV_TB_REPORT": str(report_path)},
        waves=waves,
        testcase=testcase,
        seed=seed,
    )
    wall = time.perf_counter() - started
    measured = json.loads(report_path.read_text()) if report_path.exists() else {}
    return ConvRun(result, measured, wall)


def _fingerprint(params: ConvParams, image: np.ndarray, simulator: str, verilog: str) -> str:
    """Key of a run's results: parameters, image, simulator and the generated Verilog itself, so
    that a changed generator never reuses an old result."""
    text = json.dumps([params.to_dict(), image.tolist(), simulator, verilog])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _results(params, run: ConvRun, simulator, image_name, fingerprint) -> dict:
    entry = (run.entries() or [{}])[0]
    return {
        "line_buffers": params.line_buffers,
        "mode": params.mode,
        "pixels_per_clock": params.pixels_per_clock,
        "pipeline": params.pipeline,
        "latency": params.latency,
        "kernel": params.kernel,
        "width": params.width,
        "height": params.height,
        "cycles": entry.get("cycles"),
        "model_cycles": entry.get("model_cycles"),
        "first_output_cycle": entry.get("first_output_cycle"),
        "model_first_output_cycle": entry.get("model_first_output_cycle"),
        "storage_bits": params.storage_bits,
        "window_bits": params.window_bits,
        "outputs": entry.get("outputs", 0),
        "expected_outputs": params.outputs_per_frame,
        "mismatches": entry.get("mismatches", params.outputs_per_frame),
        "simulator": simulator,
        "passed": run.passed,
        "image": image_name,
        "coefficients": params.coefficients.tolist(),
        "shift": params.shift,
        "rounding": params.rounding,
        "out_width": params.out_width,
        "acc_width": params.acc_width,
        "verilog": str(run.result.verilog),
        "log": str(run.result.log),
        "waves": str(run.result.waves) if run.result.waves else None,
        "wall_seconds": round(run.wall_seconds, 3),
        "fingerprint": fingerprint,
    }


def _write_results(out_dir: Path, simulator: str, results: dict) -> None:
    """``results.json`` of the latest run, and a copy per simulator (the baseline cache)."""
    text = json.dumps(results, indent=2) + "\n"
    (out_dir / simulator).mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(text)
    (out_dir / simulator / "results.json").write_text(text)


def _baseline(params: ConvParams, image, name, simulator) -> tuple[dict | None, str]:
    """Results of the same image with ``N = K``: cached from an earlier run, else simulated."""
    base = ConvParams(**{**params.to_dict(), "line_buffers": params.kernel})
    out_dir = BUILD_ROOT / build_dir_name(base)
    fp = _fingerprint(base, image, simulator, to_verilog(ConvEngine(base), name=TOPLEVEL))
    cached = out_dir / simulator / "results.json"
    if cached.exists():
        data = json.loads(cached.read_text())
        if data.get("fingerprint") == fp and data.get("passed"):
            return data, "cached"
    run = simulate_conv(
        base, simulator, out_dir, real_image=image, real_image_name=name, testcase="test_real_image"
    )
    data = _results(base, run, simulator, name, fp)
    _write_results(out_dir, simulator, data)
    return (data if run.passed else None), "simulated"


def _parse(argv):
    ap = argparse.ArgumentParser(prog="python -m sim.conv", description=__doc__.splitlines()[0])
    ap.add_argument("--line-buffers", type=int, default=4)
    ap.add_argument("--kernel", type=int, default=3)
    ap.add_argument("--width", type=int, default=28)
    ap.add_argument("--height", type=int, default=28)
    ap.add_argument("--pixels-per-clock", type=int, default=1, help="P: pixels per beat")
    ap.add_argument(
        "--pipeline",
        type=int,
        default=None,
        help="extra datapath stages, 0..4 (default: chosen by measured Fmax, 2 for K <= 3)",
    )
    ap.add_argument("--sim", default=None, help=f"one of {SIMULATORS} (default: installed)")
    ap.add_argument("--waves", action="store_true", help="record a waveform")
    ap.add_argument("--no-baseline", action="store_true", help="skip the N = K comparison")
    return ap.parse_args(argv)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    try:
        args = _parse(argv)
    except SystemExit as exc:  # argparse: bad syntax
        return int(exc.code or 0) and 2
    try:
        params = ConvParams(
            width=args.width,
            height=args.height,
            kernel=args.kernel,
            line_buffers=args.line_buffers,
            pixels_per_clock=args.pixels_per_clock,
            pipeline=args.pipeline,
        )
    except ValueError as exc:
        return _fail(str(exc))
    pixels = params.width * params.height
    if pixels > MAX_SIM_PIXELS:
        return _fail(
            f"a {params.width}x{params.height} frame ({pixels} pixels) is too large to simulate "
            f"here: at most {MAX_SIM_PIXELS} pixels (e.g. 512x512)"
        )
    simulator = args.sim or default_simulator()
    if simulator not in SIMULATORS:
        return _fail(f"sim must be one of {SIMULATORS}, not {simulator!r}")
    if simulator not in available_simulators():
        return _fail(f"simulator {simulator!r} is not installed here")

    from tb.conv_tb import real_image

    image, name = real_image(params.height, params.width, params.pixel_width)
    out_dir = BUILD_ROOT / build_dir_name(params)
    started = time.perf_counter()
    try:
        run = simulate_conv(
            params,
            simulator,
            out_dir,
            real_image=image,
            real_image_name=name,
            testcase="test_real_image",
            waves=args.waves,
        )
    except SimulatorMissing as exc:
        return _fail(str(exc))
    fp = _fingerprint(params, image, simulator, Path(run.result.verilog).read_text())
    results = _results(params, run, simulator, name, fp)

    baseline, how, baseline_failed = None, "", False
    if not args.no_baseline and params.line_buffers != params.kernel and run.passed:
        baseline, how = _baseline(params, image, name, simulator)
        baseline_failed = baseline is None
    if params.line_buffers == params.kernel:
        results["speedup_vs_n_eq_k"] = 1.0
    elif baseline and results["cycles"]:
        results["speedup_vs_n_eq_k"] = round(baseline["cycles"] / results["cycles"], 4)
        results["baseline_cycles"] = baseline["cycles"]
        results["baseline"] = how
    results["total_wall_seconds"] = round(time.perf_counter() - started, 3)
    _write_results(out_dir, simulator, results)

    speedup = results.get("speedup_vs_n_eq_k")
    speed_text = "n/a"
    if speedup is not None:
        speed_text = f"{speedup:.3f}x"
        if params.line_buffers != params.kernel:
            speed_text += f" (N={params.kernel}: {results['baseline_cycles']} cycles, {how})"
    rows = [
        ("line buffers", f"{params.line_buffers} ({params.mode})"),
        ("pixels per clock", params.pixels_per_clock),
        ("pipeline", _pipeline_text(params)),
        ("kernel", f"{params.kernel}x{params.kernel}"),
        ("image", f"{params.width}x{params.height} ({name})"),
        ("simulator", simulator),
        ("cycles (RTL)", results["cycles"]),
        ("cycles (model)", results["model_cycles"]),
        (
            "first result",
            f"cycle {results['first_output_cycle']} (model {results['model_first_output_cycle']})",
        ),
        (
            "line-buffer bits",
            f"{params.storage_bits} (+ {params.window_bits} window register bits)",
        ),
        ("outputs checked", f"{results['outputs']} / {params.outputs_per_frame}"),
        ("mismatches", results["mismatches"]),
        (f"speedup vs N={params.kernel}", speed_text),
    ]
    for label, value in rows:
        print(f"  {label:<18} {value}")
    if results["waves"]:
        print(f"  {'waveform':<18} {results['waves']}")
    print(f"  {'results':<18} {out_dir / 'results.json'}")

    if not run.passed:
        failed = ", ".join(run.result.failures) or "simulation"
        print(f"FAIL: {failed} failed; simulator log: {run.result.log}", file=sys.stderr)
        print(run.result.log_tail(30), file=sys.stderr)
        return 1
    if baseline_failed:
        print(f"FAIL: the N={params.kernel} baseline run failed", file=sys.stderr)
        return 1
    print("PASS: bit-exact, cycles equal to the model")
    return 0


if __name__ == "__main__":
    sys.exit(main())
