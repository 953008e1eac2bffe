"""Build an Amaranth component and run a cocotb test module on it, with any simulator.

Generic: the convolution engine, the neuron and the MLP all go through :func:`run_cocotb`.
One build directory per parameter set (the caller names it); inside it, one sub-directory per
simulator holds the compiled model, so re-running the same parameters skips the compile::

    <build_dir>/<toplevel>.v          generated Verilog (rewritten only when it changes)
    <build_dir>/<sim>/                simulator build, results XML, log, waveforms
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from cocotb_tools.check_results import get_results
from cocotb_tools.runner import get_runner
from filelock import FileLock

from rtl_gen.verilog import write_verilog

from .tools import SIMULATORS, available_simulators, prepare_environment

__all__ = ["SimResult", "SimulatorMissing", "run_cocotb"]

#: Verilator must not stop on lint warnings of generated code (width extensions and such).
VERILATOR_BUILD_ARGS = ("-Wno-fatal", "-Wno-WIDTH", "-Wno-UNUSED", "-Wno-UNOPTFLAT")


class SimulatorMissing(RuntimeError):
    """The requested simulator is not installed here."""


@dataclass
class SimResult:
    """Outcome of one simulator run of one cocotb test module."""

    simulator: str
    tests: int
    failed: int
    results_xml: Path
    sim_dir: Path
    verilog: Path
    log: Path
    build_seconds: float
    test_seconds: float
    rebuilt: bool
    waves: Path | None = None
    exit_code: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and self.tests > 0 and self.failed == 0

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@contextlib.contextmanager
def _waves_env(waves: bool):
    """cocotb's runner lets ``$WAVES`` override its argument: make the argument win."""
    old = os.environ.get("WAVES")
    os.environ["WAVES"] = "1" if waves else "0"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("WAVES", None)
        else:
            os.environ["WAVES"] = old


def _failed_testcases(xml: Path) -> list[str]:
    from xml.etree import ElementTree

    names = []
    with contextlib.suppress(Exception):
        for case in ElementTree.parse(xml).getroot().iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                names.append(case.get("name", "?"))
    return names


def run_cocotb(
    component,
    *,
    toplevel: str,
    test_module: str,
    build_dir,
    simulator: str,
    extra_env: dict[str, str] | None = None,
    waves: bool = False,
    testcase: str | list[str] | None = None,
    seed: int | None = None,
    build_args: tuple[str, ...] = (),
    extra_sources: dict[str, str] | None = None,
    core_name: str | None = None,
) -> SimResult:
    """Convert ``component`` to Verilog, compile it for ``simulator``, run ``test_module``.

    Parameters
    ----------
    component : amaranth.lib.wiring.Component
        The design; its ports are ``clk``, ``rst`` and the signature members.
    toplevel : str
        Verilog module name (cocotb's ``dut``).
    test_module : str
        Importable module holding the ``@cocotb.test`` functions.
    build_dir : path
        Directory of this parameter set; the simulator works in ``build_dir/simulator``.
    simulator : str
        ``"icarus"`` or ``"verilator"``. Raises :class:`SimulatorMissing` if not installed.
    extra_env : dict, optional
        Environment of the simulation (how parameters reach the cocotb tests).
    waves : bool
        Record a waveform (``<toplevel>.fst`` for Icarus, ``dump.vcd`` for Verilator).
    testcase : str or list of str, optional
        Run only these test functions.
    seed : int, optional
        cocotb's random seed.
    extra_sources : dict, optional
        More Verilog files, ``{file name: text}``, written next to the component's and compiled
        with it (e.g. the AXI4-Stream wrapper of :mod:`rtl_gen.export.axis`; ``toplevel`` then
        names the wrapper's module).
    core_name : str, optional
        Module name of ``component`` when ``toplevel`` is another module (default
        ``toplevel``).

    Returns
    -------
    SimResult
        Number of tests and failures from the results XML; ``passed`` is the verdict. The
        simulator's output goes to ``SimResult.log``. Runs on the same build directory and
        simulator wait for each other (a lock file next to it).
    """
    # One run at a time per build directory and simulator: a second `make sim` or test worker on
    # the same design waits instead of overwriting the simulator binary under the first.
    lock = Path(build_dir).resolve() / f".{simulator}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock)):
        return _run_cocotb(
            component,
            toplevel=toplevel,
            test_module=test_module,
            build_dir=build_dir,
            simulator=simulator,
            extra_env=extra_env,
            waves=waves,
            testcase=testcase,
            seed=seed,
            build_args=build_args,
            extra_sources=extra_sources,
            core_name=core_name,
        )


def _run_cocotb(
    component,
    *,
    toplevel: str,
    test_module: str,
    build_dir,
    simulator: str,
    extra_env: dict[str, str] | None = None,
    waves: bool = False,
    testcase: str | list[str] | None = None,
    seed: int | None = None,
    build_args: tuple[str, ...] = (),
    extra_sources: dict[str, str] | None = None,
    core_name: str | None = None,
) -> SimResult:
    """Body of :func:`run_cocotb`, with the build directory locked."""
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator must be one of {SIMULATORS}, not {simulator!r}")
    if simulator not in available_simulators():
        raise SimulatorMissing(f"simulator {simulator!r} is not installed")
    prepare_environment(simulator)

    build_dir = Path(build_dir).resolve()
    sim_dir = build_dir / simulator
    sim_dir.mkdir(parents=True, exist_ok=True)
    core = core_name or toplevel
    verilog_path = write_verilog(component, build_dir / f"{core}.v", name=core)
    sources = [verilog_path]
    for name, text in (extra_sources or {}).items():
        path = build_dir / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        sources.append(path)

    args = list(build_args)
    if simulator == "verilator":
        args = [*VERILATOR_BUILD_ARGS, *args]
    runner = get_runner(simulator)

    # Skip the compile when the same Verilog was built with the same options.
    key = hashlib.sha256(
        # (one source: the key of the builds before extra sources existed, so they stay cached)
        json.dumps(
            [*(p.read_text() for p in sources), simulator, toplevel, bool(waves), args]
        ).encode()
    ).hexdigest()
    stamp = sim_dir / ".build-key"
    product = sim_dir / ("sim.vvp" if simulator == "icarus" else toplevel)
    rebuilt = not (product.exists() and stamp.exists() and stamp.read_text() == key)
    log = sim_dir / "sim.log"
    started = time.perf_counter()
    if rebuilt:
        stamp.unlink(missing_ok=True)
        with _waves_env(waves):
            runner.build(
                sources=sources,
                hdl_toplevel=toplevel,
                build_dir=sim_dir,
                build_args=args,
                timescale=("1ns", "1ps"),
                waves=waves,
                always=True,
                log_file=sim_dir / "build.log",
            )
        stamp.write_text(key)
    build_seconds = time.perf_counter() - started

    results_xml = sim_dir / "results.xml"
    results_xml.unlink(missing_ok=True)
    exit_code = 0
    started = time.perf_counter()
    with _waves_env(waves):
        try:
            runner.test(
                test_module=test_module,
                hdl_toplevel=toplevel,
                hdl_toplevel_lang="verilog",
                build_dir=sim_dir,
                test_dir=sim_dir,
                extra_env=dict(extra_env or {}),
                waves=waves,
                testcase=testcase,
                seed=seed,
                results_xml=str(results_xml),
                log_file=log,
            )
        except SystemExit as exc:  # the runner exits on failures when called from pytest
            exit_code = exc.code if isinstance(exc.code, int) else 1
        except RuntimeError:  # the simulator process failed
            exit_code = 1
    test_seconds = time.perf_counter() - started

    try:
        tests, failed = get_results(results_xml)
    except RuntimeError:
        tests, failed, exit_code = 0, 0, exit_code or 1
    wave_file = None
    if waves:
        name = f"{toplevel}.fst" if simulator == "icarus" else "dump.vcd"
        wave_file = sim_dir / name
    return SimResult(
        simulator=simulator,
        tests=tests,
        failed=failed,
        results_xml=results_xml,
        sim_dir=sim_dir,
        verilog=verilog_path,
        log=log,
        build_seconds=build_seconds,
        test_seconds=test_seconds,
        rebuilt=rebuilt,
        waves=wave_file,
        exit_code=exit_code,
        failures=_failed_testcases(results_xml),
    )
