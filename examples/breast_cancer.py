"""Bring your own network: a small MLP trained in plain PyTorch on scikit-learn's breast-cancer
set (569 samples, 30 features, 2 classes; ships with scikit-learn, nothing is downloaded),
compressed and turned into bit-exact RTL with the compress2rtl API.

    PYTHONPATH=. .venv/bin/python examples/breast_cancer.py [--rows 8] [--no-synth] [--no-onnx]

Steps: scale the features to [0, 1] (min-max on the training set: the hardware takes unsigned
8-bit inputs), train 30 -> 16 -> 8 -> 2 in float, ``compress2rtl.compress`` (pruning, weight
sharing, power-of-two weights, fixed point: from these weights, no training from scratch);
the same model exported with ``torch.onnx.export`` and compressed from ``model.onnx`` gives
the same bundle (manifest and every array); ``hardware(...).predict`` (golden model) on the
whole test set, ``simulate`` (the generated RTL) on the first ``--rows`` test rows, checked
equal bit for bit, then ``export`` (the Vivado folder) and ``synth`` (Yosys resource
figures). Exits 1 if the RTL or the ONNX route's bundle differs.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from torch import nn

import compress2rtl

ROOT = Path(__file__).resolve().parent.parent


def data(seed: int = 0):
    """Stratified 75/25 split, features min-max scaled to [0, 1] on the training set."""
    d = load_breast_cancer()
    x_tr, x_te, y_tr, y_te = train_test_split(
        d.data, d.target, test_size=0.25, random_state=seed, stratify=d.target
    )
    lo, hi = x_tr.min(0), x_tr.max(0)

    def scale(x):
        return np.clip((x - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)

    return scale(x_tr), y_tr.astype(np.int64), scale(x_te), y_te.astype(np.int64)


def train(x, y, seed: int = 0, epochs: int = 300) -> nn.Module:
    """A user's plain PyTorch training: full-batch Adam."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2)
    )  # fmt: skip
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    xt, yt = torch.tensor(x), torch.tensor(y)
    for _ in range(epochs):
        opt.zero_grad()
        nn.functional.cross_entropy(model(xt), yt).backward()
        opt.step()
    return model.eval()


def onnx_route(model, data, folder: Path, **options):
    """The user's model through ONNX: ``torch.onnx.export`` (the TorchScript exporter,
    ``dynamo=False``, needs no onnxscript), then ``compress2rtl.compress("model.onnx", ...)``."""
    path = folder / "model.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the exporter's notice
        torch.onnx.export(
            model, (torch.zeros(1, 30),), str(path), dynamo=False, input_names=["x"],
            output_names=["logits"], dynamic_axes={"x": {0: "batch"}},
        )  # fmt: skip
    return path, compress2rtl.compress(path, data, **options)


def same_bundle(a, b) -> bool:
    """The same manifest and the same arrays, bit for bit."""
    return (
        a.manifest == b.manifest
        and sorted(a.arrays) == sorted(b.arrays)
        and all(np.array_equal(a.arrays[k], b.arrays[k]) for k in a.arrays)
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=8, help="test rows simulated in RTL")
    p.add_argument("--no-synth", action="store_true", help="skip Yosys (about 30 s)")
    p.add_argument("--no-onnx", action="store_true", help="skip the ONNX route")
    p.add_argument("--out", type=Path, default=ROOT / "build" / "examples" / "breast_cancer")
    p.add_argument("--sim", default=None, help="icarus or verilator (default: what is there)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.time()

    x_tr, y_tr, x_te, y_te = data()
    model = train(x_tr, y_tr)
    with torch.no_grad():
        float_acc = float((model(torch.tensor(x_te)).argmax(1).numpy() == y_te).mean())
    print(f"float model 30 -> 16 -> 8 -> 2: test accuracy {100 * float_acc:.2f}%")

    arrays = (x_tr, y_tr, x_te, y_te)
    bundle = compress2rtl.compress(model, arrays, name="breast_cancer", out=args.out / "compress")
    s = bundle.summary
    print(
        f"compressed: {100 * s['pruned_fraction']:.1f}% of the weights pruned, "
        f"{s['dense_bytes']} B fp32 -> {s['compressed_bytes']} B ({s['compression_ratio']:.2f}x; "
        f"ROM {s['rom_bytes']} B), input {bundle.manifest['input']['frac_bits']} fractional bits"
    )
    onnx_same = True
    if not args.no_onnx:
        path, from_onnx = onnx_route(
            model, arrays, args.out / "onnx", name="breast_cancer", out=args.out / "compress_onnx"
        )
        onnx_same = same_bundle(bundle, from_onnx)
        print(
            f"ONNX route ({path.name}, {len(from_onnx.arrays)} arrays): "
            f"{'the same bundle' if onnx_same else 'a DIFFERENT bundle'} as the PyTorch route"
        )

    hw = compress2rtl.hardware(bundle, layout="auto")
    logits = hw.predict(x_te)
    int_acc = float(np.mean(np.argmax(logits, 1) == y_te))
    print(
        f"accuracy: float {100 * bundle.float_accuracy:.2f}% (on the 8-bit inputs), "
        f"integer (hardware) {100 * int_acc:.2f}%, {len(y_te)} test rows"
    )

    rows = x_te[: args.rows]
    rtl = hw.simulate(rows, simulator=args.sim)
    same = np.array_equal(rtl, logits[: args.rows])
    print(
        f"RTL ({hw.last_run['simulator']}) on {len(rows)} rows: "
        f"{'bit-exact' if same else 'DIFFERENT'} (logits {rtl[:2].tolist()} ...), "
        f"cycles {hw.last_run['cycles']} (model {hw.cycles(rows)})"
    )

    folder = hw.export(args.out / "vivado")
    print(f"Vivado folder: {folder}")
    if not args.no_synth:
        fig = hw.synth(folder)
        print(
            "Yosys synth_xilinx: "
            + ", ".join(f"{k} {fig[k]}" for k in ("lut", "ff", "carry4", "dsp", "lutram"))
            + f", multipliers {fig['multipliers_described']}"
        )
    print(f"{time.time() - t0:.1f} s")
    return 0 if same and onnx_same else 1


if __name__ == "__main__":
    sys.exit(main())
