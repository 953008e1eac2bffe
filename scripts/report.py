"""The comparison report: resources, ROM bits, cycles, latency and throughput of every design.

Conv engine with N = K and N = K + 1 line buffers; the MLP of a compress bundle as the dense
baseline (original network, 16-bit weights), pruned (CSR + codebook, multipliers), shift-quantized
(CSR + power-of-two codes, shifts), shift-quantized with zero-skipping, and the same with each
layer's ROM in the smaller of the CSR and direct layouts (``auto``); the LeNet-5 CNN of a
version-2 bundle (``--cnn-bundle``) and its dense 16-bit baseline. Writes
``build/report/report.md``, ``report.json`` and ``report.png`` (a panel row per design family,
values on the bars, extrapolated baselines hatched, the Zynq-7020's capacity on the resource
panels); prints a progress line per row and synthesis, then the table.

Resources come from Yosys ``synth_xilinx``: the conv engines and the compressed MLPs are
synthesized whole (under a minute each); the dense baseline (hundreds of neurons) is synthesized
as each layer's median neuron scaled by the layer's neuron count (``--mlp-synth auto``, the
default; ``neuron`` does this for every MLP, ``full`` synthesizes every MLP whole).
Cycles come from the golden cycle models, which the cocotb regression checks against the RTL
exactly; MLP cycles are averaged over the bundle's whole test set.

Fmax comes from open place-and-route on an ECP5-85k (Yosys ``synth_ecp5`` + nextpnr-ecp5,
seed 1, target 100 MHz, router2 with its timing-driven rip-up for the whole CNN and router1 for
the rest unless ``--router`` says otherwise; ``--no-timing`` skips it): an ECP5 figure, a
conservative bound for a 7-series part (see docs/export.md). Latency and throughput are
computed at the clock ``min(--clock-mhz, Fmax)``: the stated target clock where the measured
figure meets it, the measured Fmax where it does not. Whole designs only: the dense baseline's
row has no Fmax.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from rtl_gen.export import designs
from rtl_gen.export.estimate import conv_estimate, mlp_estimate
from rtl_gen.export.folder import Design, export_design
from rtl_gen.export.timing import DEFAULT_CACHE, DEFAULT_ROUTER, ROUTERS, ecp5_timing
from rtl_gen.export.yosys import synth_xilinx
from tb.golden.conv import conv_cycles
from tb.golden.mlp import mlp_cycles

RESOURCES = ("lut", "ff", "carry4", "dsp", "ramb18", "ramb36", "lutram")


TIMING = {"enabled": True, "cache": DEFAULT_CACHE, "router": "auto"}
#: Tops placed with router2 and its timing-driven rip-up when ``--router auto``: router1 spends
#: hours resolving the whole CNN's congestion, router2 about 10 minutes, and the rip-up takes
#: the CNN from 90.7 to 101.4 MHz on the same placement (docs/export.md, "TMG_RIPUP").
ROUTER2_TOPS = ("cnn",)


def timing_router(design: Design) -> str:
    """nextpnr's router for ``design``'s Fmax: ``--router`` when it names one; ``auto``: router2
    for the tops in :data:`ROUTER2_TOPS`, nextpnr's default router1 for the others."""
    if TIMING["router"] != "auto":
        return TIMING["router"]
    return "router2" if design.top in ROUTER2_TOPS else DEFAULT_ROUTER


def timing_ripup(design: Design) -> bool:
    """nextpnr's timing-driven rip-up for ``design``: with ``--router auto``, for the tops in
    :data:`ROUTER2_TOPS`; never with a router named by ``--router``."""
    return TIMING["router"] == "auto" and design.top in ROUTER2_TOPS


STARTED = time.monotonic()


def progress(message: str) -> None:
    """One line per step as the report runs (``make report`` takes minutes)."""
    print(f"[{time.monotonic() - STARTED:5.0f} s] {message}", flush=True)


def synth(design: Design, out: Path) -> dict:
    folder = export_design(design, out / design.name)
    manifest = json.loads((folder / "manifest.json").read_text())
    progress(f"  {design.name}: Yosys synth_xilinx ...")
    started = time.monotonic()
    figures, coarse = synth_xilinx(folder, manifest["sources"], design.top)
    figures["mul_cells"] = coarse.get("$mul", 0)
    progress(
        f"  {design.name}: {figures['lut']} LUT, {figures['ff']} FF, {figures['dsp']} DSP "
        f"({time.monotonic() - started:.0f} s)"
    )
    figures["fmax_mhz"] = None
    if TIMING["enabled"]:
        started = time.monotonic()
        timing = ecp5_timing(
            folder, manifest["sources"], design.top, cache=TIMING["cache"],
            router=timing_router(design), tmg_ripup=timing_ripup(design),
        )  # fmt: skip
        (folder / "reports" / "timing_ecp5.json").write_text(json.dumps(timing, indent=2) + "\n")
        figures["fmax_mhz"] = timing["fmax_mhz"]
        figures["critical_path"] = (timing.get("critical_path") or {}).get("start", "?") + (
            " -> " + (timing.get("critical_path") or {}).get("end", "?")
        )
        how = "cached" if timing.get("cached") else f"{time.monotonic() - started:.0f} s"
        progress(
            f"  {design.name}: Fmax {timing['fmax_mhz']:.1f} MHz (ECP5-85k, {timing['router']}"
            f"{', timing-driven rip-up' if timing.get('tmg_ripup') else ''}), {how}"
        )
    return figures


def clock_for(figures: dict, clock_mhz: float) -> float:
    """The clock the latency and throughput are stated at: the target, or Fmax below it."""
    fmax = figures.get("fmax_mhz")
    return clock_mhz if fmax is None else min(clock_mhz, fmax)


def conv_rows(kernel: int, size: int, clock_mhz: float, out: Path) -> list[dict]:
    rows = []
    for n in (kernel - 1, kernel, kernel + 1):
        progress(f"conv K={kernel} N={n} {size}x{size}")
        design = designs.conv_design(n, kernel, size, size)
        figures = synth(design, out)
        one = conv_cycles(size, size, kernel, n)
        interval = conv_cycles(size, size, kernel, n, frames=2) - one
        clock = clock_for(figures, clock_mhz)
        rows.append(
            {
                "design": f"conv K={kernel} N={n} {size}x{size}",
                "fmax_mhz": figures["fmax_mhz"],
                "critical_path": figures.get("critical_path"),
                "clock_mhz": clock,
                **{k: figures[k] for k in RESOURCES},
                "rom_bits": design.component.params.kernel**2 * design.component.params.coef_width,
                "ram_bits": n * size * design.component.params.pixel_width,
                "cycles": one,
                "latency_us": one / clock,
                "throughput_per_s": clock * 1e6 / interval,
                "resources_from": "yosys (whole design)",
                "estimate": conv_estimate(**design.parameters),
            }
        )
    return rows


def _median_neuron(layer) -> int:
    counts = [
        len(layer.weights.rom_words(j, layer.build, layer.layout))
        for j in range(layer.weights.out_features)
    ]
    return int(np.argsort(counts)[len(counts) // 2])


def mlp_resources_by_neuron(mlp, name: str, out: Path) -> dict:
    """Yosys figures of each layer's median neuron, times the layer's neuron count."""
    total = dict.fromkeys((*RESOURCES, "mul_cells"), 0)
    enabled, TIMING["enabled"] = TIMING["enabled"], False  # parts of a design: no Fmax
    for part in (mlp, *mlp.layers):  # only their neurons are elaborated here
        part._MustUse__silence = True
    for i, layer in enumerate(mlp.layers):
        neuron = layer.neuron(_median_neuron(layer))
        design = Design(f"{name}_layer{i}_neuron", "neuron", neuron, {})
        figures = synth(design, out)
        for key in total:
            total[key] += figures[key] * layer.weights.out_features
    TIMING["enabled"] = enabled
    total["fmax_mhz"] = None
    return total


def mlp_rows(bundle: Path, clock_mhz: float, out: Path, mode: str = "auto") -> list[dict]:
    from rtl_gen.neuron.weights import load_bundle_any

    _, arrays = load_bundle_any(bundle)
    images = np.asarray(arrays["reference.test_inputs"], dtype=np.int64)
    variants = [
        ("MLP dense baseline", dict(build="dense", baseline=True)),
        ("MLP pruned (codebook)", dict(build="codebook")),
        ("MLP shift-quantized", dict(build="pow2")),
        ("MLP shift + zero-skip", dict(build="pow2", zero_skip=True)),
        ("MLP shift + zero-skip, auto ROM", dict(build="pow2", zero_skip=True, layout="auto")),
    ]
    rows = []
    for label, options in variants:
        progress(label)
        try:
            design = designs.mlp_design(bundle, **options)
        except ValueError as error:  # e.g. a codebook build of a pow2-only bundle
            progress(f"  {label}: skipped ({error})")
            continue
        mlp = design.component
        layers = [layer.weights for layer in mlp.layers]
        build, zero_skip = mlp.build, mlp.zero_skip
        cycles = float(
            np.mean([mlp_cycles(layers, x, build, zero_skip, layout=mlp.layouts) for x in images])
        )
        if mode == "full" or (mode == "auto" and not options.get("baseline")):
            figures, source = synth(design, out), "yosys (whole design)"
        else:
            figures = mlp_resources_by_neuron(mlp, design.name, out)
            source = "yosys (median neuron x neurons per layer)"
        clock = clock_for(figures, clock_mhz)
        rows.append(
            {
                "design": label,
                "fmax_mhz": figures["fmax_mhz"],
                "critical_path": figures.get("critical_path"),
                "clock_mhz": clock,
                **{k: figures[k] for k in RESOURCES},
                "mul_cells": figures["mul_cells"],
                "rom_bits": mlp.rom_bits,
                "ram_bits": 0,
                "cycles": cycles,
                "latency_us": cycles / clock,
                "throughput_per_s": clock * 1e6 / cycles,
                "layers": design.parameters["layers"],
                "layouts": mlp.layouts,
                "resources_from": source,
                "estimate": mlp_estimate(mlp),
            }
        )
    return rows


def cnn_cycles(cnn, images) -> tuple[float, float]:
    """``(latency, steady)``: mean cycles from an image's first pixel to its last score with
    the network empty, and cycles per image with ``images`` sent back to back (cycle model)."""
    from tb.golden.cnn_network import cnn_timing

    def timing(x):
        return cnn_timing(cnn.spec.stages, cnn.spec.fc, x, **cnn.timing_arguments)

    alone = []
    for x in images:
        one = timing(x[None])
        alone.append(one.image_end[0] - int(one.pixel_accepts[0]) + 1)
    ends = timing(images).image_end
    return float(np.mean(alone)), (ends[-1] - ends[0]) / (len(ends) - 1)


def cnn_resources_by_part(cnn, name: str, out: Path) -> dict:
    """Yosys figures of the dense CNN in parts: each conv layer with one and with two of its
    filters (the line buffers once, then ``C_out - 1`` times the second filter's cost), the
    pools, the flatten and the FIFOs whole, the fc layers' median neuron times their count."""
    from rtl_gen.cnn.conv_layer import ConvLayer
    from rtl_gen.cnn.network import _StreamFifo

    keys = (*RESOURCES, "mul_cells")
    total = dict.fromkeys(keys, 0)
    enabled, TIMING["enabled"] = TIMING["enabled"], False  # parts of a design: no Fmax
    cnn._MustUse__silence = True
    for spec, block in zip(cnn.spec.stages, cnn.stages, strict=True):
        block._MustUse__silence = True
        if isinstance(block, ConvLayer):
            nonzero = np.count_nonzero(block.weights.reshape(len(block.weights), -1), axis=1)
            order = np.argsort(nonzero)
            median = order[len(order) // 2]
            pair = [median, order[min(len(order) // 2 + 1, len(order) - 1)]]
            figures = []
            for filters in ([median], pair):
                part = ConvLayer(
                    height=block.height, width=block.width, in_channels=block.in_channels,
                    weights=block.weights[filters], bias=block.bias[filters], shift=block.shift,
                    activation=block.activation, out_bits=block.out_bits, in_bits=block.in_bits,
                    line_buffers=block.line_buffers, weight_format=block.weight_format,
                )  # fmt: skip
                tag = f"{name}_{spec.name}_{len(filters)}filter"
                figures.append(synth(Design(tag, "conv_layer", part, {}), out))
            one, two = figures
            for key in keys:
                total[key] += one[key] + (block.out_channels - 1) * max(0, two[key] - one[key])
        else:
            figures = synth(Design(f"{name}_{spec.name}", "maxpool", block, {}), out)
            for key in keys:
                total[key] += figures[key]
    fifos = [(key, depth) for key, depth in cnn.fifo_depths.items()]
    shapes = {"flatten": cnn.flatten.i.payload.shape(), "fc": cnn.flatten.o.payload.shape()}
    for stage, block in zip(cnn.spec.stages, cnn.stages, strict=True):
        shapes.setdefault(stage.name, block.i.payload.shape())
    for key, depth in fifos:
        fifo = _StreamFifo(shapes[key], depth)
        figures = synth(Design(f"{name}_{key}_fifo", "fifo", fifo, {}), out)
        for k in keys:
            total[k] += figures[k]
    figures = synth(Design(f"{name}_flatten", "flatten", cnn.flatten, {}), out)
    for key in keys:
        total[key] += figures[key]
    TIMING["enabled"] = enabled
    mlp = mlp_resources_by_neuron(cnn.mlp, f"{name}_fc", out)
    for key in keys:
        total[key] += mlp[key]
    total["fmax_mhz"] = None
    return total


def cnn_rows(bundle: Path, clock_mhz: float, out: Path, images: int = 100) -> list[dict]:
    """The bundle's compressed CNN (whole design) and its dense 16-bit baseline (in parts)."""
    from rtl_gen.neuron.weights import load_bundle_any

    _, arrays = load_bundle_any(bundle)
    x = np.asarray(arrays["reference.test_inputs"], dtype=np.int64)[:images]
    rows = []
    for label, baseline in (("CNN dense baseline", True), ("CNN LeNet-5 compressed", False)):
        progress(label)
        design = designs.cnn_design(bundle, baseline=baseline)
        cnn = design.component
        latency, steady = cnn_cycles(cnn, x)
        if baseline:
            figures = cnn_resources_by_part(cnn, design.name, out)
            source = "yosys (conv filters, pools, FIFOs, median neurons, scaled)"
        else:
            figures, source = synth(design, out), "yosys (whole design)"
        clock = clock_for(figures, clock_mhz)
        rows.append(
            {
                "design": label,
                "fmax_mhz": figures["fmax_mhz"],
                "critical_path": figures.get("critical_path"),
                "clock_mhz": clock,
                **{k: figures[k] for k in RESOURCES},
                "mul_cells": figures["mul_cells"],
                "rom_bits": int(cnn.mlp.rom_bits),
                "ram_bits": None,
                "cycles": steady,
                "latency_cycles": latency,
                "latency_us": latency / clock,
                "throughput_per_s": clock * 1e6 / steady,
                "line_buffers": cnn.line_buffers,
                "layouts": cnn.layouts,
                "resources_from": source,
                "cycles_from": f"cnn_timing, first {len(x)} test images: steady state back to "
                "back; latency with the network empty (mean)",
            }
        )
    return rows


def markdown(rows: list[dict], clock_mhz: float) -> str:
    head = (
        "| design | LUT | FF | DSP | BRAM18 | LUTRAM | ROM bits | Fmax ECP5 | cycles | "
        "clock | latency | throughput |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = []
    for r in rows:
        bram = r["ramb18"] + 2 * r["ramb36"]
        mark = " *" if "median" in r["resources_from"] else ""
        fmax = "—" if r["fmax_mhz"] is None else f"{r['fmax_mhz']:.1f} MHz"
        lines.append(
            f"| {r['design']}{mark} | {r['lut']} | {r['ff']} | {r['dsp']} | {bram} | "
            f"{r['lutram']} | {r['rom_bits']} | {fmax} | {r['cycles']:.1f} | "
            f"{r['clock_mhz']:g} MHz | {r['latency_us']:.2f} µs | "
            f"{r['throughput_per_s']:,.0f} /s |"
        )
    return head + "\n".join(lines) + "\n"


#: Zynq-7020 (xc7z020, the PYNQ-Z2's part) capacity: the dashed line on the resource panels.
ZYNQ_7020 = {"lut": 53_200, "ff": 106_400, "dsp": 220, "bram36": 140}
#: The panels of report.png: (key, title, capacity key or None, scale).
PANELS = (
    ("lut", "LUT", "lut", "symlog"),
    ("ff", "FF", "ff", "symlog"),
    ("dsp", "DSP48E1", "dsp", "symlog"),
    ("bram36", "BRAM (RAMB36 equiv.)", "bram36", "symlog"),
    ("rom_bits", "ROM bits", None, "log"),
    ("latency_us", "latency (µs)", None, "log"),
    ("throughput_per_s", "throughput (/s)", None, "log"),
)
GROUPS = (("conv", "conv engine", "#4c72b0"), ("MLP", "MLP", "#dd8452"),
          ("CNN", "CNN", "#55a868"))  # fmt: skip
#: The rows whose resources are extrapolated from synthesized parts (the dense baselines).
EXTRAPOLATED = ("median", "scaled")


def extrapolated(row: dict) -> bool:
    return any(word in row.get("resources_from", "") for word in EXTRAPOLATED)


def panel_value(row: dict, key: str) -> float:
    if key == "bram36":  # a RAMB18 is half a RAMB36
        return row["ramb36"] + row["ramb18"] / 2
    return row[key]


def compact(value: float) -> str:
    """A bar's label: 53200 -> 53.2k, 1234567 -> 1.23M, 8.07, 0."""
    if value == 0:
        return "0"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= div:
            return f"{value / div:.3g}{suffix}"
    if float(value).is_integer():
        return f"{int(value)}"
    return f"{value:.3g}"


def figure(rows: list[dict]):
    """The report's bar charts: one panel row per design family present (conv engine, MLP,
    CNN), one column per figure; each bar carries its value, the dense baselines' extrapolated
    resources are hatched (and labelled in the legend), and the LUT/FF/DSP/BRAM panels draw the
    Zynq-7020's capacity as a dashed line. Returns the matplotlib figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    groups = [g for g in GROUPS if any(r["design"].split()[0] == g[0] for r in rows)]
    fig, axes = plt.subplots(
        len(groups), len(PANELS), figsize=(3.6 * len(PANELS), 4.2 * len(groups)), squeeze=False
    )
    for axes_row, (prefix, family, color) in zip(axes, groups, strict=True):
        members = [r for r in rows if r["design"].split()[0] == prefix]
        names = [r["design"].removeprefix(prefix).strip() or r["design"] for r in members]
        for ax, (key, title, capacity, scale) in zip(axes_row, PANELS, strict=True):
            values = [panel_value(r, key) for r in members]
            hatched = [capacity is not None and extrapolated(r) for r in members]
            bars = ax.bar(range(len(values)), values, color=color, edgecolor="black", linewidth=0.5)
            for bar, hatch in zip(bars, hatched, strict=True):
                if hatch:
                    bar.set_hatch("//")
                    bar.set_facecolor("white")
                    bar.set_edgecolor(color)
            labels = [
                compact(v) + (" *" if h else "") for v, h in zip(values, hatched, strict=True)
            ]
            ax.bar_label(bars, labels=labels, fontsize=7, padding=2)
            ax.set_xticks(range(len(values)), names, rotation=35, ha="right", fontsize=7)
            ax.set_title(f"{family}: {title}", fontsize=9)
            if scale == "symlog":
                ax.set_yscale("symlog", linthresh=1)
            else:
                ax.set_yscale("log")
            top = max([*values, 1])
            if capacity is not None:
                limit = ZYNQ_7020[capacity]
                ax.axhline(limit, color="red", linestyle="--", linewidth=1,
                           label=f"Zynq-7020: {limit:,}")  # fmt: skip
                top = max(top, limit)
                ax.legend(loc="upper left", fontsize=6, frameon=False)
            ax.set_ylim(0 if scale == "symlog" else None, top * 8)
    handles = [Patch(facecolor=c, edgecolor="black", label=f) for _, f, c in groups]
    if any(extrapolated(r) for r in rows):
        handles.append(
            Patch(facecolor="white", edgecolor="black", hatch="//",
                  label="* extrapolated: dense baseline synthesized in parts, scaled")
        )  # fmt: skip
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=8,
               frameon=False)  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig = figure(rows)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/report.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bundle", type=Path, default=Path("build/compress/digits_lenet300/bundle")
    )
    parser.add_argument(
        "--cnn-bundle", type=Path, default=Path("build/compress/fashion_lenet5/bundle"),
        help="a version-2 (LeNet-5) bundle for the CNN rows; skipped when it does not exist",
    )  # fmt: skip
    parser.add_argument("--kernel", type=int, default=3)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--clock-mhz", type=float, default=100.0)
    parser.add_argument("--mlp-synth", choices=("auto", "neuron", "full"), default="auto")
    parser.add_argument("--out", type=Path, default=Path("build/report"))
    parser.add_argument("--sim", default=None, help="unused; accepted for make's SIM variable")
    parser.add_argument(
        "--no-timing", action="store_true", help="skip the ECP5 place-and-route Fmax figures"
    )
    parser.add_argument(
        "--timing-cache", type=Path, default=DEFAULT_CACHE,
        help="Fmax figures by netlist hash, shared with `make timing` (reused when the Verilog "
        "and seed are the same)",
    )  # fmt: skip
    parser.add_argument(
        "--router", choices=("auto", *ROUTERS), default="auto",
        help="nextpnr router for the Fmax figures (auto: router2 with the timing-driven rip-up "
        "for the whole CNN, router1 for the others)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    TIMING["enabled"] = not args.no_timing
    TIMING["router"] = args.router
    TIMING["cache"] = args.timing_cache
    if not (args.bundle / "manifest.json").exists():
        print(f"error: no bundle at {args.bundle}: run `make compress` first", file=sys.stderr)
        return 2
    kinds = {layer.get("kind", "linear") for layer in
             json.loads((args.bundle / "manifest.json").read_text())["layers"]}  # fmt: skip
    if kinds != {"linear"}:
        print(
            f"error: --bundle {args.bundle} is not an MLP bundle (it has "
            f"{', '.join(sorted(kinds - {'linear'}))} layers): the MLP rows need MODEL=lenet300; "
            "the CNN rows come from --cnn-bundle",
            file=sys.stderr,
        )
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.out / "designs"
    start = time.monotonic()
    rows = conv_rows(args.kernel, args.size, args.clock_mhz, work)
    rows += mlp_rows(args.bundle, args.clock_mhz, work, args.mlp_synth)
    if (args.cnn_bundle / "manifest.json").exists():
        rows += cnn_rows(args.cnn_bundle, args.clock_mhz, work)
    else:
        print(f"CNN rows skipped: no bundle at {args.cnn_bundle} (make compress MODEL=lenet5)")
    table = markdown(rows, args.clock_mhz)
    notes = (
        "\nResources: Yosys `synth_xilinx` (xc7), whole designs unless the row says "
        "otherwise in `report.json` (`resources_from`): "
        + {
            "auto": "the dense baseline (*) is each layer's median neuron times its neuron count.",
            "neuron": "MLP rows (*) are each layer's median neuron times its neuron count.",
            "full": "every row is a whole design.",
        }[args.mlp_synth]
        + " Cycles: golden cycle models (equal to the RTL in the regression); MLP cycles are the"
        " mean over the bundle's whole test set, one image in flight; CNN cycles are per image"
        " with images back to back (steady state, first 100 test images), its latency the mean"
        " from an image's first pixel to its last score. CNN ROM bits are the fc layers' ROMs"
        " (conv weights are wired shifts or constants). The CNN dense baseline (*) is"
        " synthesized in parts (conv layers from one and two filters, pools, flatten, FIFOs,"
        " fc layers' median neurons) and scaled. Throughput: frames (conv, back to back) or"
        " images (MLP, one in flight; CNN, back to back) per second.\n"
    )
    (args.out / "report.md").write_text("# compress2rtl report\n\n" + table + notes)
    (args.out / "report.json").write_text(json.dumps(rows, indent=2) + "\n")
    plot(rows, args.out / "report.png")
    print(table)
    print(
        f"report: {args.out / 'report.md'}, {args.out / 'report.json'}, {args.out / 'report.png'}"
    )
    print(f"({time.monotonic() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
