#!/usr/bin/env python3
"""ECP5 resources and Fmax of the CNN blocks at LeNet-5 sizes (28x28 Fashion-MNIST).

conv1: 1 -> 4 filters, K = 5, 28x28; pool1 on 24x24x4; conv2: 4 -> 10 filters, K = 5, 12x12;
pool2 on 8x8x10; flatten of 4x4x10. Weights are random powers of two (seed 0), a fraction
``--zeros`` of them pruned. Each block: Yosys ``synth_ecp5`` + nextpnr-ecp5 (LFE5U-85F, seed 1)
through ``rtl_gen.export.timing.ecp5_timing``; figures into build/cnn_timing/figures.json
(merged with earlier runs' other blocks).

    python scripts/cnn_blocks_timing.py [--zeros 0.5] [--blocks conv1,conv2,pool1,pool2,flatten]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rtl_gen.cnn import ConvLayer, Flatten, MaxPool2  # noqa: E402
from rtl_gen.export.timing import ecp5_timing  # noqa: E402
from rtl_gen.verilog import write_verilog  # noqa: E402


def pow2_weights(rng, shape, zeros):
    w = rng.choice([-1, 1], size=shape) * (1 << rng.integers(0, 7, size=shape))
    w[rng.random(shape) < zeros] = 0
    return w


def blocks(zeros: float):
    rng = np.random.default_rng(0)
    w1 = pow2_weights(rng, (4, 1, 5, 5), zeros)
    w2 = pow2_weights(rng, (10, 4, 5, 5), zeros)
    conv = dict(shift=7, activation="relu", out_bits=8, in_bits=8)
    return {
        "conv1": lambda: ConvLayer(
            height=28, width=28, in_channels=1, weights=w1, bias=rng.integers(-99, 99, 4), **conv
        ),
        "pool1": lambda: MaxPool2(height=24, width=24, channels=4, bits=8),
        "conv2": lambda: ConvLayer(
            height=12, width=12, in_channels=4, weights=w2, bias=rng.integers(-99, 99, 10), **conv
        ),
        "pool2": lambda: MaxPool2(height=8, width=8, channels=10, bits=8),
        "flatten": lambda: Flatten(height=4, width=4, channels=10, bits=8, drop_zeros=True),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zeros", type=float, default=0.5)
    parser.add_argument("--blocks", default="conv1,conv2,pool1,pool2,flatten")
    args = parser.parse_args(argv)
    out = ROOT / "build" / "cnn_timing"
    makers = blocks(args.zeros)
    path = out / "figures.json"
    figures = json.loads(path.read_text()) if path.exists() else {}  # earlier runs' blocks
    for name in args.blocks.split(","):
        dut = makers[name]()
        folder = out / name
        write_verilog(dut, folder / f"{name}.v", name=name)
        fig = ecp5_timing(folder, [f"{name}.v"], name)
        res = fig["resources"]
        figures[name] = {
            "fmax_mhz": fig["fmax_mhz"],
            "LUT4": res.get("LUT4", 0),
            "TRELLIS_FF": res.get("TRELLIS_FF", 0),
            "MULT18X18D": res.get("MULT18X18D", 0),
            "DP16KD": res.get("DP16KD", 0),
            "TRELLIS_DPR16X4": res.get("TRELLIS_DPR16X4", 0),
            "CCU2C": res.get("CCU2C", 0),
            "critical_path": (fig["critical_path"] or {}).get("start", "")
            + " -> "
            + (fig["critical_path"] or {}).get("end", ""),
        }
        if isinstance(dut, ConvLayer):
            figures[name].update(
                latency=dut.latency, nonzero_weights=int(np.count_nonzero(dut.weights))
            )
        print(name, json.dumps(figures[name]), flush=True)
    path.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
