"""Vivado non-project build script and timing constraints."""

from __future__ import annotations

import math
import re

DEFAULT_PART = "xc7z020clg400-1"
#: A Xilinx (AMD) part name as Vivado takes it: ``xc`` (or ``xa``/``xq``), the device and
#: package, then the speed grade and any temperature grade after hyphens, e.g.
#: ``xc7z020clg400-1``, ``xc7a35ticsg324-1L``, ``xczu3eg-sbva484-1-e``, ``xck26-sfvc784-2LV-c``.
XILINX_PART = re.compile(r"x[acq][0-9a-z]+(-[0-9a-z]+)+", re.IGNORECASE)

_OVERRIDE = r"""if {$argc >= 2} {
    set XDC [file join $ROOT reports clock_override.xdc]
    set f [open $XDC w]
    puts $f "create_clock -name CLOCK -period [lindex $argv 1] \[get_ports CLOCK\]"
    close $f
}"""


def check_part(part, name: str = "part") -> str:
    """``part`` if it looks like a Xilinx part name, else a ``ValueError`` naming it."""
    if not isinstance(part, str) or not XILINX_PART.fullmatch(part):
        raise ValueError(
            f"{name} {part!r} is not a Xilinx part name (device, package and speed grade, "
            f"e.g. {DEFAULT_PART} or xczu3eg-sbva484-1-e)"
        )
    return part


def check_period(period_ns, name: str = "clock period") -> float:
    """``period_ns`` if it is a positive, finite number of nanoseconds, else a ``ValueError``."""
    if (
        isinstance(period_ns, bool)
        or not isinstance(period_ns, (int, float))
        or not (math.isfinite(period_ns) and period_ns > 0)
    ):
        raise ValueError(f"{name} must be a positive number of ns, not {period_ns!r}")
    return float(period_ns)


def constraints_xdc(clock_port: str = "clk", period_ns: float = 10.0) -> str:
    """XDC constraining ``clock_port`` to ``period_ns``."""
    check_period(period_ns)
    return (
        f"# {1000 / period_ns:g} MHz; build.tcl -tclargs <part> <period_ns> overrides the period.\n"
        f"create_clock -name {clock_port} -period {period_ns:.3f} [get_ports {clock_port}]\n"
    )


def build_tcl(
    top: str,
    sources: list[str],
    mem_files: list[str],
    xdc: str = "constraints.xdc",
    part: str = DEFAULT_PART,
    clock_port: str = "clk",
) -> str:
    """Non-project Tcl flow: synth, opt, utilization and timing reports into ``reports/``.

    Run from anywhere: ``vivado -mode batch -source vivado/build.tcl``;
    ``-tclargs <part> [<clock_period_ns>]`` overrides the part and the XDC's clock period.
    """
    lines = [
        f"# Vivado non-project build for {top}:",
        "#   vivado -mode batch -source vivado/build.tcl [-tclargs <part> [<clock_period_ns>]]",
        f"set PART {part}",
        "if {$argc >= 1} { set PART [lindex $argv 0] }",
        "set ROOT [file normalize [file join [file dirname [info script]] ..]]",
        "file mkdir [file join $ROOT reports]",
        f"set XDC [file join $ROOT {xdc}]",
        _OVERRIDE.replace("CLOCK", clock_port),
    ]
    lines += [f"read_verilog [file join $ROOT {src}]" for src in sources]
    lines += [f"read_mem [file join $ROOT {mem}]" for mem in mem_files]
    lines += [
        "read_xdc $XDC",
        f"synth_design -top {top} -part $PART",
        "opt_design",
        "report_utilization -file [file join $ROOT reports utilization.rpt]",
        "report_timing_summary -file [file join $ROOT reports timing_summary.rpt]",
        "write_checkpoint -force [file join $ROOT reports post_opt.dcp]",
    ]
    return "\n".join(lines) + "\n"
