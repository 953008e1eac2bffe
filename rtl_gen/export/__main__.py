"""``python -m rtl_gen.export {verilog,ip,synth,timing,board} --design conv|neuron|mlp|cnn ...``

``verilog`` writes a self-contained folder for Vivado under ``build/verilog/<name>/`` (the core
``<top>.v`` and its AXI4-Stream top ``<top>_axis.v``); ``ip`` writes the same folder and prints
how to package it (``vivado/package_ip.tcl``) and add it to Vivado's IP catalog;
``synth`` also runs Yosys ``synth_xilinx`` on it and writes
``reports/yosys_utilization.json``; ``timing`` runs Yosys ``synth_ecp5`` and nextpnr-ecp5 on it
(an ECP5-85k, not the Vivado part) and writes the Fmax after routing and the critical path to
``reports/timing_ecp5.json``; ``board`` (MLP and CNN) also writes ``board/``: a PYNQ-Z2 block
design (PS7, AXI DMA, the packaged IP) and a Python driver (:mod:`rtl_gen.export.board`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import sys
import time
from pathlib import Path

from .designs import conv_design
from .folder import export_design
from .timing import (
    DEFAULT_CACHE,
    DEFAULT_ROUTER,
    DEFAULT_TIMING_WEIGHT,
    ROUTERS,
    check_timing_weight,
    ecp5_timing,
    summary,
)
from .vivado import DEFAULT_PART, check_part, check_period
from .yosys import UTILIZATION_KEYS, synth_report

#: The bundle each design reads when ``--bundle`` is not given (the Makefile's defaults:
#: ``DATASET``/``MODEL`` digits/lenet300, and fashion/lenet5 for the CNN).
DEFAULT_BUNDLE = Path("build/compress/digits_lenet300/bundle")
DEFAULT_CNN_BUNDLE = Path("build/compress/fashion_lenet5/bundle")
#: The top module names of the designs, renamed with ``--top``.
VERILOG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def bundle_path(args) -> Path:
    if args.bundle is not None:
        return args.bundle
    return DEFAULT_CNN_BUNDLE if args.design == "cnn" else DEFAULT_BUNDLE


def build_design(args):
    if args.weights == "ram" and (args.design not in ("mlp", "neuron") or args.baseline):
        raise ValueError(
            "--weights ram (WEIGHTS=ram) is for --design mlp or neuron (the compressed network, "
            "not --baseline)"
        )
    if args.design == "conv":
        return conv_design(
            args.line_buffers,
            args.kernel,
            args.width,
            args.height,
            args.pixels_per_clock,
            args.pipeline,
        )
    from . import designs

    bundle = bundle_path(args)
    if args.design == "neuron":
        return designs.neuron_design(bundle, args.build, args.layout, weights=args.weights)
    if args.design == "cnn":
        return designs.cnn_design(bundle, args.line_buffers)
    return designs.mlp_design(
        bundle, args.build, args.zero_skip, args.baseline, args.layout, weights=args.weights
    )


def renamed(design, top: str | None):
    """``design`` with every module renamed: the core ``top``, its submodules ``top.<path>``,
    the AXI4-Stream top ``top_axis``; the folder name gains ``_top``."""
    if top is None or top == design.top:
        return design
    if not VERILOG_NAME.fullmatch(top):
        raise ValueError(
            f"--top (TOP) {top!r} is not a Verilog module name ([A-Za-z_][A-Za-z0-9_]*)"
        )
    return dataclasses.replace(design, top=top, name=f"{design.name}_{top}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m rtl_gen.export", description=__doc__)
    parser.add_argument("action", choices=("verilog", "ip", "synth", "timing", "board"))
    parser.add_argument("--design", choices=("conv", "neuron", "mlp", "cnn"), default="conv")
    parser.add_argument("--line-buffers", type=int, default=4)
    parser.add_argument("--pixels-per-clock", type=int, default=1)
    parser.add_argument(
        "--pipeline",
        type=int,
        default=None,
        help="conv: extra pipeline stages (default: ConvParams')",
    )
    parser.add_argument("--kernel", type=int, default=3)
    parser.add_argument("--width", type=int, default=28)
    parser.add_argument("--height", type=int, default=28)
    parser.add_argument(
        "--bundle",
        type=Path,
        default=None,
        help=f"default {DEFAULT_BUNDLE}, for --design cnn {DEFAULT_CNN_BUNDLE}",
    )
    parser.add_argument("--build", choices=("dense", "codebook", "pow2"), default="pow2")
    parser.add_argument(
        "--zero-skip",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="MLP: skip zero inputs (default on, as make's ZERO_SKIP=1)",
    )
    parser.add_argument(
        "--layout",
        choices=("csr", "direct", "auto"),
        default="auto",
        help="ROM layout of the compressed neuron/MLP builds",
    )
    parser.add_argument(
        "--weights",
        choices=("rom", "ram"),
        default="rom",
        help="MLP, neuron: rom (weights fixed at synthesis) or ram (weight RAMs and biases "
        "written at run time through the AXI4-Lite slave s_axi; the direct layout)",
    )
    parser.add_argument("--baseline", action="store_true", help="the uncompressed dense MLP")
    parser.add_argument(
        "--top",
        default=None,
        help="rename every module: the core TOP, its submodules TOP.<path>, the AXI4-Stream "
        "top TOP_axis (two networks in one Vivado project)",
    )
    parser.add_argument("--part", default=DEFAULT_PART)
    parser.add_argument("--clock-ns", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1, help="timing: nextpnr placement seed")
    parser.add_argument(
        "--router", choices=ROUTERS, default=DEFAULT_ROUTER,
        help="timing: nextpnr router (default router1; router2 routes a large, congested design "
        "such as the CNN in a fraction of the time)",
    )  # fmt: skip
    parser.add_argument(
        "--timing-weight", type=int, default=DEFAULT_TIMING_WEIGHT,
        help=f"timing: nextpnr placer's timing weight (--placer-heap-timingweight; default "
        f"{DEFAULT_TIMING_WEIGHT})",
    )  # fmt: skip
    parser.add_argument(
        "--tmg-ripup", action="store_true",
        help="timing: nextpnr's timing-driven rip-up (--tmg-ripup: the router also reroutes the "
        "nets of failing paths; off by default)",
    )  # fmt: skip
    parser.add_argument(
        "--cache", type=Path, default=DEFAULT_CACHE,
        help=f"timing: figures of netlists already placed and routed (default {DEFAULT_CACHE})",
    )  # fmt: skip
    parser.add_argument(
        "--no-cache", action="store_true", help="timing: place and route even if cached"
    )
    parser.add_argument(
        "--freq",
        type=float,
        default=None,
        help="timing: nextpnr target in MHz (default 1000 / --clock-ns, i.e. 100)",
    )
    parser.add_argument("--out", type=Path, default=Path("build/verilog"))
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:  # the numbers first: nothing is built or written with a bad part or clock
        check_part(args.part, "--part (PART)")
        check_period(args.clock_ns, "--clock-ns (CLOCK_NS)")
        if args.freq is not None and not (math.isfinite(args.freq) and args.freq > 0):
            raise ValueError(f"--freq must be a positive number of MHz, not {args.freq!r}")
        check_timing_weight(args.timing_weight, "--timing-weight (TIMING_WEIGHT)")
        if args.top is not None and not VERILOG_NAME.fullmatch(args.top):
            raise ValueError(
                f"--top (TOP) {args.top!r} is not a Verilog module name ([A-Za-z_][A-Za-z0-9_]*)"
            )
        design = renamed(build_design(args), args.top)
    except (ValueError, FileNotFoundError) as error:  # UnsupportedLayer is a ValueError
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.action == "board":
        from .board import design_kind

        try:  # before anything is written
            design_kind({"name": design.name, "parameters": design.parameters})
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    folder = export_design(design, args.out / design.name, args.part, args.clock_ns)
    manifest = json.loads((folder / "manifest.json").read_text())
    print(f"{design.name}: {folder}/")
    print(f"  top {design.top}.v, {len(manifest['roms'])} ROM(s), {manifest['rom_bits']} ROM bits")
    axis = manifest["axis"]
    print(f"  AXI4-Stream top {axis['top']} ({axis['source']}: aclk, aresetn, s_axis_*, m_axis_*)")
    if manifest.get("weights"):
        weights = manifest["weights"]
        print(
            f"  weights at run time: AXI4-Lite s_axi_*, {weights['address_bits']}-bit byte "
            f"addresses, {weights['writes']} writes per bundle (manifest.json key weights)"
        )
    print(f"  implement (out of context): vivado -mode batch -source {folder}/vivado/build.tcl")
    if args.action == "ip":
        ip_dir = folder.resolve() / "ip"
        package = f"{folder}/vivado/package_ip.tcl"
        print(f"  package the IP:             vivado -mode batch -source {package}")
        print(f"  then add {ip_dir} to the IP catalog: Settings > IP > Repository > +, or")
        print(f"    set_property ip_repo_paths {{{ip_dir}}} [current_project]; update_ip_catalog")
        print(f"  and add {axis['top']} (vendor compress2rtl) to a block design")
    if args.action == "board":
        from .board import board_layout, overlay_class, write_board

        board = write_board(folder)
        layout = board_layout(manifest)
        top = layout["top"]
        print(f"  board (PYNQ-Z2, {args.part}): {board}/")
        print(f"    block design + bitstream: vivado -mode batch -source {board}/block_design.tcl")
        print(
            f"    DMA words: MM2S {layout['mm2s']['dma_width']} bits, "
            f"S2MM {layout['s2mm']['dma_width']} bits (board.json)"
        )
        print(
            f"    driver: {board}/{top}_driver.py ({overlay_class(top)}(...).predict(images)), "
            f"with overlay/{top}.bit and overlay/{top}.hwh"
        )
    if args.action == "synth":
        start = time.monotonic()
        figures = synth_report(folder, manifest["sources"], design.top)
        seconds = time.monotonic() - start
        out = folder / "reports" / "yosys_utilization.json"
        print(f"  Yosys synth_xilinx ({seconds:.1f} s):")
        for key in (*UTILIZATION_KEYS, "multipliers_described"):
            print(f"    {key:<22}{figures[key]:>8}")
        print(f"  {out}")
    if args.action == "timing":
        freq = args.freq if args.freq is not None else 1000.0 / args.clock_ns
        try:
            figures = ecp5_timing(
                folder, manifest["sources"], design.top, seed=args.seed, freq_mhz=freq,
                cache=None if args.no_cache else args.cache, router=args.router,
                timing_weight=args.timing_weight, tmg_ripup=args.tmg_ripup,
            )  # fmt: skip
        except RuntimeError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        out = folder / "reports" / "timing_ecp5.json"
        out.write_text(json.dumps(figures, indent=2) + "\n")
        seconds = figures["seconds"]
        print(
            f"  Yosys synth_ecp5 {seconds['synth']:.1f} s, "
            f"nextpnr-ecp5 {seconds['place_and_route']:.1f} s"
        )
        for line in summary(figures).splitlines():
            print(f"  {line}")
        print(f"  {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
