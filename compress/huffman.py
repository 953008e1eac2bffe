"""Canonical Huffman coding of small-alphabet integer streams, exact round trip."""

from __future__ import annotations

import heapq
from collections import Counter

import numpy as np

__all__ = ["code_lengths", "decode", "encode", "table_bits"]


def code_lengths(symbols) -> dict[int, int]:
    """Huffman code length per symbol (a single symbol gets length 1)."""
    counts = Counter(int(s) for s in np.asarray(symbols).ravel())
    if not counts:
        return {}
    if len(counts) == 1:
        return {next(iter(counts)): 1}
    heap = [(n, i, [s]) for i, (s, n) in enumerate(sorted(counts.items()))]
    heapq.heapify(heap)
    lengths = dict.fromkeys(counts, 0)
    tie = len(heap)
    while len(heap) > 1:
        n1, _, s1 = heapq.heappop(heap)
        n2, _, s2 = heapq.heappop(heap)
        for s in s1 + s2:
            lengths[s] += 1
        heapq.heappush(heap, (n1 + n2, tie, s1 + s2))
        tie += 1
    return lengths


def _canonical(lengths: dict[int, int]) -> dict[int, tuple[int, int]]:
    """``{symbol: (code, length)}`` of the canonical code for ``lengths``."""
    out, code, prev = {}, 0, 0
    for s, n in sorted(lengths.items(), key=lambda kv: (kv[1], kv[0])):
        code <<= n - prev
        out[s] = (code, n)
        code += 1
        prev = n
    return out


def encode(symbols) -> tuple[bytes, int, dict[int, int]]:
    """``(payload, n_bits, lengths)``; ``lengths`` is all the decoder needs."""
    lengths = code_lengths(symbols)
    table = _canonical(lengths)
    bits = []
    for s in np.asarray(symbols).ravel():
        c, n = table[int(s)]
        bits.append(format(c, f"0{n}b"))
    s = "".join(bits)
    n_bits = len(s)
    s += "0" * (-n_bits % 8)
    payload = int(s, 2).to_bytes(len(s) // 8, "big") if s else b""
    return payload, n_bits, lengths


def decode(payload: bytes, n_bits: int, lengths: dict[int, int]) -> np.ndarray:
    table = {(n, c): s for s, (c, n) in _canonical(lengths).items()}
    bits = "".join(format(b, "08b") for b in payload)[:n_bits]
    out, code, n = [], 0, 0
    for ch in bits:
        code = (code << 1) | (ch == "1")
        n += 1
        s = table.get((n, code))
        if s is not None:
            out.append(s)
            code, n = 0, 0
    if n:
        raise ValueError("Huffman stream ends inside a code word")
    return np.array(out, dtype=np.int64)


def table_bits(lengths: dict[int, int], symbol_bits: int = 8) -> int:
    """Bits to store a canonical table: per symbol its value and a 5-bit length, plus a count."""
    return 8 + len(lengths) * (symbol_bits + 5)
