"""The CNN blocks (rtl_gen/cnn/: ``MaxPool2``, ``Flatten``, ``ConvLayer``) on tiny parameters,
bounded proofs.

In every harness the solver drives any pixels (``valid`` held with its payload until taken) and
any ``o.ready``; the harness counts the input's rows and columns itself (the blocks ignore the
input ``last`` and count too). Properties:

* the stream rules at the output; no valid output after reset before an input;
* beats counted in and out: an output beat only while an accepted input beat still owes one
  (nothing invented), ``last`` exactly on each frame's last output beat (a harness counter),
  never more frames out than in, and while a frame whose input is complete is owed, its
  ``last`` leaves within a bounded number of ready cycles (nothing lost);
* ``MaxPool2``: every output beat equals the channel-wise maximum of its 2x2 window (the
  harness's own registers hold the window's pixels as they are accepted);
* ``Flatten``: every element is channel ``index mod C`` of the pixel it belongs to (index and
  value checked against the harness's copy of the pixel), indices increase, ``last`` exactly on
  index ``H·W·C - 1``, and ``o.valid`` exactly while elements are owed (with ``drop_zeros``:
  every nonzero channel and the frame's last element, no zero otherwise);
* ``ConvLayer``: the conv engine's frame checks (:func:`formal.conv.check_frames`) and each
  filter's adder-tree root within the exact range of its sum for any input in range;
* (netlist) what the docstrings say of ``ready``: ``i.ready`` never depends on ``i.valid`` or
  the pixel (row-scan ``ConvLayer``: on no input); ``o.valid`` and ``o.payload`` on no input.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from amaranth import Array, Cat, Module, Mux, Signal, Value, signed
from amaranth.asserts import AnySeq
from amaranth.back import rtlil
from amaranth.hdl import Assert

from . import conv, layer, props
from .mutants import mutant_build
from .sby import Proof

BITS = 2  # pixel bits of the blocks under proof
SEED = 14


def _sources(m, dut):
    props.drive_source(m, dut.i)
    m.d.comb += dut.o.ready.eq(AnySeq(1))
    props.source_rules(m, dut.i)
    props.sink_rules(m, dut.o)
    props.idle_after_reset(m, dut.i, dut.o)


def _position(m, take, height: int, width: int):
    """The harness's own row and column of the next input pixel."""
    col = Signal(range(width), name="in_col")
    row = Signal(range(height), name="in_row")
    with m.If(take):
        m.d.sync += col.eq(Mux(col == width - 1, 0, col + 1))
        with m.If(col == width - 1):
            m.d.sync += row.eq(Mux(row == height - 1, 0, row + 1))
    return row, col


def _out_index(m, o, beats: int):
    """Assert ``last`` exactly on output beat ``beats - 1`` of each frame (a harness counter)."""
    idx = Signal(range(beats), name="out_beat")
    with m.If(o.valid):
        m.d.comb += Assert(o.payload.last == (idx == beats - 1))
    with m.If(o.valid & o.ready):
        m.d.sync += idx.eq(Mux(idx == beats - 1, 0, idx + 1))


def _owed(m, allow, give, name="owed"):
    """Output beats owed: ``allow`` (an input beat that owes one) minus ``give``; a beat only
    while one is owed. Returns the count."""
    owed = Signal(signed(8), name=name)
    m.d.sync += owed.eq(owed + allow - give)
    with m.If(give):
        m.d.comb += Assert(owed > 0)
    return owed


# -- MaxPool2 --------------------------------------------------------------------------------

POOL = {"4x4": (4, 4, 2), "5x5": (5, 5, 1)}  # (height, width, channels)
POOL_DEPTH = {"4x4": 20, "5x5": 32}
#: ready cycles, while a frame is owed, until its last beat leaves (latency 1: none)
POOL_BOUND = 0


def maxpool(shape: str):
    from rtl_gen.cnn import MaxPool2

    h, w, c = POOL[shape]
    return MaxPool2(height=h, width=w, channels=c, bits=BITS)


def maxpool_harness(shape: str):
    m = Module()
    dut = maxpool(shape)
    m.submodules.dut = dut
    h, w, cs = dut.height, dut.width, dut.channels
    i, o = dut.i, dut.o
    _sources(m, dut)
    take, give = i.valid & i.ready, o.valid & o.ready
    row, col = _position(m, take, h, w)
    half, rows = w // 2, 2 * (h // 2)
    completes = row[0] & col[0] & (col < 2 * half) & (row < rows)

    # the window's pixels as the harness sees them: channel-wise maxima, independent registers
    def chans(word):
        return [Value.cast(word).word_select(c, BITS) for c in range(cs)]

    def cmax(a, b):
        return Cat(*(Mux(x > y, x, y) for x, y in zip(chans(a), chans(b), strict=True)))

    pixel = Value.cast(i.payload.value)
    top = Array(Signal(len(pixel), name=f"top{s}") for s in range(half))  # even row's pair max
    left = Signal(len(pixel), name="left_pixel")  # column 2s of the current row
    expected = Signal(len(pixel), name="expected")
    with m.If(take):
        with m.If(~col[0]):
            m.d.sync += left.eq(pixel)
        with m.Elif(~row[0] & (col < 2 * half)):
            m.d.sync += top[col >> 1].eq(cmax(left, pixel))
        with m.If(completes):
            m.d.sync += expected.eq(cmax(top[col >> 1], cmax(left, pixel)))
    owed = _owed(m, take & completes, give)
    with m.If(o.valid):
        m.d.comb += Assert(Value.cast(o.payload.value) == expected)
        m.d.comb += Assert(owed == 1)  # one beat at a time: it waits in the output register
    _out_index(m, o, (h // 2) * half)
    frame_in = take & completes & (row == rows - 1) & (col == 2 * half - 1)
    props.frames_owed(m, frame_in, give & o.payload.last, o.ready, POOL_BOUND)
    return m


# -- Flatten ---------------------------------------------------------------------------------

FLAT = (2, 2, 2)  # (height, width, channels): 8 elements
FLAT_DEPTH = 20
#: ready cycles, while a frame is owed, until its last element leaves: the last pixel's other
#: channels go first (one each)
FLAT_BOUND = FLAT[2] - 1


def flatten(drop_zeros: bool):
    from rtl_gen.cnn import Flatten

    h, w, c = FLAT
    return Flatten(height=h, width=w, channels=c, bits=BITS, drop_zeros=drop_zeros)


def flatten_harness(drop_zeros: bool):
    m = Module()
    dut = flatten(drop_zeros)
    m.submodules.dut = dut
    cs, features = dut.channels, dut.features
    pixels = dut.height * dut.width
    i, o = dut.i, dut.o
    _sources(m, dut)
    take, give = i.valid & i.ready, o.valid & o.ready
    pixel = Value.cast(i.payload.value)

    number = Signal(range(pixels), name="pixel_no")  # the harness's pixel count in the frame
    frame_last = number == pixels - 1
    held = Signal(len(pixel), name="held_pixel")
    base = Signal(range(features), name="held_base")  # index of the held pixel's channel 0
    kept = []
    for c in range(cs):
        nonzero = pixel.word_select(c, BITS).any() if drop_zeros else 1
        kept.append(nonzero | frame_last if c == cs - 1 else nonzero)
    count = sum(Value.cast(k) for k in kept)
    with m.If(take):
        m.d.sync += [
            number.eq(Mux(frame_last, 0, number + 1)),
            held.eq(pixel),
            base.eq(number * cs),
        ]

    owed = _owed(m, Mux(take, count, 0), give)
    m.d.comb += Assert(o.valid == (owed > 0))  # elements leave, one a cycle, while owed
    element = o.payload
    offset = Signal(range(cs + 1), name="offset")
    m.d.comb += offset.eq(element.index - base)
    sent = Signal(name="sent")  # an element of the held pixel has left
    prev = Signal.like(element.index, name="prev_index")
    with m.If(take):
        m.d.sync += sent.eq(0)
    with m.Elif(give):
        m.d.sync += [sent.eq(1), prev.eq(element.index)]
    with m.If(o.valid):
        m.d.comb += [
            Assert((element.index >= base) & (offset < cs)),
            Assert(
                element.value == held.word_select(offset[: max(1, (cs - 1).bit_length())], BITS)
            ),
            Assert(element.last == (element.index == features - 1)),
        ]
        if drop_zeros:
            m.d.comb += Assert(element.value.any() | element.last)
        with m.If(sent):
            m.d.comb += Assert(element.index > prev)
    props.frames_owed(m, take & frame_last, give & element.last, o.ready, FLAT_BOUND)
    return m


# -- ConvLayer -------------------------------------------------------------------------------

CONV_SIZE = 4  # 4x4 image, K = 3: a 2x2 output
#: streaming, serial, overlapped: a frame from reset (its last pixel at step 15 at the
#: earliest) and its drain bound after it (7, 11, 15 ready cycles)
CONV_DEPTH = {2: 26, 3: 36, 4: 33}
#: the stall mutant: the output buffer holds three results, so the first one lost is a frame's
#: fourth (its last), which the drain check sees only after the frame's drain bound
CONV_STALL_DEPTH = 34


def conv_weights():
    """Two filters over two input channels, K = 3: random 0 and ±2**e (e <= 1), seed 14."""
    rng = np.random.default_rng(SEED)
    mags = rng.choice([0, 1, 2], size=(2, 2, 3, 3), p=[0.4, 0.3, 0.3])
    signs = rng.choice([-1, 1], size=mags.shape)
    return mags * signs, np.array([3, -5])


def conv_layer(line_buffers: int = 2):
    from rtl_gen.cnn import ConvLayer

    weights, bias = conv_weights()
    return ConvLayer(
        height=CONV_SIZE,
        width=CONV_SIZE,
        in_channels=2,
        weights=weights,
        bias=bias,
        shift=1,
        activation="relu",
        out_bits=3,
        in_bits=BITS,
        line_buffers=line_buffers,
    )


def conv_sum_bounds(dut) -> list[tuple[int, int]]:
    """Per filter, the exact range of bias + rounding + sum of products for pixels in range."""
    top = (1 << dut.in_bits) - 1
    out = []
    for o in range(dut.out_channels):
        w = dut.weights[o].reshape(-1)
        const = int(dut.bias[o]) + (1 << (dut.shift - 1) if dut.shift > 0 else 0)  # rounding
        out.append(
            (const + int(np.minimum(w * top, 0).sum()), const + int(np.maximum(w * top, 0).sum()))
        )
    return out


def conv_layer_harness(line_buffers: int = 2):
    m = Module()
    dut = conv_layer(line_buffers)
    m.submodules.dut = frag = props.elaborated(dut)
    _sources(m, dut)
    p = SimpleNamespace(
        kernel=dut.kernel,
        pixels_per_clock=1,
        beats_per_row=dut.width,
        height=dut.height,
        out_rows=dut.height - dut.kernel + 1,
        mode=dut.mode,
        latency=dut.latency,
    )
    conv.check_frames(m, p, dut.i, dut.o)
    for o, (lo, hi) in enumerate(conv_sum_bounds(dut)):
        root = props.find_signal(frag, f"f{o}_s{dut.stages - 1}_0", domain="sync")
        m.d.comb += Assert((root >= lo) & (root <= hi))
    return m


# -- the whole CNN ---------------------------------------------------------------------------


def cnn_spec(size: int = 4):
    """The smallest CNN the generator builds: a ``size``x``size`` 2-bit image, conv K = 3 with
    1 -> 2 channels (2-bit ReLU output), a 2x2 pool, the flatten and one fc layer to 2 logits
    (``synthetic_layer``, seed 14, direct layout as ``Cnn`` builds pow2 layers)."""
    from rtl_gen.cnn.spec import CnnSpec, ConvSpec, PoolSpec
    from tb.golden.mlp import synthetic_layer

    rng = np.random.default_rng(SEED)
    weights, bias = conv_weights()
    weights = weights[:, :1]
    conv1 = ConvSpec("conv1", (1, size, size), weights, bias, 1, "relu", BITS, BITS)
    s = size - 2
    pool1 = PoolSpec("pool1", (2, s, s), BITS)
    features = 2 * (s // 2) ** 2
    fc1 = synthetic_layer(
        rng, features, 2, density=1.0, activation="none", in_bits=BITS, shift=1, output_bits=4,
        index_bits=2, code_bits=3, max_exp=2, bias_scale=8,
    )  # fmt: skip
    fc1.name = "fc1"
    return CnnSpec((1, size, size), BITS, (conv1, pool1), (fc1,))


CNN_SIZE = 4
#: ready cycles, while an image is owed, until its last logit leaves; 25 fails (the BMC finds
#: a trace)
CNN_BOUND = 27
#: 4x4: an image from reset (last pixel at step 15 at the earliest) and the bound after it
#: (first logits out: step 42); 6x6: last pixel at step 35, first logits out at step 62
#: (a longer run: CNN_6X6_TIMEOUT)
CNN_DEPTH = {4: 44, 6: 64}
CNN_6X6_TIMEOUT = 1800


def cnn_top(size: int = CNN_SIZE):
    from rtl_gen.cnn.network import Cnn

    return Cnn(cnn_spec(size))


def check_logits(m, take, inp_end, out, classes: int, bound: int) -> None:
    """Logits in index order ``0 .. classes - 1`` with ``last`` exactly on the last, only for
    complete images, an owed image's last logit within ``bound`` ready cycles."""
    idx = Signal(range(classes), name="logit_idx")
    give = out.valid & out.ready
    with m.If(out.valid):
        m.d.comb += Assert(out.payload.index == idx)
        m.d.comb += Assert(out.payload.last == (idx == classes - 1))
    with m.If(give):
        m.d.sync += idx.eq(Mux(idx == classes - 1, 0, idx + 1))
    props.frames_owed(m, take & inp_end, give & out.payload.last, out.ready, bound, give=give)


def cnn_harness(size: int = CNN_SIZE):
    m = Module()
    dut = cnn_top(size)
    m.submodules.dut = dut
    props.drive_source(m, dut.inp)
    m.d.comb += dut.out.ready.eq(AnySeq(1))
    props.source_rules(m, dut.inp)
    props.sink_rules(m, dut.out)
    props.idle_after_reset(m, dut.inp, dut.out)
    take = dut.inp.valid & dut.inp.ready
    pixels = size * size
    number = Signal(range(pixels), name="pixel_no")
    with m.If(take):
        m.d.sync += number.eq(Mux(number == pixels - 1, 0, number + 1))
    check_logits(m, take, number == pixels - 1, dut.out, dut.spec.classes, CNN_BOUND)
    return m


# -- netlist checks --------------------------------------------------------------------------


def ready_netlist(dut, extra=()):
    """``i.ready`` depends on neither ``i.valid`` nor the pixel (nor ``extra``)."""
    return rtlil.convert(dut, name="dut"), ["i__valid", "i__payload", *extra], ["i__ready"]


def output_netlist(dut):
    text = rtlil.convert(dut, name="dut")
    return text, ["i__valid", "i__payload", "o__ready"], ["o__valid", "o__payload"]


PROOFS = [
    Proof("pool_bmc", lambda: maxpool_harness("4x4"), "bmc", POOL_DEPTH["4x4"]),
    Proof("pool_cover", lambda: maxpool_harness("4x4"), "cover", POOL_DEPTH["4x4"], fast=True),
    Proof("pool_5x5_bmc", lambda: maxpool_harness("5x5"), "bmc", POOL_DEPTH["5x5"]),
    Proof("pool_5x5_cover", lambda: maxpool_harness("5x5"), "cover", POOL_DEPTH["5x5"]),
    Proof("pool_ready_netlist", lambda: ready_netlist(maxpool("4x4")), "netlist", fast=True),
    Proof("pool_output_netlist", lambda: output_netlist(maxpool("4x4")), "netlist", fast=True),
    Proof("flatten_bmc", lambda: flatten_harness(False), "bmc", FLAT_DEPTH),
    Proof("flatten_cover", lambda: flatten_harness(False), "cover", FLAT_DEPTH),
    Proof("flatten_skip_bmc", lambda: flatten_harness(True), "bmc", FLAT_DEPTH, fast=True),
    Proof("flatten_skip_cover", lambda: flatten_harness(True), "cover", FLAT_DEPTH),
    Proof("flatten_ready_netlist", lambda: ready_netlist(flatten(True)), "netlist", fast=True),
    Proof("flatten_output_netlist", lambda: output_netlist(flatten(True)), "netlist", fast=True),
    Proof("convlayer_n2_bmc", lambda: conv_layer_harness(2), "bmc", CONV_DEPTH[2]),
    Proof("convlayer_n2_cover", lambda: conv_layer_harness(2), "cover", CONV_DEPTH[2]),
    Proof("convlayer_n3_bmc", lambda: conv_layer_harness(3), "bmc", CONV_DEPTH[3]),
    Proof("convlayer_n3_cover", lambda: conv_layer_harness(3), "cover", CONV_DEPTH[3]),
    Proof("convlayer_n2_ready_netlist", lambda: ready_netlist(conv_layer(2)), "netlist", fast=True),
    Proof(
        "convlayer_n3_ready_netlist",
        lambda: ready_netlist(conv_layer(3), ["o__ready"]),
        "netlist",
        fast=True,
    ),
    Proof("convlayer_n4_bmc", lambda: conv_layer_harness(4), "bmc", CONV_DEPTH[4]),
    Proof("convlayer_n4_cover", lambda: conv_layer_harness(4), "cover", CONV_DEPTH[4]),
    Proof(
        "convlayer_n4_ready_netlist",
        lambda: ready_netlist(conv_layer(4), ["o__ready"]),
        "netlist",
    ),
    Proof("convlayer_output_netlist", lambda: output_netlist(conv_layer(2)), "netlist", fast=True),
    Proof("cnn_bmc", lambda: cnn_harness(4), "bmc", CNN_DEPTH[4]),
    Proof("cnn_cover", lambda: cnn_harness(4), "cover", CNN_DEPTH[4]),
    Proof("cnn_6x6_bmc", lambda: cnn_harness(6), "bmc", CNN_DEPTH[6], timeout=CNN_6X6_TIMEOUT),
    Proof("cnn_6x6_cover", lambda: cnn_harness(6), "cover", CNN_DEPTH[6]),
]

MUTANTS = {
    # the pool keeps the smaller of two values: a wrong maximum
    "pool_min": (
        "rtl_gen.cnn.maxpool",
        "Mux(channel(a, c) > channel(b, c), channel(a, c), channel(b, c))",
        "Mux(channel(a, c) < channel(b, c), channel(a, c), channel(b, c))",
    ),
    # the flatten takes the next pixel after any element, not only the pixel's final one
    "flatten_final": (
        "rtl_gen.cnn.flatten",
        "self.i.ready.eq(~busy | (self.o.ready & final)),",
        "self.i.ready.eq(~busy | self.o.ready),",
    ),
    # the conv layer's pipeline keeps running into a full output buffer while the sink stalls
    "conv_stall": (
        "rtl_gen.cnn.conv_layer",
        "run.eq(~(low & high))",
        "run.eq(1)",
    ),
}

MUTANT_PROOFS = [
    Proof(
        "pool_min_bug",
        mutant_build(MUTANTS["pool_min"], lambda: maxpool_harness("4x4")),
        "bmc",
        POOL_DEPTH["4x4"],
        "fail",
        fast=True,
    ),
    Proof(
        "flatten_final_bug",
        mutant_build(MUTANTS["flatten_final"], lambda: flatten_harness(True)),
        "bmc",
        FLAT_DEPTH,
        "fail",
        fast=True,
    ),
    Proof(
        "convlayer_stall_bug",
        mutant_build(MUTANTS["conv_stall"], lambda: conv_layer_harness(2)),
        "bmc",
        CONV_STALL_DEPTH,
        "fail",
    ),
    # the fc layer's serializer marks the first logit as the image's last
    Proof(
        "cnn_last_bug",
        mutant_build(layer.MUTANTS["last"], lambda: cnn_harness(4)),
        "bmc",
        CNN_DEPTH[4],
        "fail",
    ),
]
