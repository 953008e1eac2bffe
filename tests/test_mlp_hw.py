"""cocotb: one layer, and the full compressed network of the default bundle on real test images
(bit-exact outputs, class as golden, cycles as the model; with and without zero-skipping; CSR and
direct ROM layouts; random stalls; reset mid-image), on every simulator."""

import warnings

import numpy as np
import pytest

from rtl_gen.layer import Layer
from rtl_gen.mlp import Mlp
from rtl_gen.neuron import layers_from_bundle
from rtl_gen.neuron.weights import load_bundle_any
from sim.mlp import BUILD, bundle_for_tests, run_case
from sim.tools import SIMULATORS, available_simulators
from tb.golden import mlp as golden

pytestmark = [pytest.mark.hardware, pytest.mark.slow]

# real test images per cocotb run (with stalls, backpressure and a reset); the whole test set
# goes through the RTL in tests/test_accuracy_compiled.py (the compiled harness)
IMAGES = 40


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    path, real = bundle_for_tests(tmp_path_factory.mktemp("mlp_bundle"))
    if not real:
        warnings.warn("compress pipeline not available: synthetic bundle used", stacklevel=1)
    manifest, arrays = load_bundle_any(path)
    return layers_from_bundle((manifest, arrays)), arrays


def _need(simulator):
    if simulator not in available_simulators():
        pytest.skip(f"simulator {simulator} is not installed")


# the direct layout's layer runs on Icarus (the MLP run covers it on both simulators); so do
# the block-RAM ROMs (the digits bundle's are small enough for LUTs), whose registers keep their
# reset values until the first element: Icarus evaluates a combinational case block only when
# an input changes, and the CSR prefetch head and the decode tables once stayed X there
LAYER_RUNS = [(s, "csr", "auto") for s in SIMULATORS] + [
    ("icarus", "direct", "auto"),
    ("icarus", "csr", "block"),
    ("icarus", "direct", "block"),
]


@pytest.mark.parametrize(
    ("simulator", "layout", "rom_style"),
    LAYER_RUNS,
    ids=[f"{s}-{a}" + ("" if r == "auto" else f"-{r}") for s, a, r in LAYER_RUNS],
)
def test_layer(simulator, layout, rom_style, bundle):
    """The first hidden layer of the bundle alone (zero filter on), real images."""
    _need(simulator)
    layers, arrays = bundle
    layer = layers[0]
    if layer.activation != "relu":
        pytest.skip("first layer is not a ReLU layer")
    images = np.asarray(arrays["reference.test_inputs"][:30], dtype=np.int64)
    build = layer.weight_format
    dut = Layer(layer, build=build, layout=layout, drop_zeros=True, rom_style=rom_style)
    case = dict(images=images, seed=5)
    tag = "" if layout == "csr" else f"_{layout}"
    tag += "" if rom_style == "auto" else f"_{rom_style}"
    result, report = run_case(
        dut,
        case,
        BUILD / f"test_mlp_layer{tag}",
        simulator,
        test_module="tb.neuron_tb",
        toplevel="layer",
    )
    assert result.passed, result.log_tail()
    assert report["test_vectors"]["cycles"] == report["test_vectors"]["model_cycles"]


# Verilator compiles each network for about a minute: it runs the zero-skipping build only
# (the other build differs in two filters and is covered by Icarus and the Amaranth simulator).
# "auto" picks per layer the layout with fewer block RAMs, then fewer LUT-ROM bits (the
# direct layout on the digits bundle).
MLP_RUNS = [
    ("icarus", False, "csr"),
    ("icarus", True, "csr"),
    ("verilator", True, "csr"),
    ("icarus", True, "auto"),
]


@pytest.mark.parametrize(
    ("simulator", "zero_skip", "layout"),
    MLP_RUNS,
    ids=[
        f"{s}-{'zero_skip' if z else 'no_skip'}" + ("" if a == "csr" else f"-{a}")
        for s, z, a in MLP_RUNS
    ],
)
def test_mlp_real_images(simulator, zero_skip, layout, bundle):
    _need(simulator)
    layers, arrays = bundle
    images = np.asarray(arrays["reference.test_inputs"][:IMAGES], dtype=np.int64)
    labels = np.asarray(arrays["reference.test_labels"][:IMAGES])
    build = layers[0].weight_format
    dut = Mlp(layers, build=build, zero_skip=zero_skip, layout=layout)
    case = dict(images=images, labels=labels, seed=11, stall_images=15, gap=0.3, backpressure=0.4)
    tag = ("zero_skip" if zero_skip else "no_skip") + ("" if layout == "csr" else f"_{layout}")
    result, report = run_case(dut, case, BUILD / f"test_mlp_{tag}", simulator)
    assert result.passed, result.log_tail()
    run = report["test_images"]
    assert run["images"] == len(images) == IMAGES
    assert run["mismatches"] == 0 and run["class_agree"] == len(images)
    assert run["cycles"] == run["model_cycles"]
    np.testing.assert_array_equal(run["outputs"], golden.mlp_forward(layers, images)[-1])
    assert report["test_stalls"]["mismatches"] == 0
    assert report["test_reset_mid_image"]["cycle_errors"] == 0
    if layout != "csr":
        assert dut.layouts == golden.layer_layouts(layers, build, layout)
        # direct layers take every broadcast element in one cycle: zero-skipping saves the
        # zeros' cycles, and the ROMs are no larger than CSR
        csr = [golden.mlp_cycles(layers, x, build, zero_skip) for x in images]
        assert np.mean(run["cycles"]) <= np.mean(csr) + len(layers)
        assert dut.rom_bits <= sum(w.rom_bits(build, "csr") for w in layers)
