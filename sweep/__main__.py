"""python -m sweep SWEEP.toml [--address ADDR] [--cpus N] [--out DIR] [--retry-failed]"""

from __future__ import annotations

import argparse
import sys

from .grid import SweepError, load_sweep
from .runner import run_sweep


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sweep", description="design-space sweep on Ray")
    ap.add_argument("sweep", help="the sweep file (TOML), e.g. sweeps/digits_mlp.toml")
    ap.add_argument(
        "--address", default=None, help="a Ray cluster (default: $RAY_ADDRESS, else a local Ray)"
    )
    ap.add_argument("--cpus", type=int, default=None, help="local Ray: CPUs (default: all)")
    ap.add_argument("--out", default=None, help="output root (default build/sweep)")
    ap.add_argument("--retry-failed", action="store_true", help="re-run the failed points")
    ap.add_argument("--list", action="store_true", help="list the points and exit")
    args = ap.parse_args(argv)
    try:
        sweep = load_sweep(args.sweep)
    except SweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.list:
        for p in sweep.points:
            print(p.key[:20], p.label(sweep.axes))
        return 0
    summary = run_sweep(
        sweep, args.out, address=args.address, num_cpus=args.cpus, retry_failed=args.retry_failed
    )
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
