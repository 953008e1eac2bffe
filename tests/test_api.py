"""The Python API (compress2rtl): a user's PyTorch network and data to a bundle and its
hardware; the golden model against the bundle's integer reference, the RTL against both."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import compress2rtl
from compress import integer_ref
from compress.data import DataError
from compress.importer import UnsupportedModel
from sim.tools import available_simulators

torch.set_num_threads(1)

# a short pipeline: every stage once
FAST = dict(
    finetune_epochs=1, prune_rounds=1, centroid_epochs=1, pow2_epochs=1,
    cluster_sweep=(16,), calib_samples=400, seed=0,
)  # fmt: skip


def _blobs(features, classes, n, seed):
    """Separable synthetic data in [0, 1): one Gaussian blob per class."""
    rng = np.random.default_rng(seed)
    centres = rng.random((classes, features)) * 0.6 + 0.2
    y = np.arange(n) % classes
    x = np.clip(centres[y] + rng.normal(0, 0.08, (n, features)), 0, 0.99)
    return x.astype(np.float32), y.astype(np.int64)


def _train(model, x, y, epochs=60):
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    xt, yt = torch.tensor(x), torch.tensor(y)
    for _ in range(epochs):
        opt.zero_grad()
        nn.functional.cross_entropy(model(xt), yt).backward()
        opt.step()
    return model


@pytest.fixture(scope="module")
def mlp_bundle(tmp_path_factory):
    x_tr, y_tr = _blobs(16, 5, 300, 1)
    x_te, y_te = _blobs(16, 5, 60, 2)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(16, 24), nn.ReLU(), nn.Linear(24, 12), nn.ReLU(), nn.Linear(12, 5)
    )  # fmt: skip
    _train(model, x_tr, y_tr)
    data = {"x_train": x_tr, "y_train": y_tr, "x_test": x_te, "y_test": y_te}
    out = tmp_path_factory.mktemp("api") / "run"
    bundle = compress2rtl.compress(model, data, out=out, name="blobs", hidden=[16, 12], **FAST)
    return bundle, model, data


def test_compress_starts_from_the_user_weights(mlp_bundle):
    bundle, model, data = mlp_bundle
    m = bundle.manifest
    assert m["dataset"] == "blobs" and m["model"] == "imported"
    assert m["architecture"]["original"] == [16, 24, 12, 5]
    assert m["architecture"]["compressed"] == [16, 16, 12, 5]  # hidden=[16, 12]: Taylor
    assert bundle.summary["config"]["epochs"] == 0  # no float training
    # the float accuracy is the user's model's own on the (8-bit snapped) test data
    x = torch.tensor(np.round(data["x_test"] * 2**8) / 2**8)
    with torch.no_grad():
        own = float((model(x).argmax(1).numpy() == data["y_test"]).mean())
    assert bundle.float_accuracy == pytest.approx(own)
    assert bundle.manifest["input"]["frac_bits"] == 8


def test_predict_equals_the_bundle_reference(mlp_bundle, tmp_path):
    bundle, _, data = mlp_bundle
    hw = compress2rtl.hardware(bundle)
    ref = bundle.arrays["reference.test_outputs"]
    logits = hw.predict(data["x_test"])
    assert logits.shape == (60, 5) and np.array_equal(logits, ref)
    codes = bundle.arrays["reference.test_inputs"]
    assert np.array_equal(hw.predict(codes, codes=True), ref)
    assert np.array_equal(hw.predict(data["x_test"][7]), ref[7:8])  # one sample
    assert np.array_equal(integer_ref.forward(bundle, hw.codes(data["x_test"])), ref)
    acc = np.mean(np.argmax(logits, 1) == data["y_test"])
    assert acc == pytest.approx(bundle.integer_accuracy)
    # the same hardware from the bundle directory
    again = compress2rtl.hardware(bundle.path, layout="csr")
    assert np.array_equal(again.predict(data["x_test"]), ref)
    assert set(again.parameters["layouts"]) == {"csr"}
    # auto: all LUT ROMs here, so the smaller ROM of each layer
    assert 0 < hw.parameters["rom_bits"] <= again.parameters["rom_bits"]
    assert len(hw.cycles(data["x_test"][:3])) == 3
    with pytest.raises(ValueError, match="15 values per sample, the network takes 16"):
        hw.predict(np.zeros((2, 15)))
    with pytest.raises(ValueError, match="input codes must be in 0..255"):
        hw.predict(np.full((1, 16), 256), codes=True)


def test_simulate_is_bit_exact(mlp_bundle, tmp_path):
    sims = available_simulators()
    if not sims:
        pytest.skip("neither Icarus nor Verilator is installed")
    bundle, _, data = mlp_bundle
    hw = compress2rtl.hardware(bundle, layout="auto")
    x = data["x_test"][:4]
    rtl = hw.simulate(x, simulator=sims[0], build_dir=tmp_path / "sim")
    assert rtl.shape == (4, 5) and np.array_equal(rtl, hw.predict(x))
    assert hw.last_run["cycles"] == hw.cycles(x) == hw.last_run["model_cycles"]


def test_data_forms_and_option_errors(mlp_bundle):
    _, model, data = mlp_bundle
    as_tuple = compress2rtl.load_data(tuple(data[k] for k in data))
    pair = tuple(
        torch.utils.data.TensorDataset(torch.tensor(data[f"x_{s}"]), torch.tensor(data[f"y_{s}"]))
        for s in ("train", "test")
    )
    as_pair = compress2rtl.load_data(pair, name="pair")
    assert as_pair.name == "pair" and as_pair.classes == as_tuple.classes == 5
    assert np.array_equal(as_pair.x_train, as_tuple.x_train)
    assert np.array_equal(as_pair.y_test, as_tuple.y_test)
    with pytest.raises(DataError, match="expected a .npz path"):
        compress2rtl.load_data(42)
    with pytest.raises(TypeError, match="unknown option 'epoch'; options: "):
        compress2rtl.compress(model, data, epoch=3)
    from compress2rtl.api import config_overrides

    assert config_overrides({"hidden": [8, 4], "epochs": 2}, ("out",), "here") == {
        "hidden_targets": (8, 4),
        "epochs": 2,
    }
    with pytest.raises(ValueError, match=r"a sweep point got an unknown option 'out'; options: "):
        config_overrides({"out": "x"}, ("out",), "a sweep point")
    with pytest.raises(UnsupportedModel, match=r"layer 1 \(GELU\) is not supported"):
        compress2rtl.compress(nn.Sequential(nn.Linear(16, 5), nn.GELU()), data)


def test_imported_cnn_through_the_pipeline(tmp_path):
    """A small CNN (conv 3x3, pool, conv 3x3, flatten, two fc) on 1x10x10 images."""
    rng = np.random.default_rng(0)
    n, classes = 240, 3
    y = np.arange(n) % classes
    x = rng.random((n, 1, 10, 10)).astype(np.float32) * 0.3
    for c in range(classes):  # a bright bar per class
        x[y == c, 0, 2 + 3 * c, :] += 0.6
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3), nn.ReLU(),
        nn.Flatten(), nn.Linear(6 * 2 * 2, 8), nn.ReLU(), nn.Linear(8, classes),
    )  # fmt: skip
    _train(model, x[:180], y[:180], epochs=40)
    data = (x[:180], y[:180], x[180:], y[180:])
    bundle = compress2rtl.compress(model, data, out=tmp_path / "cnn", name="bars", **FAST)
    kinds = [s["kind"] for s in bundle.manifest["layers"]]
    assert kinds == ["conv2d", "maxpool2d", "conv2d", "flatten", "linear", "linear"]
    hw = compress2rtl.hardware(bundle, line_buffers=3)
    assert hw.kind == "cnn"
    assert np.array_equal(hw.predict(x[180:]), bundle.arrays["reference.test_outputs"])
    sims = available_simulators()
    if not sims:
        pytest.skip("neither Icarus nor Verilator is installed")
    rtl = hw.simulate(x[180:182], simulator=sims[0], build_dir=tmp_path / "sim")
    assert np.array_equal(rtl, hw.predict(x[180:182]))
    assert hw.last_run["cycles"] == hw.cycles(x[180:182])


def test_breast_cancer_example_ends_bit_exact(tmp_path, capsys):
    """examples/breast_cancer.py as a user runs it, on 2 test rows through the RTL; its ONNX
    route gives the same bundle as its PyTorch route."""
    sims = available_simulators()
    if not sims:
        pytest.skip("neither Icarus nor Verilator is installed")
    path = Path(__file__).resolve().parent.parent / "examples" / "breast_cancer.py"
    spec = importlib.util.spec_from_file_location("breast_cancer_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    args = ["--rows", "2", "--no-synth", "--out", str(tmp_path), "--sim", sims[0]]
    assert example.main(args) == 0
    out = capsys.readouterr().out
    assert "float model 30 -> 16 -> 8 -> 2: test accuracy" in out
    assert f"RTL ({sims[0]}) on 2 rows: bit-exact" in out
    assert "ONNX route (model.onnx, " in out and "the same bundle as the PyTorch route" in out
    assert (tmp_path / "onnx" / "model.onnx").is_file()
    assert (tmp_path / "vivado" / "manifest.json").is_file()
