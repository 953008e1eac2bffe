"""Verilator ``--lint-only -Wall`` of an export folder, with documented waivers."""

from __future__ import annotations

import subprocess
from pathlib import Path

WAIVER_FILE = "verilator_waivers.vlt"

#: Warnings Amaranth's netlist style raises by construction, and why they are harmless.
WAIVERS = {
    "DECLFILENAME": "submodules are named <top>.<path> and share the top's file",
    "PROCASSINIT": "registers carry their reset value as an initialiser, which FPGAs honour",
    "UNUSEDSIGNAL": "struct fields and intermediate wires are emitted even when unread",
    "UNUSEDPARAM": "generated parameters may be unread",
    "WIDTHEXPAND": "operand widths follow Verilog's context rules, which Amaranth relies on",
    "WIDTHTRUNC": "a 1-bit logical negation of a wider select is Amaranth's idiom for == 0",
    "CASEINCOMPLETE": "every case statement is preceded by a default assignment: no latch",
}


def waiver_text(sources: list[str]) -> str:
    lines = ["`verilator_config", "// Waivers for Amaranth-generated Verilog; reasons:"]
    lines += [f"//   {rule}: {why}" for rule, why in WAIVERS.items()]
    for source in sources:
        lines += [f'lint_off -rule {rule} -file "*{source}"' for rule in WAIVERS]
    return "\n".join(lines) + "\n"


def lint(folder: Path, sources: list[str], top: str) -> subprocess.CompletedProcess:
    """Run Verilator's lint on ``folder``; the caller checks ``returncode`` and ``stderr``."""
    from sim.tools import prepare_environment

    prepare_environment("verilator")
    return subprocess.run(
        ["verilator", "--lint-only", "-Wall", "--top-module", top, WAIVER_FILE, *sources],
        cwd=folder,
        capture_output=True,
        text=True,
    )
