"""Layer parameters read from the bundle, and the ROM words of every neuron.

The bundle (``docs/bundle.md``) stores a compressed layer as CSR rows: per output neuron a list of
entries ``(rel, code)`` where ``rel`` counts the zero weights skipped since the previous entry and
``code`` indexes the layer's codebook (filler entries have ``code == 0``). :class:`LayerWeights`
keeps exactly that, plus the dense integer weights for the baseline and the golden model.

Builds
------
``"pow2"``
    ROM word ``{rel, code}``; the codebook holds ``0, ±2**e`` and is decoded to (zero, sign, exp),
    the product is a shift and an optional negation (no multiplier).
``"codebook"``
    ROM word ``{rel, code}``; the codebook value multiplies the input (one multiplier per neuron).
``"dense"``
    ROM word = the integer weight (``weight_bits`` bits, two's complement), one word per input, a
    multiplier per neuron.

Layouts (compressed builds)
---------------------------
``"csr"``
    The neuron's CSR row, ``{rel, code}`` words walked one per cycle (fillers included).
``"direct"``
    One word per input holding only the code (``code_bits`` bits, code 0 = pruned weight),
    addressed by the element's index; a neuron whose row is empty has no ROM.
``"auto"``
    Per layer, the cheaper of the two in memory as the hardware builds it
    (:meth:`LayerWeights.auto_layout`, :func:`rom_cost`): each neuron's ROM of at least
    :data:`BLOCK_ROM_BITS` bits takes ``ceil(bits / BLOCK_RAM_BITS)`` block RAMs, a smaller one
    its bits in LUTs; ``direct`` when it takes no more block RAMs and, with as many, no more
    LUT-ROM bits (ties go to ``direct``, which lets zero-skipping save every zero input's
    cycle), else ``csr``. So a layer whose rows need a block RAM each in both layouts goes
    direct even where its CSR rows hold fewer bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "BLOCK_RAM_BITS",
    "BLOCK_ROM_BITS",
    "BUILDS",
    "LAYOUTS",
    "LayerWeights",
    "layers_from_bundle",
    "load_bundle_any",
    "rom_cost",
    "row_columns",
]


#: ``rom_style="auto"``: a neuron ROM of at least this many bits goes into block RAM (an 18-Kbit
#: block at least 1/18 full, read synchronously), a smaller one into LUTs.
BLOCK_ROM_BITS = 1024
#: Data bits of one block RAM in the layout rule's count (an 18-Kbit RAMB18E1 or DP16KD at a
#: power-of-two word width).
BLOCK_RAM_BITS = 16384


def rom_cost(rom_bits) -> tuple[int, int]:
    """``(block RAMs, LUT-ROM bits)`` of neuron ROMs of ``rom_bits`` bits each as
    ``rom_style="auto"`` places them: from :data:`BLOCK_ROM_BITS` up in block RAM
    (``ceil(bits / BLOCK_RAM_BITS)`` each), below that in LUTs; an empty ROM costs nothing."""
    blocks = lut = 0
    for bits in rom_bits:
        bits = int(bits)
        if bits >= BLOCK_ROM_BITS:
            blocks += -(-bits // BLOCK_RAM_BITS)
        else:
            lut += bits
    return blocks, lut


BUILDS = ("dense", "codebook", "pow2")
LAYOUTS = ("csr", "direct", "auto")
ACTIVATIONS = ("relu", "none", "sigmoid", "tanh")


@dataclass
class LayerWeights:
    """One fully connected layer in the integer formats of the bundle.

    Attributes
    ----------
    name : str
        Layer name (``fc1``...).
    weight_int : numpy.ndarray
        ``(out, in)`` int64 integer weights, 0 where pruned.
    bias_int : numpy.ndarray
        ``(out,)`` int64 bias in the accumulator's format.
    shift : int
        Requantisation shift, ``input_frac_bits + weight_frac_bits - output_frac_bits``.
    activation : str
        ``"relu"`` (unsigned saturating), ``"none"`` (signed saturating), ``"sigmoid"`` or
        ``"tanh"`` (look-up table, see :mod:`rtl_gen.neuron.activation`).
    in_bits, in_signed : int, bool
        Shape of the input codes of this layer.
    output_bits, output_frac_bits : int
        Output code width and fractional bits.
    weight_format : str
        ``"pow2"``, ``"codebook"`` or ``"dense"``.
    codebook : numpy.ndarray or None
        Integer codebook (entry 0 is 0) for compressed formats.
    csr_rel, csr_code, csr_rowptr : numpy.ndarray or None
        CSR rows as in the bundle.
    index_bits, code_bits : int
        Widths of ``rel`` and ``code`` in a ROM word (compressed formats).
    weight_bits : int
        Width of a dense ROM word.
    max_exp : int or None
        pow2: the largest exponent the bundle's format allows (``pow2_max_exp``), the capacity of
        a ``WEIGHTS=ram`` build (:mod:`rtl_gen.neuron.ram`); ``None``: the codebook's largest.
    """

    name: str
    weight_int: np.ndarray
    bias_int: np.ndarray
    shift: int
    activation: str
    in_bits: int = 8
    in_signed: bool = False
    output_bits: int = 8
    output_frac_bits: int = 4
    weight_format: str = "dense"
    codebook: np.ndarray | None = None
    csr_rel: np.ndarray | None = None
    csr_code: np.ndarray | None = None
    csr_rowptr: np.ndarray | None = None
    index_bits: int = 4
    code_bits: int = 4
    weight_bits: int = 16
    max_exp: int | None = None

    def __post_init__(self):
        self.weight_int = np.asarray(self.weight_int, dtype=np.int64)
        self.bias_int = np.asarray(self.bias_int, dtype=np.int64)
        if self.weight_int.ndim != 2:
            raise ValueError(f"weight_int must be 2-D (out, in), not shape {self.weight_int.shape}")
        if self.bias_int.shape != (self.out_features,):
            raise ValueError(
                f"bias_int must have shape ({self.out_features},), not {self.bias_int.shape}"
            )
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, not {self.activation!r}")
        if self.weight_format not in BUILDS:
            raise ValueError(f"weight_format must be one of {BUILDS}, not {self.weight_format!r}")
        if self.compressed:
            for field in ("codebook", "csr_rel", "csr_code", "csr_rowptr"):
                if getattr(self, field) is None:
                    raise ValueError(f"a {self.weight_format} layer needs {field}")
            self.codebook = np.asarray(self.codebook, dtype=np.int64)
            if len(self.codebook) > 1 << self.code_bits:
                raise ValueError(
                    f"codebook has more than 2**code_bits = {1 << self.code_bits} entries"
                )
            # unused codes decode to 0
            pad = (1 << self.code_bits) - len(self.codebook)
            self.codebook = np.concatenate([self.codebook, np.zeros(pad, np.int64)])
            self.csr_rel = np.asarray(self.csr_rel, dtype=np.int64)
            self.csr_code = np.asarray(self.csr_code, dtype=np.int64)
            self.csr_rowptr = np.asarray(self.csr_rowptr, dtype=np.int64)
            if self.codebook[0] != 0:
                raise ValueError("codebook[0] must be 0 (pruned weights and filler entries)")
            if len(self.csr_rowptr) != self.out_features + 1:
                raise ValueError("csr_rowptr must have out_features + 1 entries")
            if self.csr_rel.size and self.csr_rel.max() >= 1 << self.index_bits:
                raise ValueError(f"csr_rel does not fit in index_bits={self.index_bits}")
            if self.csr_code.size and self.csr_code.max() >= 1 << self.code_bits:
                raise ValueError(f"csr_code does not fit in code_bits={self.code_bits}")
            if self.weight_format == "pow2":
                for v in self.codebook[1:]:
                    a = abs(int(v))
                    if a and a & (a - 1):
                        raise ValueError(f"pow2 codebook entry {v} is not ±2**e")
            for j in range(self.out_features):
                cols = self.row_columns(j)
                if cols.size and cols[-1] >= self.in_features:
                    raise ValueError(f"row {j} of {self.name} has a column beyond in_features")
                dense = np.zeros(self.in_features, dtype=np.int64)
                dense[cols] = self.codebook[self.row_codes(j)]
                if not np.array_equal(dense, self.weight_int[j]):
                    raise ValueError(f"CSR row {j} of {self.name} does not decode to weight_int")
        else:
            lo, hi = -(1 << (self.weight_bits - 1)), (1 << (self.weight_bits - 1)) - 1
            if self.weight_int.min(initial=0) < lo or self.weight_int.max(initial=0) > hi:
                raise ValueError(f"dense weights do not fit in weight_bits={self.weight_bits}")

    @property
    def out_features(self) -> int:
        return self.weight_int.shape[0]

    @property
    def in_features(self) -> int:
        return self.weight_int.shape[1]

    @property
    def compressed(self) -> bool:
        return self.weight_format in ("pow2", "codebook")

    @property
    def out_signed(self) -> bool:
        return self.activation in ("none", "tanh")

    def row_codes(self, j: int) -> np.ndarray:
        """Codes of the stored entries of row ``j`` (fillers included)."""
        return self.csr_code[self.csr_rowptr[j] : self.csr_rowptr[j + 1]]

    def row_columns(self, j: int) -> np.ndarray:
        """Columns of the stored entries of row ``j``: ``prev + rel + 1`` from ``prev = -1``."""
        rel = self.csr_rel[self.csr_rowptr[j] : self.csr_rowptr[j + 1]]
        return np.cumsum(rel + 1) - 1

    def row_code_vector(self, j: int) -> np.ndarray:
        """Code of every input of row ``j`` (0 where pruned), decoded from the CSR row."""
        codes = np.zeros(self.in_features, dtype=np.int64)
        cols = self.row_columns(j)
        codes[cols] = self.row_codes(j)  # fillers have code 0
        return codes

    def resolve_layout(self, build: str, layout: str = "csr") -> str:
        """The layout actually built: ``"csr"`` or ``"direct"`` (``"auto"`` decided here; the
        dense build always walks its one-word-per-input ROM, reported as ``"csr"``)."""
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}")
        if build == "dense":
            if layout == "direct":
                raise ValueError("layout 'direct' is for the compressed builds (pow2, codebook)")
            return "csr"
        if layout == "auto":
            return self.auto_layout()
        return layout

    def auto_layout(self) -> str:
        """``"direct"`` when its ROMs cost no more than the CSR ones (:meth:`rom_cost`: block
        RAMs first, then LUT-ROM bits), else ``"csr"``."""
        direct = self.rom_cost(self.weight_format, "direct")
        return "direct" if direct <= self.rom_cost(self.weight_format, "csr") else "csr"

    def rom_cost(self, build: str, layout: str = "csr") -> tuple[int, int]:
        """``(block RAMs, LUT-ROM bits)`` of this layer's neuron ROMs (:func:`rom_cost`)."""
        width = self.rom_width(build, layout)
        return rom_cost(len(c) * width for c in self.entry_columns(build, layout))

    def entry_columns(self, build: str, layout: str = "csr") -> list[np.ndarray]:
        """Per neuron, the columns of its ROM words in ``build`` (dense: every input)."""
        if build == "dense":
            return [np.arange(self.in_features)] * self.out_features
        if self.resolve_layout(build, layout) == "direct":
            return [
                np.arange(self.in_features) if self.row_codes(j).any() else np.arange(0)
                for j in range(self.out_features)
            ]
        return [self.row_columns(j) for j in range(self.out_features)]

    def rom_words(self, j: int, build: str, layout: str = "csr") -> list[int]:
        """ROM contents of neuron ``j``: dense weights, ``rel | code << index_bits`` (CSR), or
        one code per input (direct; empty when the row has no nonzero weight)."""
        if build == "dense":
            mask = (1 << self.weight_bits) - 1
            return [int(w) & mask for w in self.weight_int[j]]
        if self.resolve_layout(build, layout) == "direct":
            codes = self.row_code_vector(j)
            return [int(c) for c in codes] if codes.any() else []
        lo, hi = self.csr_rowptr[j], self.csr_rowptr[j + 1]
        return [
            int(r) | int(c) << self.index_bits
            for r, c in zip(self.csr_rel[lo:hi], self.csr_code[lo:hi], strict=True)
        ]

    def rom_width(self, build: str, layout: str = "csr") -> int:
        if build == "dense":
            return self.weight_bits
        if self.resolve_layout(build, layout) == "direct":
            return self.code_bits
        return self.index_bits + self.code_bits

    def rom_bits(self, build: str, layout: str = "csr") -> int:
        """Bits of all weight ROMs of this layer in ``build`` and ``layout``."""
        words = sum(len(c) for c in self.entry_columns(build, layout))
        return words * self.rom_width(build, layout)

    def acc_range(self, build: str = "dense") -> tuple[int, int]:
        """Exact bounds of the accumulator over every input in range (bias included)."""
        xmin = -(1 << (self.in_bits - 1)) if self.in_signed else 0
        xmax = (1 << (self.in_bits - 1)) - 1 if self.in_signed else (1 << self.in_bits) - 1
        w = self.weight_int
        hi = np.maximum(w * xmax, w * xmin).sum(axis=1) + self.bias_int
        lo = np.minimum(w * xmax, w * xmin).sum(axis=1) + self.bias_int
        return int(min(lo.min(), self.bias_int.min(), 0)), int(max(hi.max(), 0))

    def acc_bits(self) -> int:
        """Signed width that holds :meth:`acc_range` (and the rounding constant)."""
        lo, hi = self.acc_range()
        hi += 1 << max(self.shift - 1, 0)
        bits = 2
        while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
            bits += 1
        return bits


def row_columns(rel: np.ndarray) -> np.ndarray:
    """Columns of CSR entries given their relative indices."""
    return np.cumsum(np.asarray(rel, dtype=np.int64) + 1) - 1


def load_bundle_any(bundle):
    """``(manifest, arrays)`` of a bundle given as a path, an object or a pair.

    A path is read with :func:`compress.bundle.load_bundle`.
    """
    if isinstance(bundle, (str, Path)):
        try:
            from compress.bundle import load_bundle
        except ImportError:  # the compress side is not installed: read the files directly
            return _read_bundle_files(Path(bundle))
        bundle = load_bundle(Path(bundle))
    if isinstance(bundle, tuple) and len(bundle) == 2:
        return bundle
    if isinstance(bundle, dict) and "manifest" in bundle and "arrays" in bundle:
        return bundle["manifest"], bundle["arrays"]
    if hasattr(bundle, "manifest") and hasattr(bundle, "arrays"):
        return bundle.manifest, bundle.arrays
    raise TypeError(f"cannot read a bundle from {type(bundle).__name__}")


def _read_bundle_files(path: Path):
    import json

    manifest = json.loads((path / "manifest.json").read_text())
    with np.load(path / "arrays.npz") as npz:
        arrays = {key: npz[key] for key in npz.files}
    return manifest, arrays


def layers_from_bundle(bundle, baseline: bool = False) -> list[LayerWeights]:
    """The linear layers of a bundle (or of its dense baseline) as :class:`LayerWeights`."""
    manifest, arrays = load_bundle_any(bundle)
    specs = manifest["baseline"]["layers"] if baseline else manifest["layers"]
    prefix = "baseline." if baseline else ""
    in_bits = int(manifest["input"]["bits"])
    in_signed = bool(manifest["input"].get("signed", False))
    layers = []
    for spec in specs:
        if spec.get("kind", "linear") != "linear":
            raise ValueError(
                f"layer {spec['name']} is {spec['kind']!r}; the MLP needs linear layers"
            )
        name = spec["name"]
        shift = spec["input_frac_bits"] + spec["weight_frac_bits"] - spec["output_frac_bits"]
        fmt = spec["weight_format"]
        kw = {}
        if fmt in ("pow2", "codebook"):
            kw = dict(
                codebook=arrays[f"{prefix}{name}.codebook"],
                csr_rel=arrays[f"{prefix}{name}.csr_rel"],
                csr_code=arrays[f"{prefix}{name}.csr_code"],
                csr_rowptr=arrays[f"{prefix}{name}.csr_rowptr"],
                index_bits=int(spec["index_bits"]),
                code_bits=int(spec["codebook_bits"]),
            )
        layer = LayerWeights(
            name=name,
            weight_int=np.asarray(arrays[f"{prefix}{name}.weight_int"]).reshape(
                spec["out_features"], spec["in_features"]
            ),
            bias_int=arrays[f"{prefix}{name}.bias_int"],
            shift=int(shift),
            activation=spec["activation"],
            in_bits=in_bits,
            in_signed=in_signed,
            output_bits=int(spec["output_bits"]),
            output_frac_bits=int(spec["output_frac_bits"]),
            weight_format=fmt,
            weight_bits=int(spec.get("weight_bits", 16)),
            max_exp=int(spec["pow2_max_exp"]) if "pow2_max_exp" in spec else None,
            **kw,
        )
        layers.append(layer)
        in_bits, in_signed = layer.output_bits, layer.out_signed
    return layers
