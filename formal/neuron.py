"""The single neuron (rtl_gen/neuron/neuron.py, ``make verilog DESIGN=neuron``) in both ROM
layouts, bounded proofs.

A neuron of the tiny random pow2 layer of formal/layer.py (``synthetic_layer``, seed 14: 3 inputs,
4-bit inputs and output, signed saturating output), built as the export builds it
(``Layer(...).neuron(j)``, :func:`rtl_gen.export.designs.neuron_design`); neuron 1, whose row has
two nonzero weights (columns 1 and 2), so that the CSR walk skips, matches and restarts. Its input
is the broadcast handshake (``data``, ``valid``, ``done``, ``accept``); alone, as in the export and
its AXI4-Stream top, ``accept = valid & done`` and ``done`` is the stream's ``ready``.

Each layout with its ROM in LUTs (the neuron's size) and in block RAM (``rom_style="block"``:
a synchronous read; the CSR walk's through its prefetch queue, which starts full from its
reset values, so no reset is assumed). Properties, with the solver sending any vectors
that follow the stream's rules (indices increase within a vector, ``last`` exactly on index
``in_features - 1``, elements may be missing; held until accepted) and any ``out.ready``:

* the stream rule at the output; no valid output after reset before an input;
* one result per complete input vector: a result only while a vector whose ``last`` element was
  accepted is owed one (never more results out than vectors in);
* while a vector is owed, a result leaves within :data:`BOUND` cycles in which the sink is
  ready (nothing lost);
* the accumulator and the result register within the exact range of any input vector in range;
* cover: a result leaves;
* (netlist) ``out.valid`` and ``out.payload`` depend on no input; ``done`` not on ``out.ready``
  (it follows ``valid`` and the element by design: the broadcast's ``done`` may).
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth import Module, Value
from amaranth.asserts import AnySeq
from amaranth.back import rtlil
from amaranth.hdl import Assert

from . import layer, props
from .mutants import mutant_build
from .sby import Proof

#: the neuron of the layer under proof (its row: weights 0, -2, 4)
INDEX = 1

#: ready cycles, while a vector is owed, until its result leaves: the cycles between the last
#: element's accept and ``out.valid`` (the output latency, 3 CSR, 6 direct, less one), so that the
#: result leaves in its first valid cycle if the sink is ready; one less fails (the BMC finds a
#: trace). Each depth reaches past the earliest vector end (step 2) plus the bound.
BOUND = {"csr": 2, "direct": 5}
DEPTH = {"csr": 16, "direct": 19}


def neuron(layout: str, w=None, rom_style: str = "auto"):
    from rtl_gen.layer import Layer

    if w is None:
        (w,) = layer.weights()
    built = Layer(
        w, build="pow2", layout=layout, queue_depth=layer.QUEUE_DEPTH, rom_style=rom_style
    )
    built._MustUse__silence = True  # only one neuron is used, as in the export
    return built.neuron(INDEX)


def broadcast_source(m, inp):
    """The solver drives the broadcast (any ``valid`` and element); ``accept = valid & done``,
    as a lone neuron's wrapper does. Returns it as a stream (``ready`` = ``done``)."""
    m.d.comb += [
        inp.valid.eq(AnySeq(1)),
        Value.cast(inp.data).eq(AnySeq(len(Value.cast(inp.data)))),
        inp.accept.eq(inp.valid & inp.done),
    ]
    return SimpleNamespace(valid=inp.valid, ready=inp.done, payload=inp.data)


def harness(layout: str, rom_style: str = "auto"):
    (w,) = layer.weights()
    m = Module()
    dut = neuron(layout, w, rom_style)
    m.submodules.dut = frag = props.elaborated(dut)
    inp = broadcast_source(m, dut.inp)
    m.d.comb += dut.out.ready.eq(AnySeq(1))
    props.source_rules(m, inp)
    layer.vector_rules(m, inp, w.in_features)
    props.sink_rules(m, dut.out)
    props.idle_after_reset(m, inp, dut.out)
    take_last = inp.valid & inp.ready & inp.payload.last
    props.frames_owed(m, take_last, dut.out.valid & dut.out.ready, dut.out.ready, BOUND[layout])
    lo, hi = layer.neuron_bounds(w)[INDEX]
    acc = props.find_signal(frag, "acc", domain="sync")
    result = props.find_signal(frag, "result", domain="sync")
    m.d.comb += Assert((acc >= lo) & (acc <= hi))
    m.d.comb += Assert((result >= min(lo, 0)) & (result <= max(hi, 0)))
    return m


def netlist(layout: str):
    text = rtlil.convert(neuron(layout), name="dut")
    inputs = ["inp__valid", "inp__data", "inp__accept", "out__ready"]
    return text, inputs, ["out__valid", "out__payload"]


def done_netlist(layout: str):
    text = rtlil.convert(neuron(layout), name="dut")
    return text, ["out__ready"], ["inp__done"]


PROOFS = [
    Proof("neuron_csr_bmc", lambda: harness("csr"), "bmc", DEPTH["csr"], fast=True),
    Proof("neuron_csr_cover", lambda: harness("csr"), "cover", DEPTH["csr"], fast=True),
    Proof("neuron_direct_bmc", lambda: harness("direct"), "bmc", DEPTH["direct"]),
    Proof("neuron_csr_block_bmc", lambda: harness("csr", "block"), "bmc", DEPTH["csr"], fast=True),
    Proof("neuron_direct_block_bmc", lambda: harness("direct", "block"), "bmc", DEPTH["direct"]),
    Proof("neuron_direct_cover", lambda: harness("direct"), "cover", DEPTH["direct"]),
    Proof("neuron_csr_netlist", lambda: netlist("csr"), "netlist", fast=True),
    Proof("neuron_direct_netlist", lambda: netlist("direct"), "netlist", fast=True),
    Proof("neuron_csr_done_netlist", lambda: done_netlist("csr"), "netlist", fast=True),
    Proof("neuron_direct_done_netlist", lambda: done_netlist("direct"), "netlist", fast=True),
]

MUTANTS = {
    # a last element is taken while the previous result still waits for the sink: the result
    # register is overwritten (a vector's result lost)
    "free": (
        "rtl_gen.neuron.neuron",
        "out_free.eq(~self.out.valid & ~act_wait & ~closing),",
        "out_free.eq(~act_wait & ~closing),",
    ),
}

MUTANT_PROOFS = [
    Proof(
        "neuron_free_bug",
        mutant_build(MUTANTS["free"], lambda: harness("csr")),
        "bmc",
        DEPTH["csr"],
        "fail",
        fast=True,
    ),
]
