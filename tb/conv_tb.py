"""cocotb testbench of the line-buffer convolution engine (``rtl_gen.conv.ConvEngine``).

The pytest side (``tests/test_conv_hw.py``, ``sim/conv.py``) builds the engine and writes a
JSON configuration; its path reaches the simulation in ``$CONV_TB_CONFIG``::

    {"params": ConvParams.to_dict(), "seed": 1,
     "real_image": [[...]], "random_images": [[[...]]],
     "gap": 0.3, "backpressure": 0.4}

Each test appends what it measured to the JSON file named by ``$CONV_TB_REPORT`` (when set):
``{"<test>": [{"cycles", "model_cycles", "outputs", "mismatches", "frames", ...}]}``.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from rtl_gen.conv.params import ConvParams
from tb.golden.conv import conv2d, conv_cycles, first_output_cycle, output_beats

__all__ = [
    "ConvTB",
    "FASHION_MNIST",
    "RunResult",
    "digit_image",
    "fashion_mnist_image",
    "real_image",
    "resize",
]

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


# Images ---------------------------------------------------------------------------------


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize (no interpolation, so pixel values stay integers)."""
    src_h, src_w = image.shape
    rows = (np.arange(height) * src_h) // height
    cols = (np.arange(width) * src_w) // width
    return image[np.ix_(rows, cols)]


def fashion_mnist_image(index: int = 0, root: Path = FASHION_MNIST) -> np.ndarray | None:
    """Test image ``index`` of Fashion-MNIST (28×28, uint8), or None when not installed."""
    path = Path(root) / "t10k-images-idx3-ubyte.gz"
    if not path.exists():
        return None
    with gzip.open(path, "rb") as f:
        header = f.read(16)
        count, rows, cols = (int.from_bytes(header[i : i + 4], "big") for i in (4, 8, 12))
        if not 0 <= index < count:
            raise ValueError(f"index must be in 0 .. {count - 1}, not {index}")
        f.read(index * rows * cols)
        data = f.read(rows * cols)
    return np.frombuffer(data, dtype=np.uint8).reshape(rows, cols).astype(np.int64)


def digit_image(index: int = 0) -> np.ndarray:
    """scikit-learn's 8×8 digit ``index`` scaled to 0..240 (int64)."""
    from sklearn.datasets import load_digits

    return (load_digits().images[index].astype(np.int64) * 15).clip(0, 255)


def real_image(height: int, width: int, pixel_width: int = 8, prefer_fashion=True):
    """A real picture of ``height × width`` pixels and its name.

    Fashion-MNIST test image 0 when the data set is installed (and ``prefer_fashion``), else
    scikit-learn's digit 0, resized by nearest neighbour and scaled to ``pixel_width`` bits.
    """
    img = fashion_mnist_image(0) if prefer_fashion else None
    name = "fashion-mnist test image 0"
    if img is None:
        img, name = digit_image(0), "sklearn digits image 0"
    img = resize(img, height, width)
    if pixel_width < 8:
        img = img >> (8 - pixel_width)
    return img.astype(np.int64), f"{name}, resized to {width}x{height}"


# Testbench ------------------------------------------------------------------------------


@dataclass
class RunResult:
    """What one run of frames produced: every output beat, in order."""

    beats: list[tuple[list[int], int, int]] = field(default_factory=list)
    first_in: int | None = None
    first_out: int | None = None
    last_out: int | None = None
    beats_in: int = 0

    @property
    def cycles(self) -> int | None:
        """Cycles from the first beat accepted to the last result transferred, inclusive."""
        if self.first_in is None or self.last_out is None:
            return None
        return self.last_out - self.first_in + 1

    @property
    def first_output_cycle(self) -> int | None:
        """Cycle of the first result's transfer, the first beat accepted at cycle 0."""
        if self.first_in is None or self.first_out is None:
            return None
        return self.first_out - self.first_in


class ConvTB:
    """Clock, reset, beat source, result sink and scoreboard for one ``ConvEngine``.

    The source offers beats of ``P`` pixels in raster order (with probability ``gap`` of
    idling a cycle between transfers; once ``valid`` is high it stays high until the
    transfer). The sink is ready each cycle with probability ``1 - backpressure``. Both run in
    one loop that samples the handshakes in the read-only phase before each rising edge, so
    the cycle numbers are exact.
    """

    def __init__(self, dut, params: ConvParams, seed: int = 0):
        self.dut = dut
        self.p = params
        self.rng = random.Random(seed)
        self.cycle = 0
        self._clock_started = False
        self.lanes = params.pixels_per_clock

    async def start(self) -> None:
        if not self._clock_started:
            cocotb.start_soon(Clock(self.dut.clk, 10, unit="ns").start())
            self._clock_started = True
        await self.reset()

    async def reset(self, cycles: int = 2) -> None:
        """Synchronous reset for ``cycles`` clock edges, source idle, sink not ready."""
        dut = self.dut
        dut.rst.value = 1
        dut.i__valid.value = 0
        dut.i__payload.value = 0
        dut.o__ready.value = 0
        for _ in range(cycles):
            await RisingEdge(dut.clk)
            self.cycle += 1
        dut.rst.value = 0

    def _encode(self, pixels) -> int:
        """One input beat: pixel ``p`` at bits ``[p·pixel_width +: pixel_width]``."""
        word = 0
        for lane, pixel in enumerate(pixels):
            word |= int(pixel) << (lane * self.p.pixel_width)
        return word

    def _decode(self, raw: int) -> tuple[list[int], int, int]:
        """``(values, keep, last)`` of one output beat (see ``output_layout``)."""
        ow, lanes = self.p.out_width, self.lanes
        values = []
        for lane in range(lanes):
            value = (raw >> (lane * ow)) & ((1 << ow) - 1)
            values.append(value - (1 << ow) if value >> (ow - 1) else value)
        if lanes == 1:
            return values, 1, (raw >> ow) & 1
        keep = (raw >> (lanes * ow)) & ((1 << lanes) - 1)
        return values, keep, (raw >> (lanes * ow + lanes)) & 1

    async def run(
        self,
        frames: np.ndarray,
        gap: float = 0.0,
        backpressure: float = 0.0,
        stop_after_beats: int | None = None,
        timeout: int | None = None,
    ) -> RunResult:
        """Stream ``frames`` (``(F, H, W)`` or ``(H, W)``) through; collect all output beats.

        With ``stop_after_beats``, stop (source idle) once that many beats were accepted,
        without waiting for results: used to interrupt a frame with a reset.
        """
        dut, p = self.dut, self.p
        frames = p.check_image(frames, "frames")
        if frames.ndim == 2:
            frames = frames[None]
        beats = [self._encode(row) for row in frames.reshape(-1, self.lanes)]
        expected = len(output_beats(conv2d(frames, p), p))
        if timeout is None:
            timeout = 4 * conv_cycles(
                p.width,
                p.height,
                p.kernel,
                p.kernel,
                len(frames),
                pixels_per_clock=self.lanes,
                pipeline=p.pipeline,
            )
            if gap or backpressure:
                timeout = int(timeout / max(0.05, (1 - gap) * (1 - backpressure))) + 1000
        res = RunResult()
        rng = self.rng
        index = 0
        offer = False
        start = self.cycle
        while True:
            # Drive this cycle (just after the previous rising edge).
            if index < len(beats) and (stop_after_beats is None or index < stop_after_beats):
                if not offer:
                    offer = gap == 0.0 or rng.random() >= gap
            else:
                offer = False
            dut.i__valid.value = int(offer)
            if index < len(beats):
                dut.i__payload.value = beats[index]
            ready = backpressure == 0.0 or rng.random() >= backpressure
            dut.o__ready.value = int(ready)

            # Sample the handshakes that complete at the next rising edge.
            await ReadOnly()
            fire_in = offer and int(dut.i__ready.value)
            if ready and int(dut.o__valid.value):
                res.beats.append(self._decode(int(dut.o__payload.value)))
                if res.first_out is None:
                    res.first_out = self.cycle
                res.last_out = self.cycle
            if fire_in:
                if res.first_in is None:
                    res.first_in = self.cycle
                index += 1
                offer = False
            await RisingEdge(dut.clk)
            self.cycle += 1

            if stop_after_beats is not None and index >= stop_after_beats:
                break
            if len(res.beats) >= expected and index >= len(beats):
                break
            if self.cycle - start > timeout:
                raise AssertionError(
                    f"timeout after {timeout} cycles: {index}/{len(beats)} beats accepted, "
                    f"{len(res.beats)}/{expected} output beats"
                )
        res.beats_in = index
        dut.i__valid.value = 0
        return res

    def check(self, frames: np.ndarray, res: RunResult) -> dict:
        """Compare ``res`` with the golden model; return counts, raise on any difference.

        Every kept lane's value, every ``keep`` mask and every ``last`` flag must equal
        :func:`tb.golden.conv.output_beats`; lanes outside ``keep`` carry no result.
        """
        p = self.p
        frames = p.check_image(frames, "frames")
        if frames.ndim == 2:
            frames = frames[None]
        want = output_beats(conv2d(frames, p), p)
        got = res.beats
        mismatches = bad_keep = bad_last = outputs = 0
        first = None
        for n, ((g_vals, g_keep, g_last), (w_vals, w_keep, w_last)) in enumerate(
            zip(got, want, strict=False)
        ):
            bad_keep += g_keep != w_keep
            bad_last += g_last != w_last
            for lane in range(self.lanes):
                if w_keep >> lane & 1:
                    if g_keep >> lane & 1:
                        outputs += 1
                    if g_vals[lane] != w_vals[lane]:
                        mismatches += 1
                        if first is None:
                            first = (n, lane, g_vals[lane], w_vals[lane])
        expected_outputs = len(frames) * p.outputs_per_frame
        missing = abs(len(got) - len(want))
        mismatches += missing
        report = {
            "outputs": outputs,
            "expected_outputs": expected_outputs,
            "beats": len(got),
            "expected_beats": len(want),
            "mismatches": mismatches,
            "keep_errors": bad_keep,
            "last_marker_errors": bad_last,
            "frames": len(frames),
            "cycles": res.cycles,
            "first_output_cycle": res.first_output_cycle,
        }
        if mismatches or bad_keep or bad_last or outputs != expected_outputs:
            detail = ""
            if first is not None:
                n, lane, g, w = first
                detail = f"; first at beat {n}, lane {lane}: got {g}, expected {w}"
            raise AssertionError(
                f"{mismatches} mismatching results, {bad_keep} wrong 'keep' masks, "
                f"{bad_last} wrong 'last' markers, {len(got)}/{len(want)} beats{detail}"
            )
        return report

    def model_cycles(self, frames: int = 1) -> int:
        p = self.p
        return conv_cycles(
            p.width,
            p.height,
            p.kernel,
            p.line_buffers,
            frames,
            pixels_per_clock=self.lanes,
            pipeline=p.pipeline,
        )

    def model_first_output(self) -> int:
        p = self.p
        return first_output_cycle(
            p.width,
            p.height,
            p.kernel,
            p.line_buffers,
            pixels_per_clock=self.lanes,
            pipeline=p.pipeline,
        )


# Configuration and reporting ------------------------------------------------------------


def load_config() -> dict:
    path = os.environ.get("CONV_TB_CONFIG")
    if not path:
        raise RuntimeError("CONV_TB_CONFIG is not set: run these tests through sim.runner")
    return json.loads(Path(path).read_text())


def report(test: str, entry: dict) -> None:
    path = os.environ.get("CONV_TB_REPORT")
    if not path:
        return
    path = Path(path)
    data = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault(test, []).append(entry)
    path.write_text(json.dumps(data, indent=2) + "\n")


async def _setup(dut):
    cfg = load_config()
    params = ConvParams(**cfg["params"])
    tb = ConvTB(dut, params, seed=int(cfg.get("seed", 0)))
    await tb.start()
    return tb, cfg


def _images(cfg: dict, key: str) -> list[np.ndarray]:
    value = cfg.get(key)
    if value is None:
        return []
    arr = np.asarray(value, dtype=np.int64)
    return [arr] if arr.ndim == 2 else list(arr)


async def _exact_frame(tb: ConvTB, image: np.ndarray, test: str, name: str) -> None:
    started, first_cycle = time.perf_counter(), tb.cycle
    res = await tb.run(image)
    run_seconds = time.perf_counter() - started
    entry = tb.check(image, res)
    entry["model_cycles"] = tb.model_cycles(1)
    entry["model_first_output_cycle"] = tb.model_first_output()
    entry["image"] = name
    entry["run_seconds"] = round(run_seconds, 4)
    entry["run_cycles"] = tb.cycle - first_cycle  # clock cycles simulated for this frame
    report(test, entry)
    assert res.cycles == entry["model_cycles"], (
        f"{name}: {res.cycles} cycles, the cycle model says {entry['model_cycles']}"
    )
    assert res.first_output_cycle == entry["model_first_output_cycle"], (
        f"{name}: first result at cycle {res.first_output_cycle}, "
        f"the model says {entry['model_first_output_cycle']}"
    )


# Tests ----------------------------------------------------------------------------------


@cocotb.test()
async def test_real_image(dut):
    """A real picture at full rate: bit-exact, cycles equal to the model."""
    tb, cfg = await _setup(dut)
    for image in _images(cfg, "real_image"):
        await _exact_frame(tb, image, "test_real_image", cfg.get("real_image_name", "real"))


@cocotb.test()
async def test_random_images(dut):
    """Random pictures at full rate, one after another: bit-exact, exact cycles each."""
    tb, cfg = await _setup(dut)
    for n, image in enumerate(_images(cfg, "random_images")):
        await _exact_frame(tb, image, "test_random_images", f"random {n}")


@cocotb.test()
async def test_gaps_and_backpressure(dut):
    """Random input gaps and output backpressure: nothing lost, duplicated or reordered."""
    tb, cfg = await _setup(dut)
    images = _images(cfg, "random_images") + _images(cfg, "real_image")
    frames = np.stack(images[:2])
    res = await tb.run(frames, gap=cfg.get("gap", 0.3), backpressure=cfg.get("backpressure", 0.4))
    entry = tb.check(frames, res)
    report("test_gaps_and_backpressure", entry)


@cocotb.test()
async def test_back_to_back(dut):
    """Two frames with no gap between them: bit-exact, cycles equal to the model (frames=2)."""
    tb, cfg = await _setup(dut)
    images = _images(cfg, "real_image") + _images(cfg, "random_images")
    frames = np.stack(images[:2])
    res = await tb.run(frames)
    entry = tb.check(frames, res)
    entry["model_cycles"] = tb.model_cycles(len(frames))
    report("test_back_to_back", entry)
    assert res.cycles == entry["model_cycles"], (
        f"{res.cycles} cycles for {len(frames)} frames, the model says {entry['model_cycles']}"
    )


@cocotb.test()
async def test_reset_mid_frame(dut):
    """Reset in the middle of a frame, then a clean frame: bit-exact, exact cycles."""
    tb, cfg = await _setup(dut)
    images = _images(cfg, "random_images") + _images(cfg, "real_image")
    p = tb.p
    # Interrupt while the window works on a middle row, results pending in the pipeline.
    beats = p.beats_per_row
    stop = (p.kernel + 1) * beats + beats // 2
    await tb.run(images[0], stop_after_beats=min(stop, beats * p.height - 1))
    tb.dut.o__ready.value = 1
    for _ in range(3):
        await RisingEdge(tb.dut.clk)
        tb.cycle += 1
    await tb.reset(cycles=2)
    await _exact_frame(tb, images[-1], "test_reset_mid_frame", "after reset")
