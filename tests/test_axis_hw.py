"""cocotb: the AXI4-Stream top of every exported design (``<core>_axis``, rtl_gen.export.axis),
driven by cocotbext-axi's source and sink with random pauses on both sides, bit-exact against
the golden model, and an ``aresetn`` pulse in the middle of a packet. The designs are the ones
``make verilog`` exports (``rtl_gen.export.designs``): conv engines (K = 3, N = 4 and N = 3,
16x16), the digits MLP (pow2, zero-skip, auto ROM layout: the Makefile's default) and its first
neuron; the CNN on the small random CNN of ``tests/test_cnn_hw.py``. Icarus runs every design,
Verilator the conv engine, the neuron and the MLP (its CNN build takes minutes)."""

import dataclasses
import os

import numpy as np
import pytest

pytest.importorskip("cocotbext.axi", reason="cocotbext-axi is not installed (pip install .[dev])")

from rtl_gen.conv import ConvEngine  # noqa: E402
from rtl_gen.export import designs  # noqa: E402
from rtl_gen.export.folder import Design  # noqa: E402
from rtl_gen.neuron.weights import layers_from_bundle, load_bundle_any  # noqa: E402
from sim.axis import run_axis  # noqa: E402
from sim.mlp import BUILD, bundle_for_tests  # noqa: E402
from sim.tools import available_simulators  # noqa: E402

pytestmark = [pytest.mark.hardware]

AXIS_BUILD = BUILD / "test_axis"
COCOTB_TESTS = {"test_packets", "test_reset_mid_packet"}


def _need(simulator):
    if simulator not in available_simulators():
        pytest.skip(f"simulator {simulator} is not installed")


def _check(result, report, packets):
    assert result.passed, result.log_tail()
    assert set(report) == COCOTB_TESTS
    run = report["test_packets"]
    assert run["packets_in"] == packets and run["packets_out"] == packets
    assert run["mismatches"] == 0, run["first_mismatch"]
    assert not run["extra_output"]
    assert run["protocol_violations"] == []
    after = report["test_reset_mid_packet"]
    assert after["packets_out"] == 1 and after["mismatches"] == 0 and not after["extra_output"]
    assert after["protocol_violations"] == []


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    path, _ = bundle_for_tests(tmp_path_factory.mktemp("axis_bundle"))
    return path


# (simulator, K, N, P, out_width): the default engine (16-bit results, whole bytes), a serial
# one with 10-bit results (sign extension to 16 bits in tdata), four pixels per clock (tkeep: a
# row's first beat holds two results)
CONV_RUNS = [
    ("icarus", 3, 4, 1, None),
    ("icarus", 3, 3, 1, 10),
    ("icarus", 3, 2, 4, 12),
    ("verilator", 3, 4, 1, None),
]


def _conv_id(run):
    simulator, k, n, p, width = run
    return f"{simulator}-k{k}n{n}p{p}" + (f"-w{width}" if width else "")


@pytest.mark.parametrize("run", CONV_RUNS, ids=_conv_id)
def test_conv_axis(run):
    """The conv engine as ``make verilog DESIGN=conv`` builds it (default coefficients), or
    with random coefficients and narrow results: three 16x16 frames, the last saturating."""
    simulator, kernel, line_buffers, ppc, out_width = run
    _need(simulator)
    design = designs.conv_design(line_buffers, kernel, 16, 16, ppc)
    rng = np.random.default_rng(line_buffers * 10 + ppc)
    if out_width is not None:
        coefficients = rng.integers(-128, 128, size=(kernel, kernel))
        params = dataclasses.replace(
            design.component.params, coefficients=coefficients, shift=5, out_width=out_width
        )
        design.component._MustUse__silence = True  # replaced by the engine below
        design = Design(design.name, design.top, ConvEngine(params), params.to_dict())
    params = design.component.params
    frames = rng.integers(0, 1 << params.pixel_width, size=(3, 16, 16))
    frames[2] = (1 << params.pixel_width) - 1  # saturation
    case = dict(params=params, frames=frames, seed=line_buffers)
    build = AXIS_BUILD / _conv_id(run).split("-", 1)[1]
    result, report, top = run_axis(design, "conv", case, build, simulator)
    _check(result, report, len(frames))
    lanes = top.m_axis.fields()["lanes"]
    assert len(lanes) == ppc and lanes[0]["value_bits"] == params.out_width
    assert ("tkeep" in top.m_axis.fields()) == (ppc > 1)


# Verilator compiles the whole MLP for about a minute: with AXIS_VERILATOR_MLP=1 only (the wrapper
# is the same generator's, and Verilator runs it on the conv engine and the neuron)
MLP_RUNS = [
    "icarus",
    pytest.param(
        "verilator",
        marks=pytest.mark.skipif(
            not os.environ.get("AXIS_VERILATOR_MLP"),
            reason="Verilator build of the MLP (~1 min): set AXIS_VERILATOR_MLP=1",
        ),
    ),
]
NEURON_RUNS = [("icarus", "csr"), ("icarus", "direct"), ("verilator", "csr")]


@pytest.mark.slow
@pytest.mark.parametrize("simulator", MLP_RUNS)
def test_mlp_axis(simulator, bundle):
    """The MLP ``make verilog DESIGN=mlp`` exports, on the bundle's first test images."""
    _need(simulator)
    design = designs.mlp_design(bundle, "pow2", zero_skip=True, layout="auto")
    _, arrays = load_bundle_any(bundle)
    images = np.asarray(arrays["reference.test_inputs"][:5], dtype=np.int64)
    case = dict(layers=layers_from_bundle(bundle), images=images, zero_skip=True, seed=7)
    result, report, _ = run_axis(design, "mlp", case, AXIS_BUILD / "mlp", simulator)
    _check(result, report, len(images))


@pytest.mark.parametrize(
    ("simulator", "layout"), NEURON_RUNS, ids=[f"{s}-{a}" for s, a in NEURON_RUNS]
)
def test_neuron_axis(simulator, layout, bundle):
    """Neuron 0 of the bundle's first layer (``make verilog DESIGN=neuron``), both ROM
    layouts: its broadcast input (``done``/``accept``) becomes ``s_axis``."""
    _need(simulator)
    design = designs.neuron_design(bundle, "pow2", layout)
    _, arrays = load_bundle_any(bundle)
    images = np.asarray(arrays["reference.test_inputs"][:12], dtype=np.int64)
    case = dict(layer=layers_from_bundle(bundle)[0], images=images, seed=3)
    result, report, _ = run_axis(design, "neuron", case, AXIS_BUILD / f"neuron_{layout}", simulator)
    _check(result, report, len(images))


@pytest.mark.slow
def test_cnn_axis():
    """A small random CNN (the one of tests/test_cnn_hw.py) as ``make verilog DESIGN=cnn``
    wraps it, on Icarus."""
    _need("icarus")
    from rtl_gen.cnn.network import Cnn
    from tests.test_cnn_network import small_spec

    spec = small_spec(seed=1)
    cnn = Cnn(spec)
    design = Design("cnn_small", "cnn", cnn, {})
    rng = np.random.default_rng(22)
    images = rng.integers(0, 256, size=(3, 14 * 14))
    images[1, :60] = 0
    case = dict(spec=spec, images=images, seed=5)
    result, report, _ = run_axis(design, "cnn", case, AXIS_BUILD / "cnn_small", "icarus")
    _check(result, report, len(images))
