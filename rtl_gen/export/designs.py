"""The designs ``make verilog`` / ``make synth`` know, built from command-line parameters."""

from __future__ import annotations

from .folder import Design


def conv_design(
    line_buffers: int = 4, kernel: int = 3, width: int = 28, height: int = 28
) -> Design:
    """The line-buffer convolution engine with its default coefficients."""
    from rtl_gen.conv.engine import ConvEngine
    from tb.golden.conv import conv_cycles

    engine = ConvEngine(width=width, height=height, kernel=kernel, line_buffers=line_buffers)
    cycles = conv_cycles(width, height, kernel, line_buffers)
    return Design(
        name=f"conv_n{line_buffers}_k{kernel}_{width}x{height}",
        top="conv_engine",
        component=engine,
        parameters=engine.params.to_dict(),
        latency={"read_to_output_cycles": engine.latency},
        cycle_model={
            "function": "tb.golden.conv.conv_cycles",
            "cycles_per_frame": cycles,
            "cycles_two_frames": conv_cycles(width, height, kernel, line_buffers, frames=2),
            "formula": (
                "(2H - K + 1)·W + latency" if line_buffers == kernel else "(H + 1)·W + latency"
            ),
        },
    )
