"""cocotb: a small random CNN (14x14 input, 2 and 3 channels, K = 3) through the generated RTL
under each installed simulator: each image alone (scores bit-exact, cycles as the composed
model), back to back (every image's end cycle as the model), random stalls and backpressure,
a reset mid-image."""

import numpy as np
import pytest

from rtl_gen.cnn.network import Cnn
from sim.cnn import cnn_case
from sim.mlp import BUILD, run_case
from sim.tools import SIMULATORS, available_simulators
from tests.test_cnn_network import small_spec

pytestmark = [pytest.mark.hardware, pytest.mark.slow]

# Icarus runs every mode; Verilator (a build per design) the streaming one
RUNS = [("icarus", 2), ("icarus", 3), ("icarus", 4), ("verilator", 2)]


@pytest.mark.parametrize(("simulator", "line_buffers"), RUNS, ids=[f"{s}-n{n}" for s, n in RUNS])
def test_cnn(simulator, line_buffers):
    if simulator not in available_simulators():
        pytest.skip(f"simulator {simulator} is not installed")
    assert simulator in SIMULATORS
    spec = small_spec(seed=1)
    rng = np.random.default_rng(21)
    images = rng.integers(0, 256, size=(5, 14 * 14))
    images[2, :60] = 0
    dut = Cnn(spec, line_buffers=line_buffers)
    case = dict(images=images, seed=4, stall_images=3, stream_images=4)
    result, report = run_case(
        dut, case, BUILD / f"test_cnn_n{line_buffers}", simulator, test_module="tb.cnn_tb",
        toplevel="cnn", describe=cnn_case,
    )  # fmt: skip
    assert result.passed, result.log_tail()
    run = report["test_images"]
    assert run["mismatches"] == 0 and run["cycle_errors"] == 0
    assert run["cycles"] == run["model_cycles"]
    stream = report["test_back_to_back"]
    assert stream["model"] == "exact" and stream["ends"] == stream["model_ends"]
    assert report["test_stalls"]["mismatches"] == 0
    assert (
        report["test_reset_mid_image"]["cycles"] == report["test_reset_mid_image"]["model_cycles"]
    )
