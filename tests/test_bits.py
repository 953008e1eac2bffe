"""rtl_gen/bits.py: every helper against plain Python, exhaustively over small inputs, in
Amaranth's simulator (combinational)."""

import pytest
from amaranth import Module, Signal
from amaranth.sim import Simulator

from rtl_gen.bits import (
    at_most_one,
    lowest,
    one_hot_index,
    one_hot_select,
    or_tree,
    without_lowest,
)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_bit_helpers_exhaustively(n):
    words = [(7 * i + 3) % 16 for i in range(n)]
    width = max(1, (n - 1).bit_length())
    x = Signal(n)
    outs = {
        "lowest": Signal(n),
        "without_lowest": Signal(n),
        "at_most_one": Signal(),
        "or_tree": Signal(n),
        "select": Signal(4),
        "index": Signal(width),
    }
    m = Module()
    m.d.comb += [
        outs["lowest"].eq(lowest(x)),
        outs["without_lowest"].eq(without_lowest(x)),
        outs["at_most_one"].eq(at_most_one(x)),
        # each term one bit of x, so the OR tree must give x back: every term reaches it
        outs["or_tree"].eq(or_tree(x[i] << i for i in range(n))),
        outs["select"].eq(one_hot_select(x, words)),
        outs["index"].eq(one_hot_index(x, width)),
    ]

    async def bench(ctx):
        for v in range(2**n):
            ctx.set(x, v)
            low = v & -v
            assert ctx.get(outs["lowest"]) == low, v
            assert ctx.get(outs["without_lowest"]) == v & (v - 1), v
            assert ctx.get(outs["at_most_one"]) == (bin(v).count("1") <= 1), v
            assert ctx.get(outs["or_tree"]) == v, v
            if low == v:  # one-hot or zero
                i = low.bit_length() - 1
                assert ctx.get(outs["select"]) == (words[i] if v else 0), v
                assert ctx.get(outs["index"]) == max(i, 0), v

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


def test_one_hot_select_needs_a_word_per_bit():
    with pytest.raises(ValueError):
        one_hot_select(Signal(3), [1, 2])
