"""The SkidBuffer (rtl_gen/skid.py): a two-entry register slice, proven by k-induction.

Properties: the stream rules at both ends, occupancy (``0 <= in - out <= 2``, ``o.valid`` iff
something is held), one payload picked by the solver (``AnySeq``: so every payload) leaves
unchanged after exactly the payloads that were ahead of it, no valid output after reset before
an input, and (netlist) ``i.ready`` depends on no input and ``o.valid``/``o.payload`` on none.
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.asserts import AnySeq
from amaranth.back import rtlil
from amaranth.hdl import Assert

from . import props
from .mutants import mutated
from .sby import Proof

WIDTH = 8
CAPACITY = 2


def harness(helpers: bool = True):
    from rtl_gen.skid import SkidBuffer

    m = Module()
    dut = SkidBuffer(WIDTH)
    m.submodules.dut = frag = props.elaborated(dut)
    i, o = dut.i, dut.o
    props.drive_source(m, i)
    m.d.comb += o.ready.eq(AnySeq(1))
    props.source_rules(m, i)
    props.sink_rules(m, o)
    props.idle_after_reset(m, i, o)

    take, give = i.valid & i.ready, o.valid & o.ready
    count = Signal(range(CAPACITY + 2))
    m.d.sync += count.eq(count + take - give)
    m.d.comb += [Assert(count <= CAPACITY), Assert(o.valid == (count != 0))]

    # one payload, picked by the solver, is followed through
    pick = Signal()
    m.d.comb += pick.eq(AnySeq(1))
    tracking, delivered = Signal(), Signal()
    tracked = Signal(WIDTH)
    ahead = Signal(range(CAPACITY + 1))
    with m.If(~tracking & ~delivered & pick & take):
        m.d.sync += [tracking.eq(1), tracked.eq(i.payload), ahead.eq(count - give)]
    with m.If(tracking & give):
        with m.If(ahead == 0):
            m.d.comb += Assert(o.payload == tracked)
            m.d.sync += [tracking.eq(0), delivered.eq(1)]
        with m.Else():
            m.d.sync += ahead.eq(ahead - 1)
    m.d.comb += Assert(~tracking | (ahead < count))
    props.cover(m, count == CAPACITY)
    props.cover(m, delivered)

    if helpers:  # inductive strengthening: the harness's counters against the registers
        spare_valid = props.find_signal(frag, "spare_valid")
        spare = props.find_signal(frag, "spare")
        out_valid = props.find_signal(frag, "out_valid")
        out = props.find_signal(frag, "out")
        m.d.comb += Assert(count == out_valid + spare_valid)
        m.d.comb += Assert(~spare_valid | out_valid)
        with m.If(tracking & (ahead == 0)):
            m.d.comb += Assert(out == tracked)
        with m.If(tracking & (ahead == 1)):
            m.d.comb += Assert(spare == tracked)
    return m


def ready_netlist():
    from rtl_gen.skid import SkidBuffer

    return (
        rtlil.convert(SkidBuffer(WIDTH), name="dut"),
        ["i__valid", "i__payload", "o__ready"],
        ["i__ready", "o__valid", "o__payload"],
    )


#: the payload accepted while the sink stalls is not parked: it is lost
MUTANT_DROP = ("rtl_gen.skid", "m.d.sync += [spare.eq(self.i.payload), spare_valid.eq(1)]", "pass")
#: ``i.ready`` also lets a payload in when the sink is ready: a combinational path
MUTANT_READY = (
    "rtl_gen.skid",
    "self.i.ready.eq(~spare_valid)",
    "self.i.ready.eq(~spare_valid | self.o.ready)",
)

#: the output register's valid bit is not reset: a reset leaves a stale payload offered
MUTANT_RESET = ("rtl_gen.skid", "out_valid = Signal()", "out_valid = Signal(reset_less=True)")


def _under(mutant, build):
    def run():
        with mutated(*mutant):
            return build()

    return run


PROOFS = [
    Proof("skid_prove", harness, "prove", 4, fast=True, what="stream rules, count, token, reset"),
    Proof("skid_cover", harness, "cover", 8, fast=True, what="full, tracked payload delivered"),
    Proof("skid_ready_netlist", ready_netlist, "netlist", fast=True, what="no comb path in→out"),
]

MUTANT_PROOFS = [
    Proof(
        "skid_drop_bug",
        _under(MUTANT_DROP, lambda: harness(helpers=False)),
        "bmc",
        8,
        expect="fail",
        fast=True,
    ),
    Proof("skid_ready_bug", _under(MUTANT_READY, ready_netlist), "netlist", expect="fail"),
    Proof(
        "skid_reset_bug",
        _under(MUTANT_RESET, lambda: harness(helpers=False)),
        "bmc",
        8,
        expect="fail",
        fast=True,
    ),
]
