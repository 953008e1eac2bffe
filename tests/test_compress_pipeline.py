"""compress: a tiny end-to-end run of the pipeline on the digits data."""

import json

import numpy as np
import pytest

from compress import integer_ref
from compress.__main__ import main
from compress.bundle import load_bundle

KEYS = (
    "dataset",
    "model",
    "float_accuracy",
    "integer_accuracy",
    "pruned_fraction",
    "dense_bytes",
    "compressed_bytes",
    "compression_ratio",
    "stages",
    "bundle",
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("compress_run")
    rc = main(
        [
            "--dataset",
            "digits",
            "--out",
            str(out),
            "--epochs",
            "4",
            "--finetune-epochs",
            "1",
            "--prune-rounds",
            "2",
            "--quiet",
            "--train-limit",
            "400",
            "--test-limit",
            "120",
        ]
    )
    assert rc == 0
    return out


def test_summary_has_all_keys(run_dir):
    s = json.loads((run_dir / "summary.json").read_text())
    for k in KEYS:
        assert k in s, k
    names = [st["name"] for st in s["stages"]]
    assert names[:6] == [
        "float",
        "pruned",
        "pruned+retrained",
        "shared",
        "shift-quantized",
        "integer reference",
    ]
    for st in s["stages"]:
        assert set(st) >= {"name", "bytes", "ratio", "accuracy", "val_accuracy"}
        assert 0 <= st["val_accuracy"] <= 1 and 0 <= st["accuracy"] <= 1
    # 10 % of the 400 training images held out: choices on them, calibration on training data
    assert s["splits"] == {
        "train": 360,
        "validation": 40,
        "test": 120,
        "val_fraction": 0.1,
        "val_seed": 0,
        "stratified": True,
    }
    assert s["chosen_on"]["fixed-point calibration"] == "train"
    assert s["chosen_on"]["fine-tuning epochs (Taylor steps, pruning rounds)"] == "validation"
    assert len(s["epoch_val"]["train"]) == 4
    assert all("val_accuracy" in c for c in s["cluster_sweep"])
    assert s["compression_ratio"] == pytest.approx(s["dense_bytes"] / s["compressed_bytes"])
    assert s["pruned_fraction"] > 0.9
    env = s["environment"]
    assert env["torch_cpu_capability"] and env["torch"].startswith("2.") and env["cpu_count"] >= 1
    report = (run_dir / "report.txt").read_text()
    assert "fc1.weight | nonzeros =" in report and "Compression rate :" in report
    assert "360 train / 40 validation / 120 test" in report
    header = next(ln for ln in report.splitlines() if ln.startswith("stage "))
    assert header.split() == ["stage", "bytes", "ratio", "val", "test"]
    for png in (
        "weights_before_pruning",
        "weights_after_pruning",
        "weights_after_retraining",
        "accuracy_vs_clusters",
        "accuracy_vs_pruned",
        "taylor_importance",
    ):
        assert (run_dir / "plots" / f"{png}.png").stat().st_size > 1000


def test_bundle_is_accepted_by_the_hardware_reader(run_dir):
    from rtl_gen.neuron.weights import layers_from_bundle

    b = load_bundle(run_dir / "bundle")
    layers = layers_from_bundle(b)
    base = layers_from_bundle(b, baseline=True)
    assert [lw.out_features for lw in base] == [300, 100, 10]
    assert layers[0].in_features == 64 and layers[-1].out_features == 10
    a = b.arrays
    assert a["reference.test_inputs"].dtype == np.uint8
    assert a["reference.test_outputs"].dtype == np.int32
    out = integer_ref.forward(b, a["reference.test_inputs"])
    np.testing.assert_array_equal(out, a["reference.test_outputs"])
    np.testing.assert_array_equal(np.argmax(out, 1), a["reference.test_pred"])
    acc = float(np.mean(a["reference.test_pred"] == a["reference.test_labels"]))
    assert acc == pytest.approx(b.manifest["reference"]["integer_accuracy"])
    for spec in b.manifest["layers"]:
        n = spec["name"]
        w = a[f"{n}.weight_int"]
        np.testing.assert_array_equal(a[f"{n}.codebook"][a[f"{n}.codes"]], w)
        np.testing.assert_array_equal(w != 0, a[f"{n}.mask"])
        nz = w[w != 0]
        assert np.all(np.abs(nz) & (np.abs(nz) - 1) == 0)
        assert np.abs(nz).max() <= 2 ** spec["pow2_max_exp"]


def test_lenet5_run_reports_sizes(tmp_path):
    rc = main(
        [
            "--dataset",
            "digits",
            "--model",
            "lenet5",
            "--out",
            str(tmp_path),
            "--epochs",
            "2",
            "--finetune-epochs",
            "1",
            "--prune-rounds",
            "1",
            "--quiet",
            "--no-plots",
            "--train-limit",
            "300",
            "--test-limit",
            "100",
            "--filters",
            "3",
            "9",
            "--finetune-augment",
            "shift",
            "--train-schedule",
            "cosine",
            "--finetune-schedule",
            "cosine",
            "--rewind-epochs",
            "1",
            "--distill",
            "0.5",
            "--distill-temperature",
            "2",
        ]
    )
    assert rc == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["model"] == "lenet5" and s["integer_accuracy"] is not None
    # every fine-tuning phase ran with the distillation the command line asked for
    assert s["config"]["distill"] == 0.5 and s["config"]["distill_temperature"] == 2
    # the command line reaches the configuration
    assert s["architecture"]["filters"] == [3, 9]
    assert s["config"]["finetune_augment"] == "shift" and s["config"]["augment"] == "none"
    assert s["config"]["train_schedule"] == "cosine"
    assert s["config"]["finetune_schedule"] == "cosine" and s["config"]["rewind_epochs"] == 1
    assert s["compressed_bytes"] < s["dense_bytes"]
    assert [r["name"] for r in s["layers"]] == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    # 8x8 digits, K = 3: conv2's output is 1x1, so there is no pool2
    b = load_bundle(s["bundle"])
    assert b.manifest["version"] == 2
    names = [spec["name"] for spec in b.manifest["layers"]]
    assert names == ["conv1", "pool1", "conv2", "flatten", "fc1", "fc2", "fc3"]
    out = integer_ref.forward(b, b.arrays["reference.test_inputs"])
    np.testing.assert_array_equal(out, b.arrays["reference.test_outputs"])
