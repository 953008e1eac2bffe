"""Golden models: what the generated hardware must output, and in how many cycles."""

from .conv import PIPELINE_LATENCY, conv2d, conv_cycles, conv_cycles_closed_form

__all__ = ["PIPELINE_LATENCY", "conv2d", "conv_cycles", "conv_cycles_closed_form"]
