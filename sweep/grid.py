"""The sweep file (TOML): ``name``, ``kind`` (``mlp`` or ``conv``), ``[fixed]`` settings of
every point, ``[axes]`` lists whose product is the grid, ``[check]`` what each point measures.
Each point is keyed by a SHA-256 of its full configuration and the code version."""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("mlp", "conv")
# the sources whose change may change a point's figures: a new code version re-runs every point
# (the sweep's own table, plots and scheduling code are not among them)
CODE_DIRS = ("compress", "compress2rtl", "rtl_gen", "tb", "sim")
CODE_FILES = ("sweep/points.py",)
# what each point measures, and the defaults
CHECK_DEFAULTS = {"synth": True, "rtl_images": 4, "simulator": None, "cycle_images": 100}
# the MLP point's hardware options (the rest goes to the compress pipeline's Config)
MLP_HARDWARE = {"build": None, "layout": "auto", "zero_skip": True}
CONV_DEFAULTS = {
    "line_buffers": 4,
    "kernel": 3,
    "width": 28,
    "height": 28,
    "pixels_per_clock": 1,
    "pipeline": None,
}


class SweepError(ValueError):
    """A sweep file that cannot be run (one line)."""


@dataclass(frozen=True)
class Point:
    """One grid point: its settings (``fixed`` then the axes' values), what is checked, its key."""

    kind: str
    config: dict
    check: dict
    code_version: str
    #: the axes' values as the sweep file gives them (``size``, not width and height)
    values: dict = field(default_factory=dict, compare=False)

    @property
    def key(self) -> str:
        text = json.dumps(
            {
                "kind": self.kind,
                "config": self.config,
                "check": self.check,
                "code_version": self.code_version,
            },
            sort_keys=True,
        )
        return hashlib.sha256(text.encode()).hexdigest()

    def label(self, axes) -> str:
        return " ".join(f"{a}={_short(self.values.get(a))}" for a in axes)


@dataclass
class Sweep:
    name: str
    kind: str
    fixed: dict
    axes: dict
    check: dict
    path: Path | None = None
    points: list[Point] = field(default_factory=list)


def _short(value) -> str:
    if isinstance(value, (list, tuple)):
        return "x".join(map(str, value))
    return str(value)


def code_version(root: Path = ROOT) -> str:
    """SHA-256 (first 16 hex digits) of every ``.py`` file under :data:`CODE_DIRS` and of
    :data:`CODE_FILES`, names and contents: uncommitted edits count, build output does not."""
    digest = hashlib.sha256()
    paths = [p for top in CODE_DIRS for p in (root / top).rglob("*.py")]
    for path in sorted([*paths, *(root / f for f in CODE_FILES)]):
        rel = path.relative_to(root)
        if "build" in rel.parts:
            continue
        digest.update(str(rel).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def git_describe(root: Path = ROOT) -> str | None:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return None
    return out.stdout.strip() or None


def _normalise(value):
    """TOML arrays as lists, recursively (the JSON of the key must not depend on the reader)."""
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    return value


def sweep_from_dict(data: dict, path: Path | None = None, version: str | None = None) -> Sweep:
    """A :class:`Sweep` and its points from the parsed TOML ``data``."""
    unknown = set(data) - {"name", "kind", "fixed", "axes", "check"}
    if unknown:
        raise SweepError(f"unknown keys {sorted(unknown)} (name, kind, fixed, axes, check)")
    name = data.get("name") or (path.stem if path else None)
    if not name:
        raise SweepError("the sweep needs a name")
    kind = data.get("kind", "mlp")
    if kind not in KINDS:
        raise SweepError(f"kind must be one of {KINDS}, not {kind!r}")
    fixed = _normalise(dict(data.get("fixed", {})))
    axes = _normalise(dict(data.get("axes", {})))
    for axis, values in axes.items():
        if not isinstance(values, list) or not values:
            raise SweepError(f"axis {axis!r} must be a non-empty list of values")
        if axis in fixed:
            raise SweepError(f"{axis!r} is both fixed and an axis")
    check = {**CHECK_DEFAULTS, **_normalise(dict(data.get("check", {})))}
    bad = set(check) - set(CHECK_DEFAULTS)
    if bad:
        raise SweepError(f"unknown check keys {sorted(bad)} ({', '.join(CHECK_DEFAULTS)})")
    version = version or code_version()
    sweep = Sweep(name, kind, fixed, axes, check, path)
    names = list(axes)
    for combination in itertools.product(*(axes[a] for a in names)):
        values = dict(zip(names, combination, strict=True))
        config = {**fixed, **values}
        if kind == "conv":
            if "size" in config:  # a square image
                size = config.pop("size")
                config.update(width=size, height=size)
            bad = set(config) - set(CONV_DEFAULTS)
            if bad:
                known = ", ".join([*CONV_DEFAULTS, "size"])
                raise SweepError(f"unknown conv settings {sorted(bad)} ({known})")
            config = {**CONV_DEFAULTS, **config}
        sweep.points.append(Point(kind, config, check, version, values))
    return sweep


def load_sweep(path, version: str | None = None) -> Sweep:
    """Read a sweep file; :class:`SweepError` (one line) when it is not a valid one."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise SweepError(f"no sweep file {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"{path}: {exc}") from exc
    return sweep_from_dict(data, path, version)
