"""Datasets: scikit-learn's 8x8 digits (offline default) and IDX files (MNIST, Fashion, KMNIST).

Every dataset is returned with pixel values ``x = code / 2**input_frac_bits`` where ``code`` is the
stored integer pixel (digits: 0..16 with 4 fractional bits, IDX: 0..255 with 8 fractional bits), so
the hardware's uint8 input codes reproduce the float inputs exactly.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import struct
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "VAL_SEED",
    "Dataset",
    "DataError",
    "IdxError",
    "dataset_from_arrays",
    "load_dataset",
    "load_digits",
    "load_idx_dataset",
    "load_npz",
    "read_idx",
]

IDX_DATASETS = ("mnist", "fashion", "kmnist")
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
SYSTEM_DIRS = {
    "fashion": ["/usr/share/datasets/fashion-mnist"],
    "mnist": ["/usr/share/datasets/mnist"],
    "kmnist": ["/usr/share/datasets/kmnist"],
}
MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
ENV_VAR = "COMPRESS2RTL_DATA"
# the validation split is part of the data, like the digits' test split: one fixed seed, whatever
# the training seed, so runs with different seeds choose on the same images
VAL_SEED = 0


class IdxError(ValueError):
    """A missing, truncated or malformed IDX file (the message names the file)."""


class DataError(ValueError):
    """A malformed ``--data`` file or array set (one line naming the array and the fault)."""


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray  # float32 (n, C, H, W) in [0, 1)
    y_train: np.ndarray  # int64 (n,)
    x_test: np.ndarray
    y_test: np.ndarray
    input_frac_bits: int
    classes: int = 10
    # held out of the training set by `split_validation`: every choice is made on it
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def features(self) -> int:
        return int(np.prod(self.image_shape))

    def subset(self, train: int | None = None, test: int | None = None) -> Dataset:
        """The first ``train``/``test`` samples (for quick runs and tests)."""
        return Dataset(
            self.name,
            self.x_train[:train],
            self.y_train[:train],
            self.x_test[:test],
            self.y_test[:test],
            self.input_frac_bits,
            self.classes,
            self.x_val,
            self.y_val,
        )

    def split_validation(self, fraction: float, seed: int = VAL_SEED) -> Dataset:
        """Hold out ``fraction`` of the training set as the validation split (stratified by
        class, ``seed`` fixed); the rest stays the training set. The test set is not touched."""
        from sklearn.model_selection import train_test_split

        if not 0.0 < fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), not {fraction}")
        n_val = int(round(len(self.y_train) * fraction))
        if n_val < 1 or n_val >= len(self.y_train):
            raise ValueError(
                f"val_fraction {fraction} of {len(self.y_train)} training samples leaves an "
                "empty training or validation split"
            )
        counts = np.bincount(self.y_train)
        # stratify when every class present can be split (sklearn needs two members per class
        # and at least one validation sample per class)
        strat = self.y_train if counts[counts > 0].min() >= 2 and n_val >= len(counts) else None
        idx = np.arange(len(self.y_train))
        tr, va = train_test_split(idx, test_size=n_val, random_state=seed, stratify=strat)
        tr, va = np.sort(tr), np.sort(va)
        return Dataset(
            self.name,
            self.x_train[tr],
            self.y_train[tr],
            self.x_test,
            self.y_test,
            self.input_frac_bits,
            self.classes,
            self.x_train[va],
            self.y_train[va],
        )


def load_digits(seed: int = 0, test_size: float = 0.2) -> Dataset:
    """scikit-learn's 8x8 digits, values 0..16 scaled to [0, 1], stratified fixed-seed split."""
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    d = sk_digits()
    x = (d.data.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_size, random_state=seed, stratify=y)
    return Dataset("digits", xtr, ytr, xte, yte, input_frac_bits=4)


def _open(path: Path):
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_idx(path, expect_dims: int | None = None) -> np.ndarray:
    """Read one IDX file (gzip or raw) of unsigned bytes; check magic, shape and length."""
    path = Path(path)
    try:
        with _open(path) as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise IdxError(f"{path}: cannot read IDX file ({exc})") from exc
    if len(data) < 4:
        raise IdxError(f"{path}: truncated IDX file ({len(data)} bytes, no header)")
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise IdxError(f"{path}: bad IDX magic number 0x{data[:4].hex()} (expected 0x0000080N)")
    if expect_dims is not None and ndim != expect_dims:
        raise IdxError(f"{path}: IDX file has {ndim} dimensions, expected {expect_dims}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    size = int(np.prod(shape))
    if len(data) - header != size:
        raise IdxError(
            f"{path}: IDX payload has {len(data) - header} bytes, header says {shape} = {size}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _find(directory: Path, stem: str) -> Path | None:
    for name in (
        stem + ".gz",
        stem,
        stem.replace("-idx", ".idx") + ".gz",
        stem.replace("-idx", ".idx"),
    ):
        p = directory / name
        if p.exists():
            return p
    return None


def _candidate_dirs(name: str, data_dir) -> list[Path]:
    if data_dir is not None:
        return [Path(data_dir)]
    dirs = []
    if os.environ.get(ENV_VAR):
        base = Path(os.environ[ENV_VAR])
        dirs += [base / name, base / f"{name}-mnist", base]
    dirs += [Path(d) for d in SYSTEM_DIRS.get(name, [])]
    return dirs


def _download_mnist(directory: Path) -> bool:
    """Fetch the four MNIST files into ``directory``; False (and nothing left behind: no
    partial file, no empty directory) when any of them cannot be fetched.

    The files go to a temporary folder next to ``directory`` and move in when all four are
    complete."""
    directory = Path(directory)
    created = [p for p in (directory, *directory.parents) if not p.exists()]
    temp = directory.parent / f".{directory.name}.download{os.getpid()}"
    try:
        temp.mkdir(parents=True, exist_ok=True)
        for stem in IDX_FILES.values():
            if (directory / (stem + ".gz")).exists():
                continue
            with urllib.request.urlopen(MNIST_URL + stem + ".gz", timeout=15) as r:  # noqa: S310
                (temp / (stem + ".gz")).write_bytes(r.read())
        directory.mkdir(parents=True, exist_ok=True)
        for path in temp.iterdir():
            path.replace(directory / path.name)
        return True
    except OSError:
        return False
    finally:
        shutil.rmtree(temp, ignore_errors=True)
        for path in created:  # innermost first; only what this call made and left empty
            try:
                if path.exists():
                    path.rmdir()
            except OSError:
                break


def load_idx_dataset(name: str, data_dir=None) -> Dataset:
    """MNIST-style IDX dataset (``--data-dir``, ``$COMPRESS2RTL_DATA`` or system dirs)."""
    if name not in IDX_DATASETS:
        raise ValueError(f"unknown IDX dataset {name!r} (expected one of {IDX_DATASETS})")
    dirs = _candidate_dirs(name, data_dir)
    found = None
    for d in dirs:
        files = {k: _find(d, stem) for k, stem in IDX_FILES.items()}
        if all(files.values()):
            found = files
            break
    if found is None and name == "mnist":
        target = Path(data_dir) if data_dir else Path(os.environ.get(ENV_VAR, "data")) / "mnist"
        if _download_mnist(target):
            found = {k: _find(target, stem) for k, stem in IDX_FILES.items()}
            if not all(found.values()):
                found = None
    if found is None:
        where = dirs[0] if dirs else Path("data") / name
        names = ", ".join(s + ".gz" for s in IDX_FILES.values())
        raise FileNotFoundError(
            f"{name}: IDX files not found in {', '.join(map(str, dirs)) or '(no directory)'}; "
            f"put the four files {names} (gzip or raw) in {where}, or pass --data-dir DIR "
            f"or set {ENV_VAR}=DIR"
        )
    xtr = read_idx(found["train_images"], 3)
    ytr = read_idx(found["train_labels"], 1)
    xte = read_idx(found["test_images"], 3)
    yte = read_idx(found["test_labels"], 1)
    for xs, ys, kx, ky in (
        (xtr, ytr, "train_images", "train_labels"),
        (xte, yte, "test_images", "test_labels"),
    ):
        if len(xs) != len(ys):
            raise IdxError(f"{found[kx]}: {len(xs)} images but {found[ky]} has {len(ys)} labels")
    if xtr.shape[1:] != xte.shape[1:]:
        raise IdxError(
            f"{found['test_images']}: image shape {xte.shape[1:]} != train {xtr.shape[1:]}"
        )
    for key, ys in (("train_labels", ytr), ("test_labels", yte)):
        if ys.size and ys.max() > 9:
            raise IdxError(f"{found[key]}: label {ys.max()} out of range 0..9")

    def scale(a):
        return (a.astype(np.float32) / 256.0)[:, None, :, :]

    return Dataset(name, scale(xtr), ytr.astype(np.int64), scale(xte), yte.astype(np.int64), 8)


def load_dataset(name: str, data_dir=None, seed: int = 0) -> Dataset:
    if name == "digits":
        return load_digits(seed=0)
    return load_idx_dataset(name, data_dir)


NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
# the hardware's input codes are unsigned 8-bit
INPUT_BITS = 8


def input_frac_bits_for(x: np.ndarray) -> int:
    """The input format of user data: the largest ``f`` with ``max(x) * 2**f`` within the
    unsigned 8-bit code (``fixedpoint.frac_bits_for``, as for every activation)."""
    from .fixedpoint import frac_bits_for

    return frac_bits_for(float(np.max(x)) if x.size else 0.0, INPUT_BITS, signed=False)


def dataset_from_arrays(arrays, name: str = "data", where: str = "data") -> Dataset:
    """A :class:`Dataset` from ``x_train, y_train, x_test, y_test`` (a mapping, e.g. an
    ``np.load`` of a ``.npz``).

    ``x``: ``(n, features)`` or ``(n, C, H, W)`` real numbers, finite and non-negative (the
    hardware takes unsigned codes: scale the features, e.g. min-max to ``[0, 1]``); ``y``:
    integer class labels ``0..classes-1``, one per row. The input format ``frac_bits`` is the
    largest with ``max(x_train) * 2**frac_bits <= 255``, and every input is snapped to that grid
    (``round(x * 2**f) / 2**f``, clipped to the code range), so the hardware's 8-bit codes
    reproduce the float inputs the network is fine-tuned and measured on exactly.
    Raises :class:`DataError` (one line, naming ``where`` and the array)."""
    missing = [k for k in NPZ_KEYS if k not in arrays]
    if missing:
        raise DataError(f"{where}: missing {', '.join(missing)} (needs {', '.join(NPZ_KEYS)})")
    a = {k: np.asarray(arrays[k]) for k in NPZ_KEYS}
    for k in ("x_train", "x_test"):
        x = a[k]
        if x.dtype.kind not in "fiub":
            raise DataError(f"{where}: {k} has dtype {x.dtype}, expected real numbers")
        if x.ndim not in (2, 4):
            raise DataError(
                f"{where}: {k} has shape {x.shape}, expected (n, features) or (n, C, H, W)"
            )
        if len(x) == 0:
            raise DataError(f"{where}: {k} is empty")
        xf = x.astype(np.float64)
        if not np.all(np.isfinite(xf)):
            raise DataError(f"{where}: {k} holds NaN or infinite values")
        if xf.min() < 0:
            raise DataError(
                f"{where}: {k} has negative values (min {xf.min():.4g}); the hardware takes "
                "unsigned 8-bit inputs: scale the features to [0, 1] (e.g. min-max on the "
                "training set)"
            )
    if a["x_train"].shape[1:] != a["x_test"].shape[1:]:
        raise DataError(
            f"{where}: x_test samples have shape {a['x_test'].shape[1:]}, x_train "
            f"{a['x_train'].shape[1:]}"
        )
    for xk, yk in (("x_train", "y_train"), ("x_test", "y_test")):
        y = a[yk]
        if y.ndim != 1:
            raise DataError(f"{where}: {yk} has shape {y.shape}, expected (n,) class labels")
        if y.dtype.kind not in "iu" and not (
            y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y))
        ):
            raise DataError(f"{where}: {yk} has dtype {y.dtype}, expected integer class labels")
        if len(y) != len(a[xk]):
            raise DataError(f"{where}: {yk} has {len(y)} labels, {xk} {len(a[xk])} rows")
        if y.min() < 0:
            raise DataError(f"{where}: {yk} has a negative label ({int(y.min())})")
    classes = int(max(a["y_train"].max(), a["y_test"].max())) + 1
    if classes < 2:
        raise DataError(f"{where}: y_train and y_test hold a single class")
    if a["y_test"].max() >= a["y_train"].max() + 1:
        raise DataError(
            f"{where}: y_test has label {int(a['y_test'].max())}, never seen in y_train "
            f"(labels 0..{int(a['y_train'].max())})"
        )
    frac = input_frac_bits_for(a["x_train"].astype(np.float64))
    top = (1 << INPUT_BITS) - 1

    def snap(x):
        q = np.clip(np.floor(x.astype(np.float64) * 2.0**frac + 0.5), 0, top)
        return (q / 2.0**frac).astype(np.float32)

    return Dataset(
        name,
        snap(a["x_train"]),
        a["y_train"].astype(np.int64),
        snap(a["x_test"]),
        a["y_test"].astype(np.int64),
        input_frac_bits=frac,
        classes=classes,
    )


def load_npz(path) -> Dataset:
    """``--data file.npz``: :func:`dataset_from_arrays` of the file, named after its stem."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{path}: no such data file") from exc
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read a .npz archive ({exc})") from exc
    name = re.sub(r"[^A-Za-z0-9_]", "_", path.stem) or "data"
    return dataset_from_arrays(arrays, name, str(path))
