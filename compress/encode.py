"""Storage encoding of one layer: CSR rows of codes with relative indices, Huffman coding of the
code and index streams (both checked by a round trip) and the resulting sizes per stage."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import csr, huffman
from .sizes import LayerSizes, layer_sizes

__all__ = ["LayerEncoding", "encode_layer"]


@dataclass
class LayerEncoding:
    rel: np.ndarray  # CSR relative indices (uint8)
    code: np.ndarray  # CSR codes (uint8, 0 = filler)
    rowptr: np.ndarray  # CSR row starts (int32)
    sizes: LayerSizes  # bytes per stage (``dense`` counts the pruned shape)

    @property
    def fillers(self) -> int:
        return int(np.sum(self.code == 0))


def encode_layer(
    codes: np.ndarray, index_bits: int, code_bits: int, clusters: int
) -> LayerEncoding:
    """CSR + Huffman encoding and sizes of a layer's codes.

    Parameters
    ----------
    codes : np.ndarray
        Codebook index per weight (0 = pruned), one row per output unit (conv kernels are
        flattened per output channel).
    index_bits : int
        Bits of a CSR relative index.
    code_bits : int
        Bits of a code (the codebook has ``2**code_bits`` entries).
    clusters : int
        Codebook entries counted by the ``shared`` and ``pow2`` sizes.

    Returns
    -------
    LayerEncoding
    """
    rel, code, rowptr = csr.encode(codes, index_bits)
    rows = codes.reshape(len(codes), -1)
    assert np.array_equal(csr.decode(rel, code, rowptr, rows.shape[1]), rows)
    hc, hr = huffman.encode(code), huffman.encode(rel)
    assert np.array_equal(huffman.decode(*hc), code.astype(np.int64))
    assert np.array_equal(huffman.decode(*hr), rel.astype(np.int64))
    table = huffman.table_bits(hc[2], code_bits) + huffman.table_bits(hr[2], index_bits)
    sz = layer_sizes(
        codes.size,
        len(codes),
        len(codes),
        len(rel),
        index_bits,
        code_bits,
        clusters,
        hc[1] + hr[1],
        table,
    )
    return LayerEncoding(rel, code, rowptr, sz)
