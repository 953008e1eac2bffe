"""cocotb testbench of the whole CNN (``rtl_gen.cnn.Cnn``).

Ports: ``inp`` (pixels ``{value, last}``, raster order) and ``out`` (class scores as elements
``{index, value, last}``). The pytest side (``sim.cnn.run_cnn_case``) pickles a case whose path
reaches the simulation in ``$STREAM_TB_CASE`` (the stream testbenches' shared convention)::

    {"spec": CnnSpec, "timing": Cnn.timing_arguments (line buffers, latencies, FIFO depths,
     register slices, layouts, zero_skip, build), "images": (n, C*H*W), "labels": (n,) or None,
     "seed": int, "stall_images": int, "gap": 0.3, "backpressure": 0.4}

Golden scores and cycles come from ``tb.golden.cnn_network``; each test writes what it measured
to ``$STREAM_TB_REPORT``.
"""

from __future__ import annotations

import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from tb.golden import cnn_network as golden
from tb.mlp_tb import ElementFormat, _index_bits, load_case, report

__all__ = ["CnnTB"]


class CnnTB:
    """Clock, reset, pixel driver (random gaps), score monitor (random backpressure),
    scoreboard against :func:`tb.golden.cnn_network.cnn_forward` and ``cnn_timing``."""

    def __init__(self, dut, case: dict):
        self.dut = dut
        self.case = case
        self.spec = case["spec"]
        final = self.spec.fc[-1]
        self.classes = final.out_features
        self.fout = ElementFormat(
            _index_bits(final.out_features), final.output_bits, final.out_signed
        )
        self.pixel_bits = self.spec.input_bits
        self.rng = random.Random(case.get("seed", 1))
        self.cycle = 0

    async def start(self) -> None:
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
        for _ in range(2):
            await RisingEdge(dut.clk)
            self.cycle += 1

    async def run(self, images, gap=0.0, backpressure=0.0, wait_each=True, stop_after=None):
        """Send ``images``; returns ``(scores, first_offer, last_score)`` per image (cycles
        counted from the TB's start). With ``wait_each`` an image's first pixel is offered the
        cycle after the previous image's last score."""
        dut = self.dut
        images = np.asarray(images, dtype=np.int64)
        per_image = images.shape[1]
        pixels = images.reshape(-1)
        scores, first, last = [], [], []
        vec = [0] * self.classes
        k, offer, sent = 0, False, 0
        limit = self.cycle + 200 * len(pixels) + 20_000
        while len(last) < len(images):
            image = k // per_image
            can_send = k < len(pixels) and (not wait_each or len(last) == image)
            if stop_after is not None and sent >= stop_after:
                can_send = False
            if can_send:
                if not offer:
                    offer = gap == 0.0 or self.rng.random() >= gap
                    if offer and k % per_image == 0 and len(first) == image:
                        first.append(self.cycle)
                if offer:
                    last_pixel = (k % per_image) == per_image - 1
                    dut.inp__payload.value = int(pixels[k]) | int(last_pixel) << self.pixel_bits
            else:
                offer = False
            dut.inp__valid.value = int(offer)
            ready = backpressure == 0.0 or self.rng.random() >= backpressure
            dut.out__ready.value = int(ready)
            await ReadOnly()
            if ready and int(dut.out__valid.value):
                index, value, is_last = self.fout.unpack(int(dut.out__payload.value))
                vec[index] = value
                if is_last:
                    scores.append(vec)
                    last.append(self.cycle)
                    vec = [0] * self.classes
            if offer and int(dut.inp__ready.value):
                k += 1
                sent += 1
                offer = False
            await RisingEdge(dut.clk)
            self.cycle += 1
            if stop_after is not None and sent >= stop_after:
                break
            assert self.cycle < limit, f"timeout: {len(last)}/{len(images)} images out"
        dut.inp__valid.value = 0
        return np.array(scores), first, last

    def timing(self, images):
        c = self.case
        return golden.cnn_timing(self.spec.stages, self.spec.fc, images, **c["timing"])

    def check_scores(self, images, scores, labels=None) -> dict:
        _, want = golden.cnn_forward(self.spec.stages, self.spec.fc, images)
        bad = [i for i in range(len(images)) if not np.array_equal(scores[i], want[i])]
        for i in bad[:5]:
            self.dut._log.error(f"image {i}: RTL {scores[i].tolist()} golden {want[i].tolist()}")
        entry = {
            "images": len(images),
            "mismatches": len(bad),
            "outputs": scores.tolist(),
            "correct": None
            if labels is None
            else int(np.sum(np.argmax(scores, 1) == np.asarray(labels))),
        }
        assert not bad, f"{len(bad)} of {len(images)} images differ from the golden model"
        return entry


async def _setup(dut):
    case = load_case()
    tb = CnnTB(dut, case)
    await tb.start()
    return tb, case


@cocotb.test()
async def test_images(dut):
    """Each image alone at full rate: scores bit-exact, cycles equal to the model's."""
    tb, case = await _setup(dut)
    images = np.asarray(case["images"])
    scores, first, last = await tb.run(images)
    entry = tb.check_scores(images, scores, case.get("labels"))
    measured = [b - a + 1 for a, b in zip(first, last, strict=True)]
    model = [tb.timing(images[i : i + 1]).cycles for i in range(len(images))]
    entry.update(cycles=measured, model_cycles=model)
    entry["cycle_errors"] = sum(m != w for m, w in zip(measured, model, strict=True))
    report("test_images", entry)
    assert entry["cycle_errors"] == 0, f"cycles {measured} differ from the model's {model}"


@cocotb.test()
async def test_back_to_back(dut):
    """Images back to back at full rate: every image's last score in the model's cycle; the
    steady-state interval between images."""
    tb, case = await _setup(dut)
    images = np.asarray(case["images"])[: case.get("stream_images", 6)]
    scores, first, last = await tb.run(images, wait_each=False)
    entry = tb.check_scores(images, scores)
    ends = [b - first[0] for b in last]
    entry.update(ends=ends, intervals=np.diff(ends).tolist())
    try:
        timing = tb.timing(images)
    except golden.TimingModelError as exc:
        # e.g. a tiny image whose fully connected layers are slower than its conv stages:
        # images overlap inside the MLP, which the composed model does not follow
        entry.update(model_ends=None, model="not applicable: " + str(exc))
        report("test_back_to_back", entry)
        return
    entry.update(model_ends=timing.image_end, fifo_peak=timing.fifo_peak, model="exact")
    report("test_back_to_back", entry)
    assert ends == timing.image_end, f"image ends {ends} differ from the model's"


@cocotb.test()
async def test_stalls(dut):
    """Random input gaps and output backpressure, images back to back: scores bit-exact."""
    tb, case = await _setup(dut)
    images = np.asarray(case["images"])[: case.get("stall_images", 4)]
    scores, _, _ = await tb.run(
        images, gap=case.get("gap", 0.3), backpressure=case.get("backpressure", 0.4),
        wait_each=False,
    )  # fmt: skip
    report("test_stalls", tb.check_scores(images, scores))


@cocotb.test()
async def test_reset_mid_image(dut):
    """Reset halfway through an image, then a clean image: scores and cycles exact."""
    tb, case = await _setup(dut)
    images = np.asarray(case["images"])
    await tb.run(images[:1], stop_after=images.shape[1] // 2)
    for _ in range(3):
        await RisingEdge(dut.clk)
        tb.cycle += 1
    await tb.reset()
    scores, first, last = await tb.run(images[-1:])
    entry = tb.check_scores(images[-1:], scores)
    entry["cycles"] = last[0] - first[0] + 1
    entry["model_cycles"] = tb.timing(images[-1:]).cycles
    report("test_reset_mid_image", entry)
    assert entry["cycles"] == entry["model_cycles"]
