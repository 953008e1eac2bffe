"""vivado/build.tcl run under plain tclsh with Vivado's commands stubbed out."""

import json
import shutil
import subprocess

import pytest

from rtl_gen.export.folder import Design, export_design

from .test_export_folder import RomReader

STUBS = """
set log [open $::env(TCL_LOG) w]
foreach cmd {read_verilog read_mem read_xdc synth_design opt_design report_utilization
             report_timing_summary write_checkpoint} {
    proc $cmd {args} [format {puts $::log "%s $args"} $cmd]
}
set argv $::env(TCL_ARGS)
set argc [llength $argv]
source $::env(TCL_SCRIPT)
close $log
"""


def run_tcl(folder, tmp_path, args=""):
    if shutil.which("tclsh") is None:
        pytest.skip("tclsh not installed")
    (tmp_path / "stubs.tcl").write_text(STUBS)
    env = {
        "TCL_LOG": str(tmp_path / "calls.log"),
        "TCL_ARGS": args,
        "TCL_SCRIPT": str(folder / "vivado" / "build.tcl"),
        "PATH": "/usr/bin:/bin",
    }
    subprocess.run(["tclsh", str(tmp_path / "stubs.tcl")], env=env, check=True, cwd=tmp_path)
    calls = [line.split(" ", 1) for line in (tmp_path / "calls.log").read_text().splitlines()]
    return [(cmd, rest.strip()) for cmd, rest in calls]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("tcl") / "rom_reader"
    return export_design(Design("rom_reader", "rom_reader", RomReader(), {}), out)


def test_tcl_reads_every_source_and_rom_file(folder, tmp_path):
    calls = run_tcl(folder, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    read = {cmd: [] for cmd in ("read_verilog", "read_mem", "read_xdc")}
    for cmd, arg in calls:
        if cmd in read:
            read[cmd].append(arg)
    # the core and its AXI4-Stream top (synth_design keeps the core as top)
    expected_sources = {str(folder.resolve() / src) for src in manifest["axis"]["sources"]}
    assert {str(folder.resolve() / src) for src in manifest["sources"]} < expected_sources
    expected_mems = {str(folder.resolve() / rom["mem"]) for rom in manifest["roms"]}
    assert set(read["read_verilog"]) == expected_sources
    assert set(read["read_mem"]) == expected_mems
    assert all(shutil.os.path.exists(p) for p in [*expected_sources, *expected_mems])
    assert read["read_xdc"] == [str(folder.resolve() / "constraints.xdc")]
    assert ("synth_design", "-top rom_reader -part xc7z020clg400-1") in calls
    order = [cmd for cmd, _ in calls]
    assert order.index("read_xdc") < order.index("synth_design") < order.index("opt_design")


def test_tcl_overrides_part_and_clock(folder, tmp_path):
    calls = run_tcl(folder, tmp_path, "xc7z010clg400-1 5.0")
    assert ("synth_design", "-top rom_reader -part xc7z010clg400-1") in calls
    xdc = dict(calls)["read_xdc"]
    assert "create_clock -name clk -period 5.0 [get_ports clk]" in open(xdc).read()
