"""rtl_gen/skid.py's SkidFifo against a queue model, cycle by cycle, under random valid and
ready; its parameter check."""

from collections import deque

import numpy as np
import pytest
from amaranth import unsigned
from amaranth.sim import Simulator

from rtl_gen.skid import SkidFifo


@pytest.mark.parametrize("depth", [2, 3, 4])
@pytest.mark.parametrize("valid_rate,ready_rate", [(1.0, 1.0), (0.7, 0.4), (0.4, 0.8)])
def test_skid_fifo_matches_queue_model(depth, valid_rate, ready_rate):
    rng = np.random.default_rng(depth * 10 + int(ready_rate * 10))
    dut = SkidFifo(unsigned(8), depth)
    cycles = 400
    valid = rng.random(cycles) < valid_rate
    ready = rng.random(cycles) < ready_rate
    received = []

    async def bench(ctx):
        queue, sent = deque(), 0
        for t in range(cycles):
            ctx.set(dut.i.valid, bool(valid[t]))
            ctx.set(dut.i.payload, sent % 256)
            ctx.set(dut.o.ready, bool(ready[t]))
            _, _, i_ready, o_valid, o_payload = await ctx.tick().sample(
                dut.i.ready, dut.o.valid, dut.o.payload
            )
            # the model: entries are visible the cycle after their push, in order
            assert o_valid == (len(queue) > 0), t
            assert i_ready == (max(len(queue) - 1, 0) < depth - 1), t
            if o_valid:
                assert o_payload == queue[0], t
                if ready[t]:
                    received.append(queue.popleft())
            if valid[t] and i_ready:
                queue.append(sent % 256)
                sent += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert received == [k % 256 for k in range(len(received))]
    assert len(received) > cycles // 5


@pytest.mark.parametrize("depth", [1, 0, 2.5, "3"])
def test_skid_fifo_rejects_bad_depth(depth):
    with pytest.raises(ValueError, match=f"depth must be an integer >= 2, not {depth!r}"):
        SkidFifo(unsigned(8), depth)
