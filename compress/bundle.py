"""The bundle (``docs/bundle.md``): ``manifest.json`` + ``arrays.npz`` in one directory."""

from __future__ import annotations

import json
import zipfile
import zlib
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
WEIGHT_FORMATS = ("pow2", "codebook", "dense")
ACTIVATIONS = ("relu", "none", "sigmoid", "tanh")
# keys each weight format adds to a linear or conv2d layer
FORMAT_KEYS = {
    "pow2": ("exp_bits", "pow2_max_exp", "codebook_bits", "index_bits"),
    "codebook": ("codebook_bits", "index_bits"),
    "dense": ("weight_bits",),
}
# integer keys and their smallest legal value (codes and relative indices are stored as uint8)
INT_KEYS = {
    "in_features": 1,
    "out_features": 1,
    "in_channels": 1,
    "out_channels": 1,
    "weight_frac_bits": -64,
    "input_frac_bits": -64,
    "output_frac_bits": -64,
    "output_bits": 1,
    "acc_bits": 2,
    "exp_bits": 1,
    "pow2_max_exp": 0,
    "codebook_bits": 1,
    "index_bits": 1,
    "weight_bits": 2,
    "csr_entries": 0,
    "csr_fillers": 0,
}
INT_KEY_MAX = {"codebook_bits": 8, "index_bits": 8, "weight_bits": 32, "exp_bits": 6}
REFERENCE_ARRAYS = ("test_inputs", "test_labels", "test_outputs", "test_pred")


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


def _check_layer(spec: dict, version: int, where: str) -> None:
    """Keys and parameters of one layer (``docs/bundle.md``); its arrays are checked by
    :func:`_check_weight_arrays`."""
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
    for key in ("in_shape", "out_shape"):
        if key in spec:
            v = spec[key]
            ok = isinstance(v, list) and v and all(type(d) is int and d > 0 for d in v)
            if not ok or (kind != "linear" and key == "in_shape" and len(v) != 3):
                raise _layer_error(where, spec, f"{key} {v!r} is not a list of positive sizes")
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
    if kind in WEIGHT_KINDS:
        _check_number_keys(spec, where)


def _check_number_keys(spec: dict, where: str) -> None:
    """Weight format, activation, the keys of the format and the range of every integer key."""
    fmt = spec["weight_format"]
    if fmt not in WEIGHT_FORMATS:
        raise _layer_error(where, spec, f"weight_format {fmt!r} is not one of {WEIGHT_FORMATS}")
    if spec["activation"] not in ACTIVATIONS:
        raise _layer_error(
            where, spec, f"activation {spec['activation']!r} is not one of {ACTIVATIONS}"
        )
    missing = [k for k in FORMAT_KEYS[fmt] if k not in spec]
    if missing:
        raise _layer_error(where, spec, f"lacks {', '.join(missing)} (weight_format {fmt!r})")
    for key, least in INT_KEYS.items():
        if key not in spec:
            continue
        v = spec[key]
        top = INT_KEY_MAX.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < least or (top and v > top):
            bound = f"{least}..{top}" if top else f">= {least}"
            raise _layer_error(where, spec, f"{key} must be an integer {bound}, not {v!r}")
    if fmt == "pow2":
        if spec["pow2_max_exp"] > (1 << spec["exp_bits"]) - 1:
            raise _layer_error(
                where,
                spec,
                f"pow2_max_exp {spec['pow2_max_exp']} does not fit exp_bits {spec['exp_bits']}",
            )
        if spec["codebook_bits"] != 1 + spec["exp_bits"]:
            raise _layer_error(
                where,
                spec,
                f"codebook_bits {spec['codebook_bits']} is not 1 + exp_bits ({spec['exp_bits']})",
            )


def _first_bad(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def _index(at: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, at)) + "]"


def _int_array(where, spec, key, arrays, size=None) -> np.ndarray:
    """``arrays[key]`` as int64, after checking it holds integers (and ``size`` of them)."""
    a = np.asarray(arrays[key])
    if a.dtype.kind not in "iub":
        raise _layer_error(where, spec, f"{key} holds {a.dtype} values, not integers")
    if size is not None and a.size != size:
        raise _layer_error(where, spec, f"{key} has {a.size} values, not {size}")
    return a.astype(np.int64)


def _pow2_bad(values: np.ndarray, max_exp: int) -> np.ndarray:
    """Where ``values`` is neither 0 nor ``±2**e`` with ``0 <= e <= max_exp``."""
    a = np.abs(values)
    return (a != 0) & ((a & (a - 1) != 0) | (a > 1 << max_exp))


def _check_weight_arrays(spec: dict, arrays, prefix: str, where: str) -> None:
    """The arrays of a linear or conv2d layer: present, shaped, within their declared widths
    and exponents, and agreeing with each other (codes, CSR rows, pow2 sign and exponent
    decode to ``weight_int``)."""
    name, kind, fmt = spec["name"], spec["kind"], spec["weight_format"]
    key = f"{prefix}{name}."
    required = ["weight_int", "bias_int"]
    if kind == "linear" and fmt != "dense" and not prefix:
        required += ["codebook", "csr_rel", "csr_code", "csr_rowptr"]  # the neuron's ROMs
    for f in required:
        if key + f not in arrays:
            raise _layer_error(where, spec, f"arrays.npz lacks {key}{f}")
    if kind == "conv2d":
        k = spec["kernel_size"]
        want = (spec["out_channels"], spec["in_channels"], k, k)
    else:
        want = (spec["out_features"], spec["in_features"])
    w = _int_array(where, spec, key + "weight_int", arrays)
    if w.size != int(np.prod(want)):
        raise _layer_error(where, spec, f"{key}weight_int has shape {w.shape}, not {want}")
    w = w.reshape(want)
    _int_array(where, spec, key + "bias_int", arrays, size=want[0])
    rows = w.reshape(want[0], -1)
    if fmt == "dense":
        top = 1 << (spec["weight_bits"] - 1)
        bad = (rows < -top) | (rows >= top)
        if bad.any():
            at = _first_bad(bad)
            raise _layer_error(
                where,
                spec,
                f"{key}weight_int{_index(at)} = {rows[at]} does not fit weight_bits "
                f"{spec['weight_bits']}",
            )
        return
    if fmt == "pow2":
        max_exp = spec["pow2_max_exp"]
        bad = _pow2_bad(w, max_exp)
        if bad.any():
            at = _first_bad(bad)
            raise _layer_error(
                where,
                spec,
                f"{key}weight_int{_index(at)} = {w[at]} is not 0 or ±2**e with e <= "
                f"pow2_max_exp {max_exp}",
            )
        if key + "pow2_exp" in arrays:
            e = _int_array(where, spec, key + "pow2_exp", arrays, size=w.size).reshape(want)
            if (e < 0).any() or (e > max_exp).any():
                at = _first_bad((e < 0) | (e > max_exp))
                raise _layer_error(
                    where,
                    spec,
                    f"{key}pow2_exp{_index(at)} = {e[at]} is beyond pow2_max_exp {max_exp}",
                )
            if key + "pow2_sign" in arrays:
                sign = _int_array(where, spec, key + "pow2_sign", arrays, size=w.size)
                decoded = sign.reshape(want) * (1 << e)
                if not np.array_equal(decoded, w):
                    at = _first_bad(decoded != w)
                    raise _layer_error(
                        where,
                        spec,
                        f"{key}pow2_sign/pow2_exp{_index(at)} decode to {decoded[at]}, "
                        f"weight_int is {w[at]}",
                    )
    code_bits, index_bits = spec["codebook_bits"], spec["index_bits"]
    book = None
    if key + "codebook" in arrays:
        book = _int_array(where, spec, key + "codebook", arrays)
        if book.ndim != 1 or not 1 <= len(book) <= 1 << code_bits or book[0] != 0:
            raise _layer_error(
                where,
                spec,
                f"{key}codebook must hold 1..{1 << code_bits} entries (codebook_bits "
                f"{code_bits}) starting with 0, not {book.tolist()[:20]}",
            )
        if fmt == "pow2" and _pow2_bad(book, spec["pow2_max_exp"]).any():
            v = book[_first_bad(_pow2_bad(book, spec["pow2_max_exp"]))]
            raise _layer_error(
                where,
                spec,
                f"{key}codebook entry {v} is not 0 or ±2**e with e <= pow2_max_exp "
                f"{spec['pow2_max_exp']}",
            )
        book = np.concatenate([book, np.zeros((1 << code_bits) - len(book), np.int64)])
    if key + "codes" in arrays:
        codes = _int_array(where, spec, key + "codes", arrays, size=w.size).reshape(want)
        _check_width(where, spec, key + "codes", codes, code_bits, "codebook_bits")
        if book is not None and not np.array_equal(book[codes], w):
            at = _first_bad(book[codes] != w)
            raise _layer_error(
                where,
                spec,
                f"{key}codes{_index(at)} = {codes[at]} decodes to {book[codes][at]}, "
                f"weight_int is {w[at]}",
            )
    if key + "mask" in arrays:
        mask = np.asarray(arrays[key + "mask"])
        if mask.size != w.size or ((mask.reshape(want) == 0) & (w != 0)).any():
            raise _layer_error(
                where, spec, f"{key}mask does not cover the nonzero weights of {key}weight_int"
            )
    if key + "csr_rel" in arrays:
        _check_csr(spec, arrays, key, where, rows, book, index_bits, code_bits)


def _check_width(where, spec, key, values, bits, field_name) -> None:
    bad = (values < 0) | (values >= 1 << bits)
    if bad.any():
        at = _first_bad(bad)
        raise _layer_error(
            where,
            spec,
            f"{key}{_index(at)} = {values[at]} does not fit {field_name} {bits}",
        )


def _check_csr(spec, arrays, key, where, rows, book, index_bits, code_bits) -> None:
    """CSR rows (``docs/bundle.md``, Sparse storage) that decode to ``weight_int``."""
    for f in ("csr_code", "csr_rowptr"):
        if key + f not in arrays:
            raise _layer_error(where, spec, f"arrays.npz lacks {key}{f}")
    rel = _int_array(where, spec, key + "csr_rel", arrays).reshape(-1)
    code = _int_array(where, spec, key + "csr_code", arrays, size=rel.size).reshape(-1)
    ptr = _int_array(where, spec, key + "csr_rowptr", arrays, size=len(rows) + 1).reshape(-1)
    _check_width(where, spec, key + "csr_rel", rel, index_bits, "index_bits")
    _check_width(where, spec, key + "csr_code", code, code_bits, "codebook_bits")
    if ptr[0] != 0 or ptr[-1] != rel.size or (np.diff(ptr) < 0).any():
        raise _layer_error(
            where,
            spec,
            f"{key}csr_rowptr must rise from 0 to {rel.size} entries, not {ptr[0]}..{ptr[-1]}",
        )
    if "csr_entries" in spec and spec["csr_entries"] != rel.size:
        raise _layer_error(
            where, spec, f"csr_entries {spec['csr_entries']} but {key}csr_rel has {rel.size}"
        )
    if book is None:
        return
    # column of each entry: prev + rel + 1 from prev = -1 at the start of its row
    steps = np.cumsum(rel + 1)
    row_of = np.repeat(np.arange(len(rows)), np.diff(ptr))
    start = np.concatenate([[0], steps])[ptr[:-1]]
    cols = steps - start[row_of] - 1
    width = rows.shape[1]
    if (cols >= width).any():
        j = int(row_of[np.argmax(cols >= width)])
        raise _layer_error(where, spec, f"CSR row {j} runs past column {width - 1}")
    decoded = np.zeros_like(rows)
    decoded[row_of, cols] = book[code]
    if not np.array_equal(decoded, rows):
        j, c = _first_bad(decoded != rows)
        raise _layer_error(
            where,
            spec,
            f"CSR row {j} decodes to {decoded[j, c]} at column {c}, {key}weight_int has "
            f"{rows[j, c]}",
        )


def _check_layers(specs, version: int, arrays, prefix: str, where: str, inp: dict) -> None:
    if not isinstance(specs, list) or not specs:
        raise BundleError(f"{where}: {prefix or 'manifest.'}layers must be a non-empty list")
    prev = None
    names = set()
    # the codes entering each weight layer: the input's, then the last weight layer's output
    in_bits, in_signed = inp["bits"], bool(inp.get("signed", False))
    features = int(np.prod(inp["shape"]))
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict) or "name" not in spec or "kind" not in spec:
            raise BundleError(f"{where}: {prefix}layer {i} lacks name or kind")
        if spec["name"] in names:
            raise _layer_error(where, spec, f"the name {spec['name']!r} is used twice")
        names.add(spec["name"])
        _check_layer(spec, version, where)
        if version >= 2:
            if prev is not None and list(spec["in_shape"]) != list(prev):
                raise _layer_error(
                    where, spec, f"in_shape {spec['in_shape']} is not the previous out_shape {prev}"
                )
            prev = spec["out_shape"]
        if spec["kind"] == "linear":
            if spec["in_features"] != features:
                raise _layer_error(
                    where,
                    spec,
                    f"in_features {spec['in_features']} but its input has {features} features",
                )
            if version >= 2 and (
                list(spec["in_shape"]) != [spec["in_features"]]
                or list(spec["out_shape"]) != [spec["out_features"]]
            ):
                raise _layer_error(
                    where,
                    spec,
                    f"in_shape/out_shape {spec['in_shape']}/{spec['out_shape']} are not "
                    f"[{spec['in_features']}]/[{spec['out_features']}]",
                )
        features = int(np.prod(spec["out_shape"])) if version >= 2 else spec.get("out_features")
        if spec["kind"] not in WEIGHT_KINDS:
            continue
        if arrays is not None:
            _check_weight_arrays(spec, arrays, prefix, where)
        if arrays is not None and "acc_bits" in spec:
            _check_acc_bits(spec, arrays, prefix, where, in_bits, in_signed)
        in_bits, in_signed = spec["output_bits"], spec["activation"] in ("none", "tanh")


def _check_acc_bits(spec, arrays, prefix, where, in_bits: int, in_signed: bool) -> None:
    """The declared ``acc_bits`` holds every accumulator of any input in range (bias and the
    rounding constant included)."""
    from .integer_ref import acc_bits

    w = np.asarray(arrays[f"{prefix}{spec['name']}.weight_int"], dtype=np.int64)
    b = np.asarray(arrays[f"{prefix}{spec['name']}.bias_int"], dtype=np.int64).reshape(-1)
    shift = spec["input_frac_bits"] + spec["weight_frac_bits"] - spec["output_frac_bits"]
    need = acc_bits(w, b, in_bits, in_signed, shift)
    if spec["acc_bits"] < need:
        raise _layer_error(
            where,
            spec,
            f"acc_bits {spec['acc_bits']} can overflow: inputs of {in_bits} bits "
            f"({'signed' if in_signed else 'unsigned'}) need {need}",
        )


def _check_input(manifest: dict, version: int, where: str) -> dict:
    inp = manifest["input"]
    if not isinstance(inp, dict):
        raise BundleError(f"{where}: input must be an object, not {inp!r}")
    missing = [k for k in ("shape", "bits", "frac_bits") if k not in inp]
    if missing:
        raise BundleError(f"{where}: input lacks {', '.join(missing)}")
    shape, bits = inp["shape"], inp["bits"]
    if not (
        isinstance(shape, list)
        and len(shape) in (1, 3)
        and all(type(d) is int and d > 0 for d in shape)
    ):
        raise BundleError(f"{where}: input.shape {shape!r} is not [features] or [C, H, W]")
    if type(bits) is not int or not 1 <= bits <= 16:
        raise BundleError(f"{where}: input.bits must be an integer 1..16, not {bits!r}")
    return inp


def _check_reference(manifest: dict, arrays, where: str) -> None:
    """``reference.*`` arrays: all four when the manifest has a ``reference``, one row per
    test image, inputs within ``input.bits``, one output per class."""
    present = [f for f in REFERENCE_ARRAYS if f"reference.{f}" in arrays]
    if not present and "reference" not in manifest:
        return
    missing = [f"reference.{f}" for f in REFERENCE_ARRAYS if f not in present]
    if missing:
        raise BundleError(f"{where}: arrays.npz lacks {', '.join(missing)}")
    x = np.asarray(arrays["reference.test_inputs"])
    n = len(x)
    features = int(np.prod(manifest["input"]["shape"]))
    last = manifest["layers"][-1]
    classes = last["out_features"] if last["kind"] == "linear" else int(np.prod(last["out_shape"]))
    want = {
        "test_inputs": (n, features),
        "test_labels": (n,),
        "test_outputs": (n, classes),
        "test_pred": (n,),
    }
    for f, shape in want.items():
        a = np.asarray(arrays[f"reference.{f}"])
        if a.shape != shape or a.dtype.kind not in "iub":
            raise BundleError(
                f"{where}: reference.{f} has shape {a.shape} ({a.dtype}), not {shape} integers"
            )
    top = (1 << manifest["input"]["bits"]) - 1
    if n and (x.min() < 0 or x.max() > top):
        raise BundleError(
            f"{where}: reference.test_inputs holds {x.min()}..{x.max()}, beyond input.bits "
            f"{manifest['input']['bits']} (0..{top})"
        )
    meta = manifest.get("reference")
    declared = meta.get("test_images") if isinstance(meta, dict) else None
    if declared is not None and declared != n:
        raise BundleError(f"{where}: reference.test_images is {declared}, the arrays hold {n}")


def validate(manifest: dict, arrays: dict | None = None, where: str = "bundle") -> None:
    """Check a manifest (and its arrays) against ``docs/bundle.md``; raise a one-line
    `BundleError` naming the file or layer and the missing or bad key or value."""
    if not isinstance(manifest, dict):
        raise BundleError(f"{where}: the manifest must be a JSON object, not {manifest!r:.40}")
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
    inp = _check_input(manifest, version, where)
    _check_layers(manifest["layers"], version, arrays, "", where, inp)
    if version >= 2:
        shape = list(manifest["input"].get("shape", []))
        first = manifest["layers"][0]["in_shape"]
        if shape != list(first):
            raise BundleError(
                f"{where}: input.shape {shape} is not layer {manifest['layers'][0]['name']}'s "
                f"in_shape {first}"
            )
    if "baseline" in manifest:
        base = manifest["baseline"]
        layers = base.get("layers") if isinstance(base, dict) else None
        _check_layers(layers, version, arrays, "baseline.", where, inp)
    if arrays is not None:
        _check_reference(manifest, arrays, where)


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
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{mf}: invalid JSON ({exc})") from exc
    except OSError as exc:
        raise BundleError(f"{mf}: cannot read ({type(exc).__name__}: {exc})") from exc
    try:
        z = np.load(npz)
        if not isinstance(z, np.lib.npyio.NpzFile):  # an .npy array, not an archive
            raise BundleError(f"{npz}: not an .npz archive of named arrays")
        with z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        if isinstance(exc, BundleError):
            raise
        raise BundleError(f"{npz}: cannot read ({type(exc).__name__}: {exc})") from exc
    validate(manifest, arrays, str(path))
    return Bundle(manifest, arrays, path)
