"""A trigger-sized network: 16 inputs -> 64 -> 32 -> 32 -> 5 classes (the shape of a
jet-tagging MLP for FPGA trigger inference) trained in plain PyTorch on synthetic data, then
compressed and turned into bit-exact RTL with the compress2rtl API.

    PYTHONPATH=. .venv/bin/python examples/synthetic_mlp.py [--rows 8] [--no-synth]

The data: five classes, each a Gaussian cloud around its own centre in 16 dimensions with
overlapping tails (a float MLP gets about 90 %), min-max scaled to [0, 1]. The compression
prunes 70/60/60/30 % of the four layers' weights (``sparsity``), then shares and snaps them to
powers of two; the hidden widths are kept (``hidden=`` would remove neurons by Taylor
importance). Exits 1 if the RTL differs from the golden model.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import compress2rtl

ROOT = Path(__file__).resolve().parent.parent
SIZES = (16, 64, 32, 32, 5)


def data(seed: int = 2, train: int = 4000, test: int = 1000):
    rng = np.random.default_rng(seed)
    features, classes = SIZES[0], SIZES[-1]
    centres = rng.normal(0.0, 0.6, (classes, features))
    mixing = rng.normal(0.0, 0.6, (features, features))  # correlated features

    def draw(n):
        y = rng.integers(0, classes, n)
        x = centres[y] + rng.normal(0.0, 1.0, (n, features)) @ mixing
        return x, y.astype(np.int64)

    x_tr, y_tr = draw(train)
    x_te, y_te = draw(test)
    lo, hi = x_tr.min(0), x_tr.max(0)

    def scale(x):
        return np.clip((x - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)

    return scale(x_tr), y_tr, scale(x_te), y_te


def train(x, y, seed: int = 0, epochs: int = 30) -> nn.Module:
    """A user's plain PyTorch training: Adam, mini-batches of 128."""
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(SIZES, SIZES[1:], strict=False)):
        layers.append(nn.Linear(a, b))
        if i < len(SIZES) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.tensor(x), torch.tensor(y)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=gen).split(128):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    return model.eval()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=8, help="test rows simulated in RTL")
    p.add_argument("--no-synth", action="store_true", help="skip Yosys")
    p.add_argument("--out", type=Path, default=ROOT / "build" / "examples" / "synthetic_mlp")
    p.add_argument("--sim", default=None, help="icarus or verilator (default: what is there)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.time()

    x_tr, y_tr, x_te, y_te = data()
    model = train(x_tr, y_tr)
    with torch.no_grad():
        float_acc = float((model(torch.tensor(x_te)).argmax(1).numpy() == y_te).mean())
    print(f"float model {' -> '.join(map(str, SIZES))}: test accuracy {100 * float_acc:.2f}%")

    bundle = compress2rtl.compress(
        model,
        (x_tr, y_tr, x_te, y_te),
        name="synthetic",
        out=args.out / "compress",
        sparsity=(0.7, 0.6, 0.6, 0.3),
        finetune_epochs=4,
    )
    s = bundle.summary
    print(
        f"compressed: {100 * s['pruned_fraction']:.1f}% of the weights pruned, "
        f"{s['dense_bytes']} B fp32 -> {s['compressed_bytes']} B ({s['compression_ratio']:.2f}x; "
        f"ROM {s['rom_bytes']} B), input {bundle.manifest['input']['frac_bits']} fractional bits"
    )

    hw = compress2rtl.hardware(bundle, layout="auto")
    logits = hw.predict(x_te)
    int_acc = float(np.mean(np.argmax(logits, 1) == y_te))
    print(
        f"accuracy: float {100 * bundle.float_accuracy:.2f}% (on the 8-bit inputs), "
        f"integer (hardware) {100 * int_acc:.2f}%, {len(y_te)} test rows"
    )
    cycles = hw.cycles(x_te)
    print(f"cycles per row (model, all test rows): {np.mean(cycles):.1f} mean, {max(cycles)} max")

    rows = x_te[: args.rows]
    rtl = hw.simulate(rows, simulator=args.sim)
    same = np.array_equal(rtl, logits[: args.rows])
    print(
        f"RTL ({hw.last_run['simulator']}) on {len(rows)} rows: "
        f"{'bit-exact' if same else 'DIFFERENT'}, cycles {hw.last_run['cycles']} "
        f"(model {cycles[: args.rows]})"
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
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
