"""One set of defaults for ``make verilog`` and ``python -m rtl_gen.export``; ``--top``/``TOP=``
renames every module; folder names tell every design apart."""

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from rtl_gen.export import designs
from rtl_gen.export.__main__ import bundle_path, main
from rtl_gen.export.__main__ import parse_args as _parse_args
from rtl_gen.export.folder import export_design

ROOT = Path(__file__).resolve().parents[1]


def make_export_args(*variables, target="verilog"):
    """The arguments ``make <target> <variables>`` hands ``python -m rtl_gen.export``."""
    out = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", target, *variables],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    line = next(li for li in out.stdout.splitlines() if "-m rtl_gen.export" in li)
    return shlex.split(line.split("-m rtl_gen.export", 1)[1])


def parse_args(argv) -> dict:
    """The CLI's parsed arguments, the bundle resolved to the path it reads."""
    args = _parse_args(argv)
    return {**vars(args), "bundle": bundle_path(args)}


def makefile_defaults() -> dict[str, str]:
    text = (ROOT / "Makefile").read_text()
    return dict(re.findall(r"^([A-Z_]+)\s*\?=\s*(\S*)\s*$", text, re.M))


@pytest.mark.parametrize("design", ["conv", "neuron", "mlp", "cnn"])
def test_make_and_cli_build_the_same_design(design):
    """``make verilog DESIGN=d`` passes nothing the user did not set, so both give the CLI's
    defaults; the Makefile's own default values, passed explicitly, give the same again."""
    cli = parse_args(["verilog", "--design", design])
    assert parse_args(make_export_args(f"DESIGN={design}")) == cli
    defaults = makefile_defaults()
    names = ["LINE_BUFFERS", "PIXELS_PER_CLOCK", "K", "WIDTH", "HEIGHT", "BUILD", "ZERO_SKIP",
             "LAYOUT", "WEIGHTS", "PART", "CLOCK_NS"]  # fmt: skip
    explicit = [f"{name}={defaults[name]}" for name in names]
    dataset, model = ("fashion", "lenet5") if design == "cnn" else ("digits", "lenet300")
    explicit += [f"DATASET={dataset}", f"MODEL={model}"]
    assert parse_args(make_export_args(f"DESIGN={design}", *explicit)) == cli
    assert cli["layout"] == "auto" and cli["zero_skip"] is True
    assert cli["weights"] == "rom"


def test_weights_switch():
    """``WEIGHTS=ram`` reaches the CLI as ``--weights ram``; anything but rom or ram stops make
    with one line; the CLI refuses it for a design without run-time weights."""
    assert parse_args(make_export_args("DESIGN=mlp", "WEIGHTS=ram"))["weights"] == "ram"
    run = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", "verilog", "WEIGHTS=flash"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode != 0
    assert "WEIGHTS must be rom or ram, not 'flash'" in run.stderr


def test_weights_ram_is_for_the_mlp(tmp_path, capsys):
    out = tmp_path / "verilog"
    assert main(["verilog", "--design", "conv", "--weights", "ram", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --weights ram (WEIGHTS=ram) is for --design mlp or neuron")
    assert err.count("\n") == 1 and not out.exists()


def test_make_passes_what_the_user_set():
    args = parse_args(make_export_args("DESIGN=neuron", "LAYOUT=csr", "ZERO_SKIP=0", "TOP=net_a",
                                       "BUILD=codebook", target="ip"))  # fmt: skip
    got = [args[key] for key in ("action", "design", "layout", "zero_skip", "top", "build")]
    assert got == [
        "ip", "neuron", "csr", False, "net_a", "codebook"
    ]  # fmt: skip


def _modules(folder: Path) -> set[str]:
    names = set()
    for path in folder.glob("*.v"):
        names |= set(re.findall(r"^module\s+(\\\S+|\w+)", path.read_text(), re.M))
    return {name.lstrip("\\") for name in names}


def test_top_renames_every_module(tmp_path):
    """Two exports of the same network under TOP=net_a and TOP=net_b share no module name and
    compile together (two networks in one project)."""
    out = tmp_path / "verilog"
    folders = []
    for top in ("net_a", "net_b"):
        assert main(["verilog", "--width", "8", "--height", "6", "--top", top,
                     "--out", str(out)]) == 0  # fmt: skip
        folders.append(out / f"conv_n4_k3_8x6_{top}")
    a, b = (_modules(folder) for folder in folders)
    assert a and b and not (a & b)
    for top, modules in (("net_a", a), ("net_b", b)):
        assert {f"{top}", f"{top}_axis"} <= modules
        assert all(m in (top, f"{top}_axis") or m.startswith(f"{top}.") for m in modules)
    manifest = json.loads((folders[0] / "manifest.json").read_text())
    assert manifest["top"] == "net_a" and manifest["axis"]["top"] == "net_a_axis"
    assert "set_property name net_a_axis" in (folders[0] / "vivado/package_ip.tcl").read_text()
    if shutil.which("iverilog"):
        sources = [str(p) for folder in folders for p in folder.glob("*.v")]
        cmd = ["iverilog", "-o", str(tmp_path / "both.vvp"), "-s", "net_a_axis", "-s",
               "net_b_axis", *sources]  # fmt: skip
        run = subprocess.run(cmd, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr


def test_bad_top_is_a_one_line_error(tmp_path, capsys):
    out = tmp_path / "verilog"
    assert main(["verilog", "--top", "2fast", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --top (TOP) '2fast' is not a Verilog module name")
    assert err.count("\n") == 1 and not out.exists()


def test_folder_names_tell_designs_apart(tmp_path):
    from tb.golden.mlp import synthetic_bundle, write_synthetic_bundle

    manifest, arrays = synthetic_bundle(np.random.default_rng(4), sizes=(16, 8, 6, 4),
                                        baseline_sizes=(16, 12, 8, 4), images=4)  # fmt: skip
    bundle = write_synthetic_bundle(tmp_path / "bundle", manifest, arrays)
    built = {
        "neuron csr": designs.neuron_design(bundle, "pow2", "csr"),
        "neuron direct": designs.neuron_design(bundle, "pow2", "direct"),
        "neuron codebook": designs.neuron_design(bundle, "codebook", "csr"),
        "mlp csr": designs.mlp_design(bundle, "pow2", True, layout="csr"),
        "mlp direct": designs.mlp_design(bundle, "pow2", True, layout="direct"),
        "mlp no zero-skip": designs.mlp_design(bundle, "pow2", False, layout="csr"),
        "mlp ram": designs.mlp_design(bundle, "pow2", True, layout="direct", weights="ram"),
        "baseline": designs.mlp_design(bundle, baseline=True),
        "baseline zero-skip": designs.mlp_design(bundle, zero_skip=True, baseline=True),
        "conv": designs.conv_design(4, 3, 8, 6),
        "conv p2": designs.conv_design(4, 3, 8, 6, pixels_per_clock=2),
        "conv pipeline 0": designs.conv_design(4, 3, 8, 6, pipeline=0),
    }
    names = {what: design.name for what, design in built.items()}
    assert len(set(names.values())) == len(names), names
    # and the same name is the same design: the Verilog of the two neuron folders differs
    texts = {}
    for what in ("neuron csr", "neuron direct"):
        folder = export_design(built[what], tmp_path / "out" / built[what].name)
        texts[what] = (folder / "neuron.v").read_text()
    assert texts["neuron csr"] != texts["neuron direct"]


def test_ip_action_writes_the_folder_and_says_how_to_add_it(tmp_path, capsys):
    out = tmp_path / "verilog"
    assert main(["ip", "--width", "8", "--height", "6", "--out", str(out)]) == 0
    folder = out / "conv_n4_k3_8x6"
    printed = capsys.readouterr().out
    assert (folder / "vivado" / "package_ip.tcl").exists() and (folder / "README.md").exists()
    assert f"vivado -mode batch -source {folder}/vivado/package_ip.tcl" in printed
    assert f"set_property ip_repo_paths {{{folder.resolve()}/ip}} [current_project]" in printed
