"""Weights that load at run time (``WEIGHTS=ram``): word formats, capacity, address map, writes.

In a ``WEIGHTS=ram`` build every neuron's weight memory is a RAM (``amaranth.lib.memory.Memory``
with a write port) in the direct layout (one word per input, addressed by the element's index,
depth ``in_features``, whatever the bundle's sparsity), and its bias a writable register. The
RAM word is the *decoded* weight, not the bundle's code, so the layer's codebook (or power-of-two
decode table) is part of the words and no decode table sits between the RAM and the product
stage:

``pow2``
    ``{exp, negative, zero}``: bit 0 ``zero``, bit 1 ``negative``, bits ``2 ..`` the exponent
    (``exp_bits`` = the bit length of the format's largest exponent, ``pow2_max_exp``).
``codebook``
    The weight value, two's complement, ``value_bits`` bits (the bit length of the largest
    codebook magnitude of the build's bundle, plus the sign).

A RAM build fixes what its logic depends on: the shape, the input and output formats, the
activation and the requantisation ``shift``; it holds any weights of its word format, and its
accumulator (``acc_bits``) is the ROM build's (the exact bound of the build's own bundle), so
the accumulate and requantisation paths are the ROM build's (a wider accumulator lengthens the
requantisation's compare). A bundle that differs in a fixed field, or whose weights, biases or
exact accumulator range do not fit, is refused by :func:`check_fits` with a one-line error
naming the layer and the field.

Address map (:class:`RamMap`): 32-bit words, byte address ``4 * word``, word address
``layer << (neuron_bits + entry_bits) | neuron << entry_bits | entry``; ``entry`` ``< in_features``
is the weight of that input, ``entry == in_features`` the bias (two's complement, sign-extended
to 32 bits). Writes are taken between images only (docs/export.md, "Weights at run time").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.utils import ceil_log2

from .weights import LayerWeights

__all__ = [
    "RamFormat",
    "RamMap",
    "check_fits",
    "neuron_writes",
    "ram_format",
    "ram_map",
    "ram_writes",
]

#: Bits of an AXI4-Lite data word.
WORD_BITS = 32


def _signed_bits(lo: int, hi: int) -> int:
    bits = 2
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


@dataclass(frozen=True)
class RamFormat:
    """What a ``WEIGHTS=ram`` layer holds: its fixed fields and the capacity of its words."""

    name: str
    build: str
    in_features: int
    out_features: int
    in_bits: int
    in_signed: bool
    shift: int
    activation: str
    output_bits: int
    output_frac_bits: int
    word_bits: int  # RAM word
    acc_bits: int  # accumulator and bias register
    max_exp: int = 0  # pow2: largest exponent
    value_bits: int = 0  # codebook: weight value width

    @property
    def exp_bits(self) -> int:
        return self.word_bits - 2

    @property
    def max_weight(self) -> int:
        """Largest weight magnitude a word holds (within the format)."""
        if self.build == "pow2":
            return 1 << self.max_exp
        return 1 << (self.value_bits - 1)

    def word(self, weight: int) -> int:
        """The RAM word of the integer weight ``weight``."""
        w = int(weight)
        if self.build == "pow2":
            if w == 0:
                return 1
            return int(w < 0) << 1 | (abs(w).bit_length() - 1) << 2
        return w & ((1 << self.value_bits) - 1)

    def weight(self, word: int) -> int:
        """The integer weight of RAM word ``word`` (the inverse of :meth:`word`)."""
        if self.build == "pow2":
            if word & 1:
                return 0
            mag = 1 << (word >> 2)
            return -mag if word >> 1 & 1 else mag
        v = word & ((1 << self.value_bits) - 1)
        return v - (1 << self.value_bits) if v >> (self.value_bits - 1) else v


def ram_format(layer: LayerWeights, build: str) -> RamFormat:
    """The RAM build of ``layer`` (its initial contents): pow2 or codebook."""
    if build not in ("pow2", "codebook"):
        raise ValueError(
            f"WEIGHTS=ram needs a compressed build (pow2 or codebook), not {build!r}: the dense "
            "baseline keeps its ROM"
        )
    if not layer.compressed:
        raise ValueError(f"WEIGHTS=ram: {layer.name} is dense, the build needs a codebook")
    if build == "pow2" and layer.weight_format != "pow2":
        raise ValueError(f"WEIGHTS=ram build 'pow2' needs pow2 weights, {layer.name} has none")
    mags = np.abs(layer.codebook)
    kw = {}
    if build == "pow2":
        used = max(int(mags.max()), 1).bit_length() - 1
        max_exp = used if layer.max_exp is None else max(int(layer.max_exp), used)
        kw["max_exp"] = max_exp
        word_bits = 2 + max(max_exp.bit_length(), 1)
    else:
        value_bits = int(mags.max()).bit_length() + 1
        kw["value_bits"] = value_bits
        word_bits = value_bits
    # the ROM build's accumulator (the exact bound of this bundle's weights): any wider and the
    # requantisation path after it gets longer (docs/export.md, "Weights at run time")
    return RamFormat(
        name=layer.name,
        build=build,
        in_features=layer.in_features,
        out_features=layer.out_features,
        in_bits=layer.in_bits,
        in_signed=layer.in_signed,
        shift=layer.shift,
        activation=layer.activation,
        output_bits=layer.output_bits,
        output_frac_bits=layer.output_frac_bits,
        word_bits=word_bits,
        acc_bits=layer.acc_bits(),
        **kw,
    )


def ram_words(layer: LayerWeights, fmt: RamFormat, j: int) -> list[int]:
    """The RAM contents of neuron ``j`` of ``layer`` (one decoded word per input)."""
    return [fmt.word(w) for w in layer.weight_int[j]]


def check_fits(layer: LayerWeights, fmt: RamFormat) -> None:
    """Refuse ``layer`` if it cannot be loaded into the RAM build ``fmt``: a ``ValueError`` with
    one line naming the layer and the field."""
    where = f"{fmt.name}"
    fixed = {
        "in_features": (layer.in_features, fmt.in_features),
        "out_features": (layer.out_features, fmt.out_features),
        "input bits": (layer.in_bits, fmt.in_bits),
        "input signedness": (layer.in_signed, fmt.in_signed),
        "shift": (layer.shift, fmt.shift),
        "activation": (layer.activation, fmt.activation),
        "output_bits": (layer.output_bits, fmt.output_bits),
    }
    if fmt.activation in ("sigmoid", "tanh"):
        fixed["output_frac_bits"] = (layer.output_frac_bits, fmt.output_frac_bits)
    for field, (got, built) in fixed.items():
        if got != built:
            raise ValueError(
                f"{where}.{field} is {got}, the RAM build has {built}: re-synthesise instead"
            )
    w = layer.weight_int
    if fmt.build == "pow2":
        mags = np.abs(w[w != 0])
        if mags.size and np.any(mags & (mags - 1)):
            raise ValueError(f"{where}.weight_int: not ±2**e, the pow2 RAM build needs pow2")
        top = int(mags.max()).bit_length() - 1 if mags.size else 0
        if top > fmt.max_exp:
            raise ValueError(
                f"{where}.pow2_max_exp: weight 2**{top} exceeds the build's 2**{fmt.max_exp}"
            )
    else:
        lo, hi = -(1 << (fmt.value_bits - 1)), (1 << (fmt.value_bits - 1)) - 1
        if w.size and (w.min() < lo or w.max() > hi):
            raise ValueError(
                f"{where}.weight_int: values beyond the build's {fmt.value_bits}-bit weights"
            )
    lo, hi = layer.acc_range()
    hi += 1 << max(fmt.shift - 1, 0)
    if _signed_bits(lo, hi) > fmt.acc_bits:
        raise ValueError(
            f"{where}.acc_bits: the bundle's accumulator needs {_signed_bits(lo, hi)} bits, "
            f"the RAM build has {fmt.acc_bits}"
        )


@dataclass(frozen=True)
class RamMap:
    """The address map of a ``WEIGHTS=ram`` MLP (see the module's docstring)."""

    layers: tuple[RamFormat, ...]
    entry_bits: int
    neuron_bits: int
    layer_bits: int

    @property
    def word_address_bits(self) -> int:
        return self.entry_bits + self.neuron_bits + self.layer_bits

    @property
    def byte_address_bits(self) -> int:
        return self.word_address_bits + 2

    @property
    def data_bits(self) -> int:
        """Bits of a write the core takes (the rest of the 32-bit word is ignored)."""
        return max(max(f.word_bits, f.acc_bits) for f in self.layers)

    def word_address(self, layer: int, neuron: int, entry: int) -> int:
        return (layer << self.neuron_bits | neuron) << self.entry_bits | entry

    def byte_address(self, layer: int, neuron: int, entry: int) -> int:
        return 4 * self.word_address(layer, neuron, entry)

    def manifest(self) -> dict:
        """The address map for the export folder's manifest."""
        return {
            "bus": "AXI4-Lite slave s_axi (32-bit data, byte addresses, WSTRB ignored: whole "
            "words only); reads return 0",
            "address_bits": self.byte_address_bits,
            "entry_bits": self.entry_bits,
            "neuron_bits": self.neuron_bits,
            "layer_bits": self.layer_bits,
            "byte_address": "4 * (layer << "
            f"{self.neuron_bits + self.entry_bits} | neuron << {self.entry_bits} | entry)",
            "entry": "0 .. in_features - 1: the weight of that input (RAM word); in_features: "
            "the bias (two's complement, sign-extended to 32 bits)",
            "when": "between images only: write while no image is in flight (after the last "
            "m_axis beat of one image, before the first s_axis beat of the next); BRESP comes "
            "when the write has reached the RAM or register",
            "layers": [
                {
                    "layer": i,
                    "name": f.name,
                    "base": self.byte_address(i, 0, 0),
                    "neurons": f.out_features,
                    "neuron_stride_bytes": 4 << self.entry_bits,
                    "weights_per_neuron": f.in_features,
                    "bias_entry": f.in_features,
                    "word": _word_doc(f),
                    "bias_bits": f.acc_bits,
                    "fixed": {
                        "in_features": f.in_features,
                        "out_features": f.out_features,
                        "shift": f.shift,
                        "activation": f.activation,
                        "in_bits": f.in_bits,
                        "in_signed": f.in_signed,
                        "output_bits": f.output_bits,
                        "output_frac_bits": f.output_frac_bits,
                    },
                }
                for i, f in enumerate(self.layers)
            ],
        }


def _word_doc(f: RamFormat) -> dict:
    if f.build == "pow2":
        return {
            "format": "pow2",
            "bits": f.word_bits,
            "fields": {"zero": [0, 0], "negative": [1, 1], "exp": [f.word_bits - 1, 2]},
            "weight": "0 if zero else (-1 if negative else 1) * 2**exp",
            "max_exp": f.max_exp,
        }
    return {
        "format": "codebook",
        "bits": f.word_bits,
        "weight": f"the value, {f.word_bits}-bit two's complement",
    }


def ram_map(formats) -> RamMap:
    formats = tuple(formats)
    return RamMap(
        layers=formats,
        entry_bits=max(ceil_log2(f.in_features + 1) for f in formats),
        neuron_bits=max(max(ceil_log2(f.out_features), 1) for f in formats),
        layer_bits=max(ceil_log2(len(formats)), 1),
    )


def neuron_writes(layer: LayerWeights, fmt: RamFormat, j: int = 0) -> list[tuple[int, int]]:
    """The writes of neuron ``j`` of ``layer`` alone (``make verilog DESIGN=neuron
    WEIGHTS=ram``: its map has neither layer nor neuron bits): ``fmt`` is the layer's, checked
    with :func:`check_fits` first."""
    check_fits(layer, fmt)
    writes = [(4 * k, word) for k, word in enumerate(ram_words(layer, fmt, j))]
    writes.append((4 * fmt.in_features, int(layer.bias_int[j]) & ((1 << WORD_BITS) - 1)))
    return writes


def ram_writes(layers, amap: RamMap) -> list[tuple[int, int]]:
    """``[(byte address, 32-bit data), ...]`` that load ``layers`` (a bundle's, checked with
    :func:`check_fits`) into a RAM build with address map ``amap``: every weight and bias."""
    layers = list(layers)
    if len(layers) != len(amap.layers):
        raise ValueError(
            f"layers: the bundle has {len(layers)}, the RAM build has {len(amap.layers)}"
        )
    writes = []
    for i, (layer, fmt) in enumerate(zip(layers, amap.layers, strict=True)):
        check_fits(layer, fmt)
        for j in range(fmt.out_features):
            for k, word in enumerate(ram_words(layer, fmt, j)):
                writes.append((amap.byte_address(i, j, k), word))
            bias = int(layer.bias_int[j]) & ((1 << WORD_BITS) - 1)
            writes.append((amap.byte_address(i, j, fmt.in_features), bias))
    return writes
