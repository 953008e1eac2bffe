"""Which test images a simulation runs: ``--images``/``--offset`` or ``--indices``."""

from __future__ import annotations

import argparse

import numpy as np

__all__ = ["non_negative_int", "positive_int", "select_images"]


def _int_at_least(text: str, low: int, wanted: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be {wanted}, not {value}")
    return value


def positive_int(text: str) -> int:
    """``argparse`` type: an integer >= 1 (``--images 0`` is an argparse error)."""
    return _int_at_least(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    """``argparse`` type: an integer >= 0."""
    return _int_at_least(text, 0, "an integer >= 0")


def select_images(total: int, images: int | None, offset: int, indices: str | None) -> np.ndarray:
    """Test-set indices to run: ``indices`` ("3,17,200-210"), else ``images`` from ``offset``
    (all the rest when ``images`` is None). Raises ValueError naming the bad value."""
    if indices:
        chosen = []
        for part in indices.split(","):
            part = part.strip()
            try:
                if "-" in part:
                    lo, hi = (int(v) for v in part.split("-", 1))
                    chosen.extend(range(lo, hi + 1))
                else:
                    chosen.append(int(part))
            except ValueError:
                raise ValueError(f"--indices: {part!r} is not an index or a range a-b") from None
        bad = [i for i in chosen if not 0 <= i < total]
        if bad:
            raise ValueError(f"--indices: {bad[0]} is outside the test set (0..{total - 1})")
        return np.asarray(chosen, dtype=np.int64)
    if offset < 0 or offset >= total:
        raise ValueError(f"--offset must be in 0..{total - 1}, not {offset}")
    if images is not None and images < 1:
        raise ValueError(f"--images must be a positive integer, not {images}")
    stop = total if images is None else min(total, offset + images)
    return np.arange(offset, stop, dtype=np.int64)
