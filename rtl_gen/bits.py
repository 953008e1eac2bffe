"""Bit tricks on Amaranth values for one-hot searches: the lowest set bit, the value without
it, and whether at most one bit is set (each a carry chain as long as the value)."""

from __future__ import annotations

__all__ = ["at_most_one", "lowest", "without_lowest"]


def lowest(x):
    """The lowest set bit of ``x``, one-hot (0 if none), ``len(x)`` bits."""
    return (x & (~x + 1))[: len(x)]


def without_lowest(x):
    """``x`` with its lowest set bit cleared, ``len(x)`` bits."""
    return (x & (x - 1))[: len(x)]


def at_most_one(x):
    """Whether at most one bit of ``x`` is set."""
    return ~without_lowest(x).any()
