#!/usr/bin/env python3
"""Benchmark the line-buffer convolution engine: cycles against the number of line buffers.

For K = 3, N = 3..6 and images of 28x28, 64x64 and 224x224 pixels (a real picture, resized),
simulates one frame of the generated Verilog under each installed simulator and reports
cycles, cycles per input pixel, the ratio to N = K, and the simulator's speed (simulated
clock cycles per second of wall time, testbench included). Every run is checked bit-exact
against the golden model and its cycle count against the cycle model.

Writes ``build/bench/linebuffers.json`` and ``build/bench/linebuffers.png``.

    python scripts/bench_linebuffers.py [--quick] [--sizes 28x28,64x64] [--sims icarus]
"""

from __future__ import annotations

import argparse
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
from tb.golden.conv import conv_cycles  # noqa: E402

OUT = ROOT / "build" / "bench"


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
    return [int(v) for v in text.split(",")]


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--sizes", type=_sizes, default=None, help="WxH list (default 28x28,64x64,224x224)"
    )
    ap.add_argument("--line-buffers", type=_ints, default=[3, 4, 5, 6], help="N list")
    ap.add_argument("--kernel", type=int, default=3)
    ap.add_argument(
        "--sims", default=None, help=f"comma list from {SIMULATORS} (default: installed)"
    )
    ap.add_argument("--quick", action="store_true", help="sizes 28x28 and 64x64 only")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if args.sizes is None:
        args.sizes = [(28, 28), (64, 64)] if args.quick else [(28, 28), (64, 64), (224, 224)]
    args.sims = args.sims.split(",") if args.sims else available_simulators()
    return args


def plot(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    sizes = sorted({(r["width"], r["height"]) for r in records}, key=lambda s: s[0] * s[1])
    for w, h in sizes:
        rows = sorted(
            {r["line_buffers"]: r for r in records if (r["width"], r["height"]) == (w, h)}.values(),
            key=lambda r: r["line_buffers"],
        )
        ns = [r["line_buffers"] for r in rows]
        ax1.plot(ns, [r["cycles"] for r in rows], "o-", label=f"{w}x{h}")
        ax2.plot(ns, [r["cycles_per_pixel"] for r in rows], "o-", label=f"{w}x{h}")
    ax1.set_yscale("log")
    ax1.set_xlabel("line buffers N")
    ax1.set_ylabel("cycles per frame (RTL)")
    ax1.set_title(f"K={records[0]['kernel']}: cycles per frame")
    ax2.set_xlabel("line buffers N")
    ax2.set_ylabel("cycles per input pixel")
    ax2.set_title("cycles per input pixel")
    for ax in (ax1, ax2):
        ax.set_xticks(sorted({r["line_buffers"] for r in records}))
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    args = parse(argv)
    missing = [s for s in args.sims if s not in available_simulators()]
    if missing:
        print(f"error: simulator(s) not installed: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        for w, h in args.sizes:
            for n in args.line_buffers:
                ConvParams(width=w, height=h, kernel=args.kernel, line_buffers=n)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    args.out.mkdir(parents=True, exist_ok=True)
    records, failures = [], 0
    started = time.perf_counter()
    for w, h in args.sizes:
        image, name = real_image(h, w)
        for n in args.line_buffers:
            params = ConvParams(width=w, height=h, kernel=args.kernel, line_buffers=n)
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
                ok = run.passed and entry.get("mismatches") == 0
                failures += not ok
                seconds = entry.get("run_seconds") or float("nan")
                records.append(
                    {
                        "simulator": sim,
                        "width": w,
                        "height": h,
                        "kernel": args.kernel,
                        "line_buffers": n,
                        "cycles": entry.get("cycles"),
                        "model_cycles": conv_cycles(w, h, args.kernel, n),
                        "cycles_per_pixel": (entry.get("cycles") or 0) / (w * h),
                        "outputs": entry.get("outputs"),
                        "mismatches": entry.get("mismatches"),
                        "passed": ok,
                        "build_seconds": round(run.result.build_seconds, 3),
                        "rebuilt": run.result.rebuilt,
                        "run_seconds": seconds,
                        "sim_cycles_per_second": round(entry.get("run_cycles", 0) / seconds, 1),
                    }
                )
                print(
                    f"  {sim:<9} {w}x{h} N={n}: {entry.get('cycles')} cycles"
                    f" ({'ok' if ok else 'FAIL'}, build {run.result.build_seconds:.1f}s,"
                    f" run {seconds:.2f}s)",
                    flush=True,
                )

    # Ratio to N = K, per simulator and size.
    for r in records:
        base = next(
            (
                b
                for b in records
                if (b["simulator"], b["width"], b["height"])
                == (r["simulator"], r["width"], r["height"])
                and b["line_buffers"] == args.kernel
            ),
            None,
        )
        r["ratio_to_n_eq_k"] = (
            round(base["cycles"] / r["cycles"], 4) if base and r["cycles"] else None
        )

    summary = {
        "kernel": args.kernel,
        "sizes": [f"{w}x{h}" for w, h in args.sizes],
        "line_buffers": args.line_buffers,
        "simulators": args.sims,
        "image": "real picture (Fashion-MNIST test image 0 or sklearn digit 0), resized",
        "records": records,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    (args.out / "linebuffers.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot(records, args.out / "linebuffers.png")

    sims = args.sims
    head = f"{'image':>9} {'N':>2} {'cycles':>8} {'model':>8} {'cyc/px':>7} {'vs N=K':>7}"
    head += "".join(f" {s + ' cyc/s':>17}" for s in sims)
    print()
    print(head)
    print("-" * len(head))
    for w, h in args.sizes:
        for n in args.line_buffers:
            rows = {
                r["simulator"]: r
                for r in records
                if (r["width"], r["height"], r["line_buffers"]) == (w, h, n)
            }
            first = rows[sims[0]]
            agree = all(r["cycles"] == first["cycles"] for r in rows.values())
            cycles = f"{first['cycles']}" + ("" if agree else "*")
            line = (
                f"{f'{w}x{h}':>9} {n:>2} {cycles:>8} {first['model_cycles']:>8}"
                f" {first['cycles_per_pixel']:>7.3f} {first['ratio_to_n_eq_k'] or 0:>6.3f}x"
            )
            line += "".join(f" {rows[s]['sim_cycles_per_second']:>17,.0f}" for s in sims)
            print(line)
    print(f"\nwrote {args.out / 'linebuffers.json'} and {args.out / 'linebuffers.png'}")
    if failures:
        print(f"FAIL: {failures} run(s) not bit-exact or failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
