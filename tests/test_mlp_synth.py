"""Yosys ``synth_xilinx``: the pow2 build infers no multiplier (no ``$mul``, 0 DSP48E1); the dense
and codebook builds use multipliers (DSPs). One Yosys run per build, on a small layer."""

import numpy as np
import pytest

from rtl_gen.export.yosys import synth_xilinx
from rtl_gen.layer import Layer
from rtl_gen.verilog import write_verilog
from tb.golden import mlp as golden

pytestmark = [pytest.mark.slow]


def synth(layer, build, folder):
    write_verilog(Layer(layer, build=build, drop_zeros=True), folder / "layer.v", name="layer")
    return synth_xilinx(folder, ["layer.v"], "layer")


@pytest.mark.parametrize("build", ["pow2", "dense"])
def test_yosys_multipliers(build, tmp_path):
    layer = golden.synthetic_layer(np.random.default_rng(2), 64, 4, density=0.5, shift=9)
    util, coarse = synth(layer, build, tmp_path)
    muls = sum(n for cell, n in coarse.items() if cell.lstrip("\\").startswith("$mul"))
    print(f"{build}: {util} $mul={muls}")
    if build == "pow2":
        assert muls == 0 and util["dsp"] == 0
    else:
        assert muls == layer.out_features and util["dsp"] >= layer.out_features
