"""The board path (``make board DESIGN=mlp``, :mod:`rtl_gen.export.board`): the driver's
bytes through the IP's AXI4-Stream top under cocotb, bit for bit against the golden model; the
block design's Tcl under tclsh with Vivado's commands stubbed, every name it uses checked
against the generated Verilog; the driver importable without pynq."""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from rtl_gen.export import designs
from rtl_gen.export.axis import axis_top
from rtl_gen.export.board import block_design_tcl, board_layout, dma_harness, write_board
from rtl_gen.export.folder import export_design
from rtl_gen.neuron.weights import layers_from_bundle, load_bundle_any
from sim.mlp import BUILD, bundle_for_tests, run_case
from sim.tools import available_simulators

from .test_export_tcl import STUBS, run_stubbed

IMAGES = 5


def load_module(path):
    """A generated driver file as a module (pynq is not installed here)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"driver_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    path, _ = bundle_for_tests(tmp_path_factory.mktemp("board_bundle"))
    return path


@pytest.fixture(scope="module")
def mlp(bundle):
    """The MLP ``make board DESIGN=mlp`` builds (pow2, zero-skip, auto)."""
    return designs.mlp_design(bundle, "pow2", zero_skip=True, layout="auto")


@pytest.fixture(scope="module")
def folder(mlp, tmp_path_factory):
    out = export_design(mlp, tmp_path_factory.mktemp("board") / mlp.name)
    write_board(out)
    return out


@pytest.fixture(scope="module")
def driver(folder):
    return load_module(folder / "board" / "mlp_driver.py")


def _images(bundle, count=IMAGES, seed=0):
    """The bundle's first test images as real pixels (code / 2**frac_bits), each moved by
    less than half a code step: the driver's quantisation must give the codes back."""
    manifest, arrays = load_bundle_any(bundle)
    codes = np.asarray(arrays["reference.test_inputs"][:count], dtype=np.int64)
    frac = manifest["input"]["frac_bits"]
    noise = np.random.default_rng(seed).uniform(-0.45, 0.45, size=codes.shape)
    return codes, (codes + noise) / 2.0**frac


def test_layout_follows_the_manifest(folder):
    manifest = json.loads((folder / "manifest.json").read_text())
    layout = json.loads((folder / "board" / "board.json").read_text())
    assert layout == board_layout(manifest)
    s, m = manifest["axis"]["s_axis"], manifest["axis"]["m_axis"]
    # the DMA word: tdata in the low bytes, then tuser, power-of-two widths
    assert layout["mm2s"]["tdata_remap"] == f"tdata[{8 * s['tdata_bytes'] - 1}:0]"
    tuser_bits = s["tuser"]["bits"][0] + 1
    lo = 8 * s["tdata_bytes"]
    assert layout["mm2s"]["tuser_remap"] == f"tdata[{lo + tuser_bits - 1}:{lo}]"
    for side, fields in (("mm2s", s), ("s2mm", m)):
        width = layout[side]["dma_width"]
        assert width in (8, 16, 32, 64, 128, 256, 512, 1024)
        assert width >= 8 * fields["tdata_bytes"] + fields["tuser"]["bits"][0] + 1
        assert [lane["signed"] for lane in layout[side]["lanes"]] == [
            lane["signed"] for lane in fields["lanes"]
        ]
    assert layout["outputs"] == manifest["parameters"]["layers"][-1]
    assert layout["input"]["zero_skip"] is manifest["parameters"]["zero_skip"] is True
    assert layout["clock_mhz"] == 1000 / manifest["clock_period_ns"]


def test_quantise_is_the_bundles(driver, bundle):
    from compress.integer_ref import quantize_inputs

    manifest, _ = load_bundle_any(bundle)
    codes, real = _images(bundle, 50)
    assert np.array_equal(driver.quantise(real), codes)
    x = np.random.default_rng(1).uniform(-2, 20, size=(20, 64))
    x[0, :4] = [0.5 / 16, 1.5 / 16, 255.5 / 16, 1e9]  # halves round up, clipping
    assert np.array_equal(driver.quantise(x), quantize_inputs(manifest, x).astype(np.int64))
    assert driver.quantise(x)[0, :4].tolist() == [1, 2, 255, 255]


def test_pack_and_unpack(driver):
    codes = np.zeros(64, dtype=np.int64)
    codes[[3, 17]] = [5, 255]
    words = driver.pack_image(codes)
    # zero-skipping: elements 3, 17 and the last (63, zero) only; value byte, index byte
    assert words.tobytes() == bytes([5, 3, 255, 17, 0, 63])
    assert len(driver.pack_image(np.ones(64, dtype=np.int64))) == 64
    with pytest.raises(ValueError, match="codes must be"):
        driver.pack_image(np.full(64, 256))
    # results: value (sign-extended byte), index byte; left-out scores are 0
    scores = driver.unpack_result(bytes([0xFE, 0, 7, 4, 0x80, 9]))
    assert scores.tolist() == [-2, 0, 0, 0, 7, 0, 0, 0, 0, -128]
    for bad, message in (
        (bytes([1, 0, 2, 0, 3, 9]), "increasing"),
        (bytes([1, 0, 2, 5]), "ends at index 5"),
        (bytes([1, 0x10, 3, 9]), "padding"),
        (bytes([1, 0, 2]), "whole 2-byte beats"),
    ):
        with pytest.raises(ValueError, match=message):
            driver.unpack_result(bad)


def test_driver_imports_without_pynq(folder):
    """``pynq`` blocked: the module imports, the packing works, no overlay class."""
    path = folder / "board" / "mlp_driver.py"
    code = (
        "import sys, importlib.util\n"
        "sys.modules['pynq'] = None\n"
        f"spec = importlib.util.spec_from_file_location('d', {str(path)!r})\n"
        "d = importlib.util.module_from_spec(spec); spec.loader.exec_module(d)\n"
        "assert not hasattr(d, 'MlpOverlay')\n"
        "print(d.pack_image([0] * 63 + [9]).tobytes().hex())\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "093f"


def test_predict_with_a_stand_in_dma(driver, bundle, mlp):
    """``Driver.predict``'s glue (buffers, transfer order, the S2MM length register) with a
    stand-in DMA that answers with the golden scores in the S2MM layout."""
    from tb.golden.mlp import mlp_forward

    layers = layers_from_bundle(bundle)
    codes, real = _images(bundle)
    golden = mlp_forward(layers, codes)[-1]

    class Buffer(np.ndarray):
        def flush(self):
            pass

        def invalidate(self):
            pass

    def allocate(shape, dtype):
        return np.zeros(shape, dtype=dtype).view(Buffer)

    class Channel:
        def __init__(self, dma):
            self.dma = dma

        def wait(self):
            pass

    class Send(Channel):
        def transfer(self, buffer, nbytes):
            words = np.asarray(buffer[:nbytes]).reshape(-1, 2)
            image = np.zeros(64, dtype=np.int64)
            image[words[:, 1]] = words[:, 0]
            scores = mlp_forward(layers, image[None])[-1][0]
            self.dma.answer = bytes(b for i, v in enumerate(scores) for b in (int(v) & 255, i))

    class Recv(Channel):
        def transfer(self, buffer):
            self.buffer = buffer

    class Dma:
        def __init__(self):
            self.sendchannel, self.recvchannel = Send(self), Recv(self)

        def read(self, offset):
            assert offset == 0x58
            n = len(self.answer)
            self.recvchannel.buffer[:n] = list(self.answer)
            return n

    d = driver.Driver(None, dma=Dma(), allocate=allocate)
    assert np.array_equal(d.predict(real), golden)
    assert np.array_equal(d.predict(codes, codes=True), golden)


def _through_the_rtl(design, folder, real, expected, build, seed=11):
    """Run ``tb.board_tb``: the generated driver's bytes through the stream path of the block
    design (:func:`dma_harness` around ``design``'s AXI4-Stream top) under Icarus."""
    if "icarus" not in available_simulators():
        pytest.skip("Icarus Verilog is not installed")
    pytest.importorskip("cocotbext.axi")
    driver_path = folder / "board" / f"{design.top}_driver.py"
    layout = load_module(driver_path).LAYOUT
    top = axis_top(design.component, design.top)
    harness, text = dma_harness(layout)
    case = {"driver": str(driver_path), "images": real, "expected": expected, "seed": seed}
    result, report = run_case(
        design.component, case, BUILD / "test_board" / build, "icarus",
        test_module="tb.board_tb", toplevel=harness, describe=lambda _: {},
        extra_sources={top.source: top.text, f"{harness}.v": text}, core_name=design.top,
    )  # fmt: skip
    assert result.passed, result.log_tail()
    run = report["test_driver_bytes"]
    assert run["images"] == len(expected) and not run["extra_output"]
    assert run["mismatches"] == 0, (run["got"], run["expected"])
    assert run["got"] == np.asarray(expected).tolist()
    return run


@pytest.mark.hardware
@pytest.mark.slow
def test_driver_bytes_through_the_axis_top(folder, driver, bundle, mlp):
    """The driver's MM2S bytes through the subset converters' remapping and the MLP's
    AXI4-Stream top (Icarus, random pauses), its unpacking of the S2MM bytes equal to the
    golden scores bit for bit, for the bundle's first test images."""
    from tb.golden.mlp import mlp_forward

    codes, real = _images(bundle)
    expected = mlp_forward(layers_from_bundle(bundle), codes)[-1]
    run = _through_the_rtl(mlp, folder, real, expected, "mlp")
    assert run["codes"] == codes.tolist()
    # what went in is what the driver packed (zero elements left out)
    assert run["sent_bytes"][0] == driver.pack_image(codes[0]).tobytes().hex()
    assert len(run["sent_bytes"][0]) // 4 == np.count_nonzero(codes[0][:-1]) + 1


@pytest.mark.hardware
@pytest.mark.slow
def test_cnn_driver_bytes_through_the_axis_top(tmp_path):
    """The same for a CNN (the small random one of tests/test_cnn_hw.py, exported with a
    CNN's parameters and contract): 8-bit MM2S words, a pixel per beat, no tuser in."""
    from rtl_gen.cnn.network import Cnn
    from rtl_gen.export.folder import Design
    from tb.golden import cnn_network

    from .test_cnn_network import small_spec

    spec = small_spec(seed=1)
    shape = list(spec.input_shape)
    quant = {"bits": 8, "frac_bits": 8, "signed": False, "shape": shape,
             "code": "clip(round(x * 2**8), 0, 255)", "real_value": "code * 2**-8",
             "note": "synthetic"}  # fmt: skip
    contract = {"s_axis": {"frac_bits": 8}, "m_axis": {"frac_bits": 0}, "input_quantisation": quant}
    params = {"input_shape": shape, "fc": [layer.out_features for layer in spec.fc]}
    design = Design("cnn_small", "cnn", Cnn(spec), params, contract=contract)
    folder = export_design(design, tmp_path / "cnn_small")
    write_board(folder)
    layout = json.loads((folder / "board" / "board.json").read_text())
    assert (layout["mm2s"]["dma_width"], layout["mm2s"]["tuser"]) == (8, None)
    rng = np.random.default_rng(22)
    codes = rng.integers(0, 256, size=(3, int(np.prod(shape))))
    codes[1, :60] = 0
    expected = cnn_network.cnn_forward(spec.stages, spec.fc, codes)[1]
    run = _through_the_rtl(design, folder, codes / 256.0, expected, "cnn_small")
    assert run["codes"] == codes.tolist()
    assert run["sent_bytes"][0] == bytes(codes[0].astype(np.uint8)).hex()  # a byte per pixel


# --- the block design under tclsh -------------------------------------------------------------

BOARD_STUBS = STUBS.replace(
    "proc current_fileset",
    r"""
foreach cmd {update_ip_catalog create_bd_design apply_bd_automation connect_bd_net
             connect_bd_intf_net assign_bd_address validate_bd_design save_bd_design
             generate_target launch_runs wait_on_run} {
    logged $cmd
}
proc set_property {args} {
    if {[lindex $args 0] eq "-dict"} {
        foreach {key value} [lindex $args 1] {
            puts $::log [join [list set_config [lindex $args 2] $key $value] "\t"]
        }
    } else {
        puts $::log [join [list set_property {*}$args] "\t"]
    }
}
proc create_bd_cell {args} {
    puts $::log [join [list create_bd_cell {*}$args] "\t"]
    return [lindex $args end]
}
proc get_board_parts {args} { return $::env(TCL_BOARD_PART) }
proc current_project {args} { return board }
proc get_bd_pins {args} { return [lindex $args end] }
proc get_bd_intf_pins {args} { return [lindex $args end] }
proc get_files {args} { return [lindex $args end] }
proc get_runs {args} { return [lindex $args end] }
proc make_wrapper {args} {
    puts $::log [join [list make_wrapper {*}$args] "\t"]
    return /wrapper/board_wrapper.v
}
proc get_property {name object} {
    if {$name eq "PROGRESS"} { return $::env(TCL_PROGRESS) }
    if {$name eq "DIRECTORY"} { return $::env(TCL_RUN_DIR) }
    error "get_property $name"
}
proc current_fileset""",
)


def run_board_tcl(folder, tmp_path, args="", board_part="", progress="100%", check=True):
    run_dir = tmp_path / "impl_1"
    run_dir.mkdir(exist_ok=True)
    (run_dir / "board_wrapper.bit").write_text("bit")
    hwh = folder / "board" / "project" / "board.gen" / "sources_1" / "bd" / "board" / "hw_handoff"
    hwh.mkdir(parents=True, exist_ok=True)
    (hwh / "board.hwh").write_text("hwh")
    return run_stubbed(
        folder / "board" / "block_design.tcl", tmp_path, BOARD_STUBS, args, check=check,
        TCL_BOARD_PART=board_part, TCL_PROGRESS=progress, TCL_RUN_DIR=str(run_dir),
    )  # fmt: skip


def _configs(calls, cell):
    return {args[1]: args[2] for cmd, args in calls if cmd == "set_config" and args[0] == cell}


def test_block_design_tcl(folder, tmp_path):
    manifest = json.loads((folder / "manifest.json").read_text())
    layout = json.loads((folder / "board" / "board.json").read_text())
    assert (folder / "board" / "block_design.tcl").read_text() == block_design_tcl(layout)
    shutil.rmtree(folder / "ip", ignore_errors=True)
    calls = run_board_tcl(folder, tmp_path)
    order = [cmd for cmd, _ in calls]
    # no ip/ yet: package_ip.tcl runs first, then the board project adds ip/ to its IP paths
    assert order.index("ipx::package_project") < order.index("create_bd_design")
    props = [(args[0], args[1]) for cmd, args in calls if cmd == "set_property"]
    assert ("ip_repo_paths", str((folder / "ip").resolve())) in props
    flow = ["create_bd_design", "connect_bd_intf_net", "assign_bd_address", "validate_bd_design",
            "save_bd_design", "make_wrapper", "launch_runs", "wait_on_run"]  # fmt: skip
    assert [order.index(cmd) for cmd in flow] == sorted(order.index(cmd) for cmd in flow)
    assert dict(calls)["launch_runs"] == ["impl_1", "-to_step", "write_bitstream", "-jobs", "2"]
    cells = {args[-1]: args[-2] for cmd, args in calls if cmd == "create_bd_cell"}
    core = f"{layout['axis_top']}_0"
    assert cells[core] == manifest["vivado"]["ip_vlnv"]
    assert cells["axi_dma_0"] == "xilinx.com:ip:axi_dma"
    # every pin of the IP the design names exists in the wrapper (interfaces: X_INTERFACE_INFO)
    wrapper = (folder / manifest["axis"]["source"]).read_text()
    interfaces = set(
        re.findall(r'X_INTERFACE_INFO = "xilinx.com:interface:axis:1.0 (\w+) ', wrapper)
    )
    ports = {p["name"] for p in manifest["axis"]["ports"]}
    signals = set(re.findall(r'X_INTERFACE_INFO = "xilinx.com:signal:\w+:1.0 (\w+) ', wrapper))
    used = {cmd: set() for cmd in ("connect_bd_net", "connect_bd_intf_net")}
    for cmd, args in calls:
        if cmd in used:
            used[cmd] |= {a.split("/", 1)[1] for a in args if a.startswith(core + "/")}
    assert used["connect_bd_intf_net"] == interfaces == {"s_axis", "m_axis"}
    assert used["connect_bd_net"] == signals == {"aclk", "aresetn"} and signals <= ports
    # clocks and resets: one net each, every aresetn on proc_sys_reset's peripheral_aresetn
    nets = [args for cmd, args in calls if cmd == "connect_bd_net"]
    clock = next(n for n in nets if "processing_system7_0/FCLK_CLK0" in n)
    reset = next(n for n in nets if "rst_fclk0/peripheral_aresetn" in n)
    for cell in (core, "to_core", "from_core"):
        assert f"{cell}/aclk" in clock and f"{cell}/aresetn" in reset
    assert {"axi_dma_0/axi_resetn", "mem_smartconnect/aresetn"} <= set(reset)
    # PS7: FCLK0 at the manifest's clock, HP0 and GP0; PYNQ-Z2 DDR without board files
    ps = _configs(calls, "processing_system7_0")
    assert float(ps["CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ"]) == 1000 / manifest["clock_period_ns"]
    assert ps["CONFIG.PCW_USE_S_AXI_HP0"] == ps["CONFIG.PCW_USE_M_AXI_GP0"] == "1"
    assert ps["CONFIG.PCW_UIPARAM_DDR_PARTNO"] == "MT41K256M16 RE-125"
    # the DMA: simple mode, stream widths = the DMA words of board.json
    dma = _configs(calls, "axi_dma_0")
    assert dma["CONFIG.c_include_sg"] == "0"
    assert int(dma["CONFIG.c_m_axis_mm2s_tdata_width"]) == layout["mm2s"]["dma_width"] == 16
    assert int(dma["CONFIG.c_s_axis_s2mm_tdata_width"]) == layout["s2mm"]["dma_width"] == 16
    # the converters: the remap strings the cocotb test runs (dma_harness), widths that match
    to_core, from_core = _configs(calls, "to_core"), _configs(calls, "from_core")
    assert to_core["CONFIG.TDATA_REMAP"] == layout["mm2s"]["tdata_remap"]
    assert to_core["CONFIG.TUSER_REMAP"] == layout["mm2s"]["tuser_remap"]
    assert from_core["CONFIG.TDATA_REMAP"] == layout["s2mm"]["tdata_remap"]
    s, m = manifest["axis"]["s_axis"], manifest["axis"]["m_axis"]
    assert int(to_core["CONFIG.S_TDATA_NUM_BYTES"]) * 8 == layout["mm2s"]["dma_width"]
    assert int(to_core["CONFIG.M_TDATA_NUM_BYTES"]) == s["tdata_bytes"]
    assert int(to_core["CONFIG.M_TUSER_WIDTH"]) == s["tuser"]["bits"][0] + 1
    assert int(from_core["CONFIG.S_TDATA_NUM_BYTES"]) == m["tdata_bytes"]
    assert int(from_core["CONFIG.S_TUSER_WIDTH"]) == m["tuser"]["bits"][0] + 1
    assert int(from_core["CONFIG.M_TDATA_NUM_BYTES"]) * 8 == layout["s2mm"]["dma_width"]
    _, harness = dma_harness(layout)
    for remap in (layout["mm2s"]["tuser_remap"], layout["s2mm"]["tdata_remap"]):
        assert re.sub(r"\b(tdata|tuser)\[", r"X\1[", remap) in re.sub(
            r"\b(s_axis_|ip_m_)(tdata|tuser)\[", r"X\2[", harness
        )
    # the overlay: bitstream and hardware handoff copied under the top's name
    overlay = folder / "board" / "overlay"
    assert (overlay / "mlp.bit").read_text() == "bit" and (overlay / "mlp.hwh").read_text() == "hwh"


def test_block_design_tcl_settings(folder, tmp_path):
    (folder / "ip").mkdir(exist_ok=True)
    (folder / "ip" / "component.xml").write_text("<packaged/>")
    calls = run_board_tcl(
        folder, tmp_path, "part=xc7z010clg400-1 jobs=1", "tul.com.tw:pynq-z2:part0:1.0"
    )
    order = [cmd for cmd, _ in calls]
    assert "ipx::package_project" not in order  # ip/ is there
    assert dict(calls)["create_project"][-1] == "xc7z010clg400-1"
    assert dict(calls)["launch_runs"][-1] == "1"
    props = [(args[0], args[1]) for cmd, args in calls if cmd == "set_property"]
    assert ("board_part", "tul.com.tw:pynq-z2:part0:1.0") in props
    # with the board files, the board preset instead of the explicit DDR settings
    assert "CONFIG.PCW_UIPARAM_DDR_PARTNO" not in _configs(calls, "processing_system7_0")
    automation = dict(calls)["apply_bd_automation"]
    assert "apply_board_preset 1" in automation[automation.index("-config") + 1]
    for args, message in (("jobs=0", "jobs must be a positive integer"),
                          ("speed=1", "unknown argument 'speed=1'")):  # fmt: skip
        run = run_board_tcl(folder, tmp_path, args, check=False)
        assert run.returncode != 0 and message in run.stderr
    run = run_board_tcl(folder, tmp_path, progress="50%", check=False)
    assert run.returncode != 0 and "implementation failed" in run.stderr


def test_board_refuses_other_designs(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    run = subprocess.run(
        [sys.executable, "-m", "rtl_gen.export", "board", "--design", "conv", "--width", "8",
         "--height", "8", "--out", str(tmp_path)],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert run.returncode == 2 and "make board supports DESIGN=mlp and DESIGN=cnn" in run.stderr
    assert list(tmp_path.iterdir()) == []
