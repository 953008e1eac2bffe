"""Neuron, layer and MLP in the Amaranth simulator (fast): results and cycles against the golden
model, parameter checks, activation tables."""

import itertools
import zlib

import numpy as np
import pytest
from amaranth.sim import Simulator

from rtl_gen.layer import Layer
from rtl_gen.mlp import Mlp
from rtl_gen.neuron import LayerWeights, LutActivation, Neuron, lut_table
from rtl_gen.neuron.neuron import BLOCK_ROM_BITS
from rtl_gen.neuron.weights import BLOCK_RAM_BITS, rom_cost
from tb.golden import mlp as golden

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


def stream_vectors(dut, vectors, sparse: bool, backpressure=None):
    """Drive ``vectors`` one at a time at full rate; return ``[(outputs, cycles)]``."""
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    runs = []
    rng = np.random.default_rng(5)

    async def bench(ctx):
        await ctx.tick().repeat(2)
        for vector in vectors:
            elements = golden._elements(vector, sparse)
            outputs, sent, t = {}, 0, 0
            while True:
                if sent < len(elements):
                    j, x, last = elements[sent]
                    ctx.set(dut.inp.payload, {"index": j, "value": x, "last": last})
                ctx.set(dut.inp.valid, sent < len(elements))
                ready = backpressure is None or rng.random() >= backpressure
                ctx.set(dut.out.ready, ready)
                _, _, iv, ir, ov, out = await ctx.tick().sample(
                    dut.inp.valid, dut.inp.ready, dut.out.valid, dut.out.payload
                )
                sent += iv and ir
                t += 1
                # a layer that loses its `last` or stops taking elements fails, not hangs
                assert t < 100 * (len(vector) + 50), f"no last result after {t} cycles"
                if ov and ready:
                    outputs[out.index] = out.value
                    if out.last:
                        break
            runs.append((outputs, t))

    sim.add_testbench(bench)
    sim.run()
    return runs


def dense_vector(outputs, count):
    return [outputs.get(i, 0) for i in range(count)]


LAYER_BUILDS = [
    ("dense", "csr"),
    ("codebook", "csr"),
    ("pow2", "csr"),
    ("codebook", "direct"),
    ("pow2", "direct"),
]


@pytest.mark.parametrize(
    ("build", "layout"), LAYER_BUILDS, ids=[f"{b}-{a}" for b, a in LAYER_BUILDS]
)
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_layer_results_and_cycles(build, layout, activation):
    # a seed that does not change with Python's hash randomisation: the same data every run
    rng = np.random.default_rng(zlib.crc32(f"{build}-{activation}".encode()))
    layer = golden.synthetic_layer(
        rng,
        37,
        3,
        weight_format="codebook" if build == "codebook" else "pow2",
        density=0.3,
        activation=activation,
        shift=10,
    )
    x = golden.random_images(rng, 4, 37)
    # the ROMs of this size are LUTs; in block RAM (a synchronous read) the same results and
    # cycles
    styles = ("auto", "block") if activation == "relu" else ("auto",)
    for zero_skip, rom_style in itertools.product((False, True), styles):
        dut = Layer(layer, build=build, layout=layout, drop_zeros=zero_skip, rom_style=rom_style)
        assert dut.layout == layout
        assert dut.neuron(0).block_rom == (rom_style == "block")
        for vector, (outputs, cycles) in zip(x, stream_vectors(dut, x, zero_skip), strict=True):
            assert dense_vector(outputs, 3) == golden.layer_forward(layer, vector).tolist()
            assert cycles == golden.mlp_cycles([layer], vector, build, zero_skip, layout=layout)


@pytest.mark.parametrize("layout", ["csr", "direct"])
def test_layer_wide_serializer(layout):
    """40 neurons: the serializer's pick spans several groups of GATHER_GROUP neurons. With
    zero results skipped, exactly the nonzero results and the last leave, in index order,
    with their values."""
    from rtl_gen.layer import GATHER_GROUP

    count = 40
    assert count > 2 * GATHER_GROUP
    rng = np.random.default_rng(41)
    layer = golden.synthetic_layer(
        rng, 12, count, weight_format="pow2", density=0.4, activation="relu", shift=6
    )
    x = golden.random_images(rng, 4, 12)
    dut = Layer(layer, build="pow2", layout=layout, skip_zero_outputs=True)
    for vector, (outputs, _) in zip(x, stream_vectors(dut, x, False), strict=True):
        want = golden.layer_forward(layer, vector)
        assert 0 < np.count_nonzero(want[:-1]) < count - 1  # some results skipped, some sent
        assert list(outputs) == [i for i in range(count) if want[i] != 0 or i == count - 1]
        assert dense_vector(outputs, count) == want.tolist()


def test_rom_style_rule():
    """``rom_style="auto"``: block RAM from BLOCK_ROM_BITS bits up; the choice is the ROM's
    ``rom_style`` attribute in the Verilog; a bad style is a one-line error."""
    from amaranth.back import verilog

    rng = np.random.default_rng(3)
    small = golden.synthetic_layer(rng, 40, 2, density=1.0)  # 40 x 8 bits: LUTs
    large = golden.synthetic_layer(rng, 200, 2, density=1.0)  # 200 x 8 bits: block RAM
    # on the bound: 127 and 128 entries of 8 bits
    below = golden.synthetic_layer(rng, BLOCK_ROM_BITS // 8 - 1, 2, density=1.0)
    at = golden.synthetic_layer(rng, BLOCK_ROM_BITS // 8, 2, density=1.0)
    for layer, block in ((small, False), (large, True), (below, False), (at, True)):
        neuron = Layer(layer, build="pow2", layout="csr").neuron(0)
        assert (neuron.rom_bits >= BLOCK_ROM_BITS) == block == neuron.block_rom
        text = verilog.convert(neuron, name="n", emit_src=False)
        assert ('rom_style = "block"' in text) == block
    forced = Layer(small, build="pow2", layout="direct", rom_style="logic").neuron(0)
    assert 'rom_style = "logic"' in verilog.convert(forced, name="n", emit_src=False)
    with pytest.raises(ValueError, match="rom_style must be one of"):
        Layer(small, build="pow2", rom_style="bram")


@pytest.mark.parametrize("layout", ["direct", "auto"])
def test_mlp_direct_layout_backpressure(layout):
    """Direct (and auto) ROM layout: exact results and cycles, zero-skipping pays off, and
    back-to-back vectors under backpressure (two ``last`` elements in a row included)."""
    rng = np.random.default_rng(17)
    layers = golden.synthetic_mlp(rng, (20, 9, 6, 4), density=0.7)
    for layer in layers:
        layer.shift = 8
    x = golden.random_images(rng, 5, 20)
    x[1] = 0  # only the last pixel is sent: two last elements back to back downstream
    x[2, :-1] = 0
    for zero_skip in (False, True):
        dut = Mlp(layers, build="pow2", zero_skip=zero_skip, layout=layout)
        assert dut.layouts == golden.layer_layouts(layers, "pow2", layout)
        runs = stream_vectors(dut, x, zero_skip)
        for vector, (outputs, cycles) in zip(x, runs, strict=True):
            assert dense_vector(outputs, 4) == golden.mlp_forward(layers, vector)[-1].tolist()
            assert cycles == golden.mlp_cycles(layers, vector, "pow2", zero_skip, layout=layout)
        runs = stream_vectors(dut, x, zero_skip, backpressure=0.5)
        for vector, (outputs, _) in zip(x, runs, strict=True):
            assert dense_vector(outputs, 4) == golden.mlp_forward(layers, vector)[-1].tolist()
    if layout == "direct":
        for vector in x:
            skip = golden.mlp_cycles(layers, vector, "pow2", True, layout="direct")
            plain = golden.mlp_cycles(layers, vector, "pow2", False, layout="direct")
            zeros = int((vector[:-1] == 0).sum())
            # without skipping both take one cycle per element; only the latencies differ
            csr_latency = golden.QUEUE_LATENCY + golden.PRODUCT_LATENCY + golden.GATHER_LATENCY
            assert plain == golden.mlp_cycles(layers, vector, "pow2", False) + (
                golden.DIRECT_LATENCY - csr_latency
            ) * len(layers)
            assert skip <= plain - zeros


def test_rom_cost_at_its_thresholds():
    """A ROM of BLOCK_ROM_BITS bits is the first in block RAM (as ``Neuron.block_rom`` places
    it), one of BLOCK_RAM_BITS + 1 bits takes two blocks, an empty one nothing."""
    sizes = [BLOCK_ROM_BITS - 1, BLOCK_ROM_BITS, BLOCK_RAM_BITS, BLOCK_RAM_BITS + 1, 0]
    assert rom_cost(sizes) == (1 + 1 + 2, BLOCK_ROM_BITS - 1)
    assert rom_cost([]) == (0, 0)


def test_auto_layout_rule():
    """``auto`` picks per layer the layout whose ROMs take fewer block RAMs, then fewer LUT-ROM
    bits (ties: direct); ROM bits and costs as documented."""
    rng = np.random.default_rng(4)
    dense_ish = golden.synthetic_layer(rng, 32, 3, density=0.9)
    sparse = golden.synthetic_layer(rng, 32, 3, density=0.1)
    # 600 inputs at 40 %: CSR rows of about 2,000 bits and direct rows of 2,400 bits, a block
    # RAM each either way, so direct although its ROMs hold more bits
    wide = golden.synthetic_layer(rng, 600, 3, density=0.4)
    # 300 inputs at 10 %: CSR rows under BLOCK_ROM_BITS (LUTs), direct rows of 1,200 bits
    # (a block RAM each), so CSR
    wide_sparse = golden.synthetic_layer(rng, 300, 3, density=0.1)
    for layer in (dense_ish, sparse, wide, wide_sparse):
        rows = range(layer.out_features)
        csr_rows = [len(layer.row_columns(j)) * (layer.index_bits + layer.code_bits) for j in rows]
        direct_rows = [
            layer.in_features * layer.code_bits if layer.row_codes(j).any() else 0 for j in rows
        ]
        assert layer.rom_bits("pow2", "csr") == sum(csr_rows)
        assert layer.rom_bits("pow2", "direct") == sum(direct_rows)

        def cost(sizes):
            blocks = sum(-(-b // BLOCK_RAM_BITS) for b in sizes if b >= BLOCK_ROM_BITS)
            return blocks, sum(b for b in sizes if b < BLOCK_ROM_BITS)

        csr, direct = cost(csr_rows), cost(direct_rows)
        assert layer.rom_cost("pow2", "csr") == csr
        assert layer.rom_cost("pow2", "direct") == direct
        want = "direct" if direct <= csr else "csr"
        assert layer.resolve_layout("pow2", "auto") == want
        chosen = Layer(layer, build="pow2", layout="auto")
        assert chosen.rom_bits == sum(direct_rows if want == "direct" else csr_rows)
        assert golden.layer_layouts([layer], "pow2", "auto") == [want]
    assert wide.rom_bits("pow2", "direct") > wide.rom_bits("pow2", "csr")
    assert wide.rom_cost("pow2", "direct") == wide.rom_cost("pow2", "csr") == (3, 0)
    assert wide.auto_layout() == "direct" and wide_sparse.auto_layout() == "csr"
    assert wide_sparse.rom_bits("pow2", "direct") > BLOCK_ROM_BITS
    assert dense_ish.auto_layout() == "direct" and sparse.auto_layout() == "csr"
    assert Layer(dense_ish, build="dense", layout="auto").layout == "csr"
    with pytest.raises(ValueError, match="layout 'direct' is for the compressed builds"):
        Layer(dense_ish, build="dense", layout="direct")
    with pytest.raises(ValueError, match="layout must be one of"):
        Layer(dense_ish, build="pow2", layout="coo")


def test_mlp_zero_skip_backpressure():
    rng = np.random.default_rng(7)
    layers = golden.synthetic_mlp(rng, (20, 9, 6, 4), density=0.5)
    for layer in layers:
        layer.shift = 8
    x = golden.random_images(rng, 5, 20)
    for zero_skip in (False, True):
        dut = Mlp(layers, build="pow2", zero_skip=zero_skip)
        runs = stream_vectors(dut, x, zero_skip)
        for vector, (outputs, cycles) in zip(x, runs, strict=True):
            assert dense_vector(outputs, 4) == golden.mlp_forward(layers, vector)[-1].tolist()
            assert cycles == golden.mlp_cycles(layers, vector, "pow2", zero_skip)
        runs = stream_vectors(dut, x, zero_skip, backpressure=0.5)
        for vector, (outputs, _) in zip(x, runs, strict=True):
            assert dense_vector(outputs, 4) == golden.mlp_forward(layers, vector)[-1].tolist()


@pytest.mark.parametrize("queue_depth", [4, 5])
def test_mlp_queue_stalls(queue_depth):
    """Short input queues: neurons that skip entries fill them, the layer stops accepting
    (registered room), and results and cycles stay exact, under backpressure too."""
    rng = np.random.default_rng(23)
    layers = golden.synthetic_mlp(rng, (40, 12, 8, 4), density=0.7)
    for layer in layers:
        layer.shift = 9
    x = golden.random_images(rng, 6, 40, zero_fraction=0.6)
    stalled = 0
    for zero_skip in (False, True):
        dut = Mlp(layers, build="pow2", zero_skip=zero_skip, queue_depth=queue_depth)
        for vector, (outputs, cycles) in zip(x, stream_vectors(dut, x, zero_skip), strict=True):
            assert dense_vector(outputs, 4) == golden.mlp_forward(layers, vector)[-1].tolist()
            want = golden.mlp_cycles(layers, vector, "pow2", zero_skip, queue_depth=queue_depth)
            assert cycles == want
            stalled += want > golden.mlp_cycles(layers, vector, "pow2", zero_skip)
        runs = stream_vectors(dut, x, zero_skip, backpressure=0.5)
        for vector, (outputs, _) in zip(x, runs, strict=True):
            assert dense_vector(outputs, 4) == golden.mlp_forward(layers, vector)[-1].tolist()
    assert stalled  # the short queues cost cycles: the room logic was exercised


@pytest.mark.parametrize("function", ["sigmoid", "tanh"])
def test_lut_table_matches_golden(function):
    table = lut_table(function, lut_bits=8, frac_bits=4, output_bits=8)
    q = np.array([a - 256 if a >= 128 else a for a in range(256)])
    want = golden.activate(q, function, 8, frac_bits=4, lut_bits=8) & 0xFF
    assert table == want.tolist()
    # saturation beyond the table's input range
    assert golden.activate([1000], function, 8)[0] == golden.activate([127], function, 8)[0]


def neuron(**overrides) -> Neuron:
    """A 3-input dense ReLU neuron, with ``overrides`` applied to its parameters."""
    params = dict(
        rom_words=[0, 0, 0],
        in_features=3,
        x_shape=8,
        bias=0,
        acc_bits=20,
        shift=4,
        activation="relu",
        output_bits=8,
        build="dense",
    )
    return Neuron(**{**params, **overrides})


def test_parameters_are_checked():
    with pytest.raises(TypeError, match="in_features must be a positive integer, not 0"):
        neuron(rom_words=[], in_features=0)
    with pytest.raises(ValueError, match="one word per input"):
        neuron(rom_words=[1, 2])
    with pytest.raises(ValueError, match="build must be one of"):
        neuron(rom_words=[], build="fp32")
    with pytest.raises(ValueError, match="does not fit in acc_bits"):
        neuron(bias=1 << 20)
    with pytest.raises(ValueError, match="layout must be 'csr' or 'direct', not 'coo'"):
        neuron(layout="coo")
    with pytest.raises(ValueError, match="layout 'direct' is for the compressed builds"):
        neuron(layout="direct")
    with pytest.raises(ValueError, match=r"a direct ROM has one word per input \(3\) or none"):
        neuron(rom_words=[1, 2], build="pow2", codebook=[0] * 16, layout="direct")
    with pytest.raises(ValueError, match="a LUT activation"):
        LutActivation(acc_bits=20, shift=4, function="relu", output_bits=8, frac_bits=4)
    with pytest.raises(ValueError, match="does not decode to weight_int"):
        LayerWeights(
            name="x",
            weight_int=[[1, 0]],
            bias_int=[0],
            shift=0,
            activation="relu",
            weight_format="pow2",
            codebook=[0, 1, 2, 4],
            csr_rel=[1],
            csr_code=[1],
            csr_rowptr=[0, 1],
            code_bits=2,
        )
    layer = golden.synthetic_layer(np.random.default_rng(0), 8, 2, weight_format="codebook")
    with pytest.raises(ValueError, match="build 'pow2' needs pow2 weights"):
        Layer(layer, build="pow2")
    with pytest.raises(ValueError, match="queue_depth must be an integer >= 4, not 3"):
        Layer(layer, build="codebook", queue_depth=3)


def test_csr_fillers_and_empty_rows():
    """Long zero runs need filler entries; an all-zero row has an empty ROM."""
    rng = np.random.default_rng(3)
    layer = golden.synthetic_layer(rng, 70, 3, density=0.05, index_bits=2, shift=6)
    layer.weight_int[2] = 0
    book = layer.codebook
    rel, code, rowptr = golden._csr(
        np.array([[int(np.flatnonzero(book == w)[0]) for w in row] for row in layer.weight_int]), 2
    )
    layer = LayerWeights(
        name="fc",
        weight_int=layer.weight_int,
        bias_int=layer.bias_int,
        shift=6,
        activation="relu",
        weight_format="pow2",
        codebook=book,
        csr_rel=rel,
        csr_code=code,
        csr_rowptr=rowptr,
        index_bits=2,
    )
    assert (layer.csr_code == 0).sum() > 0 and rowptr[3] == rowptr[2]
    x = golden.random_images(rng, 3, 70, zero_fraction=0.7)
    for zero_skip, layout in ((False, "csr"), (True, "csr"), (False, "direct"), (True, "direct")):
        dut = Layer(layer, build="pow2", layout=layout, drop_zeros=zero_skip)
        if layout == "direct":
            assert layer.rom_words(2, "pow2", layout) == []
            assert len(layer.rom_words(0, "pow2", layout)) == 70
        for vector, (outputs, cycles) in zip(x, stream_vectors(dut, x, zero_skip), strict=True):
            assert dense_vector(outputs, 3) == golden.layer_forward(layer, vector).tolist()
            assert cycles == golden.mlp_cycles([layer], vector, "pow2", zero_skip, layout=layout)


def stream_back_to_back(dut, vectors, sparse: bool, backpressure: float, seed: int):
    """Offer every element of every vector without a gap (the next vector's elements right
    after the previous ``last``, before its results have left) while ``out.ready`` is random;
    return the outputs of each vector (``{index: value}``, split at each ``last``)."""
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    rng = np.random.default_rng(seed)
    elements = [e for vector in vectors for e in golden._elements(vector, sparse)]
    runs = []

    async def bench(ctx):
        sent, outputs, t = 0, {}, 0
        while len(runs) < len(vectors):
            if sent < len(elements):
                j, x, last = elements[sent]
                ctx.set(dut.inp.payload, {"index": j, "value": x, "last": last})
            ctx.set(dut.inp.valid, sent < len(elements))
            ready = rng.random() >= backpressure
            ctx.set(dut.out.ready, ready)
            _, _, iv, ir, ov, out = await ctx.tick().sample(
                dut.inp.valid, dut.inp.ready, dut.out.valid, dut.out.payload
            )
            sent += iv and ir
            t += 1
            assert t < 100 * (len(elements) + 50), f"{len(runs)} vectors out after {t} cycles"
            if ov and ready:
                outputs[out.index] = out.value
                if out.last:
                    runs.append(outputs)
                    outputs = {}

    sim.add_testbench(bench)
    sim.run()
    return runs


BACK_TO_BACK = [("pow2", "csr"), ("dense", "csr"), ("pow2", "direct"), ("codebook", "direct")]


def back_to_back_layer(rng, build: str, neurons: int):
    """A random 4-input ReLU layer for the back-to-back tests, in ``build``'s weight format."""
    return golden.synthetic_layer(
        rng,
        4,
        neurons,
        weight_format="codebook" if build == "codebook" else "pow2",
        density=0.8,
        activation="relu",
        shift=6,
    )


@pytest.mark.parametrize(
    ("build", "layout"), BACK_TO_BACK, ids=[f"{b}-{a}" for b, a in BACK_TO_BACK]
)
def test_layer_back_to_back_under_backpressure(build, layout):
    """Short vectors back to back into a layer of 6 neurons whose output stalls: the next
    vector's ``last`` element arrives while the previous results wait in the neurons and the
    serializer, so a neuron must hold it until its result has left (the CSR neuron's
    ``out_free``, the direct layer's ``busy``); every vector's results are exact."""
    rng = np.random.default_rng(23)
    layer = back_to_back_layer(rng, build, 6)
    x = golden.random_images(rng, 24, 4, zero_fraction=0.4)
    x[3] = 0  # the last element alone: two `last` elements back to back with zero-skipping
    for zero_skip in (False, True):
        dut = Layer(layer, build=build, layout=layout, drop_zeros=zero_skip)
        for backpressure in (0.5, 0.8):
            runs = stream_back_to_back(dut, x, zero_skip, backpressure, seed=int(backpressure * 10))
            assert len(runs) == len(x)
            for vector, outputs in zip(x, runs, strict=True):
                assert dense_vector(outputs, 6) == golden.layer_forward(layer, vector).tolist()


@pytest.mark.parametrize(
    ("build", "layout"), BACK_TO_BACK, ids=[f"{b}-{a}" for b, a in BACK_TO_BACK]
)
def test_lone_neuron_back_to_back_under_backpressure(build, layout):
    """One neuron on its own, as its AXI4-Stream top drives it (``accept = valid & done``, no
    layer to hold the next vector back): vectors back to back while ``out.ready`` is random.
    The next vector's ``last`` element must wait in the neuron until the previous result has
    left, so each vector gives exactly one result, its own."""
    from amaranth import Module

    rng = np.random.default_rng(31)
    layer = back_to_back_layer(rng, build, 3)
    x = golden.random_images(rng, 20, 4, zero_fraction=0.3)
    want = [golden.layer_forward(layer, v)[1] for v in x]
    built = Layer(layer, build=build, layout=layout)
    built._MustUse__silence = True
    neuron = built.neuron(1)

    m = Module()
    m.submodules.neuron = neuron
    inp = neuron.inp
    m.d.comb += inp.accept.eq(inp.valid & inp.done)
    sim = Simulator(m)
    sim.add_clock(1e-8)
    elements = [e for v in x for e in golden._elements(v, False)]
    results = []

    async def bench(ctx):
        sent, t = 0, 0
        while len(results) < len(x):
            if sent < len(elements):
                j, value, last = elements[sent]
                ctx.set(inp.data, {"index": j, "value": value, "last": last})
            ctx.set(inp.valid, sent < len(elements))
            ready = rng.random() >= 0.7
            ctx.set(neuron.out.ready, ready)
            _, _, done, ov, y = await ctx.tick().sample(
                inp.done, neuron.out.valid, neuron.out.payload
            )
            sent += sent < len(elements) and done
            t += 1
            assert t < 50 * len(elements), f"{len(results)} results after {t} cycles"
            if ov and ready:
                results.append(y)

    sim.add_testbench(bench)
    sim.run()
    assert results == want
