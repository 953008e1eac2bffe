"""cocotb: the bytes of the generated board driver (``board/<top>_driver.py``) through the
block design's stream path (:func:`rtl_gen.export.board.dma_harness`: the subset converters'
remap strings around the IP's AXI4-Stream top), as the AXI DMA would move them.

cocotbext-axi's ``AxiStreamSource`` plays the DMA's MM2S channel (the driver's
``pack_image`` bytes, little-endian words of ``dma_bytes``, ``tlast`` on a transfer's last
beat), ``AxiStreamSink`` the S2MM channel (whole words, ``tkeep`` from the converter), both
with random pauses; each packet back goes through the driver's ``unpack_result`` and is
compared with the golden model's scores. The case (``$STREAM_TB_CASE``, written by
``tests/test_board.py``): ``{"driver": path, "images": real pixels (n, ...), "expected":
golden scores (n, classes), "seed": int}``.
"""

from __future__ import annotations

import importlib.util
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge, with_timeout
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from tb.axis_tb import _pauses
from tb.mlp_tb import load_case, report


def load_driver(path: str):
    """The generated driver file as a module (no ``pynq`` needed)."""
    spec = importlib.util.spec_from_file_location("board_driver_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cocotb.test()
async def test_driver_bytes(dut):
    """Every image: ``quantise`` -> ``pack_image`` -> the stream path -> ``unpack_result``,
    bit for bit equal to the golden scores."""
    case = load_case()
    driver = load_driver(case["driver"])
    rng = random.Random(case.get("seed", 1))
    source = AxiStreamSource(
        AxiStreamBus.from_prefix(dut, "s_axis"), dut.aclk, dut.aresetn, reset_active_level=False
    )
    sink = AxiStreamSink(
        AxiStreamBus.from_prefix(dut, "m_axis"), dut.aclk, dut.aresetn, reset_active_level=False
    )
    source.set_pause_generator(_pauses(rng, 0.3))
    sink.set_pause_generator(_pauses(rng, 0.4))
    cocotb.start_soon(Clock(dut.aclk, 10, unit="ns").start())
    dut.aresetn.value = 0
    for _ in range(3):
        await RisingEdge(dut.aclk)
    dut.aresetn.value = 1
    await RisingEdge(dut.aclk)

    codes = driver.quantise(case["images"])
    sent = [driver.pack_image(c) for c in codes]
    for words in sent:
        await source.send(AxiStreamFrame(words.tobytes()))
    budget_ns = 10 * (50 * sum(len(w) for w in sent) + 20_000)
    got, received = [], []
    for _ in sent:
        frame = await with_timeout(sink.recv(), budget_ns, "ns")
        received.append(bytes(frame.tdata))
        got.append(driver.unpack_result(frame.tdata).tolist())
    for _ in range(20):
        await RisingEdge(dut.aclk)
    expected = np.asarray(case["expected"]).tolist()
    report(
        "test_driver_bytes",
        {
            "codes": codes.tolist(),
            "images": len(sent),
            "sent_bytes": [w.tobytes().hex() for w in sent],
            "received_bytes": [r.hex() for r in received],
            "got": got,
            "expected": expected,
            "mismatches": sum(g != e for g, e in zip(got, expected, strict=True)),
            "extra_output": not sink.empty(),
        },
    )
