"""cocotb: one neuron (a one-neuron layer) with random weights and inputs in the dense, codebook
and pow2 builds, with circuit (ReLU) and table (sigmoid, tanh) activations, in the CSR and direct
ROM layouts, on every simulator."""

import numpy as np
import pytest

from rtl_gen.layer import Layer
from sim.mlp import BUILD, run_case
from sim.tools import SIMULATORS, available_simulators
from tb.golden import mlp as golden

pytestmark = [pytest.mark.hardware]

# (build, weight format, activation, zero-skip filter, ROM layout)
VARIANTS = [
    ("dense", "pow2", "relu", False, "csr"),
    ("codebook", "codebook", "sigmoid", False, "csr"),
    ("pow2", "pow2", "tanh", True, "csr"),
    ("codebook", "codebook", "relu", False, "direct"),
    ("pow2", "pow2", "tanh", True, "direct"),
]


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize(("build", "fmt", "activation", "zero_skip", "layout"), VARIANTS)
def test_neuron(simulator, build, fmt, activation, zero_skip, layout):
    if simulator not in available_simulators():
        pytest.skip(f"simulator {simulator} is not installed")
    rng = np.random.default_rng(len(build) * 7 + len(activation))
    layer = golden.synthetic_layer(
        rng, 50, 1, weight_format=fmt, density=0.4, activation=activation, shift=10
    )
    images = golden.random_images(rng, 40, 50)
    dut = Layer(layer, build=build, layout=layout, drop_zeros=zero_skip)
    case = dict(images=images, seed=3)
    suffix = "" if layout == "csr" else f"_{layout}"
    result, report = run_case(
        dut,
        case,
        BUILD / f"test_neuron_{build}_{activation}{suffix}",
        simulator,
        test_module="tb.neuron_tb",
        toplevel="neuron",
    )
    assert result.passed, result.log_tail()
    vectors = report["test_vectors"]
    assert vectors["mismatches"] == 0 and vectors["cycles"] == vectors["model_cycles"]
    assert report["test_stalls_and_reset"]["mismatches"] == 0
