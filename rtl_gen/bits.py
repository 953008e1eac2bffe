"""Bit tricks on Amaranth values for one-hot searches: the lowest set bit, the value without
it, and whether at most one bit is set (each a carry chain as long as the value); a one-hot
selection as an AND-OR tree, and a one-hot value's index."""

from __future__ import annotations

from amaranth import Cat, Mux

__all__ = ["at_most_one", "lowest", "one_hot_index", "one_hot_select", "or_tree", "without_lowest"]


def lowest(x):
    """The lowest set bit of ``x``, one-hot (0 if none), ``len(x)`` bits."""
    return (x & (~x + 1))[: len(x)]


def without_lowest(x):
    """``x`` with its lowest set bit cleared, ``len(x)`` bits."""
    return (x & (x - 1))[: len(x)]


def at_most_one(x):
    """Whether at most one bit of ``x`` is set."""
    return ~without_lowest(x).any()


def or_tree(terms):
    """The OR of ``terms`` as a balanced tree (not a chain)."""
    terms = list(terms)
    while len(terms) > 1:
        paired = [a | b for a, b in zip(terms[0::2], terms[1::2], strict=False)]
        if len(terms) % 2:
            paired.append(terms[-1])
        terms = paired
    return terms[0]


def one_hot_select(one_hot, words):
    """``words[i]`` where bit ``i`` of ``one_hot`` is set (0 if none): an AND-OR tree."""
    return or_tree(Mux(flag, word, 0) for flag, word in zip(one_hot, words, strict=True))


def one_hot_index(one_hot, width: int):
    """The index of the set bit of ``one_hot`` (0 if none), ``width`` bits: an OR per bit."""
    n = len(one_hot)
    return Cat(*(Cat(*(one_hot[i] for i in range(n) if i >> b & 1)).any() for b in range(width)))
