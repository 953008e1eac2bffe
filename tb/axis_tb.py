"""cocotb testbenches of the AXI4-Stream tops (``<core>_axis``, :mod:`rtl_gen.export.axis`).

The wrapper is driven as a block design would drive it: cocotbext-axi's ``AxiStreamSource`` on
``s_axis`` and ``AxiStreamSink`` on ``m_axis``, both with random pause generators, ``aresetn``
active low. Every packet is encoded from the bit fields the wrapper's manifest states (the
``"axis"`` entry of the case: lanes of ``tdata``, ``tuser``, ``tlast``, ``tkeep``) and every
result decoded from them, then compared bit for bit with the golden model (``tb.golden``).

One TB class per DUT: :class:`ConvAxisTB` (a packet per frame, one per result frame back),
:class:`MlpAxisTB` (a packet of ``{index in tuser, value in tdata}`` elements per image, the
logits back the same way), :class:`NeuronAxisTB` (a packet per vector, one result beat back,
``tlast`` high), :class:`CnnAxisTB` (a packet of pixels per image, the scores back as
elements). The case (``$STREAM_TB_CASE``, written by :func:`sim.axis.run_axis`)::

    {"kind": "conv" | "mlp" | "neuron" | "cnn", "axis": AxisTop.manifest(), "seed": int,
     "pause": (source pause probability, sink pause probability),
     conv: "params": ConvParams, "frames": (F, H, W);
     mlp: "layers", "images", "zero_skip"; neuron: "layer", "images"; cnn: "spec", "images"}

Each test writes what it measured to ``$STREAM_TB_REPORT``.
"""

from __future__ import annotations

import itertools
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge, with_timeout
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from tb.golden import cnn_network
from tb.golden import mlp as mlp_golden
from tb.golden.conv import conv2d
from tb.mlp_tb import load_case, report

__all__ = ["AxisTB", "CnnAxisTB", "ConvAxisTB", "MlpAxisTB", "NeuronAxisTB"]


def _pauses(rng: random.Random, probability: float, length: int = 211):
    """A repeating random pause pattern (``True`` = paused this cycle)."""
    return itertools.cycle([rng.random() < probability for _ in range(length)])


class AxisTB:
    """Clock, active-low reset, AXI4-Stream source and sink with pause generators, and the
    encoding of the wrapper's bit fields. Subclasses give :meth:`packets` (what to send),
    :meth:`expected` (the golden results, one entry per output packet) and :meth:`decode`."""

    def __init__(self, dut, case: dict):
        self.dut = dut
        self.case = case
        self.s = case["axis"]["s_axis"]
        self.m = case["axis"]["m_axis"]
        self.rng = random.Random(case.get("seed", 1))
        self.source = AxiStreamSource(
            AxiStreamBus.from_prefix(dut, "s_axis"), dut.aclk, dut.aresetn,
            reset_active_level=False, byte_lanes=1,
        )  # fmt: skip
        # without tkeep, one "byte" is the whole beat; with tkeep, cocotbext counts real bytes
        lanes = {} if self.m.get("tkeep") else {"byte_lanes": 1}
        self.sink = AxiStreamSink(
            AxiStreamBus.from_prefix(dut, "m_axis"), dut.aclk, dut.aresetn,
            reset_active_level=False, **lanes,
        )  # fmt: skip
        source_pause, sink_pause = case.get("pause", (0.3, 0.4))
        self.source.set_pause_generator(_pauses(self.rng, source_pause))
        self.sink.set_pause_generator(_pauses(self.rng, sink_pause))

    async def start(self) -> None:
        self.dut.aresetn.value = 0  # from the first edge (a WEIGHTS=ram core's bias registers
        # never reset: an undriven aresetn there would let X into them)
        cocotb.start_soon(Clock(self.dut.aclk, 10, unit="ns").start())
        self.violations = []
        cocotb.start_soon(self.watch_master())
        await self.reset()

    async def watch_master(self) -> None:
        """AXI4-Stream rules on ``m_axis``: low ``tvalid`` in reset; once ``tvalid`` is high
        it stays high, with ``tdata``/``tuser``/``tlast``/``tkeep`` unchanged, until
        ``tready``."""
        dut = self.dut
        names = [n for n in ("tdata", "tuser", "tlast", "tkeep") if hasattr(dut, f"m_axis_{n}")]
        held = None  # the beat offered and not taken in the previous cycle
        while True:
            await RisingEdge(dut.aclk)
            await ReadOnly()
            if not dut.aresetn.value:
                if dut.m_axis_tvalid.value:
                    self.violations.append("m_axis_tvalid high in reset")
                held = None
                continue
            valid = bool(dut.m_axis_tvalid.value)
            beat = tuple(str(getattr(dut, f"m_axis_{n}").value) for n in names)
            if held is not None and (not valid or beat != held):
                self.violations.append(f"m_axis beat {held} dropped or changed before tready")
            held = beat if valid and not dut.m_axis_tready.value else None

    async def reset(self, cycles: int = 3) -> None:
        self.dut.aresetn.value = 0
        for _ in range(cycles):
            await RisingEdge(self.dut.aclk)
        self.dut.aresetn.value = 1
        await RisingEdge(self.dut.aclk)

    # --- bit fields ---------------------------------------------------------------------
    def encode(self, values, index: int | None = None) -> int:
        """One input beat: ``values`` (one per lane) each in its byte-aligned field, written
        two's complement over the whole field (the wrapper reads the low ``value_bits``)."""
        beat = 0
        for lane, value in zip(self.s["lanes"], values, strict=True):
            hi, lo = lane["tdata_bits"]
            beat |= (int(value) & ((1 << (hi - lo + 1)) - 1)) << lo
        return beat

    def lane_values(self, frame) -> list[int]:
        """Every kept lane value of an output packet, in order, sign- or zero-extended."""
        lanes = self.m["lanes"]
        width = lanes[0]["tdata_bits"][0] - lanes[0]["tdata_bits"][1] + 1
        if self.m.get("tkeep"):  # bytes, compacted (tkeep-clear bytes removed by recv)
            nbytes = width // 8
            data = bytes(frame.tdata)
            raw = [
                int.from_bytes(data[i : i + nbytes], "little") for i in range(0, len(data), nbytes)
            ]
        else:
            raw = []
            for beat in frame.tdata:
                for lane in lanes:
                    hi, lo = lane["tdata_bits"]
                    raw.append(beat >> lo & ((1 << (hi - lo + 1)) - 1))
        out = []
        for v in raw:
            signed = lanes[0]["signed"]
            bits = lanes[0]["value_bits"]
            # the field must be the value's sign (or zero) extension
            value = v - (1 << width) if signed and v >> (width - 1) else v
            if signed:
                assert -(1 << (bits - 1)) <= value < 1 << (bits - 1), f"bad sign extension {v:#x}"
            else:
                assert value < 1 << bits, f"bad zero extension {v:#x}"
            out.append(value)
        return out

    def tusers(self, frame) -> list[int]:
        tuser = frame.tuser
        if isinstance(tuser, int):
            return [tuser] * len(frame.tdata)
        return list(tuser)

    # --- the run ------------------------------------------------------------------------
    def packets(self) -> list[AxiStreamFrame]:
        raise NotImplementedError

    def expected(self) -> list:
        raise NotImplementedError

    def decode(self, frame):
        raise NotImplementedError

    def equal(self, got, want) -> bool:
        return np.array_equal(np.asarray(got), np.asarray(want))

    async def run(self, packets=None, expected=None) -> dict:
        packets = self.packets() if packets is None else packets
        expected = self.expected() if expected is None else expected
        for frame in packets:
            await self.source.send(frame)
        # a lost or held packet fails the test instead of hanging it: every beat may take
        # a few cycles with the pauses, the designs' latencies are far below the slack
        beats = sum(len(frame.tdata) for frame in packets)
        budget_ns = 10 * (50 * beats + 20_000)
        got = []
        for _ in expected:
            got.append(self.decode(await with_timeout(self.sink.recv(), budget_ns, "ns")))
        for _ in range(20):  # nothing more comes out
            await RisingEdge(self.dut.aclk)
        extra = not self.sink.empty()
        mismatches = sum(not self.equal(g, w) for g, w in zip(got, expected, strict=True))
        return {
            "protocol_violations": self.violations[:5],
            "packets_in": len(packets),
            "packets_out": len(got),
            "mismatches": mismatches,
            "extra_output": extra,
            "first_mismatch": next(
                (
                    {"packet": i, "got": np.asarray(g).tolist(), "want": np.asarray(w).tolist()}
                    for i, (g, w) in enumerate(zip(got, expected, strict=True))
                    if not self.equal(g, w)
                ),
                None,
            ),
        }


class ConvAxisTB(AxisTB):
    """The conv engine: one packet of pixels per frame (``tlast`` on its last beat, which the
    engine ignores: it counts), one packet of results per frame back (``tlast`` from the
    engine's end of frame), results in raster order."""

    def packets(self):
        params = self.case["params"]
        lanes = params.pixels_per_clock
        out = []
        for frame in self.case["frames"]:
            pixels = np.asarray(frame).reshape(-1, lanes)
            out.append(AxiStreamFrame([self.encode(beat) for beat in pixels]))
        return out

    def expected(self):
        return [conv2d(f, self.case["params"]).reshape(-1) for f in self.case["frames"]]

    def decode(self, frame):
        return self.lane_values(frame)


class MlpAxisTB(AxisTB):
    """The MLP: one packet per image, each element's value in ``tdata`` and its index in
    ``tuser`` (zero elements left out when the MLP skips zeros, the last one always sent);
    the logits back the same way, one packet per image."""

    def elements(self, image):
        n = len(image)
        sparse = self.case.get("zero_skip", False)
        return [(i, int(v)) for i, v in enumerate(image) if not (sparse and v == 0) or i == n - 1]

    def packets(self):
        out = []
        for image in self.case["images"]:
            elements = self.elements(image)
            out.append(
                AxiStreamFrame(
                    [self.encode([v]) for _, v in elements], tuser=[i for i, _ in elements]
                )
            )
        return out

    def outputs(self) -> int:
        return self.case["layers"][-1].out_features

    def expected(self):
        return list(mlp_golden.mlp_forward(self.case["layers"], self.case["images"])[-1])

    def decode(self, frame):
        """A dense vector from the ``(tuser, value)`` elements (indices must increase and the
        packet must end with the last output)."""
        values = self.lane_values(frame)
        indices = self.tusers(frame)
        assert indices == sorted(set(indices)), f"indices out of order: {indices}"
        assert indices[-1] == self.outputs() - 1, f"packet ends at index {indices[-1]}"
        dense = np.zeros(self.outputs(), dtype=np.int64)
        dense[indices] = values
        return dense


class NeuronAxisTB(MlpAxisTB):
    """One neuron (neuron 0 of the bundle's first layer): a packet of every element per vector,
    one result beat back per vector (``tlast`` high on each, no ``tuser``)."""

    def elements(self, image):
        return [(i, int(v)) for i, v in enumerate(image)]

    def expected(self):
        out = mlp_golden.layer_forward(self.case["layer"], self.case["images"])[:, 0]
        return [[int(v)] for v in out]

    def decode(self, frame):
        assert len(frame.tdata) == 1, "one result beat per vector"
        return self.lane_values(frame)


class CnnAxisTB(MlpAxisTB):
    """The CNN: a packet of pixels per image (the ``C`` channels of a pixel in ``C`` lanes),
    the class scores back as elements (index in ``tuser``)."""

    def packets(self):
        spec = self.case["spec"]
        c, h, w = spec.input_shape
        out = []
        for image in self.case["images"]:
            pixels = np.asarray(image).reshape(c, h * w).T  # raster order, channels per beat
            out.append(AxiStreamFrame([self.encode(p) for p in pixels]))
        return out

    def outputs(self) -> int:
        return self.case["spec"].fc[-1].out_features

    def expected(self):
        spec = self.case["spec"]
        return list(cnn_network.cnn_forward(spec.stages, spec.fc, self.case["images"])[1])


TBS = {"conv": ConvAxisTB, "mlp": MlpAxisTB, "neuron": NeuronAxisTB, "cnn": CnnAxisTB}


async def _setup(dut):
    case = load_case()
    tb = TBS[case["kind"]](dut, case)
    await tb.start()
    return tb


@cocotb.test()
async def test_packets(dut):
    """Every packet back to back with random pauses on both sides: bit-exact results."""
    tb = await _setup(dut)
    report("test_packets", await tb.run())


@cocotb.test()
async def test_reset_mid_packet(dut):
    """``aresetn`` low in the middle of a packet, then the first packet again: exact."""
    tb = await _setup(dut)
    packets, expected = tb.packets(), tb.expected()
    first = packets[0]
    half = AxiStreamFrame(
        first.tdata[: max(1, len(first.tdata) // 2)],
        tuser=None if first.tuser is None else first.tuser[: max(1, len(first.tdata) // 2)],
    )
    await tb.source.send(half)
    await tb.source.wait()
    for _ in range(5):
        await RisingEdge(dut.aclk)
    await tb.reset()
    tb.sink.clear()
    report("test_reset_mid_packet", await tb.run(packets[:1], expected[:1]))
