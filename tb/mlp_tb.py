"""cocotb testbench of the MLP (``rtl_gen.mlp.Mlp``) and of single layers (``rtl_gen.layer.Layer``).

Both DUTs have the same ports: ``inp`` (stream of ``{index, value, last}`` elements, the image) and
``out`` (stream of the last layer's results in index order). The pytest side
(``sim.mlp.run_case``, with the DUT's part from ``sim.mlp.dut_case``) pickles a case file whose
path reaches the simulation in ``$STREAM_TB_CASE``::

    {"layers": [LayerWeights, ...], "build": "pow2", "layout": "csr" | "direct" | "auto" | [...],
     "zero_skip": bool, "sparse_source": bool, "images": uint8 (n, in), "labels": (n,) or None,
     "seed": int, "stall_images": int, "gap": 0.3, "backpressure": 0.4, "lut_bits": 8}

The golden outputs and cycle counts come from ``tb.golden.mlp``. Each test writes what it measured
to the JSON file named by ``$STREAM_TB_REPORT`` (when set), one key per test.
"""

from __future__ import annotations

import json
import os
import pickle
import random
from dataclasses import dataclass, field

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from tb.golden.mlp import mlp_cycles, mlp_forward

__all__ = ["ElementFormat", "MlpTB", "load_case", "report"]


@dataclass
class ElementFormat:
    """Bit layout of a ``{index, value, last}`` payload (index in the low bits)."""

    index_bits: int
    value_bits: int
    signed: bool

    def pack(self, index: int, value: int, last: bool) -> int:
        v = value & ((1 << self.value_bits) - 1)
        return index | v << self.index_bits | int(last) << (self.index_bits + self.value_bits)

    def unpack(self, raw: int) -> tuple[int, int, bool]:
        index = raw & ((1 << self.index_bits) - 1)
        v = (raw >> self.index_bits) & ((1 << self.value_bits) - 1)
        if self.signed and v >> (self.value_bits - 1):
            v -= 1 << self.value_bits
        return index, v, bool(raw >> (self.index_bits + self.value_bits) & 1)


def _index_bits(n: int) -> int:
    return max(1, (n - 1).bit_length())


@dataclass
class Run:
    """What one call of :meth:`MlpTB.run` saw."""

    outputs: list[list[int]] = field(default_factory=list)  # one dense vector per image
    first_valid: list[int] = field(
        default_factory=list
    )  # cycle the image's first element is offered
    last_out: list[int] = field(default_factory=list)  # cycle its last result is transferred
    accepted: int = 0

    def cycles(self, i: int) -> int:
        return self.last_out[i] - self.first_valid[i] + 1


class MlpTB:
    """Clock, reset, driver (random gaps), monitor (random backpressure), scoreboard.

    The driver and the monitor share one loop that runs once per clock cycle: inputs are driven
    after the rising edge, handshakes are sampled in the read-only phase before the next one.
    """

    def __init__(self, dut, case: dict):
        self.dut = dut
        self.case = case
        self.layers = case["layers"]
        self.build = case["build"]
        self.layout = case.get("layout", "csr")
        self.zero_skip = bool(case.get("zero_skip", False))
        self.lut_bits = int(case.get("lut_bits", 8))
        self.sparse_source = bool(case.get("sparse_source", self.zero_skip))
        first, final = self.layers[0], self.layers[-1]
        self.fin = ElementFormat(_index_bits(first.in_features), first.in_bits, first.in_signed)
        self.fout = ElementFormat(
            _index_bits(final.out_features), final.output_bits, final.out_signed
        )
        self.rng = random.Random(case.get("seed", 1))
        self.cycle = 0

    async def start(self) -> None:
        if hasattr(self.dut, "load__en"):  # a WEIGHTS=ram core: no writes (its initial weights)
            self.dut.load__en.value = 0  # before the first edge: its bias registers never reset
        cocotb.start_soon(Clock(self.dut.clk, 10, unit="ns").start())
        await self.reset()

    async def reset(self, cycles: int = 2) -> None:
        dut = self.dut
        dut.inp__valid.value = 0
        dut.inp__payload.value = 0
        dut.out__ready.value = 0
        dut.rst.value = 1
        for _ in range(cycles):
            await RisingEdge(dut.clk)
            self.cycle += 1
        dut.rst.value = 0
        for _ in range(2):  # first ROM read after reset
            await RisingEdge(dut.clk)
            self.cycle += 1

    def elements(self, image) -> list[tuple[int, int, bool]]:
        n = len(image)
        return [
            (i, int(v), i == n - 1)
            for i, v in enumerate(image)
            if not (self.sparse_source and v == 0) or i == n - 1
        ]

    async def run(
        self,
        images,
        gap: float = 0.0,
        backpressure: float = 0.0,
        wait_each: bool = True,
        stop_after: int | None = None,
        timeout: int = 200_000,
    ) -> Run:
        """Send ``images``; with ``wait_each`` the next image starts after the previous result.

        ``stop_after``: stop once that many elements were accepted (no results awaited).
        """
        dut = self.dut
        out_count = self.layers[-1].out_features
        queue = [self.elements(img) for img in images]
        res = Run()
        vec = [0] * out_count
        img, el, offer = 0, 0, False
        done_images = 0
        start = self.cycle
        while True:
            can_send = img < len(queue) and (not wait_each or done_images == img)
            if stop_after is not None and res.accepted >= stop_after:
                can_send = False
            if can_send:
                if not offer:
                    offer = gap == 0.0 or self.rng.random() >= gap
                    if offer and el == 0:
                        res.first_valid.append(self.cycle)
                if offer:
                    dut.inp__payload.value = self.fin.pack(*queue[img][el])
            else:
                offer = False
            dut.inp__valid.value = int(offer)
            ready = backpressure == 0.0 or self.rng.random() >= backpressure
            dut.out__ready.value = int(ready)

            await ReadOnly()
            if ready and int(dut.out__valid.value):
                index, value, last = self.fout.unpack(int(dut.out__payload.value))
                vec[index] = value
                if last:
                    res.outputs.append(vec)
                    res.last_out.append(self.cycle)
                    vec = [0] * out_count
                    done_images += 1
            if offer and int(dut.inp__ready.value):
                res.accepted += 1
                offer = False
                el += 1
                if el == len(queue[img]):
                    img, el = img + 1, 0
            await RisingEdge(dut.clk)
            self.cycle += 1
            if stop_after is not None and res.accepted >= stop_after:
                break
            if done_images == len(queue):
                break
            if self.cycle - start > timeout:
                raise AssertionError(
                    f"timeout: {done_images}/{len(queue)} images out, {res.accepted} elements in"
                )
        dut.inp__valid.value = 0
        return res

    # scoreboard -----------------------------------------------------------------------------

    def check(self, images, res: Run, labels=None, cycles: bool = True) -> dict:
        """Compare every output with the golden model (and cycles with the model); raise on any
        difference after counting them all."""
        images = np.asarray(images)
        golden = mlp_forward(self.layers, images, self.lut_bits)[-1]
        mismatches, cycle_errors, correct, agree = 0, 0, 0, 0
        measured, model = [], []
        for i, image in enumerate(images):
            got = np.array(res.outputs[i])
            if not np.array_equal(got, golden[i]):
                mismatches += 1
                self.dut._log.error(f"image {i}: RTL {got.tolist()} golden {golden[i].tolist()}")
            agree += int(np.argmax(got) == np.argmax(golden[i]))
            if labels is not None:
                correct += int(np.argmax(got) == int(labels[i]))
            if cycles:
                want = mlp_cycles(
                    self.layers,
                    image,
                    self.build,
                    self.zero_skip,
                    self.sparse_source,
                    layout=self.layout,
                )
                measured.append(res.cycles(i))
                model.append(want)
                if res.cycles(i) != want:
                    cycle_errors += 1
                    self.dut._log.error(f"image {i}: {res.cycles(i)} cycles, model {want}")
        entry = {
            "images": len(images),
            "mismatches": mismatches,
            "class_agree": agree,
            "correct": correct if labels is not None else None,
            "cycles": measured,
            "model_cycles": model,
            "cycle_errors": cycle_errors,
            "outputs": [list(map(int, o)) for o in res.outputs[: len(images)]],
        }
        assert mismatches == 0, f"{mismatches} of {len(images)} images differ from the golden model"
        assert cycle_errors == 0, f"{cycle_errors} images differ from the cycle model"
        return entry


def load_case() -> dict:
    with open(os.environ["STREAM_TB_CASE"], "rb") as f:
        return pickle.load(f)


def report(test: str, entry: dict) -> None:
    path = os.environ.get("STREAM_TB_REPORT")
    if not path:
        return
    data = json.loads(open(path).read()) if os.path.exists(path) else {}
    data[test] = entry
    with open(path, "w") as f:
        json.dump(data, f)


async def _setup(dut) -> tuple[MlpTB, dict]:
    case = load_case()
    tb = MlpTB(dut, case)
    await tb.start()
    return tb, case


@cocotb.test()
async def test_images(dut):
    """Every image alone at full rate: outputs bit-exact, class as golden, cycles as the model."""
    tb, case = await _setup(dut)
    images = case["images"]
    res = await tb.run(images)
    report("test_images", tb.check(images, res, case.get("labels")))


@cocotb.test()
async def test_stalls(dut):
    """Random input gaps and output backpressure, images back to back: outputs bit-exact."""
    tb, case = await _setup(dut)
    images = case["images"][: case.get("stall_images", 20)]
    res = await tb.run(
        images,
        gap=case.get("gap", 0.3),
        backpressure=case.get("backpressure", 0.4),
        wait_each=False,
    )
    report("test_stalls", tb.check(images, res, cycles=False))


@cocotb.test()
async def test_reset_mid_image(dut):
    """Reset in the middle of an image, then a clean image: exact outputs and cycles."""
    tb, case = await _setup(dut)
    images = case["images"]
    first = tb.elements(images[0])
    await tb.run(images[:1], stop_after=max(1, len(first) // 2))
    for _ in range(3):
        await RisingEdge(dut.clk)
        tb.cycle += 1
    await tb.reset()
    res = await tb.run(images[-1:])
    report("test_reset_mid_image", tb.check(images[-1:], res))
