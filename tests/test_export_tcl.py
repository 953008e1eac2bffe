"""vivado/build.tcl and vivado/package_ip.tcl run under plain tclsh with Vivado's commands
stubbed out (each stub logs its arguments), and what they read checked against the folder:
every file exists, the XDC constrains ports the AXI4-Stream top has, the ROM switch."""

import json
import re
import shutil
import subprocess

import pytest

from rtl_gen.export.folder import Design, export_design

from .test_export_folder import RomReader

STUBS = """
set log [open $::env(TCL_LOG) w]
proc logged {name} {
    proc $name {args} [format {puts $::log [join [list %s {*}$args] "\t"]; return stub} $name]
}
foreach cmd {read_verilog read_mem read_xdc synth_design opt_design place_design route_design
             report_utilization report_timing_summary write_checkpoint create_project add_files
             set_property update_compile_order close_project} {
    logged $cmd
}
proc current_fileset {args} { return sources_1 }
namespace eval ipx {}
foreach cmd {package_project current_core create_xgui_files update_checksums check_integrity
             save_core get_bus_interfaces} {
    logged ipx::$cmd
}
foreach {name value} $::env(TCL_PRESET) { set $name $value }
set argv $::env(TCL_ARGS)
set argc [llength $argv]
source $::env(TCL_SCRIPT)
close $log
"""


def run_tcl(folder, tmp_path, args="", script="build.tcl", preset="", check=True):
    """Run ``vivado/<script>`` under tclsh; ``[(command, [args...]), ...]`` in call order."""
    return run_stubbed(folder / "vivado" / script, tmp_path, STUBS, args, preset, check)


def run_stubbed(script, tmp_path, stubs, args="", preset="", check=True, **env):
    """Run ``script`` under tclsh with Vivado's commands stubbed by ``stubs`` (``env``: more
    ``TCL_*`` variables for them); ``[(command, [args...]), ...]`` in call order, or the
    finished process when ``check`` is false."""
    if shutil.which("tclsh") is None:
        pytest.skip("tclsh not installed (apt-get install tcl)")
    (tmp_path / "stubs.tcl").write_text(stubs)
    env = {
        "TCL_LOG": str(tmp_path / "calls.log"),
        "TCL_ARGS": args,
        "TCL_PRESET": preset,
        "TCL_SCRIPT": str(script),
        "PATH": "/usr/bin:/bin",
        **env,
    }
    run = subprocess.run(
        ["tclsh", str(tmp_path / "stubs.tcl")], env=env, cwd=tmp_path, capture_output=True,
        text=True,
    )  # fmt: skip
    if not check:
        return run
    assert run.returncode == 0, run.stderr
    calls = []
    for line in (tmp_path / "calls.log").read_text().splitlines():
        words = line.split("\t")  # one argument per field, as Vivado would receive them
        calls.append((words[0], words[1:]))
    return calls


def xdc_ports(xdc_text: str) -> set[str]:
    return set(re.findall(r"\[get_ports \{?([^\]\}\s]+)\}?\]", xdc_text))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("tcl") / "rom_reader"
    return export_design(Design("rom_reader", "rom_reader", RomReader(), {}), out)


def _reads(calls):
    read = {cmd: [] for cmd in ("read_verilog", "read_mem", "read_xdc")}
    for cmd, args in calls:
        if cmd in read:
            read[cmd] += args
    return read


def test_build_tcl_implements_the_axis_top_out_of_context(folder, tmp_path):
    calls = run_tcl(folder, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    read = _reads(calls)
    root = folder.resolve()
    # the core and its AXI4-Stream top; the ROM files only with rom_files=1
    assert sorted(read["read_verilog"]) == sorted(
        str(root / src) for src in manifest["axis"]["sources"]
    )
    assert read["read_mem"] == []
    assert all((root / src).exists() for src in manifest["axis"]["sources"])
    assert read["read_xdc"] == [str(root / "constraints.xdc")]
    synth = dict(calls)["synth_design"]
    assert synth == ["-top", "rom_reader_axis", "-part", "xc7z020clg400-1", "-mode",
                     "out_of_context"]  # fmt: skip
    order = [cmd for cmd, _ in calls]
    flow = ["read_xdc", "synth_design", "opt_design", "place_design", "route_design"]
    assert [order.index(cmd) for cmd in flow] == sorted(order.index(cmd) for cmd in flow)
    # the reports come after routing, into the folder's reports/
    for report in ("report_utilization", "report_timing_summary", "write_checkpoint"):
        assert order.index(report) > order.index("route_design")
        path = dict(calls)[report][-1]
        assert path.startswith(str(root / "reports")) and "post_route" in path
    assert (root / "reports").is_dir()


def test_build_tcl_rom_files_switch(folder, tmp_path):
    manifest = json.loads((folder / "manifest.json").read_text())
    root = folder.resolve()
    for how in ({"args": "rom_files=1"}, {"preset": "ROM_FILES 1"}):
        calls = run_tcl(folder, tmp_path, **how)
        read = _reads(calls)
        mems = [str(root / rom["mem"]) for rom in manifest["roms"]]
        assert mems and read["read_mem"] == mems and all(map(shutil.os.path.exists, mems))
        synth = dict(calls)["synth_design"]
        defines = [synth[i + 1] for i, arg in enumerate(synth) if arg == "-verilog_define"]
        assert defines == ["COMPRESS2RTL_ROM_FILES", f'COMPRESS2RTL_ROM_DIR="{root}/roms/"']
    # the Verilog reads every ROM through that define
    text = (folder / manifest["sources"][0]).read_text()
    calls = re.findall(r"\$readmemh\(\{`COMPRESS2RTL_ROM_DIR, \"([^\"]+)\"\}", text)
    assert sorted(f"roms/{name}" for name in calls) == sorted(r["mem"] for r in manifest["roms"])
    run = run_tcl(folder, tmp_path, args="rom_files=yes", check=False)
    assert run.returncode != 0 and "rom_files must be 0 or 1" in run.stderr
    run = run_tcl(folder, tmp_path, args="speed=fast", check=False)
    assert run.returncode != 0 and "unknown argument 'speed=fast'" in run.stderr


def test_readmemh_dir_define_reaches_the_files_from_anywhere(folder, tmp_path):
    """Icarus with the ROM files read through an absolute COMPRESS2RTL_ROM_DIR, run from
    another folder (what build.tcl passes to Vivado)."""
    if shutil.which("iverilog") is None:
        pytest.skip("iverilog not installed")
    from .test_export_folder import TESTBENCH, WORDS

    (tmp_path / "tb.v").write_text(TESTBENCH)
    binary = tmp_path / "sim.vvp"
    roms = f'-DCOMPRESS2RTL_ROM_DIR="{folder.resolve()}/roms/"'
    sources = [str(folder / "rom_reader.v"), str(tmp_path / "tb.v")]
    cmd = ["iverilog", "-DCOMPRESS2RTL_ROM_FILES", roms, "-o", str(binary), *sources]
    subprocess.run(cmd, check=True)
    out = subprocess.run(["vvp", "-n", str(binary)], cwd=tmp_path, capture_output=True, text=True)
    assert "ERROR" not in out.stdout + out.stderr
    assert [int(line, 16) for line in out.stdout.split() if len(line) == 2] == WORDS


def test_xdc_constrains_the_axis_clock(folder):
    manifest = json.loads((folder / "manifest.json").read_text())
    ports = {p["name"] for p in manifest["axis"]["ports"]}
    xdc = (folder / "constraints.xdc").read_text()
    assert xdc_ports(xdc) == {"aclk"} <= ports
    assert "create_clock -name aclk -period 10.000 [get_ports aclk]" in xdc


def test_build_tcl_overrides_part_and_clock(folder, tmp_path):
    calls = run_tcl(folder, tmp_path, "part=xc7z010clg400-1 period=5.0")
    assert dict(calls)["synth_design"][:4] == ["-top", "rom_reader_axis", "-part",
                                               "xc7z010clg400-1"]  # fmt: skip
    xdc = dict(calls)["read_xdc"][0]
    assert "create_clock -name aclk -period 5.0 [get_ports aclk]" in open(xdc).read()
    run = run_tcl(folder, tmp_path, "period=-1", check=False)
    assert run.returncode != 0 and "period must be a positive number" in run.stderr


def test_package_ip_tcl(folder, tmp_path):
    calls = run_tcl(folder, tmp_path, script="package_ip.tcl")
    manifest = json.loads((folder / "manifest.json").read_text())
    root = folder.resolve()
    added = [p for cmd, args in calls if cmd == "add_files" for p in args[1].split()]
    assert sorted(added) == sorted(str(root / src) for src in manifest["axis"]["sources"])
    assert all(shutil.os.path.exists(p) for p in added)
    props = {args[0]: args[1] for cmd, args in calls if cmd == "set_property"}
    assert props["top"] == "rom_reader_axis"
    assert (props["vendor"], props["library"], props["name"], props["version"]) == (
        "compress2rtl", "compress2rtl", "rom_reader_axis", "1.0"
    )  # fmt: skip
    package = dict(calls)["ipx::package_project"]
    assert package[package.index("-root_dir") + 1] == str(root / "ip")
    assert "-import_files" in package
    checked = [args[0] for cmd, args in calls if cmd == "ipx::get_bus_interfaces"]
    assert sorted(checked) == sorted(["s_axis", "m_axis", "aclk", "aresetn"])
    order = [cmd for cmd, _ in calls]
    steps = ["create_project", "add_files", "ipx::package_project", "ipx::check_integrity",
             "ipx::save_core", "close_project"]  # fmt: skip
    assert [order.index(cmd) for cmd in steps] == sorted(order.index(cmd) for cmd in steps)
    # the interfaces it checks are the ones the wrapper's attributes declare
    wrapper = (folder / manifest["axis"]["source"]).read_text()
    declared = set(re.findall(r'X_INTERFACE_INFO = "\S+ (\w+) \w+"', wrapper))
    assert declared == set(checked)
