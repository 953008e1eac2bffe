#!/usr/bin/env python3
"""ECP5 resources and Fmax of the CNN's blocks alone (28x28 Fashion-MNIST LeNet-5 sizes).

Without ``--bundle``: conv1: 1 -> 4 filters, K = 5, 28x28; pool1 on 24x24x4; conv2: 4 -> 10
filters, K = 5, 12x12; pool2 on 8x8x10; flatten of 4x4x10. Weights are random powers of two
(seed 0), a fraction ``--zeros`` of them pruned.

With ``--bundle DIR``: the blocks of the bundle's CNN as ``make timing DESIGN=cnn`` builds it
(``rtl_gen.cnn.Cnn``, ``--line-buffers``): its conv and pool stages by their bundle names,
``flatten`` (the flatten between its two FIFOs), ``mlp`` (the fully connected layers), ``tail``
(flatten, FIFOs, the register slice and MLP) and ``cnn`` (everything).

``--ports registered`` (the default) puts a register slice on every stream port of the block, so
its handshake paths (``ready`` into the block before, ``valid`` into the next) are
register-to-register and set the Fmax as they do inside the CNN; ``--ports pins`` leaves the
ports on pins (nextpnr reports those paths apart, they do not count).

Each block: Yosys ``synth_ecp5`` + nextpnr-ecp5 (LFE5U-85F, seed 1) through
``rtl_gen.export.timing.ecp5_timing``; figures into build/cnn_timing/figures.json (merged with
earlier runs' other blocks).

    python scripts/cnn_blocks_timing.py [--zeros 0.5] [--blocks conv1,conv2,pool1,pool2,flatten]
    python scripts/cnn_blocks_timing.py --bundle build/compress/fashion_lenet5/bundle \
        --blocks mlp,tail
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from amaranth import Module  # noqa: E402
from amaranth.hdl import UnusedElaboratable  # noqa: E402
from amaranth.lib import stream, wiring  # noqa: E402
from amaranth.lib.wiring import In, Out  # noqa: E402

from rtl_gen.cnn import ConvLayer, Flatten, MaxPool2  # noqa: E402
from rtl_gen.export.timing import DEFAULT_CACHE, ecp5_timing  # noqa: E402
from rtl_gen.skid import SkidBuffer  # noqa: E402
from rtl_gen.verilog import write_verilog  # noqa: E402


def stream_ports(component) -> tuple[str, str]:
    """The names of ``component``'s one input stream and one output stream."""
    ins, outs = [], []
    for name, member in component.signature.members.items():
        if member.is_port or not isinstance(member.signature, stream.Signature):
            continue
        (ins if member.flow == In else outs).append(name)
    if len(ins) != 1 or len(outs) != 1:
        raise ValueError(f"{type(component).__name__} needs one input and one output stream")
    return ins[0], outs[0]


class Chain(wiring.Component):
    """Stream components one after the other (each one's output into the next one's input),
    with a :class:`SkidBuffer` on the chain's input and output when ``registered``."""

    def __init__(self, parts, registered: bool):
        self.parts, self.registered = list(parts), registered
        first_in, _ = stream_ports(self.parts[0])
        _, last_out = stream_ports(self.parts[-1])
        self._in_shape = getattr(self.parts[0], first_in).payload.shape()
        self._out_shape = getattr(self.parts[-1], last_out).payload.shape()
        super().__init__(
            {"i": In(stream.Signature(self._in_shape)), "o": Out(stream.Signature(self._out_shape))}
        )

    def elaborate(self, platform):
        m = Module()
        upstream = wiring.flipped(self.i)
        if self.registered:
            m.submodules.in_slice = first = SkidBuffer(self._in_shape)
            wiring.connect(m, upstream, first.i)
            upstream = first.o
        for index, part in enumerate(self.parts):
            m.submodules[f"part{index}"] = part
            name_in, name_out = stream_ports(part)
            wiring.connect(m, upstream, getattr(part, name_in))
            upstream = getattr(part, name_out)
        if self.registered:
            m.submodules.out_slice = last = SkidBuffer(self._out_shape)
            wiring.connect(m, upstream, last.i)
            upstream = last.o
        wiring.connect(m, upstream, wiring.flipped(self.o))
        return m


def pow2_weights(rng, shape, zeros):
    w = rng.choice([-1, 1], size=shape) * (1 << rng.integers(0, 7, size=shape))
    w[rng.random(shape) < zeros] = 0
    return w


def random_blocks(zeros: float):
    rng = np.random.default_rng(0)
    w1 = pow2_weights(rng, (4, 1, 5, 5), zeros)
    w2 = pow2_weights(rng, (10, 4, 5, 5), zeros)
    conv = dict(shift=7, activation="relu", out_bits=8, in_bits=8)

    def conv_block(size, weights):
        # the bias is drawn when the block is built, as the blocks are built one at a time
        return lambda: [
            ConvLayer(
                height=size,
                width=size,
                in_channels=weights.shape[1],
                weights=weights,
                bias=rng.integers(-99, 99, weights.shape[0]),
                **conv,
            )  # fmt: skip
        ]

    return {
        "conv1": conv_block(28, w1),
        "pool1": lambda: [MaxPool2(height=24, width=24, channels=4, bits=8)],
        "conv2": conv_block(12, w2),
        "pool2": lambda: [MaxPool2(height=8, width=8, channels=10, bits=8)],
        "flatten": lambda: [Flatten(height=4, width=4, channels=10, bits=8, drop_zeros=True)],
    }


def bundle_blocks(bundle: Path, line_buffers):
    """Makers of the blocks of the bundle's CNN (each call builds a fresh ``Cnn``)."""
    from rtl_gen.cnn.network import Cnn, _StreamFifo
    from rtl_gen.cnn.spec import cnn_from_bundle

    spec = cnn_from_bundle(bundle)
    # every maker builds the whole Cnn for its parameters and elaborates one part of it
    warnings.filterwarnings("ignore", category=UnusedElaboratable)

    def cnn():
        return Cnn(spec, line_buffers=line_buffers)

    def flatten_parts(net):
        """The flatten between its FIFOs, as ``Cnn`` builds it."""
        pixels, elements = net.flatten.i.payload.shape(), net.flatten.o.payload.shape()
        return [
            _StreamFifo(pixels, net.fifo_depths["flatten"]),
            net.flatten,
            _StreamFifo(elements, net.fifo_depths["fc"]),
        ]

    def flatten():
        return flatten_parts(cnn())

    def tail():
        # and the register slice before fc1, as in Cnn
        net = cnn()
        return [*flatten_parts(net), SkidBuffer(net.flatten.o.payload.shape()), net.mlp]

    makers = {"mlp": lambda: [cnn().mlp], "flatten": flatten, "tail": tail, "cnn": lambda: [cnn()]}
    for index, stage in enumerate(spec.stages):
        makers[stage.name] = lambda index=index: [cnn().stages[index]]
    return makers


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zeros", type=float, default=0.5)
    parser.add_argument("--blocks", default=None, help="comma-separated (default: every block)")
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--line-buffers", type=int, default=None)
    parser.add_argument("--ports", choices=("registered", "pins"), default="registered")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-cache", action="store_true")
    args = parser.parse_args(argv)
    out = ROOT / "build" / "cnn_timing"
    if args.bundle is not None:
        makers = bundle_blocks(args.bundle, args.line_buffers)
        tag = f"{args.bundle.parent.name}_{args.ports}"
    else:
        makers = random_blocks(args.zeros)
        tag = f"random_{args.ports}"
    names = args.blocks.split(",") if args.blocks else [n for n in makers if n != "cnn"]
    unknown = [n for n in names if n not in makers]
    if unknown:
        parser.error(f"unknown blocks {unknown}; expected some of {sorted(makers)}")
    path = out / "figures.json"
    figures = json.loads(path.read_text()) if path.exists() else {}  # earlier runs' blocks
    for name in names:
        parts = makers[name]()
        dut = Chain(parts, registered=args.ports == "registered")
        folder = out / tag / name
        write_verilog(dut, folder / f"{name}.v", name=name)
        fig = ecp5_timing(
            folder, [f"{name}.v"], name, seed=args.seed,
            cache=None if args.no_cache else ROOT / DEFAULT_CACHE,
        )  # fmt: skip
        res = fig["resources"]
        path_ = fig["critical_path"] or {}
        entry = {
            "fmax_mhz": fig["fmax_mhz"],
            "ports": args.ports,
            "LUT4": res.get("LUT4", 0),
            "TRELLIS_FF": res.get("TRELLIS_FF", 0),
            "MULT18X18D": res.get("MULT18X18D", 0),
            "DP16KD": res.get("DP16KD", 0),
            "TRELLIS_DPR16X4": res.get("TRELLIS_DPR16X4", 0),
            "CCU2C": res.get("CCU2C", 0),
            "critical_path": f"{path_.get('start', '')} -> {path_.get('end', '')}",
            "delay_ns": path_.get("delay_ns"),
            "routing_ns": path_.get("routing_ns"),
            "seconds": fig.get("seconds"),
        }
        if len(parts) == 1 and isinstance(parts[0], ConvLayer):
            entry.update(
                latency=parts[0].latency, nonzero_weights=int(np.count_nonzero(parts[0].weights))
            )
        figures[f"{tag}/{name}"] = entry
        print(name, json.dumps(entry), flush=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
