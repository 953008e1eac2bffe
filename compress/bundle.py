"""The bundle (``docs/bundle.md``): ``manifest.json`` + ``arrays.npz`` in one directory."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "FORMAT",
    "VERSION",
    "VERSIONS",
    "Bundle",
    "BundleError",
    "bundle_version",
    "load_bundle",
    "save_bundle",
    "validate",
]

FORMAT = "compress2rtl-bundle"
VERSION = 2  # the newest version; save_bundle writes 1 when every layer is linear
VERSIONS = (1, 2)
NUMBER_KEYS = (
    "weight_format",
    "weight_frac_bits",
    "input_frac_bits",
    "output_frac_bits",
    "output_bits",
    "activation",
)
REQUIRED_LAYER_KEYS = ("name", "kind", "in_features", "out_features", *NUMBER_KEYS)
# keys of every layer kind (besides name and kind); in_shape/out_shape are required in version 2
KIND_KEYS = {
    "linear": ("in_features", "out_features", *NUMBER_KEYS),
    "conv2d": (
        "in_channels",
        "out_channels",
        "kernel_size",
        "stride",
        "padding",
        "in_shape",
        "out_shape",
        *NUMBER_KEYS,
    ),
    "maxpool2d": ("kernel_size", "stride", "in_shape", "out_shape"),
    "flatten": ("in_shape", "out_shape", "order"),
}
WEIGHT_KINDS = ("linear", "conv2d")


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


def _layer_error(where: str, spec: dict, msg: str) -> BundleError:
    return BundleError(f"{where}: layer {spec.get('name', '?')} ({spec.get('kind')}): {msg}")


def _check_layer(spec: dict, version: int, arrays, prefix: str, where: str) -> None:
    """Keys, parameters and arrays of one layer (``docs/bundle.md``)."""
    kind = spec.get("kind")
    if kind not in KIND_KEYS or (version == 1 and kind != "linear"):
        allowed = ("linear",) if version == 1 else tuple(KIND_KEYS)
        raise _layer_error(where, spec, f"kind {kind!r} is not one of {allowed}")
    keys = list(KIND_KEYS[kind])
    if version >= 2 and kind == "linear":
        keys += ["in_shape", "out_shape"]
    missing = [k for k in keys if k not in spec]
    if missing:
        raise _layer_error(where, spec, f"lacks {', '.join(missing)}")
    name = spec["name"]
    if kind == "conv2d":
        k, cin, cout = spec["kernel_size"], spec["in_channels"], spec["out_channels"]
        if not (isinstance(k, int) and k > 0 and k % 2 == 1):
            raise _layer_error(where, spec, f"kernel_size must be a positive odd integer, not {k}")
        if spec["stride"] != 1 or spec["padding"] != 0:
            raise _layer_error(
                where, spec, f"stride 1 and padding 0 only, not {spec['stride']}/{spec['padding']}"
            )
        c, h, w = spec["in_shape"]
        want = [cout, h - k + 1, w - k + 1]
        if c != cin or list(spec["out_shape"]) != want:
            raise _layer_error(
                where,
                spec,
                f"in_shape {spec['in_shape']} / out_shape {spec['out_shape']} "
                f"do not match in_channels {cin}, kernel_size {k} (out_shape {want})",
            )
    elif kind == "maxpool2d":
        if spec["kernel_size"] != 2 or spec["stride"] != 2:
            raise _layer_error(
                where,
                spec,
                f"kernel_size 2 and stride 2 only, not {spec['kernel_size']}/{spec['stride']}",
            )
        c, h, w = spec["in_shape"]
        if list(spec["out_shape"]) != [c, h // 2, w // 2]:
            raise _layer_error(
                where, spec, f"out_shape {spec['out_shape']} is not {[c, h // 2, w // 2]}"
            )
    elif kind == "flatten":
        if spec["order"] != "hwc":
            raise _layer_error(where, spec, f"order {spec['order']!r} is not 'hwc'")
        c, h, w = spec["in_shape"]
        if list(spec["out_shape"]) != [c * h * w]:
            raise _layer_error(where, spec, f"out_shape {spec['out_shape']} is not {[c * h * w]}")
    if arrays is None or kind not in WEIGHT_KINDS:
        return
    for f in ("weight_int", "bias_int"):
        if f"{prefix}{name}.{f}" not in arrays:
            raise _layer_error(where, spec, f"arrays.npz lacks {prefix}{name}.{f}")
    if kind == "conv2d":
        k = spec["kernel_size"]
        want = (spec["out_channels"], spec["in_channels"], k, k)
    else:
        want = (spec["out_features"], spec["in_features"])
    got = np.shape(arrays[f"{prefix}{name}.weight_int"])
    if int(np.prod(got)) != int(np.prod(want)):
        raise _layer_error(where, spec, f"{prefix}{name}.weight_int has shape {got}, not {want}")


def _check_layers(specs, version: int, arrays, prefix: str, where: str) -> None:
    if not isinstance(specs, list) or not specs:
        raise BundleError(f"{where}: {prefix or 'manifest.'}layers must be a non-empty list")
    prev = None
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict) or "name" not in spec or "kind" not in spec:
            raise BundleError(f"{where}: {prefix}layer {i} lacks name or kind")
        _check_layer(spec, version, arrays, prefix, where)
        if version >= 2:
            if prev is not None and list(spec["in_shape"]) != list(prev):
                raise _layer_error(
                    where, spec, f"in_shape {spec['in_shape']} is not the previous out_shape {prev}"
                )
            prev = spec["out_shape"]


def validate(manifest: dict, arrays: dict | None = None, where: str = "bundle") -> None:
    """Check a manifest (and its arrays) against ``docs/bundle.md``; raise a one-line
    `BundleError` naming the layer and the missing or bad key."""
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{where}: format is {manifest.get('format')!r}, expected {FORMAT!r}")
    version = manifest.get("version")
    if version not in VERSIONS:
        raise BundleError(
            f"{where}: version {version!r} is not supported (expected one of {VERSIONS})"
        )
    for key in ("input", "layers"):
        if key not in manifest:
            raise BundleError(f"{where}: manifest has no {key!r}")
    _check_layers(manifest["layers"], version, arrays, "", where)
    if version >= 2:
        shape = list(manifest["input"].get("shape", []))
        first = manifest["layers"][0]["in_shape"]
        if shape != list(first):
            raise BundleError(
                f"{where}: input.shape {shape} is not layer {manifest['layers'][0]['name']}'s "
                f"in_shape {first}"
            )
    if "baseline" in manifest:
        _check_layers(manifest["baseline"].get("layers"), version, arrays, "baseline.", where)


def bundle_version(manifest: dict) -> int:
    """1 when every layer is linear (the version-1 contract), else 2."""
    kinds = {spec.get("kind", "linear") for spec in manifest.get("layers", [])}
    return 1 if kinds <= {"linear"} else 2


def save_bundle(path, manifest: dict, arrays: dict) -> Path:
    """Write ``manifest.json`` and ``arrays.npz`` to directory ``path``."""
    path = Path(path)
    manifest = {"format": FORMAT, "version": bundle_version(manifest), **manifest}
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
