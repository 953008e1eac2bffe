"""Yosys flow: skipping synth_xilinx's SAT-based ``share`` pass changes no figure on designs that
Yosys can still share in (the conv engine's multipliers, a neuron with a multiplier)."""

import json

import pytest

from rtl_gen.export import designs
from rtl_gen.export.folder import Design, export_design
from rtl_gen.export.yosys import synth_xilinx


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from sim.mlp import bundle_for_tests

    path, _ = bundle_for_tests(tmp_path_factory.mktemp("bundle"))
    return path


def _both(folder, sources, top):
    without, coarse = synth_xilinx(folder, sources, top)
    with_share, coarse_share = synth_xilinx(folder, sources, top, share=True)
    assert coarse == coarse_share  # the word-level design before DSP mapping is the same
    return without, with_share


@pytest.mark.slow
def test_share_pass_changes_nothing_on_conv(tmp_path):
    design = designs.conv_design(4, 3, 28, 28)
    folder = export_design(design, tmp_path / design.name)
    manifest = json.loads((folder / "manifest.json").read_text())
    without, with_share = _both(folder, manifest["sources"], manifest["top"])
    assert without == with_share


@pytest.mark.slow
@pytest.mark.parametrize("build", ["codebook", "pow2"])
def test_share_pass_changes_nothing_on_a_neuron(bundle, build, tmp_path):
    design = designs.mlp_design(bundle, build)
    for part in (design.component, *design.component.layers):
        part._MustUse__silence = True
    neuron = design.component.layers[0].neuron(0)
    folder = export_design(Design("neuron", "neuron", neuron, {}), tmp_path / "neuron")
    without, with_share = _both(folder, ["neuron.v"], "neuron")
    assert without == with_share
