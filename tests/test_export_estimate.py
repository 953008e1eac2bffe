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
