"""cocotb: a ``WEIGHTS=ram`` MLP's (or neuron's) AXI4-Stream top with its AXI4-Lite slave
``s_axi``.

The design is built from bundle A (``case["layers"]``); ``case["writes"]`` are the AXI4-Lite
writes (:func:`rtl_gen.neuron.ram.ram_writes`, the board driver's ``load_weights``) that load
bundle B (``case["layers_b"]``), a bundle of the same shape with other weights and biases.
cocotbext-axi's ``AxiLiteMaster`` writes them; the images go through ``s_axis`` with random
pauses (:class:`tb.axis_tb.MlpAxisTB`) and the logits are compared bit for bit with the golden
model of A (before the load) or of B (after it, and again after an ``aresetn`` pulse: a reset
keeps what was loaded).
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiResp

from tb.axis_tb import TBS
from tb.golden import mlp as mlp_golden
from tb.mlp_tb import load_case, report


async def _setup(dut):
    case = load_case()
    tb = TBS[case["kind"]](dut, case)  # "mlp", or "neuron" (neuron 0 of the first layer)
    tb.lite = AxiLiteMaster(
        AxiLiteBus.from_prefix(dut, "s_axi"), dut.aclk, dut.aresetn, reset_active_level=False
    )
    await tb.start()
    return tb, case


async def _load(tb, writes) -> dict:
    """Every write through ``s_axi``; the responses and the cycles they took."""
    bad = 0
    start = get_sim_time("ns")
    for address, data in writes:
        resp = await tb.lite.write(address, int(data).to_bytes(4, "little"))
        bad += resp.resp != AxiResp.OKAY
    cycles = round((get_sim_time("ns") - start) / 10)
    return {"writes": len(writes), "bad_responses": bad, "cycles": cycles}


def _expected(case, which: str, images):
    """The golden results of bundle ``which`` ("a" or "b") on ``images``."""
    if case["kind"] == "neuron":
        layer = case["layer"] if which == "a" else case["layer_b"]
        return [[int(v)] for v in mlp_golden.layer_forward(layer, images)[:, 0]]
    layers = case["layers"] if which == "a" else case["layers_b"]
    return list(mlp_golden.mlp_forward(layers, images)[-1])


@cocotb.test()
async def test_initial_weights(dut):
    """Without a load the RAM build computes bundle A's logits."""
    tb, case = await _setup(dut)
    report("test_initial_weights", await tb.run())


@cocotb.test()
async def test_load_weights(dut):
    """Load bundle B through ``s_axi`` between images (after one image of A), then B's logits;
    after an ``aresetn`` pulse still B's; a read answers 0."""
    tb, case = await _setup(dut)
    packets = tb.packets()
    images = case["images"]
    entry = {"before": await tb.run(packets[:1], _expected(case, "a", images[:1]))}
    entry["load"] = await _load(tb, case["writes"])
    want_b = _expected(case, "b", images)
    entry["after"] = await tb.run(packets, want_b)
    await tb.reset()
    tb.sink.clear()
    entry["after_reset"] = await tb.run(packets[:2], want_b[:2])
    read = await tb.lite.read(0, 4)
    entry["read"] = {"data": int.from_bytes(read.data, "little"), "okay": read.resp == AxiResp.OKAY}
    # the load changed the logits: B's differ from A's on these images
    entry["b_differs_from_a"] = not all(
        np.array_equal(a, b) for a, b in zip(_expected(case, "a", images), want_b, strict=True)
    )
    for _ in range(5):
        await RisingEdge(dut.aclk)
    report("test_load_weights", entry)
