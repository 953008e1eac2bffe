"""Ports of a top module, read from the generated Verilog."""

from __future__ import annotations

import re

_DECL = re.compile(r"^\s*(input|output|inout)\s+(?:\[(\d+):(\d+)\]\s+)?(\\\S+|\w+)\s*;", re.M)


def top_ports(verilog_text: str, top: str) -> list[dict]:
    """``[{"name", "direction", "width"}, ...]`` of module ``top``, in declaration order."""
    match = re.search(rf"^module\s+{re.escape(top)}\s*\(", verilog_text, re.M)
    if match is None:
        raise ValueError(f"module {top!r} not found in the generated Verilog")
    end = verilog_text.find("endmodule", match.end())
    body = verilog_text[match.end() : end]
    ports = []
    for direction, hi, lo, name in _DECL.findall(body):
        width = int(hi) - int(lo) + 1 if hi else 1
        ports.append({"name": name, "direction": direction, "width": width})
    return ports
