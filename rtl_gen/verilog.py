"""Convert an Amaranth component to a Verilog file that every simulator accepts."""

from __future__ import annotations

from pathlib import Path

from amaranth.back import verilog

from compress.files import write_atomic

__all__ = ["TIMESCALE", "to_verilog", "write_verilog"]

#: First line of every generated file: Icarus needs a timescale for cocotb's timing.
TIMESCALE = "`timescale 1ns/1ps"


def to_verilog(component, name: str = "top") -> str:
    """Verilog text of ``component`` as module ``name``, with the timescale line on top.

    The ports are the component's signature members plus ``clk`` and ``rst`` (when the design
    has synchronous logic); stream members become ``<member>__valid``, ``__ready`` and
    ``__payload``.
    """
    text = verilog.convert(component, name=name, emit_src=False, strip_internal_attrs=True)
    return f"{TIMESCALE}\n{text}"


def write_verilog(component, path, name: str = "top") -> Path:
    """Write ``component`` as module ``name`` to ``path`` (parents created).

    The file is rewritten only when its text changes, so that simulator builds keyed on the
    file's time stamp stay cached. Returns the path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = to_verilog(component, name=name)
    if not path.exists() or path.read_text() != text:
        write_atomic(path, text)  # a simulator build reading it never sees half a file
    return path
