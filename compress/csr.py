"""CSR rows with relative indices of ``index_bits`` bits and filler entries (``docs/bundle.md``).

Each stored entry carries ``rel`` (zeros skipped since the previous entry; the column is
``prev + rel + 1`` from ``prev = -1``) and a code; a gap above ``2**index_bits - 1`` is bridged by
filler entries ``(2**index_bits - 1, 0)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["decode", "encode"]


def encode(codes, index_bits: int):
    """``(rel uint8, code uint8, rowptr int32)`` of a 2-D array of codes (0 = zero weight).
    Rows are ``codes.reshape(len(codes), -1)`` (conv kernels flattened per output channel)."""
    codes = np.asarray(codes)
    codes = codes.reshape(len(codes), -1)
    limit = (1 << index_bits) - 1
    rel, code, rowptr = [], [], [0]
    for row in codes:
        prev = -1
        for col in np.flatnonzero(row):
            gap = int(col) - prev - 1
            while gap > limit:
                rel.append(limit)
                code.append(0)
                gap -= limit + 1
            rel.append(gap)
            code.append(int(row[col]))
            prev = int(col)
        rowptr.append(len(rel))
    return (
        np.array(rel, dtype=np.uint8),
        np.array(code, dtype=np.uint8),
        np.array(rowptr, dtype=np.int32),
    )


def decode(rel, code, rowptr, n_cols: int) -> np.ndarray:
    """Dense ``(rows, n_cols)`` codes back from a CSR stream."""
    rel, code, rowptr = (np.asarray(a, dtype=np.int64) for a in (rel, code, rowptr))
    out = np.zeros((len(rowptr) - 1, n_cols), dtype=np.int64)
    for j in range(len(rowptr) - 1):
        r = rel[rowptr[j] : rowptr[j + 1]]
        cols = np.cumsum(r + 1) - 1
        if len(cols) and cols[-1] >= n_cols:
            raise ValueError(f"row {j}: column {cols[-1]} beyond {n_cols}")
        c = code[rowptr[j] : rowptr[j + 1]]
        out[j, cols] = c
    return out
