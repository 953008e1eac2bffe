"""Analytical 7-series resource estimates from design parameters, without running a tool.

The exact figures are structural: one DSP48E1 per described multiplier, one RAMB18 per line
buffer deeper than :data:`BRAM_MIN_DEPTH`, distributed-RAM cell counts by Yosys' mapping rules.
LUT and FF figures are first-order models of the datapath and control; the tests hold them to
:data:`LOGIC_TOLERANCE` of Yosys ``synth_xilinx``.
"""

from __future__ import annotations

import math

from rtl_gen.neuron.neuron import PREFETCH_DEPTH

#: Relative tolerance of the LUT and FF estimates against Yosys (checked in tests).
LOGIC_TOLERANCE = 0.35
#: Memories this deep or deeper go to block RAM, shallower ones to distributed RAM
#: (Yosys' cost model; seen: 300 x 8 distributed, 512 x 8 block RAM).
BRAM_MIN_DEPTH = 512
RAMB18_BITS = 18 * 1024


def lutram_cells(depth: int, width: int) -> int:
    """Distributed-RAM cells for a simple dual-port ``depth x width`` memory.

    Up to 32 words: RAM32M (32 x 6 bits, one write and three read ports);
    deeper: RAM64M (64 x 3 bits) tiled over the depth.
    """
    if depth <= 32:
        return math.ceil(width / 6)
    return math.ceil(depth / 64) * math.ceil(width / 3)


def memory_cells(depth: int, width: int) -> dict[str, int]:
    if depth >= BRAM_MIN_DEPTH:
        return {"ramb18": math.ceil(depth * width / RAMB18_BITS), "lutram": 0}
    return {"ramb18": 0, "lutram": lutram_cells(depth, width)}


def conv_estimate(
    width: int,
    kernel: int,
    line_buffers: int,
    pixel_width: int = 8,
    pixels_per_clock: int = 1,
    pipeline: int = 0,
    coef_width: int = 8,
    **_ignored,
) -> dict[str, int]:
    """Resources of :class:`rtl_gen.conv.engine.ConvEngine`.

    ``K·K·P`` multipliers (the coefficients come from a ROM, so none is constant-folded);
    ``N`` line buffers of ``W/P x P·pixel_width`` bits; the K x K window of pixel registers and
    the adder tree dominate FFs; LUTs go to the adder tree, to the ``N``-to-``K`` row select
    (``K·pixel_width`` multiplexers of ``N`` inputs, one LUT6 per 4 inputs) and to the read
    multiplexers of distributed RAM tiled over more than 64 words; the datapath terms are
    multiplied by ``P`` for ``P`` lanes. Registered products (``pipeline >= 1``) keep the adder
    tree out of the DSP48E1 cascade: its ``K·K - 1`` adders then take about
    ``K·(pixel_width + coef_width)/6`` LUTs each (fitted on K = 3 and 5); the registered window
    column (``pipeline >= 2``), the split tree (``pipeline >= 3``), each lane's window copy
    (``pipeline == 4``) and the row-scan modes' read register (``N`` words, ``N >= K``) add
    their flip-flops (the LUT and FF model was fitted on ``P = 1``).
    """
    lanes = pixels_per_clock
    k2 = kernel * kernel * lanes
    depth = width // lanes
    buffers = memory_cells(depth, pixel_width * lanes)
    spare = max(0, line_buffers - kernel)
    row_select = kernel * pixel_width * lanes * math.ceil(max(0, line_buffers - 1) / 3)
    lut = 47 + 0.7 * k2 + row_select
    if pipeline >= 1:
        lut += (kernel * kernel - 1) * lanes * kernel * (pixel_width + coef_width) / 6
    if buffers["lutram"] and depth > 64:
        lut += line_buffers * (math.ceil(depth / 64) - 1) * 4.6 * lanes
    ff = 30 + 4.5 * k2 + 9 * spare
    if pipeline >= 2:
        ff += kernel * lanes * pixel_width + 4
    if pipeline >= 3:
        ff += math.ceil(kernel * kernel / 4) * lanes * (pixel_width + coef_width + 2)
    if pipeline >= 4:
        ff += k2 * pixel_width
    if line_buffers >= kernel:
        ff += line_buffers * lanes * pixel_width  # the row-scan modes' read register
    if buffers["ramb18"]:
        ff -= kernel * pixel_width  # the read registers move into the block RAMs
    return {
        "lut": round(lut),
        "ff": round(ff),
        "dsp": k2,
        "ramb18": line_buffers * buffers["ramb18"],
        "ramb36": 0,
        "lutram": line_buffers * buffers["lutram"],
    }


def _product_bits(layer) -> int:
    """Width of a neuron's product register: the input, a sign, the weight's magnitude."""
    weights = layer.weights
    if layer.build == "dense":
        magnitude = weights.weight_bits
    else:
        codebook = [abs(int(c)) for c in weights.codebook]
        if layer.build == "pow2":
            magnitude = max(max(c, 1).bit_length() for c in codebook)
        else:
            magnitude = max(codebook).bit_length() + 1
    return layer.x_shape.width + (0 if layer.x_shape.signed else 1) + magnitude


def _clog2(n: int) -> int:
    return max(1, math.ceil(math.log2(n))) if n > 1 else 1


def neuron_estimate(layer, index: int) -> dict[str, int]:
    """FF, DSP48E1 and RAMB18 of neuron ``index`` of an :class:`rtl_gen.layer.Layer`.

    FFs: accumulator, result register, the current and the next ROM word's registers (the
    decoded weights, and in the compressed builds the relative indices),
    the walk's row-end flags and a LUT ROM's address (the walk reads one entry ahead; a block
    RAM instead has its prefetch queue: read pointer, read data register,
    :data:`PREFETCH_DEPTH` words with their decoded weights and row-end flags, a count, the
    ring's two indices and four flags), the product register (pow2; a multiplier's is the
    DSP's own), and the current column (the compressed builds: the next one's too); in the
    direct layout no address registers but the index stage (value, valid, last, and the
    element's index unless a block RAM takes it), the read stage and the product stage; a
    circuit activation's output register. DSP: one multiplier per neuron in the dense and
    codebook builds, none in the shift (pow2) build. LUTs are not estimated: the
    ROMs become logic whose size depends on their contents.
    """
    weights = layer.weights
    neuron = layer.neuron(index)
    block = neuron.block_rom
    # a block-RAM ROM takes ceil(bits / 18 Kbit) RAMB18
    ramb18 = math.ceil(neuron.rom_bits / RAMB18_BITS) if block else 0
    dsp = 0 if layer.build == "pow2" else 1
    # the decoded weight register: dense the word itself, codebook the looked-up weight, pow2
    # zero, sign and exponent
    if layer.build == "dense":
        weight_reg = weights.weight_bits
    else:
        codebook = [abs(int(c)) for c in weights.codebook]
        if layer.build == "codebook":
            weight_reg = max(codebook).bit_length() + 1
        else:
            exps = [max(c, 1).bit_length() - 1 for c in codebook]
            weight_reg = 2 + max(max(exps).bit_length(), 1)
    # a circuit activation's output register (a table's is its ROM's read register)
    y_reg = 0 if weights.activation in ("sigmoid", "tanh") else weights.output_bits
    # the product register; a multiplier's is the DSP's own
    product = 0 if dsp else _product_bits(layer)
    if layer.layout == "direct":
        # no address counters: the element index addresses the ROM; an index stage holds the
        # element's index and value and its valid and last bits, a read stage the value and
        # valid and last again, a product stage the product and its valid and last bits
        ff = layer.acc_bits + weights.output_bits + weight_reg
        # the neuron's copy of the element index (a block RAM is addressed by the element's)
        index = 0 if block else _clog2(weights.in_features)
        stages = (index + layer.x_shape.width + 2) + (layer.x_shape.width + 2) + (product + 2)
        return {"ff": ff + stages + y_reg, "dsp": dsp, "ramb18": ramb18}
    depth = len(weights.rom_words(index, layer.build))
    ff = layer.acc_bits + weights.output_bits + weight_reg + y_reg
    # the walk reads one entry ahead: the current and the next entry's row-end flags, the next
    # entry's decoded weight next to the current one, the product register (with a multiplier,
    # the DSP's own register) and the product's valid, the closing and activation-wait flags
    ff += 2 + weight_reg + product + 4
    if block:
        # the prefetch queue: its read pointer, the read data register, the entries (each a
        # word, its decoded weight and row-end flag), the count of entries held and under way,
        # the ring's read and write indices, two valid and two row-end flags
        ff += _clog2(depth + 1) + neuron.word_bits
        ff += PREFETCH_DEPTH * (neuron.word_bits + weight_reg + 1)
        ff += _clog2(PREFETCH_DEPTH + 1) + 2 * _clog2(PREFETCH_DEPTH) + 4
    else:
        ff += _clog2(depth + 1)  # a LUT ROM's address, the entry after next
    if layer.build != "dense":
        # the current and the next entry's columns, and the relative index of the current and
        # the next word
        ff += 2 * _clog2(weights.in_features + 1) + 2 * weights.index_bits
    else:
        ff += _clog2(weights.in_features + 1)  # the column counter
    return {"ff": ff, "dsp": dsp, "ramb18": ramb18}


def mlp_estimate(mlp) -> dict[str, int]:
    """FF, DSP48E1, RAMB18 and ROM bits of an :class:`rtl_gen.mlp.Mlp`, summed over its
    neurons (a block-RAM ROM takes ``ceil(bits / 18 Kbit)`` RAMB18)."""
    total = {"ff": 0, "dsp": 0, "ramb18": 0, "rom_bits": mlp.rom_bits}
    for layer in mlp.layers:
        for j in range(layer.weights.out_features):
            figures = neuron_estimate(layer, j)
            total["ff"] += figures["ff"]
            total["dsp"] += figures["dsp"]
            total["ramb18"] += figures["ramb18"]
    return total
