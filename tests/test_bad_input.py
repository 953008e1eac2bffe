"""Bad input, each case a one-line error naming the file, layer, field or value.

Malformed bundles (MLP and CNN) raise ``BundleError`` when they are loaded; the front ends
(``python -m sim.mlp``, ``sim.cnn``, ``sim.accuracy``, ``rtl_gen.export``) turn bad numbers and
bad bundles into a one-line ``error:`` and a non-zero exit before any simulation; an export
that fails leaves no half-written folder; ``make`` rejects ``WAVES``/``ZERO_SKIP`` other than
0/1; a failed MNIST download leaves no empty directory behind.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from compress.bundle import BundleError, load_bundle, save_bundle
from tb.golden.mlp import synthetic_bundle

from .test_cnn_bundle import synthetic_cnn_bundle, with_reference

ROOT = Path(__file__).resolve().parents[1]


def _mlp_bundle():
    """A small, complete MLP bundle (pow2 CSR layers fc1..fc3, dense baseline, reference),
    with the pow2 sign, exponent and code arrays compress also writes."""
    manifest, arrays = synthetic_bundle(
        np.random.default_rng(3), sizes=(12, 8, 6, 4), baseline_sizes=(12, 10, 4), images=16
    )
    for spec in manifest["layers"]:
        name = spec["name"]
        w = arrays[f"{name}.weight_int"].astype(np.int64)
        book = arrays[f"{name}.codebook"].tolist()
        arrays[f"{name}.codes"] = np.vectorize(book.index)(w).astype(np.uint8)
        arrays[f"{name}.pow2_sign"] = np.sign(w).astype(np.int8)
        arrays[f"{name}.pow2_exp"] = np.where(w != 0, np.log2(np.abs(w) + (w == 0)), 0).astype(
            np.int8
        )
    return manifest, arrays


def _write(path: Path, manifest, arrays) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "manifest.json").write_text(json.dumps(manifest))
    np.savez(path / "arrays.npz", **arrays)
    return path


def _one_line_error(path: Path, match: str) -> str:
    with pytest.raises(BundleError, match=match) as info:
        load_bundle(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_good_bundles_load(tmp_path):
    manifest, arrays = _mlp_bundle()
    assert load_bundle(save_bundle(tmp_path / "mlp", manifest, arrays)).layers[2]["name"] == "fc3"
    manifest, arrays = synthetic_cnn_bundle(seed=1)
    assert load_bundle(save_bundle(tmp_path / "cnn", manifest, arrays)).manifest["version"] == 2


def _pow2_4096(m, a):
    """The issue's case: fc3 holds 4096 (2**12) while pow2_max_exp is 6, in its weights and
    its codebook (so the CSR rows still decode to the weights)."""
    w = a["fc3.weight_int"]
    j, i = np.argwhere(w != 0)[0]
    book = a["fc3.codebook"].copy()
    code = a["fc3.codes"][j, i]
    book[code] = 4096 * np.sign(book[code])
    a["fc3.codebook"] = book
    a["fc3.weight_int"] = book[a["fc3.codes"]].astype(np.int32)


def _flip_weight(m, a):
    w = a["fc2.weight_int"].copy()
    j, i = np.argwhere(w != 0)[0]
    w[j, i] = -w[j, i]
    a["fc2.weight_int"] = w


def _set(key, index, value):
    def edit(m, a):
        v = a[key].copy()
        v.reshape(-1)[index] = value
        a[key] = v

    return edit


def _drop(key):
    return lambda m, a: a.pop(key)


# (id, edit of (manifest, arrays), message regex)
MLP_CASES = [
    ("wrong-format", lambda m, a: m.update(format="onnx"), r"format is 'onnx', expected"),
    ("wrong-version", lambda m, a: m.update(version=7), r"version 7 is not supported"),
    ("no-layers", lambda m, a: m.pop("layers"), r"manifest has no 'layers'"),
    (
        "layer-key-missing",
        lambda m, a: m["layers"][1].pop("index_bits"),
        r"layer fc2 \(linear\): lacks index_bits \(weight_format 'pow2'\)",
    ),
    (
        "format-key-missing",
        lambda m, a: m["layers"][0].pop("pow2_max_exp"),
        r"layer fc1 \(linear\): lacks pow2_max_exp",
    ),
    (
        "key-not-an-integer",
        lambda m, a: m["layers"][0].update(output_bits="8"),
        r"layer fc1 \(linear\): output_bits must be an integer >= 1, not '8'",
    ),
    (
        "unknown-weight-format",
        lambda m, a: m["layers"][2].update(weight_format="int4"),
        r"layer fc3 \(linear\): weight_format 'int4' is not one of",
    ),
    (
        "unknown-activation",
        lambda m, a: m["layers"][0].update(activation="gelu"),
        r"layer fc1 \(linear\): activation 'gelu' is not one of",
    ),
    (
        "layers-do-not-chain",
        lambda m, a: m["layers"][1].update(in_features=7),
        r"layer fc2 \(linear\): in_features 7 but its input has 8 features",
    ),
    (
        "duplicate-name",
        lambda m, a: m["layers"][1].update(name="fc1"),
        r"layer fc1 \(linear\): the name 'fc1' is used twice",
    ),
    ("array-missing", _drop("fc2.csr_rel"), r"layer fc2 \(linear\): arrays.npz lacks fc2.csr_rel"),
    (
        "bias-missing",
        _drop("fc3.bias_int"),
        r"layer fc3 \(linear\): arrays.npz lacks fc3.bias_int",
    ),
    (
        "bias-wrong-size",
        lambda m, a: a.update({"fc1.bias_int": a["fc1.bias_int"][:-1]}),
        r"layer fc1 \(linear\): fc1.bias_int has 7 values, not 8",
    ),
    (
        "float-weights",
        lambda m, a: a.update({"fc1.weight_int": a["fc1.weight_int"] * 0.5}),
        r"layer fc1 \(linear\): fc1.weight_int holds float64 values, not integers",
    ),
    (
        "csr-code-wider-than-declared",
        _set("fc1.csr_code", 0, 16),
        r"layer fc1 \(linear\): fc1.csr_code\[0\] = 16 does not fit codebook_bits 4",
    ),
    (
        "csr-rel-wider-than-declared",
        _set("fc2.csr_rel", 1, 17),
        r"layer fc2 \(linear\): fc2.csr_rel\[1\] = 17 does not fit index_bits 4",
    ),
    (
        "codes-wider-than-declared",
        _set("fc1.codes", 3, 200),
        r"layer fc1 \(linear\): fc1.codes\[0, 3\] = 200 does not fit codebook_bits 4",
    ),
    (
        "codebook-longer-than-declared",
        lambda m, a: a.update({"fc2.codebook": np.arange(20, dtype=np.int32) * 0}),
        r"layer fc2 \(linear\): fc2.codebook must hold 1..16 entries \(codebook_bits 4\)",
    ),
    (
        "pow2-weight-beyond-max-exp",
        _pow2_4096,
        r"layer fc3 \(linear\): fc3.weight_int\[\d+, \d+\] = -?4096 is not 0 or ±2\*\*e with "
        r"e <= pow2_max_exp 6",
    ),
    (
        "pow2-exponent-beyond-max-exp",
        _set("fc1.pow2_exp", 0, 9),
        r"layer fc1 \(linear\): fc1.pow2_exp\[0, 0\] = 9 is beyond pow2_max_exp 6",
    ),
    (
        "pow2-max-exp-beyond-exp-bits",
        lambda m, a: m["layers"][0].update(pow2_max_exp=8),
        r"layer fc1 \(linear\): pow2_max_exp 8 does not fit exp_bits 3",
    ),
    (
        "csr-disagrees-with-weights",
        _flip_weight,
        r"layer fc2 \(linear\): .*decodes? to -?\d+.*weight_int (has|is) -?\d+",
    ),
    (
        "csr-rowptr-broken",
        _set("fc1.csr_rowptr", -1, 2),
        r"layer fc1 \(linear\): fc1.csr_rowptr must rise from 0 to \d+ entries",
    ),
    (
        "acc-bits-too-small",
        lambda m, a: m["layers"][0].update(acc_bits=8),
        r"layer fc1 \(linear\): acc_bits 8 can overflow: inputs of 8 bits \(unsigned\) need \d+",
    ),
    (
        "dense-baseline-beyond-weight-bits",
        _set("baseline.fc2.weight_int", 5, 40000),
        r"layer fc2 \(linear\): baseline.fc2.weight_int\[0, 5\] = 40000 does not fit "
        r"weight_bits 16",
    ),
    (
        "reference-array-missing",
        _drop("reference.test_outputs"),
        r"arrays.npz lacks reference.test_outputs",
    ),
    (
        "reference-wrong-shape",
        lambda m, a: a.update({"reference.test_labels": a["reference.test_labels"][:-1]}),
        r"reference.test_labels has shape \(15,\) \(int64\), not \(16,\) integers",
    ),
]


@pytest.mark.parametrize("edit,match", [c[1:] for c in MLP_CASES], ids=[c[0] for c in MLP_CASES])
def test_malformed_mlp_bundle(tmp_path, edit, match):
    manifest, arrays = _mlp_bundle()
    edit(manifest, arrays)
    path = _write(tmp_path / "bundle", manifest, arrays)
    message = _one_line_error(path, match)
    assert message.startswith(str(path))  # names the bundle


CNN_CASES = [
    (
        "conv-pow2-beyond-max-exp",
        _set("conv2.weight_int", 4, 128),
        r"layer conv2 \(conv2d\): conv2.weight_int\[0, 0, 1, 1\] = 128 is not 0 or ±2\*\*e",
    ),
    (
        "conv-format-key-missing",
        lambda m, a: m["layers"][0].pop("exp_bits"),
        r"layer conv1 \(conv2d\): lacks exp_bits \(weight_format 'pow2'\)",
    ),
    (
        "conv-bias-missing",
        _drop("conv1.bias_int"),
        r"layer conv1 \(conv2d\): arrays.npz lacks conv1.bias_int",
    ),
    (
        "conv-in-shape-not-a-shape",
        lambda m, a: m["layers"][0].update(in_shape=[1, 12]),
        r"layer conv1 \(conv2d\): in_shape \[1, 12\] is not a list of positive sizes",
    ),
    (
        "fc-does-not-chain-with-flatten",
        lambda m, a: m["layers"][5].update(in_shape=[7], in_features=7),
        r"layer fc1 \(linear\): in_shape \[7\] is not the previous out_shape",
    ),
]


@pytest.mark.parametrize("edit,match", [c[1:] for c in CNN_CASES], ids=[c[0] for c in CNN_CASES])
def test_malformed_cnn_bundle(tmp_path, edit, match):
    manifest, arrays = synthetic_cnn_bundle(seed=1)
    manifest, arrays = json.loads(json.dumps(manifest)), dict(arrays)
    edit(manifest, arrays)
    _one_line_error(_write(tmp_path / "bundle", manifest, arrays), match)


@pytest.mark.parametrize("design", ["mlp", "cnn"])
@pytest.mark.parametrize(
    "damage,match",
    [
        (lambda p: (p / "manifest.json").write_text(""), r"manifest.json: invalid JSON"),
        (
            lambda p: (p / "manifest.json").write_text((p / "manifest.json").read_text()[:200]),
            r"manifest.json: invalid JSON",
        ),
        (lambda p: (p / "manifest.json").write_text("[1, 2]"), r"must be a JSON object"),
        (lambda p: (p / "manifest.json").write_bytes(b"\xff\xfe\x00"), r"invalid JSON"),
        (
            lambda p: (p / "arrays.npz").write_bytes((p / "arrays.npz").read_bytes()[:300]),
            r"arrays.npz: cannot read \(BadZipFile",
        ),
        (lambda p: (p / "arrays.npz").write_bytes(b""), r"arrays.npz: cannot read"),
        (
            lambda p: np.save(open(p / "arrays.npz", "wb"), np.zeros(3)),
            r"arrays.npz: not an .npz archive",
        ),
        (lambda p: (p / "arrays.npz").unlink(), r"no arrays.npz \(not a bundle directory\)"),
        (lambda p: (p / "manifest.json").unlink(), r"no manifest.json \(not a bundle directory\)"),
        (
            lambda p: ((p / "manifest.json").unlink(), (p / "manifest.json").mkdir()),
            r"manifest.json: cannot read \(IsADirectoryError",
        ),
    ],
    ids=[
        "empty-manifest",
        "truncated-manifest",
        "manifest-not-an-object",
        "manifest-not-utf8",
        "truncated-npz",
        "empty-npz",
        "npy-not-npz",
        "npz-missing",
        "manifest-missing",
        "manifest-a-directory",
    ],
)
def test_damaged_bundle_files(tmp_path, design, damage, match):
    manifest, arrays = _mlp_bundle() if design == "mlp" else synthetic_cnn_bundle(seed=1)
    path = save_bundle(tmp_path / "bundle", manifest, arrays)
    damage(path)
    _one_line_error(path, match)


# --- front ends ----------------------------------------------------------------------------


def _front_end(name):
    import importlib

    return importlib.import_module(name).main


FRONT_ENDS = ["sim.mlp", "sim.cnn", "sim.accuracy"]


@pytest.mark.parametrize("module", FRONT_ENDS)
@pytest.mark.parametrize(
    "args,message",
    [
        (["--images", "0"], "argument --images: must be a positive integer, not 0"),
        (["--images", "-5"], "argument --images: must be a positive integer, not -5"),
        (["--images", "ten"], "argument --images: 'ten' is not an integer"),
        (["--offset", "-1"], "argument --offset: must be an integer >= 0, not -1"),
    ],
)
def test_image_counts_are_argparse_errors(module, args, message, capsys):
    with pytest.raises(SystemExit) as info:
        _front_end(module)(args)
    assert info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(message)


def test_accuracy_jobs_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        _front_end("sim.accuracy")(["--jobs", "0"])
    assert "argument --jobs: must be a positive integer, not 0" in capsys.readouterr().err


def _cnn_bundle_with_reference(images=6):
    return with_reference(*synthetic_cnn_bundle(seed=1), images, seed=2)


@pytest.mark.parametrize("module", FRONT_ENDS)
def test_malformed_bundle_is_a_one_line_error(module, tmp_path, capsys):
    if module == "sim.cnn":
        manifest, arrays = _cnn_bundle_with_reference()
        _set("conv2.weight_int", 4, 128)(manifest, arrays)
        want = r"layer conv2 \(conv2d\): conv2.weight_int\[0, 0, 1, 1\] = 128"
    else:
        manifest, arrays = _mlp_bundle()
        _pow2_4096(manifest, arrays)
        want = r"layer fc3 \(linear\): fc3.weight_int\[\d+, \d+\] = -?4096 is not 0 or ±2\*\*e"
    path = _write(tmp_path / "bundle", manifest, arrays)
    assert _front_end(module)(["--bundle", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {path}: ")
    assert re.search(want, err)


@pytest.mark.parametrize("module", FRONT_ENDS)
def test_golden_against_bundle_reference_exits_1(module, tmp_path, capsys):
    """A bundle whose weights do not give its own reference outputs: the front end stops with
    status 1 before simulating (no RTL run could agree with both)."""
    if module == "sim.cnn":
        manifest, arrays = _cnn_bundle_with_reference()
        args = ["--bundle"]
    else:
        manifest, arrays = _mlp_bundle()
        args = ["--design", "mlp", "--bundle"] if module == "sim.accuracy" else ["--bundle"]
    ref = arrays["reference.test_outputs"].copy()
    ref[3, 1] += 1
    arrays["reference.test_outputs"] = ref
    path = _write(tmp_path / "bundle", manifest, arrays)
    assert _front_end(module)([*args, str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert re.search(
        r"error: .*: the golden model differs from reference.test_outputs on 1 of \d+ test "
        r"images \(first: image 3, ",
        err,
    )


def test_issue_bundle_exits_2_without_traceback(tmp_path):
    """The issue's case end to end: ``python -m sim.mlp`` on a bundle whose fc3 holds a pow2
    weight of 4096 (``pow2_max_exp`` 6) no longer runs and reports accuracy 0: status 2."""
    manifest, arrays = _mlp_bundle()
    _pow2_4096(manifest, arrays)
    path = _write(tmp_path / "bundle", manifest, arrays)
    out = subprocess.run(
        [sys.executable, "-m", "sim.mlp", "--bundle", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and out.stdout == ""
    assert re.fullmatch(
        r"error: .*fc3.weight_int\[\d+, \d+\] = -?4096 .*pow2_max_exp 6\n", out.stderr
    )


# --- export: part, clock, no half-written folder ----------------------------------------------


@pytest.mark.parametrize(
    "args,message",
    [
        (["--clock-ns", "-5"], "error: --clock-ns (CLOCK_NS) must be a positive number of ns, "
         "not -5.0"),
        (["--clock-ns", "0"], "error: --clock-ns (CLOCK_NS) must be a positive number of ns, "
         "not 0.0"),
        (["--clock-ns", "nan"], "error: --clock-ns (CLOCK_NS) must be a positive number of ns, "
         "not nan"),
        (["--part", "nonsense"], "error: --part (PART) 'nonsense' is not a Xilinx part name"),
        (["--part", "xc7z020"], "error: --part (PART) 'xc7z020' is not a Xilinx part name"),
        (["--freq", "-100"], "error: --freq must be a positive number of MHz, not -100.0"),
    ],
)  # fmt: skip
def test_export_bad_part_or_clock_writes_nothing(args, message, tmp_path, capsys):
    from rtl_gen.export.__main__ import main

    out = tmp_path / "verilog"
    assert main(["verilog", "--width", "8", "--height", "6", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize(
    "part",
    [
        "xc7z020clg400-1",
        "xc7a35ticsg324-1L",
        "xc7k325tffg900-2",
        "xczu3eg-sbva484-1-e",
        "xcvu9p-flga2104-2L-e",
        "xck26-sfvc784-2LV-c",
        "xcve2302-sfva784-1LP-e-S",
        "xa7a35tcpg236-1Q",
    ],
)
def test_xilinx_part_names_accepted(part):
    from rtl_gen.export.vivado import check_part

    assert check_part(part) == part


def test_export_failure_leaves_no_half_written_folder(tmp_path, monkeypatch):
    """The folder is written next to its target and renamed when complete: a failure in the
    middle leaves neither a new folder nor a temporary one, and keeps an earlier export (and
    its reports) as it was; a later export keeps ``reports/``."""
    from rtl_gen.export import folder as folder_module
    from rtl_gen.export.designs import conv_design

    design = conv_design(line_buffers=2, width=8, height=6)
    target = tmp_path / "verilog" / design.name

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(folder_module, "build_tcl", broken)  # after the Verilog and ROM files
        with pytest.raises(RuntimeError, match="disk full"):
            folder_module.export_design(design, target)
    assert list((tmp_path / "verilog").iterdir()) == []

    folder_module.export_design(design, target)
    (target / "reports").mkdir()
    (target / "reports" / "yosys_utilization.json").write_text("{}")
    before = {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()}
    with monkeypatch.context() as patch:
        patch.setattr(folder_module, "build_tcl", broken)
        with pytest.raises(RuntimeError):
            folder_module.export_design(design, target)
    assert {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()} == before
    assert (target / "reports" / "yosys_utilization.json").exists()
    folder_module.export_design(design, target, part="xczu3eg-sbva484-1-e")
    assert "set PART xczu3eg-sbva484-1-e" in (target / "vivado" / "build.tcl").read_text()
    assert (target / "reports" / "yosys_utilization.json").read_text() == "{}"
    assert [p.name for p in (tmp_path / "verilog").iterdir()] == [design.name]
    with pytest.raises(ValueError, match="part 'zynq' is not a Xilinx part name"):
        folder_module.export_design(design, tmp_path / "other", part="zynq")
    assert not (tmp_path / "other").exists()


# --- make: WAVES, and the numbers it passes on ------------------------------------------------


def _make_n(*args):
    return subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", *args], cwd=ROOT, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    "variable,value", [("WAVES", "yes"), ("WAVES", "2"), ("WAVES", ""), ("ZERO_SKIP", "true")]
)
def test_make_switches_only_0_or_1(variable, value):
    out = _make_n("sim", f"{variable}={value}")
    assert out.returncode == 2
    assert f"{variable} must be 0 or 1, not '{value}'" in out.stderr
    assert out.stderr.count("\n") == 1
    assert _make_n("sim", f"{variable}=1").returncode == 0


def test_make_passes_part_and_clock_to_the_checked_export():
    out = _make_n("verilog", "WAVES=1", "CLOCK_NS=-5", "PART=nonsense")
    assert out.returncode == 0
    assert "--part nonsense --clock-ns -5" in out.stdout


# --- data: a failed MNIST download leaves nothing behind ----------------------------------------


def test_failed_mnist_download_leaves_no_directory(tmp_path, monkeypatch):
    from compress import data

    calls = []

    def offline(url, timeout=None):
        calls.append(url)
        raise OSError("network is unreachable")

    monkeypatch.setattr(data.urllib.request, "urlopen", offline)
    target = tmp_path / "data" / "mnist"
    with pytest.raises(FileNotFoundError, match=r"mnist: IDX files not found"):
        data.load_idx_dataset("mnist", target)
    assert calls and not (tmp_path / "data").exists()

    # a download that fails after the first file keeps nothing half-written either
    def second_fails(url, timeout=None):
        calls.append(url)
        if len(calls) > 2:
            raise OSError("connection reset")
        return io.BytesIO(b"\x1f\x8b not really gzip")

    calls.clear()
    monkeypatch.setattr(data.urllib.request, "urlopen", second_fails)
    with pytest.raises(FileNotFoundError):
        data.load_idx_dataset("mnist", target)
    assert len(calls) == 3 and not (tmp_path / "data").exists()
