"""Front door of the CNN hardware: ``make sim DESIGN=cnn``.

Builds the CNN of a version-2 bundle (``rtl_gen.cnn.Cnn``: conv/pool stages on line buffers in
the chosen mode, flatten, fully connected layers), runs ``tb.cnn_tb`` on the chosen test images
(each alone at full rate, then back to back, with stalls, and a reset mid-image), compares every
score bit for bit with the golden model and every cycle count with the composed cycle model,
prints a summary and writes ``sim/build/cnn_<dataset>_<model>/results.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from rtl_gen.cnn.network import Cnn
from rtl_gen.cnn.spec import UnsupportedLayer, cnn_from_bundle
from rtl_gen.neuron.weights import load_bundle_any
from sim.mlp import BUILD, default_bundle, ensure_bundle, reference_mismatch, run_case
from sim.selection import non_negative_int, positive_int, select_images
from sim.tools import default_simulator
from tb.golden.cnn_network import cnn_forward

__all__ = ["cnn_case", "main"]


def cnn_case(dut: Cnn) -> dict:
    """What ``tb.cnn_tb`` needs to know of a :class:`Cnn`."""
    return {"spec": dut.spec, "timing": dut.timing_arguments}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.cnn", description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--dataset", default="fashion")
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--images", type=positive_int, default=20, help="how many test images")
    parser.add_argument("--offset", type=non_negative_int, default=0, help="first test image")
    parser.add_argument("--indices", default=None, help='explicit images, e.g. "0,5,100-199"')
    parser.add_argument(
        "--line-buffers", type=int, default=None, help="N of every conv layer (default K - 1)"
    )
    parser.add_argument("--sim", default=None)
    parser.add_argument("--waves", action="store_true")
    parser.add_argument("--build-bundle", action="store_true", help="run compress if missing")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    simulator = args.sim or default_simulator()
    bundle = args.bundle or default_bundle(args.dataset, args.model)
    try:
        bundle = ensure_bundle(bundle, args.dataset, args.model, build=args.build_bundle)
        manifest, arrays = load_bundle_any(bundle)
        spec = cnn_from_bundle((manifest, arrays))
    except (FileNotFoundError, UnsupportedLayer, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    x_all = np.asarray(arrays["reference.test_inputs"], dtype=np.int64)
    labels_all = np.asarray(arrays["reference.test_labels"], dtype=np.int64)
    try:
        chosen = select_images(len(x_all), args.images, args.offset, args.indices)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _, golden_all = cnn_forward(spec.stages, spec.fc, x_all)
    reference_equal = bool(np.array_equal(golden_all, arrays["reference.test_outputs"]))
    if not reference_equal:  # the bundle contradicts itself: no RTL run can pass
        ref = arrays["reference.test_outputs"]
        print(f"error: {reference_mismatch(golden_all, ref, bundle)}", file=sys.stderr)
        return 1
    try:  # built once nothing else can stop the run (an unused one warns at exit)
        dut = Cnn(spec, line_buffers=args.line_buffers)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    golden_acc = float(np.mean(np.argmax(golden_all, 1) == labels_all))
    images, labels = x_all[chosen], labels_all[chosen]
    out_dir = BUILD / f"cnn_{args.dataset}_{args.model}"
    modes = "/".join(
        f"{n} ({'streaming' if n == c.kernel - 1 else 'serial' if n == c.kernel else 'overlapped'})"
        for n, c in zip(dut.line_buffers, spec.convs, strict=True)
    )
    shapes = " -> ".join(
        [str(list(spec.input_shape))]
        + [f"{s.name} {list(s.out_shape)}" for s in spec.stages]
        + [f"{w.name} {w.out_features}" for w in spec.fc]
    )
    print(f"bundle {bundle}: {shapes}; simulator {simulator}")
    case = dict(
        images=images, labels=labels, seed=1, stall_images=min(4, len(images)),
        stream_images=min(6, len(images)),
    )  # fmt: skip
    tag = "n" + "_".join(str(n) for n in dut.line_buffers)
    result, rep = run_case(
        dut, case, out_dir / tag, simulator, test_module="tb.cnn_tb", toplevel="cnn",
        waves=args.waves, describe=cnn_case,
    )  # fmt: skip
    if not result.passed:
        print(result.log_tail(40), file=sys.stderr)
    run = rep.get("test_images", {})
    stream = rep.get("test_back_to_back", {})
    rtl = np.array(run.get("outputs", []))
    mism = sum(rep.get(t, {}).get("mismatches", 1) for t in ("test_images", "test_back_to_back",
                                                               "test_stalls"))  # fmt: skip
    intervals = stream.get("intervals", [])
    results = {
        "dataset": args.dataset,
        "model": args.model,
        "bundle": str(bundle),
        "line_buffers": dut.line_buffers,
        "layouts": dut.layouts,
        "images": int(len(images)),
        "image_indices": chosen.tolist(),
        "mismatches": int(mism),
        "rtl_accuracy": float(np.mean(np.argmax(rtl, 1) == labels)) if len(rtl) else 0.0,
        "golden_accuracy_full_test_set": golden_acc,
        "golden_equals_reference": reference_equal,
        "test_images_full_set": int(len(x_all)),
        "float_accuracy": manifest.get("reference", {}).get("float_accuracy"),
        "integer_accuracy": manifest.get("reference", {}).get("integer_accuracy"),
        "cycles_per_image": run.get("cycles", []),
        "model_cycles_per_image": run.get("model_cycles", []),
        "cycles_equal_model": run.get("cycle_errors", 1) == 0
        and (stream.get("model_ends") is None or stream.get("ends") == stream.get("model_ends")),
        "back_to_back_model": stream.get("model"),
        "steady_state_cycles_per_image": float(np.mean(intervals)) if intervals else None,
        "back_to_back_ends": stream.get("ends"),
        "fifo_peak": stream.get("fifo_peak"),
        "fifo_depths": dut.fifo_depths,
        "simulator": simulator,
        "passed": result.passed,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    cycles = results["cycles_per_image"]
    print(f"line buffers             {modes}")
    print(f"images simulated         {len(images)} (+ back to back, stalls, reset mid-image)")
    print(f"mismatches               {results['mismatches']}")
    print(f"RTL accuracy             {results['rtl_accuracy']:.4f} on these images")
    print(
        f"golden accuracy, full    {golden_acc:.4f} over {len(x_all)} images (equal to bundle "
        f"reference: {reference_equal})"
    )
    if cycles:
        print(
            f"latency (one image)      {min(cycles)}..{max(cycles)} cycles, model "
            f"{'equal' if run.get('cycle_errors', 1) == 0 else 'DIFFERENT'}"
        )
    if intervals:
        verdict = stream.get("model", "?")
        if verdict == "exact":
            verdict = "equal" if stream.get("ends") == stream.get("model_ends") else "DIFFERENT"
        print(
            f"steady state             {results['steady_state_cycles_per_image']:.1f} cycles per "
            f"image back to back ({len(intervals) + 1} images; model: {verdict})"
        )
    print(f"results                  {out_dir / 'results.json'}")
    ok = results["passed"] and results["mismatches"] == 0 and results["cycles_equal_model"]
    ok = ok and reference_equal
    if not ok:
        print(
            "FAILED: RTL differs from the golden model, the cycle model or the bundle reference",
            file=sys.stderr,
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
