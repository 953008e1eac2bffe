"""Run the AXI4-Stream top of an exported design (:mod:`rtl_gen.export.axis`) under cocotb.

The wrapper ``<core>_axis.v`` and the core (the design's component, converted as module
``<core>``) are compiled together, one build directory per parameter set and simulator;
``tb.axis_tb`` drives the wrapper with cocotbext-axi and compares with the golden model.
"""

from __future__ import annotations

from pathlib import Path

from rtl_gen.export.axis import axis_top
from rtl_gen.export.folder import Design

from .mlp import run_case

__all__ = ["run_axis"]


def run_axis(
    design: Design,
    kind: str,
    case: dict,
    build_dir,
    simulator: str,
    testcase=None,
    test_module: str = "tb.axis_tb",
):
    """Build ``design``'s core and AXI4-Stream top, run ``test_module`` (``tb.axis_tb``, or
    ``tb.ram_tb`` for a ``WEIGHTS=ram`` MLP) with ``case`` (the DUT's part, see
    :mod:`tb.axis_tb`); return ``(SimResult, report, AxisTop)``."""
    top = axis_top(design.component, design.top)
    case = {**case, "kind": kind, "axis": top.manifest()}
    result, report = run_case(
        design.component, case, Path(build_dir), simulator, test_module=test_module,
        testcase=testcase, toplevel=top.module, describe=lambda _: {},
        extra_sources={top.source: top.text}, core_name=design.top,
    )  # fmt: skip
    return result, report, top
