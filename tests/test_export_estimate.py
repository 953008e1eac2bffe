"""Analytical resource estimates against Yosys synth_xilinx."""

import json

import pytest

from rtl_gen.export import designs
from rtl_gen.export.estimate import LOGIC_TOLERANCE, conv_estimate, lutram_cells, memory_cells
from rtl_gen.export.folder import export_design
from rtl_gen.export.yosys import synth_xilinx


def test_memory_mapping_rules():
    assert lutram_cells(28, 8) == 2
    assert lutram_cells(64, 8) == 3
    assert lutram_cells(224, 8) == 12
    assert memory_cells(512, 8) == {"ramb18": 1, "lutram": 0}
    assert memory_cells(100, 8)["ramb18"] == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    "kernel, line_buffers, width",
    [(3, 5, 100), (5, 5, 300), (3, 4, 600)],
    ids=["k3n5w100", "k5n5w300", "k3n4w600"],
)
def test_conv_estimate_matches_yosys(kernel, line_buffers, width, tmp_path):
    design = designs.conv_design(line_buffers, kernel, width, kernel + 2)
    folder = export_design(design, tmp_path / design.name)
    manifest = json.loads((folder / "manifest.json").read_text())
    measured, _ = synth_xilinx(folder, manifest["sources"], manifest["top"])
    estimate = conv_estimate(**design.parameters)
    for key in ("dsp", "ramb18", "ramb36", "lutram"):
        assert estimate[key] == measured[key], key
    for key in ("lut", "ff"):
        assert abs(estimate[key] - measured[key]) <= LOGIC_TOLERANCE * measured[key], (
            key,
            estimate[key],
            measured[key],
        )


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from sim.mlp import bundle_for_tests

    path, _ = bundle_for_tests(tmp_path_factory.mktemp("bundle"))
    return path


@pytest.mark.slow
@pytest.mark.parametrize(
    "build, layout",
    [("dense", "csr"), ("codebook", "csr"), ("pow2", "csr"), ("pow2", "direct")],
    ids=["dense", "codebook", "pow2", "pow2-direct"],
)
def test_neuron_estimate_matches_yosys(bundle, build, layout, tmp_path):
    from rtl_gen.export.estimate import neuron_estimate
    from rtl_gen.export.folder import Design

    design = designs.mlp_design(bundle, build, baseline=build == "dense", layout=layout)
    layer = design.component.layers[1]
    for part in (design.component, *design.component.layers):
        part._MustUse__silence = True
    neuron = layer.neuron(0)
    folder = export_design(Design("neuron", "neuron", neuron, {}), tmp_path / "neuron")
    measured, coarse = synth_xilinx(folder, ["neuron.v"], "neuron")
    estimate = neuron_estimate(layer, 0)
    assert estimate["dsp"] == measured["dsp"] == coarse.get("$mul", 0)
    assert abs(estimate["ff"] - measured["ff"]) <= LOGIC_TOLERANCE * measured["ff"]
