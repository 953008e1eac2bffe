"""Results on disk: one JSON per point (``points/<key>.json``, written to a temporary file and
renamed, so a killed sweep never leaves half a file), a failing point's traceback next to it,
and the table ``results.csv`` rebuilt from the JSONs of the sweep's points."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from compress.files import write_atomic

from .grid import Point

# the table's first columns (then the point's settings, then the other figures)
LEAD = ("key", "status", "error")


class Store:
    """The results of one sweep under ``root`` (``build/sweep/<name>``)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.points = self.root / "points"

    def path(self, point: Point) -> Path:
        return self.points / f"{point.key[:20]}.json"

    def load(self, point: Point) -> dict | None:
        """The point's record, or None when it has none (or an unreadable one)."""
        try:
            record = json.loads(self.path(point).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return record if record.get("key") == point.key else None

    def save(self, point: Point, result: dict, traceback: str | None = None) -> dict:
        """The point's record: its key, code version, settings, check and ``result``'s figures
        (``status`` ``ok``, or ``error`` with a one-line ``error`` and a traceback file)."""
        record = {
            "key": point.key,
            "code_version": point.code_version,
            "kind": point.kind,
            "config": point.config,
            "check": point.check,
            **result,
        }
        if traceback is not None:
            tb_path = self.path(point).with_suffix(".traceback.txt")
            write_atomic(tb_path, traceback, durable=True)
            record["traceback"] = str(tb_path.relative_to(self.root))
        write_atomic(
            self.path(point),
            json.dumps(record, indent=1, default=_jsonable) + "\n",
            durable=True,
        )
        return record

    def table(self, points: list[Point], axes) -> list[dict]:
        """One flat row per point that has a record, settings as columns."""
        rows = []
        for point in points:
            record = self.load(point)
            if record is None:
                continue
            row = {
                "key": record["key"][:20],
                "status": record["status"],
                "error": record.get("error", ""),
            }
            for name in axes:
                row[name] = _cell(point.values.get(name))
            for name, value in record.get("figures", {}).items():
                if not isinstance(value, dict):
                    row[name] = _cell(value)
            rows.append(row)
        return rows

    def write_table(self, rows: list[dict]) -> Path:
        columns = list(LEAD)
        for row in rows:
            columns += [c for c in row if c not in columns]
        lines = _csv_text(columns, rows)
        path = self.root / "results.csv"
        write_atomic(path, lines)
        return path


def _csv_text(columns, rows) -> str:
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _cell(value):
    if isinstance(value, (list, tuple)):
        return "x".join(map(str, value))
    return value


def _jsonable(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON: {type(value).__name__}")
