"""cocotb testbench of one neuron (a :class:`rtl_gen.layer.Layer` of one or a few neurons).

A neuron has no stream of its own (it sits on a layer's broadcast), so the DUT is a layer and the
streams are the layer's; the case file is the one of :mod:`tb.mlp_tb` with a single layer.
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import RisingEdge

from tb.mlp_tb import MlpTB, load_case, report

__all__ = ["NeuronTB"]


class NeuronTB(MlpTB):
    """:class:`~tb.mlp_tb.MlpTB` on a single layer: golden = ``layer_forward``."""

    def __init__(self, dut, case: dict):
        if len(case["layers"]) != 1:
            raise ValueError("a neuron/layer case has exactly one layer")
        super().__init__(dut, case)


async def _setup(dut):
    case = load_case()
    tb = NeuronTB(dut, case)
    await tb.start()
    return tb, case


@cocotb.test()
async def test_vectors(dut):
    """Random vectors one at a time at full rate: exact results and cycles."""
    tb, case = await _setup(dut)
    images = case["images"]
    res = await tb.run(images)
    report("test_vectors", tb.check(images, res))


@cocotb.test()
async def test_stalls_and_reset(dut):
    """Random gaps and backpressure back to back, then a reset mid-vector and a clean vector."""
    tb, case = await _setup(dut)
    images = case["images"]
    res = await tb.run(
        images,
        gap=case.get("gap", 0.3),
        backpressure=case.get("backpressure", 0.4),
        wait_each=False,
    )
    entry = tb.check(images, res, cycles=False)
    await tb.run(images[:1], stop_after=max(1, len(tb.elements(images[0])) // 2))
    await RisingEdge(dut.clk)
    await tb.reset()
    res = await tb.run(images[-1:])
    entry["after_reset"] = tb.check(images[-1:], res)
    report("test_stalls_and_reset", entry)
