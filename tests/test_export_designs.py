"""Every generated design's export folder: Icarus alone, Verilator lint, Tcl, manifest ports."""

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from amaranth.lib import wiring

from rtl_gen.export import designs
from rtl_gen.export.folder import export_design
from rtl_gen.export.lint import WAIVER_FILE, lint

from .test_export_tcl import run_tcl, xdc_ports


def _bundle(tmp_path_factory):
    from sim.mlp import bundle_for_tests

    path, _ = bundle_for_tests(tmp_path_factory.mktemp("bundle"))
    return path


DESIGNS = {
    "conv_n3_k3": lambda tmp: designs.conv_design(3, 3, 12, 10),
    "conv_n6_k5": lambda tmp: designs.conv_design(6, 5, 9, 7),
    "neuron_pow2": lambda tmp: designs.neuron_design(_bundle(tmp), "pow2"),
    "mlp_pow2_zero_skip": lambda tmp: designs.mlp_design(_bundle(tmp), "pow2", zero_skip=True),
    "mlp_pow2_direct": lambda tmp: designs.mlp_design(
        _bundle(tmp), "pow2", zero_skip=True, layout="direct"
    ),
}


@pytest.fixture(scope="module", params=sorted(DESIGNS))
def exported(request, tmp_path_factory):
    design = DESIGNS[request.param](tmp_path_factory)
    folder = export_design(design, tmp_path_factory.mktemp("designs") / design.name)
    return design, folder, json.loads((folder / "manifest.json").read_text())


def signature_ports(component) -> dict[str, tuple[str, int]]:
    ports = {"clk": ("input", 1), "rst": ("input", 1)}
    for path, member in component.signature.members.flatten():
        if member.is_port:
            name = "__".join(str(p) for p in path)
            direction = "input" if member.flow == wiring.In else "output"
            ports[name] = (direction, _width(member.shape))
    return ports


def _width(shape) -> int:
    from amaranth.hdl import Shape

    return Shape.cast(shape).width


def test_manifest_ports_match_the_component(exported):
    design, _, manifest = exported
    got = {p["name"]: (p["direction"], p["width"]) for p in manifest["ports"]}
    assert got == signature_ports(design.component)


def test_icarus_compiles_the_folder_alone(exported, tmp_path):
    if shutil.which("iverilog") is None:
        pytest.skip("iverilog not installed")
    _, folder, manifest = exported
    for defines in ([], ["-DCOMPRESS2RTL_ROM_FILES"]):
        cmd = ["iverilog", *defines, "-o", str(tmp_path / "a.vvp"), *manifest["sources"]]
        result = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


def test_verilator_lint_is_clean(exported):
    """The manifest's lint command, run as written from the folder with a bare PATH (no venv on
    it), passes; every waiver names one rule on one line, none a whole file."""
    _, folder, manifest = exported
    command = shlex.split(manifest["verilator_lint"])
    assert Path(command[0]).is_absolute()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(folder)}
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "%Warning" not in result.stderr
    waivers = [
        li for li in (folder / WAIVER_FILE).read_text().splitlines() if li.startswith("lint")
    ]
    assert waivers and all(re.fullmatch(r'lint_off -rule [A-Z]+ -file "\*\S+" -lines \d+', w)
                           for w in waivers)  # fmt: skip


def test_waivers_are_per_line(exported, tmp_path):
    """Dropping one waiver brings its warning back: each covers its own line only."""
    _, folder, manifest = exported
    copy = shutil.copytree(folder, tmp_path / "copy")
    text = (copy / WAIVER_FILE).read_text().splitlines()
    first = next(i for i, li in enumerate(text) if li.startswith("lint_off"))
    rule, line = re.search(r"-rule (\w+) .* -lines (\d+)", text[first]).groups()
    (copy / WAIVER_FILE).write_text("\n".join(text[:first] + text[first + 1 :]) + "\n")
    result = lint(copy, manifest["sources"], manifest["top"])
    assert result.returncode != 0
    warned = re.findall(r"%Warning-(\w+): [^:]+:(\d+):", result.stderr)
    assert warned == [(rule, line)], result.stderr[-2000:]


def test_tcl_reads_every_source_and_rom(exported, tmp_path):
    _, folder, manifest = exported
    calls = run_tcl(folder, tmp_path, "rom_files=1")
    read = [arg for cmd, args in calls if cmd in ("read_verilog", "read_mem") for arg in args]
    on_disk = sorted(p for p in folder.rglob("*") if p.suffix in (".v", ".mem"))
    assert sorted(read) == [str(p.resolve()) for p in on_disk]
    assert len(manifest["roms"]) == len([p for p in on_disk if p.suffix == ".mem"])
    assert dict(calls)["synth_design"][1] == manifest["axis"]["top"]
    # every port the XDC names is a port of the top it constrains
    ports = {p["name"] for p in manifest["axis"]["ports"]}
    assert xdc_ports((folder / "constraints.xdc").read_text()) <= ports
    calls = run_tcl(folder, tmp_path, script="package_ip.tcl")
    added = [p for cmd, args in calls if cmd == "add_files" for p in args[1].split()]
    assert sorted(added) == sorted(str(folder.resolve() / s) for s in manifest["axis"]["sources"])
