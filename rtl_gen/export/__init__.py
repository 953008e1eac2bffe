"""Vivado-ready export: Verilog, ROM files, Tcl, XDC, manifest, Yosys resource figures."""
