"""compress: the LeNet-5 path and its version-2 bundle (conv2d, maxpool2d, flatten in hwc order)."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from compress import integer_ref
from compress.bundle import BundleError, load_bundle, validate
from compress.calibrate_cnn import hwc_permutation
from compress.data import SYSTEM_DIRS
from compress.pipeline import config_for, run

FASHION = Path(SYSTEM_DIRS["fashion"][0])
LAYERS = ["conv1", "pool1", "conv2", "pool2", "flatten", "fc1", "fc2", "fc3"]
KINDS = ["conv2d", "maxpool2d", "conv2d", "maxpool2d", "flatten", "linear", "linear", "linear"]


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    """A tiny LeNet-5 run on a Fashion-MNIST subset (a few seconds)."""
    if not FASHION.is_dir():
        pytest.skip(f"Fashion-MNIST is not installed in {FASHION}")
    out = tmp_path_factory.mktemp("cnn_run")
    cfg = config_for(
        "fashion",
        "lenet5",
        out=str(out),
        epochs=2,
        finetune_epochs=1,
        prune_rounds=1,
        structured_steps=1,
        centroid_epochs=1,
        pow2_epochs=1,
        cluster_sweep=(16,),
        train_limit=1200,
        test_limit=200,
        calib_samples=600,
        calib_refine=1,
        qat_epochs=2,
        qat_weights=True,
        taylor_batches=2,
        plots=False,
        quiet=True,
    )
    summary = run(cfg)
    return summary, load_bundle(out / "bundle")


def test_run_writes_a_version2_bundle(cnn_run):
    summary, b = cnn_run
    m, a = b.manifest, b.arrays
    assert m["version"] == 2
    assert [s["name"] for s in m["layers"]] == LAYERS
    assert [s["kind"] for s in m["layers"]] == KINDS
    assert m["input"]["shape"] == [1, 28, 28]
    specs = {s["name"]: s for s in m["layers"]}
    c, h, w = specs["pool2"]["out_shape"]
    assert specs["fc1"]["in_features"] == c * h * w == specs["flatten"]["out_shape"][0]
    assert [specs["conv1"]["out_channels"], specs["conv2"]["out_channels"]] == list(
        summary["architecture"]["filters"]
    )
    assert specs["fc3"]["activation"] == "none"
    for n in ("conv1", "conv2", "fc1", "fc2"):
        assert specs[n]["activation"] == "relu" and specs[n]["output_bits"] == 8
    for n in ("conv1", "conv2", "fc1", "fc2", "fc3"):
        spec, wi = specs[n], a[f"{n}.weight_int"]
        assert spec["weight_format"] == "pow2" and spec["pow2_max_exp"] <= 6
        np.testing.assert_array_equal(a[f"{n}.codebook"][a[f"{n}.codes"]], wi)
        np.testing.assert_array_equal(wi != 0, a[f"{n}.mask"])
        nz = np.abs(wi[wi != 0])
        assert np.all(nz & (nz - 1) == 0) and nz.max() <= 2 ** spec["pow2_max_exp"]
        # CSR rows (output channels / neurons) decode to the codes, columns in C order
        rows = a[f"{n}.codes"].reshape(len(wi), -1)
        rel, code, ptr = a[f"{n}.csr_rel"], a[f"{n}.csr_code"], a[f"{n}.csr_rowptr"]
        for j in range(len(rows)):
            got = np.zeros(rows.shape[1], np.int64)
            cols = np.cumsum(rel[ptr[j] : ptr[j + 1]].astype(np.int64) + 1) - 1
            got[cols] = code[ptr[j] : ptr[j + 1]]
            np.testing.assert_array_equal(got, rows[j])
        assert spec["acc_bits"] >= 2
    # the integer reference over the test subset, and the summary
    out = integer_ref.forward(b, a["reference.test_inputs"])
    np.testing.assert_array_equal(out, a["reference.test_outputs"])
    np.testing.assert_array_equal(np.argmax(out, 1), a["reference.test_pred"])
    acc = float(np.mean(a["reference.test_pred"] == a["reference.test_labels"]))
    assert acc == pytest.approx(summary["integer_accuracy"])
    assert summary["bundle"] == str(b.path)
    assert "integer reference" in [s["name"] for s in summary["stages"]]
    assert summary["compression_ratio"] == pytest.approx(
        summary["dense_bytes"] / summary["compressed_bytes"]
    )


def test_qat_summary_and_its_integer_accuracy(cnn_run):
    """The quantisation-aware fine-tuning ran on the integer forward: the integer validation
    accuracy it kept is the bundle's (measured by integer_ref), its history is in summary.json."""
    summary, b = cnn_run
    q = summary["qat"]
    assert len(summary["epoch_val"]["qat"]) == 2
    assert q["val_accuracy"] == max([q["val_before"], *summary["epoch_val"]["qat"]])
    assert 0 <= q["kept_epoch"] <= 2
    int_val = next(r for r in summary["stages"] if r["name"] == "integer reference")
    assert int_val["val_accuracy"] == pytest.approx(q["val_accuracy"], abs=1e-12)
    assert ("quantisation-aware" in b.manifest["calibration"]) == (q["kept_epoch"] > 0)


def test_baseline_is_the_dense_uncompressed_lenet5(cnn_run):
    _, b = cnn_run
    base = b.manifest["baseline"]["layers"]
    assert [s["kind"] for s in base] == KINDS
    specs = {s["name"]: s for s in base}
    assert [specs["conv1"]["out_channels"], specs["conv2"]["out_channels"]] == [6, 16]
    assert [specs[n]["out_features"] for n in ("fc1", "fc2", "fc3")] == [120, 84, 10]
    assert specs["fc1"]["in_features"] == 16 * 4 * 4
    for n in ("conv1", "conv2", "fc1", "fc2", "fc3"):
        assert specs[n]["weight_format"] == "dense" and specs[n]["weight_bits"] == 16
        wi = b.arrays[f"baseline.{n}.weight_int"]
        assert np.abs(wi).max() < 2**15
    out = integer_ref.forward(b, b.arrays["reference.test_inputs"], baseline=True)
    acc = float(np.mean(np.argmax(out, 1) == b.arrays["reference.test_labels"]))
    assert acc == pytest.approx(b.manifest["baseline"]["integer_accuracy"])


def test_fc_layers_build_with_the_mlp_reader(cnn_run):
    from rtl_gen.neuron.weights import layers_from_bundle

    _, b = cnn_run
    for baseline in (False, True):
        part = b.manifest["baseline"] if baseline else b.manifest
        fc = [s for s in part["layers"] if s["kind"] == "linear"]
        if baseline:
            man = {**b.manifest, "baseline": {**part, "layers": fc}}
        else:
            man = {**b.manifest, "layers": fc}
        layers = layers_from_bundle((man, b.arrays), baseline=baseline)
        assert [lw.name for lw in layers] == ["fc1", "fc2", "fc3"]
        assert layers[0].in_features == fc[0]["in_features"]
        assert [lw.acc_bits() for lw in layers] == [s["acc_bits"] for s in fc]
    with pytest.raises(ValueError, match="conv1"):
        layers_from_bundle(b)


def _plain_forward(manifest, arrays, image):
    """conv / pool / flatten / linear with explicit loops over every output value."""
    x = np.asarray(image, dtype=np.int64).reshape(manifest["input"]["shape"])
    for spec in manifest["layers"]:
        kind, n = spec["kind"], spec["name"]
        if kind in ("conv2d", "linear"):
            shift = spec["input_frac_bits"] + spec["weight_frac_bits"] - spec["output_frac_bits"]
            hi = 2 ** spec["output_bits"] - 1 if spec["activation"] == "relu" else 127
            lo = 0 if spec["activation"] == "relu" else -128
            w, bias = arrays[f"{n}.weight_int"].astype(np.int64), arrays[f"{n}.bias_int"]

            def act(acc, shift=shift, lo=lo, hi=hi):
                y = (acc + (1 << (shift - 1))) >> shift if shift > 0 else acc << -shift
                return min(max(y, lo), hi)

        if kind == "conv2d":
            k = spec["kernel_size"]
            o_, ho, wo = spec["out_shape"]
            y = np.zeros((o_, ho, wo), np.int64)
            for o in range(o_):
                for r in range(ho):
                    for s in range(wo):
                        acc = int(bias[o])
                        for c in range(spec["in_channels"]):
                            for i in range(k):
                                for j in range(k):
                                    acc += int(w[o, c, i, j]) * int(x[c, r + i, s + j])
                        y[o, r, s] = act(acc)
        elif kind == "maxpool2d":
            c_, ho, wo = spec["out_shape"]
            y = np.zeros((c_, ho, wo), np.int64)
            for c in range(c_):
                for r in range(ho):
                    for s in range(wo):
                        y[c, r, s] = max(
                            x[c, 2 * r, 2 * s],
                            x[c, 2 * r, 2 * s + 1],
                            x[c, 2 * r + 1, 2 * s],
                            x[c, 2 * r + 1, 2 * s + 1],
                        )
        elif kind == "flatten":
            c_, h_, w_ = spec["in_shape"]
            y = np.zeros(c_ * h_ * w_, np.int64)
            for c in range(c_):
                for r in range(h_):
                    for s in range(w_):
                        y[(r * w_ + s) * c_ + c] = x[c, r, s]
        else:
            y = np.array(
                [
                    act(int(bias[j]) + sum(int(w[j, i]) * int(x[i]) for i in range(len(x))))
                    for j in range(len(w))
                ]
            )
        x = y
    return x


def test_plain_loops_equal_integer_ref(cnn_run):
    _, b = cnn_run
    xs = b.arrays["reference.test_inputs"][:2]
    expect = np.array([_plain_forward(b.manifest, b.arrays, x) for x in xs])
    np.testing.assert_array_equal(integer_ref.forward(b, xs), expect)
    # and on an image that drives the codes to their limits
    hot = np.full((1, xs.shape[1]), 255, np.uint8)
    np.testing.assert_array_equal(
        integer_ref.forward(b, hot)[0], _plain_forward(b.manifest, b.arrays, hot[0])
    )


def test_hwc_columns_reproduce_the_chw_flatten():
    g = np.random.default_rng(0)
    c, h, w = 3, 4, 5
    fmap = g.integers(0, 256, (c, h, w))
    weight = g.integers(-64, 65, (7, c * h * w))
    chw = weight @ fmap.reshape(-1)  # PyTorch's flatten
    hwc = weight[:, hwc_permutation(c, h, w)] @ fmap.transpose(1, 2, 0).reshape(-1)
    np.testing.assert_array_equal(chw, hwc)
    q = hwc_permutation(c, h, w)
    assert q[(2 * w + 3) * c + 1] == 1 * h * w + 2 * w + 3


def test_float_model_from_bundle_agrees_with_integer_forward(cnn_run):
    """PyTorch float forward with the bundle's real-valued weights, fc1's columns put back in
    PyTorch's (c, h, w) flatten order by the docs' formula, inputs on the 8-bit grid."""
    _, b = cnn_run
    m, a = b.manifest, b.arrays
    specs = {s["name"]: s for s in m["layers"]}

    def real(n):
        s = specs[n]
        w = a[f"{n}.weight_int"].astype(np.float64) * 2.0 ** -s["weight_frac_bits"]
        bias = a[f"{n}.bias_int"] * 2.0 ** -(s["input_frac_bits"] + s["weight_frac_bits"])
        return torch.tensor(w), torch.tensor(bias)

    c, h, w = specs["flatten"]["in_shape"]
    w1, b1 = real("fc1")
    w1_chw = torch.zeros_like(w1)
    for ch in range(c):
        for r in range(h):
            for s in range(w):
                w1_chw[:, ch * h * w + r * w + s] = w1[:, (r * w + s) * c + ch]
    xq = a["reference.test_inputs"]
    x = torch.tensor(xq.astype(np.float64) / 2 ** m["input"]["frac_bits"]).reshape(-1, 1, 28, 28)
    with torch.no_grad():
        y = torch.max_pool2d(torch.relu(torch.conv2d(x, *real("conv1"))), 2)
        y = torch.max_pool2d(torch.relu(torch.conv2d(y, *real("conv2"))), 2)
        y = torch.relu(y.flatten(1) @ w1_chw.T + b1)
        w2, b2 = real("fc2")
        y = torch.relu(y @ w2.T + b2)
        w3, b3 = real("fc3")
        y = y @ w3.T + b3
    agree = float(np.mean(y.argmax(1).numpy() == a["reference.test_pred"]))
    assert agree >= 0.9, agree


def _bad(b, edit):
    m = copy.deepcopy(b.manifest)
    edit(m)
    return m


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda m: m["layers"][2].pop("kernel_size"), r"layer conv2 \(conv2d\): lacks kernel_size"),
        (lambda m: m["layers"][0].update(kind="conv3d"), r"layer conv1 \(conv3d\): kind 'conv3d'"),
        (lambda m: m["layers"][1].update(stride=1), r"layer pool1 \(maxpool2d\): kernel_size 2"),
        (lambda m: m["layers"][4].update(order="chw"), r"layer flatten \(flatten\): order 'chw'"),
        (lambda m: m["layers"][5].update(in_features=5), r"layer fc1 .*in_features 5 but its"),
        (lambda m: m["layers"][3].update(out_shape=[1, 2, 3]), r"layer pool2 .*out_shape"),
        (lambda m: m["baseline"]["layers"][0].pop("padding"), r"layer conv1 .*lacks padding"),
        (lambda m: m.update(version=1), r"layer conv1 \(conv2d\): kind 'conv2d' is not one of"),
    ],
)
def test_malformed_v2_bundles_name_the_layer(cnn_run, edit, match):
    _, b = cnn_run
    with pytest.raises(BundleError, match=match):
        validate(_bad(b, edit), b.arrays)


def test_missing_conv_array_and_file_round_trip(cnn_run, tmp_path):
    _, b = cnn_run
    arrays = {k: v for k, v in b.arrays.items() if k != "conv2.bias_int"}
    with pytest.raises(BundleError, match=r"layer conv2 .*lacks conv2\.bias_int"):
        validate(b.manifest, arrays)
    # a manifest edited on disk is rejected by load_bundle with the layer named
    d = tmp_path / "b"
    d.mkdir()
    m = _bad(b, lambda m: m["layers"][0].pop("in_channels"))
    (d / "manifest.json").write_text(json.dumps(m))
    np.savez(d / "arrays.npz", **b.arrays)
    with pytest.raises(BundleError, match=r"layer conv1 \(conv2d\): lacks in_channels"):
        load_bundle(d)


def test_version1_bundle_still_loads(tmp_path):
    from compress.bundle import save_bundle
    from tests.test_compress_stages import _tiny_bundle

    manifest, arrays = _tiny_bundle()
    b = load_bundle(save_bundle(tmp_path / "v1", manifest, arrays))
    assert b.manifest["version"] == 1
    x = np.array([[1, 2, 3]], np.uint8)
    assert integer_ref.forward(b, x).shape == (1, 2)
