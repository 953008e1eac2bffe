"""The bundle (``docs/bundle.md``): ``manifest.json`` + ``arrays.npz`` in one directory."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["FORMAT", "VERSION", "Bundle", "BundleError", "load_bundle", "save_bundle"]

FORMAT = "compress2rtl-bundle"
VERSION = 1
REQUIRED_LAYER_KEYS = (
    "name",
    "kind",
    "in_features",
    "out_features",
    "weight_format",
    "weight_frac_bits",
    "input_frac_bits",
    "output_frac_bits",
    "output_bits",
    "activation",
)


class BundleError(ValueError):
    """A bundle that does not follow ``docs/bundle.md``."""


@dataclass
class Bundle:
    manifest: dict
    arrays: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def layers(self) -> list[dict]:
        return self.manifest["layers"]


def _jsonable(o):
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return o


def validate(manifest: dict, arrays: dict | None = None, where: str = "bundle") -> None:
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{where}: format is {manifest.get('format')!r}, expected {FORMAT!r}")
    if manifest.get("version") != VERSION:
        raise BundleError(
            f"{where}: version {manifest.get('version')!r} is not supported (expected {VERSION})"
        )
    for key in ("input", "layers"):
        if key not in manifest:
            raise BundleError(f"{where}: manifest has no {key!r}")
    for i, spec in enumerate(manifest["layers"]):
        missing = [k for k in REQUIRED_LAYER_KEYS if k not in spec]
        if missing:
            raise BundleError(f"{where}: layer {i} lacks {', '.join(missing)}")
        if arrays is not None:
            for f in ("weight_int", "bias_int"):
                if f"{spec['name']}.{f}" not in arrays:
                    raise BundleError(f"{where}: arrays.npz lacks {spec['name']}.{f}")


def save_bundle(path, manifest: dict, arrays: dict) -> Path:
    """Write ``manifest.json`` and ``arrays.npz`` to directory ``path``."""
    path = Path(path)
    manifest = {"format": FORMAT, "version": VERSION, **manifest}
    validate(manifest, arrays, str(path))
    path.mkdir(parents=True, exist_ok=True)
    (path / "manifest.json").write_text(json.dumps(_jsonable(manifest), indent=1) + "\n")
    np.savez(path / "arrays.npz", **{k: np.asarray(v) for k, v in arrays.items()})
    return path


def load_bundle(path) -> Bundle:
    """Read and validate a bundle directory (or its ``manifest.json``)."""
    path = Path(path)
    if path.name == "manifest.json":
        path = path.parent
    mf, npz = path / "manifest.json", path / "arrays.npz"
    for f in (mf, npz):
        if not f.exists():
            raise BundleError(f"{path}: no {f.name} (not a bundle directory)")
    try:
        manifest = json.loads(mf.read_text())
    except json.JSONDecodeError as exc:
        raise BundleError(f"{mf}: invalid JSON ({exc})") from exc
    try:
        with np.load(npz) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise BundleError(f"{npz}: cannot read ({exc})") from exc
    validate(manifest, arrays, str(path))
    return Bundle(manifest, arrays, path)
