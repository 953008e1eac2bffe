"""The AXI4-Stream tops (``<core>_axis.v``, rtl_gen/export/axis.py) of the conv engine (streaming
and serial row-scan modes) and the MLP, bounded proofs at the AXI boundary.

The harness instantiates the generated Verilog wrapper (``Instance``) around the core converted
to Verilog exactly as the export writes them (:func:`rtl_gen.verilog.to_verilog`,
:func:`rtl_gen.export.axis.axis_top`); sby reads both files before the harness. The solver drives
``aresetn`` (any cycle), ``s_axis_*`` (every bit of ``tdata``, ``tuser`` and ``tlast``; held until
taken while ``aresetn`` is high, as AXI4-Stream requires of a master) and ``m_axis_tready``. The
harness's registers reset with ``!aresetn``, as the wrapper's core does.

Properties, at the wrapper's ports only:

* while ``aresetn`` is low, ``s_axis_tready`` and ``m_axis_tvalid`` are low;
* ``m_axis_tvalid`` never falls and ``m_axis_tdata``/``tlast``/``tuser``/``tkeep`` never change
  while ``m_axis_tready`` is low (``aresetn`` high);
* no ``m_axis_tvalid`` after ``aresetn`` low until an input beat has been taken;
* beats counted in and out: the conv engine's checks of :func:`formal.conv.check_frames` (no
  beat invented, ``tlast`` exactly on each frame's last beat, never more frames out than in, a
  finished frame drained within a bounded number of ready cycles); the MLP's of
  :func:`formal.layer.check_results` (``tuser`` = result index in order, ``tlast`` exactly on
  the last, results only for complete vectors, a vector's last result within a bound) with
  input vectors that follow the rules (``tuser`` increasing, ``tlast`` exactly on the last
  index);
* cover: a frame (vector) leaves with ``tlast``.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth import Cat, ClockSignal, Instance, Module, Mux, ResetSignal, Signal
from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Assume
from amaranth.lib import data

from . import cnn, conv, layer, neuron, props
from .mutants import mutant_build
from .sby import Proof

INPUTS = ("s_axis_tdata", "s_axis_tvalid", "s_axis_tlast", "s_axis_tuser", "m_axis_tready")
PAYLOAD = ("tdata", "tlast", "tuser", "tkeep")


def wrapped(m, component, core: str):
    """Instantiate the AXI4-Stream top of ``component`` (core module ``core``) in ``m``, every
    input free. Returns ``(ports, aresetn, files)``: the wrapper's ports as signals, the reset
    and the Verilog files sby must read."""
    from rtl_gen.export import axis
    from rtl_gen.verilog import to_verilog

    top = axis.axis_top(component, core)
    ports = {p["name"]: Signal(p["width"], name=p["name"]) for p in top.ports}
    conns = {"i_aclk": ClockSignal()}
    for p in top.ports:
        if p["name"] == "aclk":
            continue
        prefix = "i_" if p["direction"] == "input" else "o_"
        conns[prefix + p["name"]] = ports[p["name"]]
        if p["direction"] == "input":
            m.d.comb += ports[p["name"]].eq(AnySeq(p["width"]))
    m.submodules.axis = Instance(top.module, **conns)
    aresetn = ports["aresetn"]
    # the harness's registers reset with the core: the (free) reset of the harness's domain
    # is the wrapper's !aresetn
    m.d.comb += Assume(ResetSignal() == ~aresetn)
    files = {f"{core}.v": to_verilog(component, name=core), top.source: top.text}
    return ports, aresetn, files


def _payload(ports, side: str):
    return Cat(*(ports[f"{side}_{f}"] for f in PAYLOAD if f"{side}_{f}" in ports))


def axi_rules(m, ports, aresetn):
    """Reset, the master's rule assumed on ``s_axis``, the slave-side rule asserted on
    ``m_axis``, idle after reset. Returns the ``s_axis`` and ``m_axis`` streams (``valid``,
    ``ready``) for the counting checks."""
    s = SimpleNamespace(valid=ports["s_axis_tvalid"], ready=ports["s_axis_tready"])
    o = SimpleNamespace(valid=ports["m_axis_tvalid"], ready=ports["m_axis_tready"])
    with m.If(~aresetn):
        m.d.comb += Assert(~s.ready & ~o.valid)
    for side, stream, check in (("s_axis", s, Assume), ("m_axis", o, Assert)):
        payload = _payload(ports, side)
        stalled = Signal(name=f"{side}_stalled")
        held = Signal(len(payload), name=f"{side}_payload_q")
        m.d.sync += [stalled.eq(stream.valid & ~stream.ready), held.eq(payload)]
        with m.If(stalled & aresetn):
            m.d.comb += check(stream.valid & (payload == held))
    props.idle_after_reset(m, s, o)
    return s, o


def conv_harness(p):
    from rtl_gen.conv import ConvEngine

    m = Module()
    ports, aresetn, files = wrapped(m, ConvEngine(p), "conv")
    s, o = axi_rules(m, ports, aresetn)
    payload = SimpleNamespace(last=ports["m_axis_tlast"])
    if p.pixels_per_clock > 1:
        raise ValueError("the AXI harness maps tkeep for one lane only")
    with m.If(aresetn):
        conv.check_frames(m, p, s, SimpleNamespace(valid=o.valid, ready=o.ready, payload=payload))
    return m, files


def mlp_harness():
    from rtl_gen.mlp import Mlp

    ws = layer.weights((3, 2, 2))
    dut = Mlp(ws, build="pow2", layout="csr", queue_depth=layer.QUEUE_DEPTH)
    m = Module()
    ports, aresetn, files = wrapped(m, dut, "mlp")
    s, o = axi_rules(m, ports, aresetn)
    element = data.StructLayout({"index": len(ports["s_axis_tuser"]), "last": 1})
    inp = Signal(element, name="s_element")
    out = Signal(element, name="m_element")
    m.d.comb += [
        inp.index.eq(ports["s_axis_tuser"]),
        inp.last.eq(ports["s_axis_tlast"]),
        out.index.eq(ports["m_axis_tuser"]),
        out.last.eq(ports["m_axis_tlast"]),
    ]
    s.payload, o.payload = inp, out
    with m.If(aresetn):
        layer.vector_rules(m, s, ws[0].in_features)
        layer.check_results(m, s, o, ws[-1].out_features, layer.MLP_BOUND, stream_rules=False)
    return m, files


def neuron_harness(layout: str = "csr"):
    """The lone neuron's top (``make verilog DESIGN=neuron``): the wrapper drives the broadcast
    (``done`` is ``s_axis_tready``, ``accept`` a transfer); one ``m_axis`` beat per vector, each
    with ``tlast``."""
    dut = neuron.neuron(layout)
    m = Module()
    ports, aresetn, files = wrapped(m, dut, "neuron")
    s, o = axi_rules(m, ports, aresetn)
    element = data.StructLayout({"index": len(ports["s_axis_tuser"]), "last": 1})
    inp = Signal(element, name="s_element")
    m.d.comb += [inp.index.eq(ports["s_axis_tuser"]), inp.last.eq(ports["s_axis_tlast"])]
    s.payload = inp
    with m.If(aresetn):
        layer.vector_rules(m, s, dut.in_features)
        with m.If(o.valid):
            m.d.comb += Assert(ports["m_axis_tlast"])
        give = o.valid & o.ready
        props.frames_owed(m, s.valid & s.ready & inp.last, give, o.ready, neuron.BOUND[layout])
    return m, files


def cnn_harness():
    """The CNN's top: pixels in (``s_axis_tlast`` free: the core counts), logits out with their
    index in ``m_axis_tuser`` and ``tlast`` on the last."""
    dut = cnn.cnn_top()
    m = Module()
    ports, aresetn, files = wrapped(m, dut, "cnn")
    s, o = axi_rules(m, ports, aresetn)
    o.payload = SimpleNamespace(index=ports["m_axis_tuser"], last=ports["m_axis_tlast"])
    take = s.valid & s.ready
    pixels = cnn.CNN_SIZE * cnn.CNN_SIZE
    number = Signal(range(pixels), name="pixel_no")
    with m.If(take):
        m.d.sync += number.eq(Mux(number == pixels - 1, 0, number + 1))
    with m.If(aresetn):
        cnn.check_logits(m, take, number == pixels - 1, o, dut.spec.classes, cnn.CNN_BOUND)
    return m, files


#: conv: N = 2 (streaming: s_axis_tready follows m_axis_tready) and N = 3 (serial row scan:
#: a registered ready), P = 1, 4x4 frames, as formal/conv.py; each depth covers a frame from
#: reset and the drain bound after its end
CONV = conv.params(2, conv.WIDTH, conv.HEIGHT)
CONV_DEPTH = 26
CONV_SERIAL = conv.params(3, conv.WIDTH, conv.HEIGHT)
CONV_SERIAL_DEPTH = 36
MLP_DEPTH = 26
NEURON_DEPTH = neuron.DEPTH["csr"]

PROOFS = [
    Proof("axis_conv_bmc", lambda: conv_harness(CONV), "bmc", CONV_DEPTH, fast=True),
    Proof("axis_conv_cover", lambda: conv_harness(CONV), "cover", CONV_DEPTH, fast=True),
    Proof("axis_conv_n3_bmc", lambda: conv_harness(CONV_SERIAL), "bmc", CONV_SERIAL_DEPTH),
    Proof("axis_conv_n3_cover", lambda: conv_harness(CONV_SERIAL), "cover", CONV_SERIAL_DEPTH),
    Proof("axis_mlp_bmc", mlp_harness, "bmc", MLP_DEPTH),
    Proof("axis_mlp_cover", mlp_harness, "cover", MLP_DEPTH),
    Proof("axis_neuron_bmc", neuron_harness, "bmc", NEURON_DEPTH, fast=True),
    Proof("axis_neuron_cover", neuron_harness, "cover", NEURON_DEPTH),
    Proof(
        "axis_neuron_direct_bmc",
        lambda: neuron_harness("direct"),
        "bmc",
        neuron.DEPTH["direct"],
    ),
    Proof(
        "axis_neuron_direct_cover",
        lambda: neuron_harness("direct"),
        "cover",
        neuron.DEPTH["direct"],
    ),
    Proof("axis_cnn_bmc", cnn_harness, "bmc", cnn.CNN_DEPTH[cnn.CNN_SIZE]),
    Proof("axis_cnn_cover", cnn_harness, "cover", cnn.CNN_DEPTH[cnn.CNN_SIZE]),
]

MUTANTS = {
    # m_axis_tvalid not masked by aresetn: the core's valid register is still set in the
    # first reset cycle
    "reset": (
        "rtl_gen.export.axis",
        '"    assign m_axis_tvalid = core_out_valid & aresetn;",',
        '"    assign m_axis_tvalid = core_out_valid;",',
    ),
    # s_axis_tready without the core's ready: beats taken while the core stalls are lost
    "ready": (
        "rtl_gen.export.axis",
        '"    assign s_axis_tready = core_in_ready & aresetn;",',
        '"    assign s_axis_tready = aresetn;",',
    ),
    # the neuron's accept without its done: an element the core has not finished with is
    # taken by the core but not by s_axis (offered again: taken twice)
    "accept": (
        "rtl_gen.export.axis",
        '"    wire core_in_accept = s_axis_tvalid & core_in_ready & aresetn;"',
        '"    wire core_in_accept = s_axis_tvalid & aresetn;"',
    ),
    # tlast on every beat, as for a core whose output has no last
    "last": (
        "rtl_gen.export.axis",
        'tlast = f"core_out[{m.last}]" if m.last is not None else "1\'b1"',
        'tlast = "1\'b1"',
    ),
}


MUTANT_PROOFS = [
    Proof(
        "axis_reset_bug",
        mutant_build(MUTANTS["reset"], lambda: conv_harness(CONV)),
        "bmc",
        CONV_DEPTH,
        "fail",
        fast=True,
    ),
    Proof(
        "axis_ready_bug",
        mutant_build(MUTANTS["ready"], lambda: conv_harness(CONV)),
        "bmc",
        CONV_DEPTH,
        "fail",
    ),
    Proof("axis_last_bug", mutant_build(MUTANTS["last"], mlp_harness), "bmc", MLP_DEPTH, "fail"),
    Proof(
        "axis_accept_bug",
        mutant_build(MUTANTS["accept"], neuron_harness),
        "bmc",
        NEURON_DEPTH,
        "fail",
    ),
]
