#!/usr/bin/env python3
"""Benchmark the line-buffer convolution engine over line-buffer modes and pixels per clock.

For K = 3, N in {K-1, K, K+1} (streaming, serial, overlapped), P in {1, 2, 4} and images of
28x28 and 224x224 pixels (a real picture, resized), simulates one frame of the generated
Verilog under each installed simulator, checks it bit-exact against the golden model and its
cycle count and first-result cycle against the cycle model, and synthesizes each design with
Yosys ``synth_xilinx`` (xc7) for its resources. Reports cycles, cycles per pixel, the
first-result latency, line-buffer bits and LUT/FF/DSP/BRAM/LUTRAM, next to the measured
figures of FINN's RTL sliding-window generator (finn-plus 1.6.1, K = 3, one channel, window
generation only, no MAC) as a reference row. FINN is not a dependency: its figures are quoted.

Writes ``build/bench/linebuffers.json``, ``build/bench/linebuffers.md`` and
``build/bench/linebuffers.png``.

    python scripts/bench_linebuffers.py [--quick] [--sizes 28x28,224x224] [--sims icarus]
        [--line-buffers 2,3,4] [--pixels-per-clock 1,2,4] [--no-synth]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rtl_gen.conv import ConvParams  # noqa: E402
from sim.conv import build_dir_name, simulate_conv  # noqa: E402
from sim.tools import SIMULATORS, available_simulators  # noqa: E402
from tb.conv_tb import real_image  # noqa: E402
from tb.golden.conv import conv_cycles, first_output_cycle  # noqa: E402

OUT = ROOT / "build" / "bench"
RESOURCE_KEYS = ("lut", "ff", "dsp", "ramb18", "ramb36", "lutram")

#: Measured figures of FINN's RTL sliding-window generator (finn-plus 1.6.1, K = 3, one
#: channel, parallel window, no MAC), per image size: cycles per frame (frames not
#: overlapped), first pixel in to first window out, and its buffer of (K-1)·W + K pixels.
FINN_SWG = {
    (28, 28): {"cycles": 785, "first_output_cycle": 59, "storage_bits": 472},
    (224, 224): {"cycles": 50177, "first_output_cycle": None, "storage_bits": 3608},
}


def _sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for item in text.split(","):
        try:
            w, h = (int(v) for v in item.lower().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"size must look like 28x28, not {item!r}") from None
        sizes.append((w, h))
    return sizes


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a comma list of integers, not {text!r}"
        ) from None


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=_sizes, default=None, help="WxH list (28x28,224x224)")
    ap.add_argument("--kernel", type=int, default=3)
    ap.add_argument("--line-buffers", type=_ints, default=None, help="N list (K-1,K,K+1)")
    ap.add_argument("--pixels-per-clock", type=_ints, default=[1, 2, 4], help="P list")
    ap.add_argument("--sims", default=None, help=f"comma list from {SIMULATORS} (installed)")
    ap.add_argument("--quick", action="store_true", help="28x28 only")
    ap.add_argument("--no-synth", action="store_true", help="skip the Yosys resource figures")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if args.sizes is None:
        args.sizes = [(28, 28)] if args.quick else [(28, 28), (224, 224)]
    if args.line_buffers is None:
        args.line_buffers = [args.kernel - 1, args.kernel, args.kernel + 1]
    args.sims = args.sims.split(",") if args.sims else available_simulators()
    return args


def synthesize(params: ConvParams, out: Path) -> dict:
    """Yosys ``synth_xilinx`` figures of the engine (cached in the design's folder)."""
    from rtl_gen.export.designs import conv_design
    from rtl_gen.export.folder import export_design
    from rtl_gen.export.yosys import synth_xilinx

    design = conv_design(
        params.line_buffers, params.kernel, params.width, params.height, params.pixels_per_clock
    )
    folder = out / "synth" / design.name
    cached = folder / "reports" / "bench_utilization.json"
    manifest_path = folder / "manifest.json"
    folder = export_design(design, folder)
    verilog = hashlib.sha256((folder / f"{design.top}.v").read_bytes()).hexdigest()
    if cached.exists():
        data = json.loads(cached.read_text())
        if data.get("verilog") == verilog:
            return data["figures"]
    manifest = json.loads(manifest_path.read_text())
    figures, _ = synth_xilinx(folder, manifest["sources"], manifest["top"])
    cached.write_text(json.dumps({"verilog": verilog, "figures": figures}) + "\n")
    return figures


def plot(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({(r["width"], r["height"]) for r in records}, key=lambda s: s[0] * s[1])
    fig, axes = plt.subplots(1, len(sizes), figsize=(5.5 * len(sizes), 4), squeeze=False)
    for ax, (w, h) in zip(axes[0], sizes, strict=True):
        rows = [r for r in records if (r["width"], r["height"]) == (w, h)]
        modes = sorted({r["line_buffers"] for r in rows})
        ppcs = sorted({r["pixels_per_clock"] for r in rows})
        bar = 0.8 / len(modes)
        for i, n in enumerate(modes):
            xs, ys = [], []
            for j, ppc in enumerate(ppcs):
                match = [r for r in rows if (r["line_buffers"], r["pixels_per_clock"]) == (n, ppc)]
                if match:
                    xs.append(j + (i - (len(modes) - 1) / 2) * bar)
                    ys.append(match[0]["cycles_per_pixel"])
            mode = next(r["mode"] for r in rows if r["line_buffers"] == n)
            ax.bar(xs, ys, width=bar, label=f"N={n} ({mode})")
        finn = FINN_SWG.get((w, h))
        if finn:
            ax.axhline(finn["cycles"] / (w * h), color="k", ls="--", lw=1, label="FINN SWG (P=1)")
        ax.set_xticks(range(len(ppcs)), [f"P={p}" for p in ppcs])
        ax.set_ylabel("cycles per pixel (RTL)")
        ax.set_title(f"K={rows[0]['kernel']}, {w}x{h}")
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def table(records: list[dict], sizes, synth: bool) -> str:
    cols = ["image", "N (mode)", "P", "cycles", "cycles/px", "first out", "line-buffer bits"]
    if synth:
        cols += ["LUT", "FF", "DSP", "BRAM18", "LUTRAM"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * 2 + "---:|" * (len(cols) - 2)]
    for w, h in sizes:
        for r in [r for r in records if (r["width"], r["height"]) == (w, h)]:
            cells = [
                f"{w}×{h}",
                f"{r['line_buffers']} ({r['mode']})",
                str(r["pixels_per_clock"]),
                f"{r['cycles']:,}",
                f"{r['cycles_per_pixel']:.3f}",
                str(r["first_output_cycle"]),
                f"{r['storage_bits']:,}",
            ]
            if synth:
                res = r["resources"]
                bram = res["ramb18"] + 2 * res["ramb36"]
                cells += [str(res[k]) for k in ("lut", "ff", "dsp")] + [
                    str(bram),
                    str(res["lutram"]),
                ]
            lines.append("| " + " | ".join(cells) + " |")
        finn = FINN_SWG.get((w, h))
        if finn:
            first = finn["first_output_cycle"]
            cells = [
                f"{w}×{h}",
                "FINN SWG (finn-plus 1.6.1, no MAC)",
                "1",
                f"{finn['cycles']:,}",
                f"{finn['cycles'] / (w * h):.3f}",
                "—" if first is None else str(first),
                f"{finn['storage_bits']:,}",
            ]
            if synth:
                cells += ["—"] * 5
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse(argv)
    missing = [s for s in args.sims if s not in available_simulators()]
    if missing:
        print(f"error: simulator(s) not installed: {', '.join(missing)}", file=sys.stderr)
        return 2
    configs = []
    try:
        for w, h in args.sizes:
            for n in args.line_buffers:
                for ppc in args.pixels_per_clock:
                    configs.append(
                        ConvParams(
                            width=w,
                            height=h,
                            kernel=args.kernel,
                            line_buffers=n,
                            pixels_per_clock=ppc,
                        )
                    )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    args.out.mkdir(parents=True, exist_ok=True)
    records, failures = [], 0
    started = time.perf_counter()
    images = {(w, h): real_image(h, w) for w, h in args.sizes}
    for index, params in enumerate(configs, 1):
        w, h, k = params.width, params.height, params.kernel
        n, ppc = params.line_buffers, params.pixels_per_clock
        image, name = images[(w, h)]
        shape = (w, h, k, n)
        record = {
            "width": w,
            "height": h,
            "kernel": k,
            "line_buffers": n,
            "mode": params.mode,
            "pixels_per_clock": ppc,
            "pipeline": params.pipeline,
            "model_cycles": conv_cycles(*shape, pixels_per_clock=ppc),
            "model_first_output_cycle": first_output_cycle(*shape, pixels_per_clock=ppc),
            "storage_bits": params.storage_bits,
            "window_bits": params.window_bits,
            "simulators": {},
        }
        ok = True
        for sim in args.sims:
            run = simulate_conv(
                params,
                sim,
                args.out / build_dir_name(params),
                real_image=image,
                real_image_name=name,
                testcase="test_real_image",
            )
            entry = (run.entries() or [{}])[0]
            passed = run.passed and entry.get("mismatches") == 0
            ok &= passed
            seconds = entry.get("run_seconds") or float("nan")
            record["simulators"][sim] = {
                "cycles": entry.get("cycles"),
                "first_output_cycle": entry.get("first_output_cycle"),
                "outputs": entry.get("outputs"),
                "mismatches": entry.get("mismatches"),
                "passed": passed,
                "build_seconds": round(run.result.build_seconds, 3),
                "run_seconds": seconds,
                "sim_cycles_per_second": round(entry.get("run_cycles", 0) / seconds, 1),
            }
        first = record["simulators"][args.sims[0]]
        agree = all(
            (s["cycles"], s["first_output_cycle"]) == (first["cycles"], first["first_output_cycle"])
            for s in record["simulators"].values()
        )
        record["cycles"] = first["cycles"]
        record["first_output_cycle"] = first["first_output_cycle"]
        record["cycles_per_pixel"] = (first["cycles"] or 0) / (w * h)
        record["passed"] = ok and agree and first["cycles"] == record["model_cycles"]
        failures += not record["passed"]
        synth_note = ""
        if not args.no_synth:
            t0 = time.perf_counter()
            record["resources"] = synthesize(params, args.out)
            synth_note = f", synth {time.perf_counter() - t0:.0f}s"
        records.append(record)
        print(
            f"  [{index}/{len(configs)}] {w}x{h} N={n} ({params.mode}) P={ppc}: "
            f"{record['cycles']} cycles, first result {record['first_output_cycle']}"
            f" ({'ok' if record['passed'] else 'FAIL'}{synth_note})",
            flush=True,
        )

    summary = {
        "kernel": args.kernel,
        "sizes": [f"{w}x{h}" for w, h in args.sizes],
        "line_buffers": args.line_buffers,
        "pixels_per_clock": args.pixels_per_clock,
        "simulators": args.sims,
        "image": "real picture (Fashion-MNIST test image 0 or sklearn digit 0), resized",
        "synthesis": None if args.no_synth else "Yosys synth_xilinx -family xc7, flattened",
        "reference": {
            "name": "FINN RTL sliding-window generator, finn-plus 1.6.1 (measured, quoted)",
            "figures": {f"{w}x{h}": v for (w, h), v in FINN_SWG.items()},
        },
        "records": records,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    (args.out / "linebuffers.json").write_text(json.dumps(summary, indent=2) + "\n")
    markdown = table(records, args.sizes, not args.no_synth)
    (args.out / "linebuffers.md").write_text(markdown)
    plot(records, args.out / "linebuffers.png")
    print()
    print(markdown)
    print(f"wrote {args.out / 'linebuffers.json'}, linebuffers.md and linebuffers.png")
    if failures:
        print(f"FAIL: {failures} configuration(s) not bit-exact or off the model", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
