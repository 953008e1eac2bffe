#!/usr/bin/env python3
"""Mutation check of the generators: each small fault in rtl_gen/ must fail a test.

Every mutation of scripts/mutations.toml replaces one text (its anchor, which must occur
exactly once in its file) in a throwaway copy of the repository's tracked files and runs the
mutation's pytest selection there (``cwd`` and ``PYTHONPATH`` on the copy, so the working tree
is never touched). A failing selection catches the mutation; a passing one lets it survive.
Before the mutations, each distinct selection runs once on the unmutated copy and must pass, so
that "caught" means "caught by this fault". Golden models (tb/golden/) are never mutated.

Prints a table (mutation, file, tests, result, seconds) and the score, writes
build/mutate/results.json and exits non-zero below 100 % (or on any error: a vanished anchor,
a selection that collects no test or fails unmutated).

    python scripts/mutate.py [-k NAME ...] [--list] [-j N] [--head] [--timeout S]

``--head`` copies ``git archive HEAD`` instead of the working tree's tracked files.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTATIONS = ROOT / "scripts" / "mutations.toml"
RESULTS = ROOT / "build" / "mutate" / "results.json"
#: Files a mutation may change: the generators, never the golden models or the tests.
MUTABLE = "rtl_gen/"
PYTEST = ["-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider", "-x", "-q", "--no-header"]


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]


def load(path: Path = MUTATIONS) -> list[Mutation]:
    """The mutation list, checked for form: fields, unique names, generator files only."""
    with open(path, "rb") as f:
        entries = tomllib.load(f).get("mutation", [])
    mutations, names = [], set()
    for n, entry in enumerate(entries):
        fields = {"name", "file", "old", "new", "tests"}
        if set(entry) != fields:
            raise ValueError(
                f"{path.name}: mutation {n} has fields {sorted(entry)}, not {sorted(fields)}"
            )
        m = Mutation(**{**entry, "tests": tuple(entry["tests"])})
        if m.name in names:
            raise ValueError(f"{path.name}: mutation name {m.name!r} appears twice")
        names.add(m.name)
        if not m.file.startswith(MUTABLE) or not m.file.endswith(".py"):
            raise ValueError(
                f"{path.name}: {m.name} mutates {m.file}, not a generator ({MUTABLE}*.py)"
            )
        if not m.old or m.old == m.new:
            raise ValueError(f"{path.name}: {m.name} changes nothing")
        if not m.tests or not any(t.startswith("tests/") for t in m.tests):
            raise ValueError(f"{path.name}: {m.name} names no test file")
        mutations.append(m)
    return mutations


def apply(source: str, m: Mutation) -> str:
    """``source`` with the mutation applied; its anchor must occur exactly once."""
    found = source.count(m.old)
    if found != 1:
        raise ValueError(f"{m.name}: {m.old!r} occurs {found} times in {m.file}, expected once")
    return source.replace(m.old, m.new)


def snapshot(dest: Path, head: bool) -> None:
    """Copy the repository's tracked files (or ``git archive HEAD``) to ``dest``."""
    dest.mkdir(parents=True)
    if head:
        tar = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, check=True, capture_output=True)
        with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as archive:
            archive.extractall(dest, filter="data")
        return
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        src = ROOT / name
        if not src.is_file():  # deleted in the working tree
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


def run_tests(tree: Path, tests, timeout: float) -> tuple[str, float, str]:
    """Run a pytest selection in ``tree``: ``("passed" | "failed" | "timeout" | "error"), seconds,
    output tail``."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    start = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, *PYTEST, *tests],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        return "timeout", time.monotonic() - start, out[-2000:]
    seconds = time.monotonic() - start
    tail = (proc.stdout + proc.stderr)[-6000:]
    # pytest: 0 all passed, 1 some failed; 2-5 interrupted, internal error, usage, no tests
    status = {0: "passed", 1: "failed"}.get(proc.returncode, "error")
    return status, seconds, tail


def check_copy(tree: Path) -> None:
    """The copy's packages are what Python imports there (not an installed copy)."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    code = "import rtl_gen, tb; print(rtl_gen.__file__); print(tb.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tree, env=env, check=True, capture_output=True, text=True
    ).stdout.split()
    for path in out:
        if not Path(path).resolve().is_relative_to(tree.resolve()):
            raise RuntimeError(f"the copy imports {path}, not its own files: PYTHONPATH is ignored")


def mutate_one(m: Mutation, base: Path, work: Path, timeout: float) -> dict:
    tree = work / m.name
    shutil.copytree(base, tree, symlinks=True)
    try:
        path = tree / m.file
        try:
            path.write_text(apply(path.read_text(), m))
        except ValueError as e:
            return {"result": "error", "seconds": 0.0, "detail": str(e)}
        status, seconds, tail = run_tests(tree, m.tests, timeout)
        result = {"passed": "survived", "failed": "caught", "timeout": "caught (timeout)"}.get(
            status, "error"
        )
        # the test that failed and its error line: evidence that an assertion caught it
        lines = tail.splitlines()
        failed = [line[7:].split(" - ")[0] for line in lines if line.startswith("FAILED ")]
        errors = [line[1:].strip() for line in lines if line.startswith("E ")]
        why = f"{failed[0] if failed else '?'}: {errors[0] if errors else '?'}"[:300]
        detail = {"caught": why, "error": tail[-2000:]}.get(result, "")
        return {"result": result, "seconds": round(seconds, 1), "detail": detail}
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "-k",
        action="append",
        default=[],
        metavar="NAME",
        help="only mutations whose name contains NAME (repeatable)",
    )
    ap.add_argument(
        "--list", action="store_true", help="list the mutations and their tests, run nothing"
    )
    ap.add_argument(
        "-j", "--jobs", type=int, default=1, help="mutations run in parallel (default 1)"
    )
    ap.add_argument(
        "--head", action="store_true", help="mutate git archive HEAD, not the working tree"
    )
    ap.add_argument(
        "--timeout", type=float, default=300.0, help="seconds per test run (default 300)"
    )
    ap.add_argument(
        "--no-baseline", action="store_true", help="skip the unmutated run of each selection"
    )
    ap.add_argument(
        "--json",
        type=Path,
        default=RESULTS,
        help=f"results file (default {RESULTS.relative_to(ROOT)})",
    )
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error(f"-j must be a positive integer, not {args.jobs}")

    mutations = load()
    if args.k:
        mutations = [m for m in mutations if any(k in m.name for k in args.k)]
        if not mutations:
            ap.error(f"no mutation name contains {' or '.join(args.k)}")
    if args.list:
        for m in mutations:
            print(f"{m.name:28} {m.file:30} {' '.join(m.tests)}")
        print(f"{len(mutations)} mutations")
        return 0

    started = time.monotonic()
    rows, errors = [], []
    with tempfile.TemporaryDirectory(prefix="mutate-") as tmp:
        base = Path(tmp) / "base"
        snapshot(base, args.head)
        check_copy(base)
        for m in mutations:  # every anchor first: a vanished one is an error, not a pass
            try:
                apply((base / m.file).read_text(), m)
            except (ValueError, FileNotFoundError) as e:
                errors.append(str(e))
        if errors:
            print("\n".join(errors), file=sys.stderr)
            return 2
        if not args.no_baseline:
            selections = list(dict.fromkeys(m.tests for m in mutations))
            print(f"baseline: {len(selections)} selections on the unmutated copy", flush=True)
            with ThreadPoolExecutor(args.jobs) as pool:
                runs = list(pool.map(lambda t: run_tests(base, t, args.timeout), selections))
            for tests, (status, seconds, tail) in zip(selections, runs, strict=True):
                print(f"  {status:8} {seconds:6.1f} s  {' '.join(tests)}", flush=True)
                if status != "passed":
                    errors.append(f"unmutated {' '.join(tests)}: {status}\n{tail}")
            if errors:
                print("\n".join(errors), file=sys.stderr)
                return 2

        def job(m):
            r = mutate_one(m, base, Path(tmp), args.timeout)
            print(f"  {r['result']:16} {r['seconds']:6.1f} s  {m.name}", flush=True)
            return r

        print(f"mutations: {len(mutations)}, {args.jobs} at a time", flush=True)
        with ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(job, mutations))
    for m, r in zip(mutations, results, strict=True):
        rows.append({**asdict(m), "tests": " ".join(m.tests), **r})
    total = time.monotonic() - started

    header = ("mutation", "file", "tests", "result", "s")
    table = [(r["name"], r["file"], r["tests"], r["result"], f"{r['seconds']:.1f}") for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(header)]
    print()
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for t in table:
        print("  ".join(c.ljust(w) for c, w in zip(t, widths, strict=True)))
    caught = sum(r["result"].startswith("caught") for r in rows)
    errored = [r for r in rows if r["result"] == "error"]
    score = 100.0 * caught / len(rows)
    print(f"\nscore: {caught}/{len(rows)} caught ({score:.1f} %), {total:.0f} s")
    for r in errored:
        print(f"\nerror in {r['name']}:\n{r['detail']}", file=sys.stderr)

    args.json.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        "caught": caught,
        "total": len(rows),
        "score_percent": round(score, 1),
        "seconds": round(total, 1),
        "jobs": args.jobs,
        "source": "HEAD" if args.head else "working tree",
        "mutations": rows,
    }
    args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"results: {args.json}")
    return 0 if caught == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
