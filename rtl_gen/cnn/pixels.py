"""The pixel stream shared by the CNN blocks: one beat per pixel, all channels at once."""

from __future__ import annotations

import numpy as np
from amaranth import Shape, signed, unsigned
from amaranth.lib import data

__all__ = ["check_int", "pixel_layout", "value_shape"]


def value_shape(bits: int, is_signed: bool) -> Shape:
    """``signed(bits)`` or ``unsigned(bits)``."""
    return signed(bits) if is_signed else unsigned(bits)


def pixel_layout(channels: int, shape) -> data.StructLayout:
    """Payload of a pixel stream: ``{value: ArrayLayout(shape, channels), last: 1}``.

    Channel 0 is in the low bits. ``last`` marks a frame's final pixel (raster order).
    """
    return data.StructLayout({"value": data.ArrayLayout(shape, channels), "last": unsigned(1)})


def check_int(name: str, value, minimum: int, maximum: int | None = None) -> int:
    """``value`` as an int, or a ValueError naming ``name`` and the value."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, not {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be an integer <= {maximum}, not {value!r}")
    return int(value)
