"""Storage sizes in bytes, per layer and total, with codebooks and all metadata counted.

Stages: dense fp32 -> pruned CSR (fp32 values + relative indices) -> shared (codes + relative
indices + codebook) -> Huffman (coded code and index streams + code tables). Every compressed
stage also stores per row the entry count (16 bits), the biases (32 bits each) and a small layer
header (shape, formats: ``HEADER_BYTES``).
"""

from __future__ import annotations

import math

__all__ = ["HEADER_BYTES", "LayerSizes", "layer_sizes"]

HEADER_BYTES = 16
ROWPTR_BITS = 16
BIAS_BITS = 32


def _bytes(bits: float) -> int:
    return int(math.ceil(bits / 8))


class LayerSizes(dict):
    """``{stage: bytes}`` for one layer."""


def layer_sizes(
    n_weights: int,
    n_bias: int,
    rows: int,
    entries: int,
    index_bits: int,
    code_bits: int,
    codebook_entries: int,
    huffman_bits: int | None = None,
    huffman_table_bits: int = 0,
) -> LayerSizes:
    """Bytes of one layer at every stage (``entries`` counts CSR filler entries)."""
    meta = HEADER_BYTES * 8 + rows * ROWPTR_BITS + n_bias * BIAS_BITS
    s = LayerSizes()
    s["dense"] = _bytes((n_weights + n_bias) * 32)
    s["pruned"] = _bytes(meta + entries * (32 + index_bits))
    s["shared"] = _bytes(meta + entries * (code_bits + index_bits) + codebook_entries * 32)
    # pow2: the integer codebook 0, ±2**e (8-bit entries) and the scale exponent in the header
    s["pow2"] = _bytes(meta + entries * (code_bits + index_bits) + codebook_entries * 8)
    if huffman_bits is not None:
        s["huffman"] = _bytes(meta + huffman_bits + huffman_table_bits + codebook_entries * 8)
    return s
