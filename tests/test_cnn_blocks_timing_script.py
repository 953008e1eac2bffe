"""scripts/cnn_blocks_timing.py's harness: the chain it places and routes passes every beat, in
order, with the register slices' latency, under backpressure."""

import importlib.util
from pathlib import Path

import pytest
from amaranth import Module, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from rtl_gen.skid import SkidBuffer

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "cnn_blocks_timing.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("cnn_blocks_timing", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(dut, beats, ready_pattern):
    """Offer ``beats`` at full rate; ``o.ready`` follows ``ready_pattern`` (cycled). Returns the
    payloads received and the cycle of the first one."""
    received, first = [], []

    async def bench(ctx):
        sent, cycle = 0, 0
        while len(received) < len(beats):
            ctx.set(dut.i.valid, sent < len(beats))
            if sent < len(beats):
                ctx.set(dut.i.payload, beats[sent])
            ready = ready_pattern[cycle % len(ready_pattern)]
            ctx.set(dut.o.ready, ready)
            _, _, i_ready, o_valid, o_payload = await ctx.tick().sample(
                dut.i.ready, dut.o.valid, dut.o.payload
            )
            if sent < len(beats) and i_ready:
                sent += 1
            if o_valid and ready:
                received.append(o_payload)
                first.append(cycle)
            cycle += 1
            assert cycle < 20 * len(beats) + 50, "timeout"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return received, first[0]


@pytest.mark.parametrize("registered", [False, True])
def test_chain_passes_every_beat(script, registered):
    beats = list(range(1, 40))
    dut = script.Chain([SkidBuffer(unsigned(8)), SkidBuffer(unsigned(8))], registered=registered)
    received, first = _run(dut, beats, [1])
    assert received == beats
    # one cycle per slice: two inside, and one on either side when registered
    assert first == (4 if registered else 2)
    dut = script.Chain([SkidBuffer(unsigned(8))], registered=registered)
    received, _ = _run(dut, beats, [1, 0, 0, 1, 1, 0])
    assert received == beats


def test_stream_ports_need_one_stream_each_way(script):
    skid = SkidBuffer(unsigned(4))
    skid._MustUse__silence = True  # only its signature is looked at
    assert script.stream_ports(skid) == ("i", "o")

    class TwoInputs(wiring.Component):
        a: In(stream.Signature(4))
        b: In(stream.Signature(4))
        o: Out(stream.Signature(4))

        def elaborate(self, platform):
            return Module()

    two = TwoInputs()
    two._MustUse__silence = True
    with pytest.raises(ValueError, match="one input and one output stream"):
        script.stream_ports(two)
