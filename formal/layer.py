"""The neuron layer (rtl_gen/layer.py) and the MLP top (rtl_gen/mlp.py), bounded proofs.

A tiny random pow2 network (``tb.golden.mlp.synthetic_layer``: 4-bit inputs, 4 inputs, 3
neurons; the MLP 4 → 3 → 2) in both input handshakes: the queued one (CSR layout, a
``SyncFIFOBuffered`` per neuron, registered ``inp.ready``) and the lockstep broadcast (direct
layout, ``inp.ready`` high but for a ``last`` element while the layer's ``busy`` register says
the previous vector's results are still in the neurons or the serializer). The solver sends any
vectors that follow the stream's rules (indices increase within a vector, ``last`` exactly on index
``in_features - 1``, elements may be missing) and any ``out.ready``.

Properties: the stream rules at the output; results leave in index order ``0 .. M - 1``
with ``last`` on exactly ``M - 1`` (so none lost, duplicated or reordered within a vector);
a result only for a vector whose input is complete (never more vectors out than in); while
a vector is owed, its last result leaves within a bounded number of ready cycles; every
neuron's accumulator and result register stay within the exact range of any input vector in
range (``LayerWeights.acc_range`` per neuron); no valid output after reset before an input;
(netlist) the queued layer's ``inp.ready`` depends on no input, and ``out.valid`` /
``out.payload`` of both on none.
"""

from __future__ import annotations

import numpy as np
from amaranth import Module, Signal
from amaranth.asserts import AnySeq
from amaranth.back import rtlil
from amaranth.hdl import Assert, Assume

from . import props
from .mutants import mutant_build
from .sby import Proof

SEED = 14
QUEUE_DEPTH = 4


def weights(sizes=(3, 2)):
    from tb.golden.mlp import synthetic_layer

    rng = np.random.default_rng(SEED)
    layers = []
    for n, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)):
        last = n == len(sizes) - 2
        layer = synthetic_layer(
            rng,
            a,
            b,
            density=0.7,
            activation="none" if last else "relu",
            in_bits=4,
            shift=2,
            output_bits=4,
            index_bits=2,
            code_bits=3,
            max_exp=2,
            bias_scale=8,
        )
        layer.name = f"fc{n + 1}"
        layers.append(layer)
    return layers


def neuron_bounds(w) -> list[tuple[int, int]]:
    """Per neuron, the exact range of its accumulator over every input vector in range (it
    starts at the bias; each term lies between its two extremes, one of them 0)."""
    xmin = -(1 << (w.in_bits - 1)) if w.in_signed else 0
    xmax = (1 << (w.in_bits - 1)) - 1 if w.in_signed else (1 << w.in_bits) - 1
    wi = w.weight_int
    lo = np.minimum(wi * xmax, wi * xmin).sum(axis=1) + w.bias_int
    hi = np.maximum(wi * xmax, wi * xmin).sum(axis=1) + w.bias_int
    return [(int(a), int(b)) for a, b in zip(lo, hi, strict=True)]


def vector_rules(m, inp, in_features: int) -> None:
    """Assume the input vectors follow the rules: increasing indices, ``last`` exactly on
    index ``in_features - 1``."""
    element = inp.payload
    inside = Signal(name="in_vector")
    prev = Signal.like(element.index, name="prev_index")
    with m.If(inp.valid):
        m.d.comb += Assume(element.last == (element.index == in_features - 1))
        m.d.comb += Assume(element.index < in_features)
        with m.If(inside):
            m.d.comb += Assume(element.index > prev)
    with m.If(inp.valid & inp.ready):
        m.d.sync += [prev.eq(element.index), inside.eq(~element.last)]


def check_results(m, inp, out, count: int, bound: int, *, stream_rules: bool = True) -> None:
    """Results in index order, ``last`` on the last, only for complete vectors, progress;
    with ``stream_rules`` also the output's stream rule and no output after reset before an
    input (formal/axis.py checks those at the AXI ports itself)."""
    take, give = inp.valid & inp.ready, out.valid & out.ready
    if stream_rules:
        props.sink_rules(m, out)
        props.idle_after_reset(m, inp, out)
    idx = Signal(range(count), name="out_idx")
    with m.If(out.valid):
        m.d.comb += Assert(out.payload.index == idx)
        m.d.comb += Assert(out.payload.last == (idx == count - 1))
    with m.If(give):
        m.d.sync += idx.eq(0 if count == 1 else (idx + 1) % count)
    # vectors counted in and out; a result only for a complete vector, a vector's last result
    # within ``bound`` ready cycles
    in_last, out_last = take & inp.payload.last, give & out.payload.last
    props.frames_owed(m, in_last, out_last, out.ready, bound, give=give)


def check_accumulators(m, frag, layer_weights, under=()) -> None:
    for j, (lo, hi) in enumerate(neuron_bounds(layer_weights)):
        path = (*under, f"neuron{j}")
        acc = props.find_signal(frag, "acc", under=path, domain="sync")
        m.d.comb += Assert((acc >= lo) & (acc <= hi))
        # the result register also holds its reset value 0 before the first vector
        result = props.find_signal(frag, "result", under=path, domain="sync")
        m.d.comb += Assert((result >= min(lo, 0)) & (result <= max(hi, 0)))


#: ready cycles, while a vector is owed, until a vector's last result leaves: the BMC confirms
#: these bounds within its depth (a vector's input ends at step 2 at the earliest)
LAYER_BOUND = 12
MLP_BOUND = 24


def layer_harness(layout: str):
    from rtl_gen.layer import Layer

    (w,) = weights()
    m = Module()
    dut = Layer(w, build="pow2", layout=layout, queue_depth=QUEUE_DEPTH)
    m.submodules.dut = frag = props.elaborated(dut)
    props.drive_source(m, dut.inp)
    m.d.comb += dut.out.ready.eq(AnySeq(1))
    props.source_rules(m, dut.inp)
    vector_rules(m, dut.inp, w.in_features)
    check_results(m, dut.inp, dut.out, w.out_features, LAYER_BOUND)
    check_accumulators(m, frag, w)
    return m


def mlp_harness():
    from rtl_gen.mlp import Mlp

    ws = weights((3, 2, 2))
    m = Module()
    dut = Mlp(ws, build="pow2", layout="csr", queue_depth=QUEUE_DEPTH)
    m.submodules.dut = frag = props.elaborated(dut)
    props.drive_source(m, dut.inp)
    m.d.comb += dut.out.ready.eq(AnySeq(1))
    props.source_rules(m, dut.inp)
    vector_rules(m, dut.inp, ws[0].in_features)
    check_results(m, dut.inp, dut.out, ws[-1].out_features, MLP_BOUND)
    for n, w in enumerate(ws):
        check_accumulators(m, frag, w, under=(f"layer{n}",))
    return m


def netlist(layout: str):
    from rtl_gen.layer import Layer

    (w,) = weights()
    text = rtlil.convert(Layer(w, build="pow2", layout=layout, queue_depth=QUEUE_DEPTH), name="dut")
    inputs = ["inp__valid", "inp__payload", "out__ready"]
    sinks = ["out__valid", "out__payload"]
    if layout == "csr":  # registered: "inp.ready is a register" (docs/mlp.md)
        sinks.append("inp__ready")
    # direct: inp.ready follows inp.valid and the element's last bit by design (a last element
    # waits on the busy register; direct_ready_netlist checks that it does not follow out.ready)
    return text, inputs, sinks


def direct_ready_netlist():
    text, _, _ = netlist("direct")
    return text, ["out__ready"], ["inp__ready"]


PROOFS = [
    Proof("layer_queued_bmc", lambda: layer_harness("csr"), "bmc", 20),
    Proof("layer_queued_cover", lambda: layer_harness("csr"), "cover", 20),
    Proof("layer_queued_netlist", lambda: netlist("csr"), "netlist", fast=True),
    Proof("layer_direct_bmc", lambda: layer_harness("direct"), "bmc", 20),
    Proof("layer_direct_cover", lambda: layer_harness("direct"), "cover", 20),
    Proof("layer_direct_netlist", lambda: netlist("direct"), "netlist", fast=True),
    Proof("layer_direct_ready_netlist", direct_ready_netlist, "netlist", fast=True),
    Proof("mlp_bmc", mlp_harness, "bmc", 26),
    Proof("mlp_cover", mlp_harness, "cover", 26),
]

MUTANTS = {
    # the serializer marks the first result as the vector's last
    "last": (
        "rtl_gen.layer",
        "current[count - 1] if count - 1 in members else 0",
        "current[0] if count - 1 in members else 0",
    ),
    # the serializer offers the first result only and forgets the rest
    "rest": (
        "rtl_gen.layer",
        "rest[g].eq(left),",
        "rest[g].eq(0),",
    ),
    # the queued layer's ready also follows out.ready: a combinational path
    "ready": (
        "rtl_gen.layer",
        "self.inp.ready.eq(drop | room),",
        "self.inp.ready.eq(drop | room | self.out.ready),",
    ),
    # the direct layer forgets that a vector's results are still under way: a last element
    # restarts the neurons while their previous results wait
    "busy": ("rtl_gen.layer", "m.d.sync += busy.eq(1)", "m.d.sync += busy.eq(0)"),
}


MUTANT_PROOFS = [
    Proof(
        "layer_last_bug",
        mutant_build(MUTANTS["last"], lambda: layer_harness("direct")),
        "bmc",
        20,
        "fail",
    ),
    Proof(
        "layer_rest_bug",
        mutant_build(MUTANTS["rest"], lambda: layer_harness("csr")),
        "bmc",
        20,
        "fail",
    ),
    Proof(
        "layer_ready_bug",
        mutant_build(MUTANTS["ready"], lambda: netlist("csr")),
        "netlist",
        0,
        "fail",
        fast=True,
    ),
    Proof(
        "layer_busy_bug",
        mutant_build(MUTANTS["busy"], lambda: layer_harness("direct")),
        "bmc",
        20,
        "fail",
    ),
    Proof("mlp_last_bug", mutant_build(MUTANTS["last"], mlp_harness), "bmc", 26, "fail"),
]
