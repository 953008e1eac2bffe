"""What one point computes, in the Ray task: every figure of the point as a flat dict.

MLP points: the compress pipeline (``compress.pipeline.run``, as ``python -m compress``) writes
the bundle; ``compress2rtl.hardware`` gives the golden integer accuracy (``predict`` on the
bundle's test inputs), the cycle model's cycles, the Verilog and Yosys figures (``synth``) and
a short bit-exact, cycle-exact RTL check (``simulate``). Conv points: the line-buffer engine
(``rtl_gen.export.designs.conv_design``): Verilog, Yosys, the cycle model, one real image in
RTL against the golden model."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from .grid import MLP_HARDWARE, Point

# Yosys synth_xilinx figures (rtl_gen.export.yosys) kept in the table, under these names
YOSYS_KEYS = {
    "lut": "LUT",
    "ff": "FF",
    "carry4": "CARRY4",
    "dsp": "DSP",
    "ramb18": "RAMB18",
    "ramb36": "RAMB36",
    "lutram": "LUTRAM",
    "multipliers_described": "multipliers",
}


def _yosys(figures: dict) -> dict:
    missing = set(YOSYS_KEYS) - set(figures)
    if missing:
        raise RuntimeError(f"Yosys report without {sorted(missing)}: {figures}")
    row = {name: int(figures[key]) for key, name in YOSYS_KEYS.items()}
    row["BRAM18"] = row["RAMB18"] + 2 * row["RAMB36"]
    return {"yosys": figures, **row}


def run_point(point: Point, work: Path) -> dict:
    """Every figure of ``point``; its files (bundle, Verilog, simulation) under ``work``."""
    import torch

    torch.set_num_threads(1)
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    figures = run_mlp(point, work) if point.kind == "mlp" else run_conv(point, work)
    figures["seconds"] = round(time.time() - t0, 2)
    return figures


def run_mlp(point: Point, work: Path) -> dict:
    import compress2rtl
    from compress.pipeline import config_for
    from compress2rtl.api import config_overrides

    cfg_in = dict(point.config)
    hw_opts = {k: cfg_in.pop(k, v) for k, v in MLP_HARDWARE.items()}
    dataset = cfg_in.pop("dataset", "digits")
    model = cfg_in.pop("model", "lenet300")
    overrides = config_overrides(cfg_in, ("dataset", "model", "out", "extra"), "a sweep point")
    overrides.setdefault("plots", False)
    overrides.setdefault("quiet", True)
    overrides.setdefault("threads", 1)
    # points that differ only in the hardware (build, layout, zero_skip) share one compress run
    spec = {"dataset": dataset, "model": model, "settings": cfg_in, "code": point.code_version}
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:20]
    shared = work.parent.parent / "compress" / digest
    t = time.time()
    summary, reused = _compress_once(
        shared, lambda: config_for(dataset, model, out=str(shared), **overrides)
    )
    out = {
        "compress_seconds": round(time.time() - t, 2),
        "compress_reused": reused,
        "compress_dir": str(shared),
    }
    bundle = compress2rtl.api.Bundle.load(Path(summary["out"]) / "bundle", summary)
    stages = {s["name"]: s for s in summary["stages"]}
    out.update(
        float_accuracy=summary["float_accuracy"],
        integer_accuracy_pipeline=summary["integer_accuracy"],
        integer_val_accuracy=stages["integer reference"]["val_accuracy"],
        float_val_accuracy=stages["float"]["val_accuracy"],
        compression_ratio=summary["compression_ratio"],
        compressed_bytes=summary["compressed_bytes"],
        dense_bytes=summary["dense_bytes"],
        pruned_fraction=summary["pruned_fraction"],
        widths="x".join(str(n) for n in summary["architecture"]["compressed"]),
    )
    hw = compress2rtl.hardware(bundle, **{k: v for k, v in hw_opts.items() if v is not None})
    out["build"] = hw.build
    # the golden model (tb.golden) on every test input of the bundle
    x = np.asarray(bundle.arrays["reference.test_inputs"], dtype=np.int64)
    labels = np.asarray(bundle.arrays["reference.test_labels"], dtype=np.int64)
    logits = hw.predict(x, codes=True)
    out["accuracy"] = float(np.mean(np.argmax(logits, axis=1) == labels))
    out["test_images"] = len(x)
    cycles = hw.cycles(x[: point.check["cycle_images"]], codes=True)
    out.update(
        cycles_mean=float(np.mean(cycles)), cycles_max=int(max(cycles)), cycles_min=int(min(cycles))
    )
    out["rom_bits"] = int(hw.parameters["rom_bits"])
    out["layouts"] = "/".join(map(str, hw.parameters["layouts"]))
    if point.check["synth"]:
        t = time.time()
        out.update(_yosys(hw.synth(work / "verilog")))
        out["synth_seconds"] = round(time.time() - t, 2)
    else:
        hw.export(work / "verilog")
    n = int(point.check["rtl_images"])
    if n:
        t = time.time()
        # raises on any logit that differs from the golden model or cycle count from the model
        hw.simulate(x[:n], codes=True, simulator=point.check["simulator"], build_dir=work / "sim")
        run = hw.last_run
        out.update(
            rtl_images=n,
            rtl_mismatches=int(run["mismatches"]),
            rtl_simulator=run["simulator"],
            rtl_cycles=list(map(int, run["cycles"])),
            rtl_seconds=round(time.time() - t, 2),
        )
    return out


def _compress_once(out: Path, make_config) -> tuple[dict, bool]:
    """The compress pipeline's summary for ``out``: the one already there (written by a point
    with the same compress settings and code version), else a new run; a file lock keeps two
    tasks on one machine from running it at once."""
    from filelock import FileLock

    from compress.pipeline import run

    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        done = out / "summary.json"
        if done.exists() and (out / "bundle" / "manifest.json").exists():
            return {**json.loads(done.read_text()), "out": str(out)}, True
        return run(make_config()), False


def run_conv(point: Point, work: Path) -> dict:
    from rtl_gen.export.designs import conv_design
    from rtl_gen.export.folder import export_design
    from rtl_gen.export.vivado import DEFAULT_PART
    from rtl_gen.export.yosys import synth_report

    c = point.config
    design = conv_design(
        c["line_buffers"],
        c["kernel"],
        c["width"],
        c["height"],
        c["pixels_per_clock"],
        c["pipeline"],
    )
    params = design.component.params
    out = {
        "mode": params.mode,
        "pipeline_stages": params.pipeline,
        "cycles": int(design.cycle_model["cycles_per_frame"]),
        "cycles_per_pixel": design.cycle_model["cycles_per_frame"] / (c["width"] * c["height"]),
        "first_output_cycle": int(design.latency["first_output_cycle"]),
        "storage_bits": int(params.storage_bits),
        "window_bits": int(params.window_bits),
    }
    folder = export_design(design, work / "verilog", DEFAULT_PART, 10.0)
    if point.check["synth"]:
        t = time.time()
        manifest = json.loads((folder / "manifest.json").read_text())
        out.update(_yosys(synth_report(folder, manifest["sources"], manifest["top"])))
        out["synth_seconds"] = round(time.time() - t, 2)
    if point.check["rtl_images"]:
        from sim.conv import simulate_conv
        from sim.tools import default_simulator
        from tb.conv_tb import real_image

        simulator = point.check["simulator"] or default_simulator()
        image, name = real_image(params.height, params.width, params.pixel_width)
        t = time.time()
        run = simulate_conv(
            params,
            simulator,
            work / "sim",
            real_image=image,
            real_image_name=name,
            testcase="test_real_image",
        )
        entry = (run.entries() or [{}])[0]
        if not run.passed or entry.get("mismatches", 1) or entry.get("cycles") != out["cycles"]:
            raise RuntimeError(
                f"RTL differs ({simulator}): {entry.get('mismatches', '?')} mismatches, cycles "
                f"{entry.get('cycles')} vs model {out['cycles']}; log {run.result.log}"
            )
        out.update(
            rtl_images=1,
            rtl_mismatches=0,
            rtl_simulator=simulator,
            rtl_cycles=[int(entry["cycles"])],
            rtl_outputs=int(entry["outputs"]),
            rtl_seconds=round(time.time() - t, 2),
        )
    return out
