"""``make verilog DESIGN=cnn``: a version-2 bundle to a Vivado folder; an unsupported layer is a
one-line error with exit status 2 before anything is written."""

import json

from compress.bundle import save_bundle
from rtl_gen.export.__main__ import main
from tests.test_cnn_bundle import synthetic_cnn_bundle, with_reference


def _bundle(tmp_path, images=5):
    # reference images, as compress writes them: the manifest's cycle figures come from them
    manifest, arrays = with_reference(*synthetic_cnn_bundle(seed=2), images, seed=3)
    manifest = {k: v for k, v in manifest.items() if k not in ("format", "version")}
    manifest.update(dataset="synthetic", model="lenet5")
    return save_bundle(tmp_path / "bundle", manifest, arrays)


def test_cnn_folder(tmp_path):
    bundle = _bundle(tmp_path)
    out = tmp_path / "verilog"
    assert main(["verilog", "--design", "cnn", "--bundle", str(bundle), "--line-buffers", "3",
                 "--out", str(out)]) == 0  # fmt: skip
    folder = out / "cnn_synthetic_lenet5_n3_3"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert (folder / "cnn.v").exists() and manifest["top"] == "cnn"
    assert manifest["parameters"]["line_buffers"] == [3, 3]
    # its AXI4-Stream top: a pixel per beat (one byte per channel), the scores with their index
    axis = manifest["axis"]
    assert axis["top"] == "cnn_axis" and (folder / "cnn_axis.v").exists()
    channels = manifest["parameters"]["input_shape"][0]
    assert len(axis["s_axis"]["lanes"]) == channels and axis["s_axis"]["tuser"] is None
    assert axis["m_axis"]["tuser"]["meaning"] == "element index"
    # the interface contract: the bundle's formats, and the cycle model's figures
    spec = json.loads((bundle / "manifest.json").read_text())
    last = [layer for layer in spec["layers"] if layer["kind"] == "linear"][-1]
    assert {lane["frac_bits"] for lane in axis["s_axis"]["lanes"]} == {spec["input"]["frac_bits"]}
    assert axis["m_axis"]["lanes"][0]["frac_bits"] == last["output_frac_bits"]
    assert manifest["input_quantisation"]["shape"] == spec["input"]["shape"]
    model = manifest["cycle_model"]
    # this bundle's fc layers are dense with zero-skipping, a build the CNN cycle model does
    # not follow: the manifest says so instead of giving figures (the Fashion LeNet-5, direct
    # fc1, gets them: docs/export.md)
    assert model["figures"].startswith("not given: the CNN timing model needs")
    assert (folder / "README.md").exists()


def test_unsupported_layer_exits_2(tmp_path, capsys):
    bundle = _bundle(tmp_path)
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["layers"][0]["stride"] = 2  # written by hand: compress never writes it
    path.write_text(json.dumps(manifest))
    out = tmp_path / "verilog"
    assert main(["verilog", "--design", "cnn", "--bundle", str(bundle), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "layer conv1" in err and "stride" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
