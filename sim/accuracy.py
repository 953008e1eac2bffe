"""``make accuracy``: every test image of a bundle through the generated RTL, compiled.

Builds the design (``--design mlp``: ``rtl_gen.mlp.Mlp`` of the bundle with the build and ROM layout
of ``make sim``; ``--design cnn``: ``rtl_gen.cnn.Cnn`` of a version-2 bundle),
Verilates it once with a C++ stream testbench (:mod:`sim.compiled`) and runs the chosen test
images in parallel shards. Every output is compared bit for bit with the golden model and every
image's cycle count with the cycle model; the RTL accuracy must equal the bundle's integer
accuracy on the same images. Prints a summary, writes
``sim/build/accuracy_<design>_<dataset>_<model>/results.json``, exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rtl_gen.cnn.network import Cnn
from rtl_gen.cnn.spec import UnsupportedLayer, cnn_from_bundle
from rtl_gen.mlp import Mlp
from rtl_gen.neuron.weights import layers_from_bundle, load_bundle_any
from tb.golden.cnn_network import cnn_forward, cnn_timing
from tb.golden.mlp import mlp_cycles, mlp_forward
from tb.mlp_tb import ElementFormat, _index_bits

from .compiled import CompiledHarness, HarnessError
from .mlp import BUILD, default_bundle, ensure_bundle, reference_mismatch
from .selection import non_negative_int, positive_int, select_images

__all__ = ["main"]


def _mlp_elements(image, sparse: bool) -> list[tuple[int, int, bool]]:
    n = len(image)
    return [
        (i, int(v), i == n - 1)
        for i, v in enumerate(image)
        if not (sparse and v == 0) or i == n - 1
    ]


@dataclass
class _Setup:
    """One design under test: the DUT, its Verilog top, the harness build directory, the input
    beats of an image, the golden scores and cycles, the output element format."""

    dut: object
    top: str
    tag: str
    describe: str
    detail: dict
    fout: ElementFormat
    beats: Callable
    scores: Callable
    cycles: Callable


def _golden_scores(design: str, manifest, arrays, x) -> np.ndarray:
    """The golden model's scores of images ``x``, from the bundle alone (no DUT built)."""
    if design == "cnn":
        spec = cnn_from_bundle((manifest, arrays))
        return cnn_forward(spec.stages, spec.fc, x)[1]
    return mlp_forward(layers_from_bundle((manifest, arrays)), x)[-1]


def _mlp_setup(manifest, arrays, args) -> _Setup:
    layers = layers_from_bundle((manifest, arrays))
    build = layers[0].weight_format
    zero_skip = not args.no_zero_skip
    dut = Mlp(layers, build=build, zero_skip=zero_skip, layout=args.layout)
    first, final = layers[0], layers[-1]
    fin = ElementFormat(_index_bits(first.in_features), first.in_bits, first.in_signed)
    fout = ElementFormat(_index_bits(final.out_features), final.output_bits, final.out_signed)
    return _Setup(
        dut=dut,
        top="mlp",
        tag=f"{build}_{args.layout}_{int(zero_skip)}",
        describe=(
            f"{' -> '.join(str(w.in_features) for w in layers)} -> {final.out_features}, "
            f"{build} weights, layouts {', '.join(dut.layouts)}, "
            f"zero-skip {'on' if zero_skip else 'off'}"
        ),
        detail={"build": build, "layouts": dut.layouts, "zero_skip": zero_skip},
        fout=fout,
        beats=lambda img: [fin.pack(*e) for e in _mlp_elements(img, zero_skip)],
        scores=lambda x: mlp_forward(layers, x)[-1],
        cycles=lambda img: mlp_cycles(layers, img, build, zero_skip, layout=dut.layouts),
    )


def _cnn_setup(manifest, arrays, args) -> _Setup:
    spec = cnn_from_bundle((manifest, arrays))
    dut = Cnn(spec, line_buffers=args.line_buffers)
    final = spec.fc[-1]
    fout = ElementFormat(_index_bits(final.out_features), final.output_bits, final.out_signed)
    bits = spec.input_bits
    if spec.input_shape[0] != 1:
        raise ValueError("make accuracy drives one channel per pixel (a grey-scale image)")

    def beats(img):
        last = len(img) - 1
        return [int(v) | int(k == last) << bits for k, v in enumerate(img.tolist())]

    def cycles(img):
        timing = cnn_timing(spec.stages, spec.fc, img[None], **dut.timing_arguments)
        return timing.cycles

    tag = "n" + "_".join(str(n) for n in dut.line_buffers)
    return _Setup(
        dut=dut,
        top="cnn",
        tag=tag,
        describe=" -> ".join(
            [str(list(spec.input_shape))]
            + [f"{s.name} {list(s.out_shape)}" for s in spec.stages]
            + [f"{w.name} {w.out_features}" for w in spec.fc]
        )
        + f", line buffers {dut.line_buffers}",
        detail={"line_buffers": dut.line_buffers, "layouts": dut.layouts},
        fout=fout,
        beats=beats,
        scores=lambda x: cnn_forward(spec.stages, spec.fc, x)[1],
        cycles=cycles,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sim.accuracy", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--design", choices=("mlp", "cnn"), default="mlp")
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--model", default="lenet300")
    parser.add_argument("--images", type=positive_int, default=None, help="how many (default: all)")
    parser.add_argument("--offset", type=non_negative_int, default=0, help="first test image")
    parser.add_argument("--indices", default=None, help='explicit images, e.g. "0,5,100-199"')
    parser.add_argument("--layout", choices=("auto", "csr", "direct"), default="auto")
    parser.add_argument("--no-zero-skip", action="store_true", help="broadcast zero inputs too")
    parser.add_argument(
        "--line-buffers", type=int, default=None, help="cnn: N of every conv layer (default K - 1)"
    )
    parser.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1)
    parser.add_argument("--build-bundle", action="store_true", help="run compress if missing")
    args = parser.parse_args(argv)
    bundle = args.bundle or default_bundle(args.dataset, args.model)
    try:
        bundle = ensure_bundle(bundle, args.dataset, args.model, build=args.build_bundle)
        manifest, arrays = load_bundle_any(bundle)
    except (FileNotFoundError, ValueError) as exc:  # BundleError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    x_all = np.asarray(arrays["reference.test_inputs"], dtype=np.int64)
    labels_all = np.asarray(arrays["reference.test_labels"], dtype=np.int64)
    try:
        chosen = select_images(len(x_all), args.images, args.offset, args.indices)
        golden = _golden_scores(args.design, manifest, arrays, x_all[chosen])
    except (ValueError, UnsupportedLayer) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    x, labels = x_all[chosen], labels_all[chosen]
    ref = np.asarray(arrays["reference.test_outputs"], dtype=np.int64)[chosen]
    if not np.array_equal(golden, ref):  # the bundle contradicts itself: no RTL run can pass
        print(f"error: {reference_mismatch(golden, ref, bundle, chosen)}", file=sys.stderr)
        return 1
    try:  # the DUT is built once nothing else can stop the run
        setup = (_cnn_setup if args.design == "cnn" else _mlp_setup)(manifest, arrays, args)
    except (ValueError, UnsupportedLayer) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    dut, fout = setup.dut, setup.fout
    out_dir = BUILD / f"accuracy_{args.design}_{args.dataset}_{args.model}"
    harness = CompiledHarness(
        dut, setup.top, out_dir / setup.tag, last_bit=fout.index_bits + fout.value_bits
    )
    print(f"bundle {bundle}: {setup.describe}")
    started = time.perf_counter()
    try:
        harness.build()
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    build_s = time.perf_counter() - started
    print(f"Verilator build          {build_s:.1f} s ({'built' if harness.rebuilt else 'cached'})")
    beats = [setup.beats(img) for img in x]
    started = time.perf_counter()
    with tqdm(total=len(x), desc="RTL", unit="img", disable=None) as bar:

        def progress(n):
            bar.n = n
            bar.refresh()

        try:
            results = harness.run(beats, jobs=args.jobs, progress=progress)
        except HarnessError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    rtl_s = time.perf_counter() - started

    rtl = np.zeros_like(golden)
    count_errors = 0
    for i, r in enumerate(results):
        seen = 0
        for word in r.outputs:
            index, value, _ = fout.unpack(word)
            rtl[i, index] = value
            seen += 1
        count_errors += int(seen != golden.shape[1])
    mismatched = np.flatnonzero(np.any(rtl != golden, axis=1))
    started = time.perf_counter()
    model = np.array(
        [setup.cycles(img) for img in tqdm(x, desc="cycle model", unit="img", disable=None)]
    )
    model_s = time.perf_counter() - started
    cycles = np.array([r.cycles for r in results])
    cycle_errors = np.flatnonzero(cycles != model)
    rtl_pred = np.argmax(rtl, axis=1)
    rtl_acc = float(np.mean(rtl_pred == labels))
    ref_acc = float(np.mean(np.argmax(ref, axis=1) == labels))
    results_json = {
        "design": args.design,
        "dataset": args.dataset,
        "model": args.model,
        "bundle": str(bundle),
        "design_detail": setup.detail,
        "images": int(len(x)),
        "first_image": int(chosen[0]),
        "mismatches": int(len(mismatched) + count_errors),
        "mismatched_images": chosen[mismatched].tolist()[:100],
        "cycle_errors": int(len(cycle_errors)),
        "rtl_accuracy": rtl_acc,
        "bundle_integer_accuracy": ref_acc,
        "rtl_equals_bundle_reference": bool(np.array_equal(rtl, ref)),
        "cycles_min": int(cycles.min()),
        "cycles_mean": float(cycles.mean()),
        "cycles_max": int(cycles.max()),
        "verilator_build_s": build_s,
        "rtl_wall_s": rtl_s,
        "images_per_s": len(x) / rtl_s if rtl_s > 0 else None,
        "model_wall_s": model_s,
        "jobs": args.jobs,
    }
    results_json["passed"] = (
        results_json["mismatches"] == 0
        and results_json["cycle_errors"] == 0
        and results_json["rtl_equals_bundle_reference"]
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results_json, indent=2) + "\n")
    print(f"images                   {len(x)} (test images {chosen[0]}..{chosen[-1]})")
    print(f"mismatches               {results_json['mismatches']} (logits, bit for bit)")
    print(f"cycle errors             {len(cycle_errors)} (every image against the cycle model)")
    print(
        f"RTL accuracy             {rtl_acc:.4f} (bundle integer reference {ref_acc:.4f}, "
        f"{'equal' if results_json['rtl_equals_bundle_reference'] else 'DIFFERENT'} outputs)"
    )
    print(
        f"cycles per image         min {cycles.min()}, mean {cycles.mean():.1f}, max {cycles.max()}"
    )
    print(
        f"RTL wall time            {rtl_s:.1f} s, {len(x) / rtl_s:.0f} images/s ({args.jobs} jobs)"
    )
    print(f"results                  {out_dir / 'results.json'}")
    if not results_json["passed"]:
        print(
            "FAILED: RTL differs from the golden model, the cycle model or the bundle",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
