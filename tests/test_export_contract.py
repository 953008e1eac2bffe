"""The folder explains itself: manifest.json's interface contract (bit fields with signedness
and fractional bits from the bundle, input quantisation, reset, cycles, the bundle's hash
instead of its path) and the generated README.md that says the same for a person."""

import hashlib
import json
import shutil

import numpy as np
import pytest

from rtl_gen.export import designs
from rtl_gen.export.folder import export_design
from tb.golden.mlp import synthetic_bundle, write_synthetic_bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    manifest, arrays = synthetic_bundle(np.random.default_rng(3), sizes=(16, 8, 6, 4),
                                        baseline_sizes=(16, 12, 8, 4), images=20)  # fmt: skip
    return write_synthetic_bundle(tmp_path_factory.mktemp("contract") / "bundle", manifest, arrays)


@pytest.fixture(scope="module")
def mlp_folder(bundle, tmp_path_factory):
    design = designs.mlp_design(bundle, "pow2", zero_skip=True, layout="auto")
    folder = export_design(design, tmp_path_factory.mktemp("out") / design.name)
    return folder, json.loads((folder / "manifest.json").read_text())


def test_bit_fields_carry_the_bundles_formats(bundle, mlp_folder):
    _, manifest = mlp_folder
    spec = json.loads((bundle / "manifest.json").read_text())
    s_lane, m_lane = manifest["axis"]["s_axis"]["lanes"][0], manifest["axis"]["m_axis"]["lanes"][0]
    assert s_lane["frac_bits"] == spec["input"]["frac_bits"] == spec["layers"][0]["input_frac_bits"]
    assert s_lane["value_bits"] == spec["input"]["bits"] and not s_lane["signed"]
    last = spec["layers"][-1]
    assert m_lane["frac_bits"] == last["output_frac_bits"]
    assert m_lane["value_bits"] == last["output_bits"]
    assert m_lane["signed"] == (last["activation"] == "none")  # the RTL's sign = the bundle's
    assert manifest["reset"]["port"] == "aresetn" and manifest["reset"]["active"] == "low"


def test_input_quantisation_reproduces_the_reference_codes(bundle, mlp_folder):
    """The manifest's formula, evaluated, turns the real pixels back into the bundle's codes."""
    _, manifest = mlp_folder
    quant = manifest["input_quantisation"]
    with np.load(bundle / "arrays.npz") as arrays:
        codes = arrays["reference.test_inputs"]
    x = codes / 2.0 ** quant["frac_bits"]  # the real pixels the network saw
    got = eval(quant["code"], {"clip": np.clip, "round": np.round, "x": x})  # noqa: S307
    assert np.array_equal(got, codes)
    real = eval(quant["real_value"], {"code": codes})  # noqa: S307
    assert np.array_equal(real, x)


def test_bundle_named_by_hash_not_path(bundle, mlp_folder, tmp_path):
    folder, manifest = mlp_folder
    digest = hashlib.sha256(
        (bundle / "manifest.json").read_bytes() + (bundle / "arrays.npz").read_bytes()
    ).hexdigest()
    assert manifest["bundle"]["sha256"] == digest
    text = (folder / "manifest.json").read_text() + (folder / "README.md").read_text()
    assert str(bundle) not in text and str(bundle.parent) not in text
    # a copy of the bundle elsewhere gives the same hash
    copy = shutil.copytree(bundle, tmp_path / "elsewhere")
    design = designs.mlp_design(copy, "pow2", zero_skip=True, layout="auto")
    again = export_design(design, tmp_path / "out" / design.name)
    assert json.loads((again / "manifest.json").read_text())["bundle"]["sha256"] == digest


def test_cycle_figures_from_the_model(bundle, mlp_folder):
    from rtl_gen.neuron.weights import layers_from_bundle
    from tb.golden.mlp import mlp_cycles

    _, manifest = mlp_folder
    model = manifest["cycle_model"]
    layers = layers_from_bundle(bundle)
    with np.load(bundle / "arrays.npz") as arrays:
        inputs = arrays["reference.test_inputs"]
    cycles = [mlp_cycles(layers, x, "pow2", zero_skip=True, layout=model["arguments"]["layout"])
              for x in inputs]  # fmt: skip
    assert model["images"] == len(inputs) == 20
    bounds = (model["cycles_per_image_min"], model["cycles_per_image_max"])
    assert bounds == (min(cycles), max(cycles))
    assert model["cycles_per_image_mean"] == round(float(np.mean(cycles)), 2)


def test_readme_describes_every_port_and_bit_field(mlp_folder):
    folder, manifest = mlp_folder
    readme = (folder / "README.md").read_text()
    axis = manifest["axis"]
    for port in axis["ports"]:
        assert f"| `{port['name']}` | {port['direction']} | {port['width']} |" in readme
    for side in ("s_axis", "m_axis"):
        for lane in axis[side]["lanes"]:
            hi, lo = lane["tdata_bits"]
            assert f"`{side}_tdata[{hi}:{lo}]`" in readme
            assert f"{lane['frac_bits']} fractional bits" in readme
        if axis[side]["tuser"]:
            hi, lo = axis[side]["tuser"]["bits"]
            assert f"`{side}_tuser[{hi}:{lo}]`" in readme
    assert manifest["input_quantisation"]["code"] in readme
    assert manifest["bundle"]["sha256"] in readme
    assert "active low" in readme and manifest["vivado"]["ip_vlnv"] in readme


@pytest.mark.parametrize("kind", ["conv", "neuron"])
def test_other_designs_have_a_contract(kind, bundle, tmp_path):
    if kind == "conv":
        design = designs.conv_design(2, 3, 8, 6)
    else:
        design = designs.neuron_design(bundle, "pow2", "csr")
    folder = export_design(design, tmp_path / design.name)
    manifest = json.loads((folder / "manifest.json").read_text())
    for side in ("s_axis", "m_axis"):
        assert manifest["axis"][side]["meaning"]
        assert all("frac_bits" in lane for lane in manifest["axis"][side]["lanes"])
    assert manifest["input_quantisation"]["code"]
    assert (folder / "README.md").exists()
    if kind == "neuron":
        spec = json.loads((bundle / "manifest.json").read_text())["layers"][0]
        lane = manifest["axis"]["m_axis"]["lanes"][0]
        assert lane["frac_bits"] == spec["output_frac_bits"]
