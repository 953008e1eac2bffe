"""Vivado non-project build script and timing constraints."""

from __future__ import annotations

import math
import re

DEFAULT_PART = "xc7z020clg400-1"
#: A Xilinx (AMD) part name as Vivado takes it: ``xc`` (or ``xa``/``xq``), the device and
#: package, then the speed grade and any temperature grade after hyphens, e.g.
#: ``xc7z020clg400-1``, ``xc7a35ticsg324-1L``, ``xczu3eg-sbva484-1-e``, ``xck26-sfvc784-2LV-c``.
XILINX_PART = re.compile(r"x[acq][0-9a-z]+(-[0-9a-z]+)+", re.IGNORECASE)


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


#: The AXI4-Stream top's clock port: the XDC constrains it, synthesis runs on that top.
CLOCK_PORT = "aclk"
#: IP-XACT vendor and library of the packaged core (``package_ip.tcl``).
IP_VENDOR = "compress2rtl"
IP_LIBRARY = "compress2rtl"
IP_VERSION = "1.0"


def constraints_xdc(clock_port: str = CLOCK_PORT, period_ns: float = 10.0) -> str:
    """XDC constraining ``clock_port`` (the AXI4-Stream top's ``aclk``) to ``period_ns``."""
    check_period(period_ns)
    return (
        f"# {1000 / period_ns:g} MHz on the AXI4-Stream top's clock; "
        "build.tcl -tclargs period=<ns> overrides the period.\n"
        f"create_clock -name {clock_port} -period {period_ns:.3f} [get_ports {clock_port}]\n"
    )


def _tcl_list(items: list[str]) -> str:
    return "[list " + " \\\n    ".join(f"{{{item}}}" for item in items) + "]" if items else "{}"


# Settings shared by build.tcl and package_ip.tcl: the folder (from the script's own path),
# the part, and -tclargs / preset variables.
_PREAMBLE = r"""set ROOT [file normalize [file join [file dirname [info script]] ..]]
if {![info exists PART]} { set PART @PART@ }
if {![info exists PERIOD]} { set PERIOD {} }
if {![info exists ROM_FILES]} { set ROM_FILES 0 }
if {[info exists argv]} {
    foreach arg $argv {
        if {[regexp {^(part|period|rom_files)=(.+)$} $arg -> key value]} {
            set [string toupper $key] $value
        } else {
            error "@SCRIPT@: unknown argument '$arg' (part=<part>, period=<ns>, rom_files=0|1)"
        }
    }
}
if {$ROM_FILES ni {0 1}} { error "@SCRIPT@: rom_files must be 0 or 1, not '$ROM_FILES'" }
if {$PERIOD ne {} && !([string is double -strict $PERIOD] && $PERIOD > 0)} {
    error "@SCRIPT@: period must be a positive number of ns, not '$PERIOD'"
}
"""


def build_tcl(
    top: str,
    sources: list[str],
    mem_files: list[str],
    xdc: str = "constraints.xdc",
    part: str = DEFAULT_PART,
    clock_port: str = CLOCK_PORT,
) -> str:
    """Non-project Vivado implementation of the AXI4-Stream top ``top`` (out of context).

    ``synth_design -mode out_of_context`` (no I/O buffers: the core is meant for a block
    design), ``opt_design``, ``place_design``, ``route_design``, then post-route utilization and
    timing reports and a checkpoint in ``reports/``. Every path is resolved from the script's
    own folder, so it runs from anywhere:
    ``vivado -mode batch -source vivado/build.tcl [-tclargs part=<part> period=<ns> rom_files=1]``.
    ``rom_files=1`` (or ``set ROM_FILES 1`` before sourcing) reads ``roms/*.mem`` and defines
    ``COMPRESS2RTL_ROM_FILES`` and ``COMPRESS2RTL_ROM_DIR`` (their absolute folder), so the ROMs
    load their files; with 0 (default) the contents inline in the Verilog are used.
    """
    from .roms import ROM_DIR_DEFINE, ROM_FILES_DEFINE

    lines = [
        f"# Vivado non-project implementation of {top} (out of context), from compress2rtl:",
        "#   vivado -mode batch -source vivado/build.tcl "
        "[-tclargs part=<part> period=<ns> rom_files=0|1]",
        "# rom_files=1: the ROMs load roms/*.mem ($readmemh) instead of their inline contents.",
        "# Reports and the routed checkpoint: reports/ (next to the Verilog).",
        _PREAMBLE.replace("@PART@", part).replace("@SCRIPT@", "build.tcl").rstrip(),
        "set REPORTS [file join $ROOT reports]",
        "file mkdir $REPORTS",
        f"set XDC [file join $ROOT {xdc}]",
        "if {$PERIOD ne {}} {",
        "    set XDC [file join $REPORTS clock_override.xdc]",
        "    set f [open $XDC w]",
        f'    puts $f "create_clock -name {clock_port} -period $PERIOD '
        f'\\[get_ports {clock_port}\\]"',
        "    close $f",
        "}",
        f"set SOURCES {_tcl_list(sources)}",
        f"set MEM_FILES {_tcl_list(mem_files)}",
        "foreach src $SOURCES { read_verilog [file join $ROOT $src] }",
        "set DEFINES {}",
        "if {$ROM_FILES} {",
        "    foreach mem $MEM_FILES { read_mem [file join $ROOT $mem] }",
        f"    lappend DEFINES -verilog_define {ROM_FILES_DEFINE}",
        f'    lappend DEFINES -verilog_define "{ROM_DIR_DEFINE}=\\"[file join $ROOT roms]/\\""',
        "}",
        "read_xdc $XDC",
        f"synth_design -top {top} -part $PART -mode out_of_context {{*}}$DEFINES",
        "opt_design",
        "place_design",
        "route_design",
        "report_utilization -file [file join $REPORTS utilization_post_route.rpt]",
        "report_timing_summary -file [file join $REPORTS timing_post_route.rpt]",
        "write_checkpoint -force [file join $REPORTS post_route.dcp]",
    ]
    return "\n".join(lines) + "\n"


def package_ip_tcl(
    top: str,
    sources: list[str],
    part: str = DEFAULT_PART,
    description: str = "",
    vendor: str = IP_VENDOR,
    library: str = IP_LIBRARY,
    version: str = IP_VERSION,
    lite_address_bits: int | None = None,
) -> str:
    """Vivado Tcl that packages the AXI4-Stream top ``top`` as an IP core in ``ip/``.

    A throw-away project (``reports/package_ip_project``) holds the sources with ``top`` as its
    top; ``ipx::package_project`` copies them into ``ip/`` and infers the bus interfaces from
    the wrapper's ``X_INTERFACE_INFO`` attributes (``s_axis``, ``m_axis``, ``aclk``,
    ``aresetn``), which the script then checks before ``ipx::save_core``. The ROM contents are
    the inline ones of the Verilog, so the IP needs no other file. ``ip/`` is the IP repository
    to add to Vivado's IP catalog. With ``lite_address_bits`` (``WEIGHTS=ram``) the AXI4-Lite
    slave ``s_axi`` is checked too and gets a memory map (one address block ``weights`` of
    ``2**lite_address_bits`` bytes), so that ``assign_bd_address`` gives it an address.
    """
    quoted = description.replace("\\", "\\\\").replace("{", "(").replace("}", ")")
    lines = [
        f"# Package {top} as a Vivado IP core ({vendor}:{library}:{top}:{version}), "
        "from compress2rtl:",
        "#   vivado -mode batch -source vivado/package_ip.tcl [-tclargs part=<part>]",
        "# Then add the folder ip/ to the IP catalog: Settings > IP > Repository > +, or in Tcl",
        "#   set_property ip_repo_paths <this folder>/ip [current_project]; update_ip_catalog",
        _PREAMBLE.replace("@PART@", part).replace("@SCRIPT@", "package_ip.tcl").rstrip(),
        "set IP_DIR [file join $ROOT ip]",
        f"set SOURCES {_tcl_list(sources)}",
        "file mkdir [file join $ROOT reports]",
        "create_project -force package_ip [file join $ROOT reports package_ip_project] -part $PART",
        "set FILES {}",
        "foreach src $SOURCES { lappend FILES [file join $ROOT $src] }",
        "add_files -norecurse $FILES",
        f"set_property top {top} [current_fileset]",
        "update_compile_order -fileset sources_1",
        f"ipx::package_project -root_dir $IP_DIR -vendor {vendor} -library {library} "
        "-taxonomy /compress2rtl -import_files -force",
        "set core [ipx::current_core]",
        f"set_property vendor {vendor} $core",
        f"set_property library {library} $core",
        f"set_property name {top} $core",
        f"set_property version {version} $core",
        f"set_property display_name {{{top}}} $core",
        f"set_property description {{{quoted}}} $core",
        "set_property supported_families {zynq Production artix7 Production kintex7 Production "
        "virtex7 Production zynquplus Production} $core",
        "# the interfaces Vivado inferred from the wrapper's X_INTERFACE_INFO attributes",
        "foreach busif {s_axis m_axis aclk aresetn"
        + (" s_axi" if lite_address_bits else "")
        + "} {",
        '    if {[ipx::get_bus_interfaces $busif -of_objects $core] eq ""} {',
        '        error "package_ip.tcl: bus interface $busif was not inferred"',
        "    }",
        "}",
        *(
            [
                "# WEIGHTS=ram: the AXI4-Lite slave's memory map, one block over the weights' "
                "address map",
                "set lite [ipx::get_bus_interfaces s_axi -of_objects $core]",
                "set mmap [ipx::get_memory_maps s_axi -of_objects $core]",
                'if {$mmap eq ""} { set mmap [ipx::add_memory_map s_axi $core] }',
                "set_property slave_memory_map_ref s_axi $lite",
                "set block [ipx::get_address_blocks weights -of_objects $mmap]",
                'if {$block eq ""} { set block [ipx::add_address_block weights $mmap] }',
                "set_property base_address 0 $block",
                f"set_property range {1 << lite_address_bits} $block",
                "set_property width 32 $block",
            ]
            if lite_address_bits
            else []
        ),
        "ipx::create_xgui_files $core",
        "ipx::update_checksums $core",
        "ipx::check_integrity $core",
        "ipx::save_core $core",
        "close_project",
        'puts "IP repository: $IP_DIR (add it in Settings > IP > Repository)"',
    ]
    return "\n".join(lines) + "\n"
