"""The sweep on Ray: each point not yet recorded is one ``@ray.remote(num_cpus=1)`` task; the
driver writes each point's JSON as its task finishes, then the table, the plots and the front."""

from __future__ import annotations

import os
import time
import traceback
from pathlib import Path

from compress.files import write_atomic

from .grid import ROOT, Point, Sweep, git_describe
from .pareto import front_markdown, plot_fronts
from .store import Store

DEFAULT_OUT = ROOT / "build" / "sweep"


def _task(point: Point, work: str) -> dict:
    """The Ray task's body: a point's figures, or its error (one line and the traceback)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        from .points import run_point

        return {"status": "ok", "figures": run_point(point, Path(work)), "node": os.uname()[1]}
    except Exception as exc:  # noqa: BLE001 - every failure is recorded, the sweep goes on
        line = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        return {
            "status": "error",
            "error": line,
            "traceback_text": traceback.format_exc(),
            "node": os.uname()[1],
        }


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """``ray.init``: the cluster at ``address`` (or ``$RAY_ADDRESS``) when given, else a local
    one with ``num_cpus`` CPUs (default: every core). Workers get this checkout on their
    ``PYTHONPATH`` and one OpenMP thread."""
    import ray

    if ray.is_initialized():
        return
    env = {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "OMP_NUM_THREADS": "1",
    }
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, runtime_env={"env_vars": env}, log_to_driver=False)
    else:
        os.environ.update(env)  # the local workers inherit the driver's environment
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False)


def run_sweep(
    sweep: Sweep,
    out: Path | None = None,
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    retry_failed: bool = False,
    progress: bool = True,
    log=print,
) -> dict:
    """Run every point of ``sweep`` that has no record yet (and the failed ones with
    ``retry_failed``); write the table, the plots and the front. Returns the counts
    (``total``, ``skipped``, ``computed``, ``failed``), the wall time and the output paths."""
    root = Path(out or DEFAULT_OUT) / sweep.name
    store = Store(root)
    todo, skipped = [], 0
    for point in sweep.points:
        record = store.load(point)
        if record is None or (retry_failed and record["status"] != "ok"):
            todo.append(point)
        else:
            skipped += 1
    version = sweep.points[0].code_version if sweep.points else "-"
    log(
        f"sweep {sweep.name}: {len(sweep.points)} points, {skipped} already recorded, "
        f"{len(todo)} to run (code version {version})"
    )
    t0 = time.time()
    failed = 0
    if todo:
        import ray
        from tqdm import tqdm

        init_ray(address, num_cpus)
        remote = ray.remote(num_cpus=1, max_retries=0)(_task)
        pending = {remote.remote(p, str(root / "work" / p.key[:20])): p for p in todo}
        bar = tqdm(
            total=len(todo),
            desc=f"sweep {sweep.name}",
            unit="point",
            disable=not progress,
            smoothing=0,
        )
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                point = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a dead worker is this point's error
                    result = {
                        "status": "error",
                        "error": f"{type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}"[:500],
                        "traceback_text": traceback.format_exc(),
                    }
                tb = result.pop("traceback_text", None)
                store.save(point, result, tb)
                if result["status"] != "ok":
                    failed += 1
                    bar.write(f"  failed: {point.label(sweep.axes)}: {result['error']}")
                bar.update(1)
                bar.set_postfix(failed=failed)
        bar.close()
    wall = time.time() - t0
    paths = write_outputs(sweep, store)
    summary = {
        "total": len(sweep.points),
        "skipped": skipped,
        "computed": len(todo),
        "failed": failed,
        "wall_seconds": round(wall, 1),
        **paths,
    }
    log(
        f"sweep {sweep.name}: {len(todo)} points run in {wall:.1f} s ({failed} failed); "
        f"table {paths['table']}, front {paths['front']}"
    )
    return summary


def write_outputs(sweep: Sweep, store: Store) -> dict:
    """``results.csv`` from the points' JSONs, the Pareto PNGs and ``front.md``."""
    axes = list(sweep.axes)
    rows = store.table(sweep.points, axes)
    table = store.write_table(rows)
    ok = [r for r in rows if r["status"] == "ok"]
    labels = [" ".join(str(r.get(a)) for a in axes) for r in ok]
    pngs = plot_fronts(ok, sweep.kind, store.root, labels, " ".join(axes)) if ok else []
    errors = [r for r in rows if r["status"] != "ok"]
    text = [
        f"# Sweep {sweep.name}: Pareto front\n",
        f"{len(ok)} points done, {len(errors)} failed, of {len(sweep.points)}; code version "
        f"{sweep.points[0].code_version if sweep.points else '-'} ({git_describe()}); "
        f"sweep file {sweep.path}.\n",
    ]
    if ok:
        text.append(front_markdown(ok, sweep.kind, axes))
    for r in errors:
        text.append(f"- failed {r['key']}: {r['error']}")
    front = store.root / "front.md"
    write_atomic(front, "\n".join(text) + "\n")
    return {"table": str(table), "front": str(front), "plots": [str(p) for p in pngs]}
