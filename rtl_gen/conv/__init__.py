"""Streaming N-line-buffer 2-D convolution engine.

:class:`ConvEngine` is the top; :class:`ConvParams` validates its parameters. See
``docs/conv.md`` for the architecture, the cycle model and the arithmetic.
"""

from .engine import ConvEngine, pack_coefficients
from .params import ROUNDING_MODES, ConvParams, accumulator_width, default_coefficients, sum_width
from .window import READ_TO_OUTPUT_LATENCY, datapath_latency, output_layout

__all__ = [
    "READ_TO_OUTPUT_LATENCY",
    "ROUNDING_MODES",
    "ConvEngine",
    "ConvParams",
    "accumulator_width",
    "datapath_latency",
    "default_coefficients",
    "output_layout",
    "pack_coefficients",
    "sum_width",
]
