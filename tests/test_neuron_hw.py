"""cocotb: one neuron (a one-neuron layer) with random weights and inputs in the dense, codebook
and pow2 builds, with circuit (ReLU) and table (sigmoid, tanh) activations, on every simulator."""

import numpy as np
import pytest

from rtl_gen.layer import Layer
from sim.mlp import BUILD, run_case
from sim.tools import SIMULATORS, available_simulators
from tb.golden import mlp as golden

pytestmark = [pytest.mark.hardware]

# (build, weight format, activation, zero-skip filter)
VARIANTS = [
    ("dense", "pow2", "relu", False),
    ("codebook", "codebook", "sigmoid", False),
    ("pow2", "pow2", "tanh", True),
]


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize(("build", "fmt", "activation", "zero_skip"), VARIANTS)
def test_neuron(simulator, build, fmt, activation, zero_skip):
    if simulator not in available_simulators():
        pytest.skip(f"simulator {simulator} is not installed")
    rng = np.random.default_rng(len(build) * 7 + len(activation))
    layer = golden.synthetic_layer(
        rng, 50, 1, weight_format=fmt, density=0.4, activation=activation, shift=10
    )
    images = golden.random_images(rng, 40, 50)
    dut = Layer(layer, build=build, drop_zeros=zero_skip)
    case = dict(layers=[layer], build=build, zero_skip=zero_skip, images=images, seed=3)
    result, report = run_case(
        dut,
        case,
        BUILD / f"test_neuron_{build}_{activation}",
        simulator,
        test_module="tb.neuron_tb",
        toplevel="neuron",
    )
    assert result.passed, result.log_tail()
    vectors = report["test_vectors"]
    assert vectors["mismatches"] == 0 and vectors["cycles"] == vectors["model_cycles"]
    assert report["test_stalls_and_reset"]["mismatches"] == 0
