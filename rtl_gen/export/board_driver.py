"""Template of the generated ``board/<top>_driver.py`` (:func:`rtl_gen.export.board.driver_source`
fills in ``LAYOUT``, the folder's ``board/board.json``, and renames :class:`BoardOverlay`).

Numpy only at import: :func:`quantise`, :func:`pack_image` and :func:`unpack_result` are the
byte layout of the AXI DMA's transfers; :class:`Driver` (any object with the DMA as an attribute,
e.g. a ``pynq.Overlay``) and the ``pynq.Overlay`` subclass need ``pynq`` (on the board).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = [
    "LAYOUT",
    "Driver",
    "pack_image",
    "quantise",
    "read_bundle",
    "real_scores",
    "unpack_result",
    "weight_writes",
]

LAYOUT: dict = {}  # filled in by rtl_gen.export.board

#: AXI DMA register: bytes the S2MM channel wrote in its last transfer (simple mode)
S2MM_LENGTH = 0x58


def _layout(layout):
    return LAYOUT if layout is None else layout


def quantise(images, layout=None) -> np.ndarray:
    """Real pixels (one image per row, or one image) to codes, as the manifest says:
    ``clip(floor(x * 2**frac_bits + 0.5), 0, 2**bits - 1)`` (round half up)."""
    inp = _layout(layout)["input"]
    n = int(np.prod(inp["shape"]))
    x = np.asarray(images, dtype=np.float64).reshape(-1, n)
    q = np.floor(x * float(2 ** inp["frac_bits"]) + 0.5)
    return np.clip(q, 0, 2 ** inp["bits"] - 1).astype(np.int64)


def _field(value: int, nbytes: int) -> bytes:
    """``value`` in ``nbytes`` little-endian bytes, two's complement."""
    return (int(value) & ((1 << (8 * nbytes)) - 1)).to_bytes(nbytes, "little")


def pack_image(codes, layout=None) -> np.ndarray:
    """The MM2S bytes of one image (its codes): ``(beats, dma_bytes)`` uint8, one DMA word per
    beat, each ``tdata`` lane at its byte offset, ``tuser`` (the element index) in the bytes
    after ``tdata``, zero padding above. The DMA's ``tlast`` ends the transfer (one per image).
    MLP: one beat per element, zero elements left out with zero-skipping (never the last);
    CNN: one beat per pixel in raster order, channel ``c`` in lane ``c``."""
    layout = _layout(layout)
    mm2s, inp = layout["mm2s"], layout["input"]
    codes = np.asarray(codes, dtype=np.int64).reshape(-1)
    if codes.size != int(np.prod(inp["shape"])):
        raise ValueError(f"an image has {int(np.prod(inp['shape']))} codes, not {codes.size}")
    if codes.min() < 0 or codes.max() >= 2 ** inp["bits"]:
        raise ValueError(f"codes must be in 0..{2 ** inp['bits'] - 1}")
    lanes, tuser = mm2s["lanes"], mm2s["tuser"]
    if layout["design"] == "mlp":
        last = codes.size - 1
        beats = [
            ([v], i) for i, v in enumerate(codes) if not (inp["zero_skip"] and v == 0) or i == last
        ]
    else:  # CNN: channels-first image, pixels in raster order
        channels = inp["shape"][0]
        pixels = codes.reshape(channels, -1).T
        beats = [(list(p), None) for p in pixels]
    out = np.zeros((len(beats), mm2s["dma_bytes"]), dtype=np.uint8)
    for row, (values, index) in zip(out, beats, strict=True):
        for lane, value in zip(lanes, values, strict=True):
            row[lane["byte"] : lane["byte"] + lane["bytes"]] = list(_field(value, lane["bytes"]))
        if tuser is not None:
            nbytes = -(-tuser["bits"] // 8)
            row[tuser["byte"] : tuser["byte"] + nbytes] = list(_field(index, nbytes))
    return out


def unpack_result(data, layout=None) -> np.ndarray:
    """The class scores (codes, int64) of one image from the S2MM bytes: each beat's value
    sign- (or zero-) extended from its field, its index from the ``tuser`` bytes; indices must
    increase and end with the last class; scores left out (zero-skipping) are 0."""
    layout = _layout(layout)
    s2mm, outputs = layout["s2mm"], layout["outputs"]
    buf = np.frombuffer(bytes(data), dtype=np.uint8)
    width = s2mm["dma_bytes"]
    if buf.size == 0 or buf.size % width:
        raise ValueError(f"{buf.size} bytes are not whole {width}-byte beats")
    lane, tuser = s2mm["lanes"][0], s2mm["tuser"]
    dense = np.zeros(outputs, dtype=np.int64)
    previous = -1
    for beat in buf.reshape(-1, width):
        raw = int.from_bytes(bytes(beat[lane["byte"] : lane["byte"] + lane["bytes"]]), "little")
        field_bits = 8 * lane["bytes"]
        value = raw - (1 << field_bits) if lane["signed"] and raw >> (field_bits - 1) else raw
        bits = lane["value_bits"]
        lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if lane["signed"] else (0, 1 << bits)
        if not lo <= value < hi:
            raise ValueError(f"beat {bytes(beat).hex()}: the value is not a {bits}-bit extension")
        nbytes = -(-tuser["bits"] // 8)
        user = int.from_bytes(bytes(beat[tuser["byte"] : tuser["byte"] + nbytes]), "little")
        rest = bytes(beat[tuser["byte"] + nbytes :]) + bytes([user >> tuser["bits"]])
        if any(rest):
            raise ValueError(f"beat {bytes(beat).hex()}: padding bits are not zero")
        if not previous < user < outputs:
            raise ValueError(f"index {user} after {previous} (0..{outputs - 1}, increasing)")
        dense[user] = value
        previous = user
    if previous != outputs - 1:
        raise ValueError(f"the transfer ends at index {previous}, not {outputs - 1}")
    return dense


def real_scores(scores, layout=None) -> np.ndarray:
    """Codes to real values: ``code * 2**-frac_bits``."""
    frac = _layout(layout)["s2mm"]["lanes"][0]["frac_bits"]
    return np.asarray(scores, dtype=np.float64) * 2.0**-frac


def read_bundle(bundle) -> tuple[dict, dict]:
    """``(manifest, arrays)`` of a compress bundle folder (``manifest.json``, ``arrays.npz``),
    or the pair itself."""
    if isinstance(bundle, tuple):
        return bundle
    path = Path(bundle)
    manifest = json.loads((path / "manifest.json").read_text())
    with np.load(path / "arrays.npz") as npz:
        arrays = {key: npz[key] for key in npz.files}
    return manifest, arrays


def _signed_bits(lo: int, hi: int) -> int:
    bits = 2
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


def weight_writes(bundle, layout=None) -> list[tuple[int, int]]:
    """``WEIGHTS=ram``: the AXI4-Lite writes ``[(byte address, 32-bit word), ...]`` that load
    ``bundle`` (a folder or ``(manifest, arrays)``) into the IP, from the address map of
    ``layout["weights"]`` (the folder's ``manifest.json`` key ``weights``). A bundle the build
    cannot hold is refused with a ``ValueError`` of one line naming the layer and the field.
    Numpy only (no pynq): the same words as ``rtl_gen.neuron.ram.ram_writes``."""
    amap = _layout(layout).get("weights")
    if not amap:
        raise ValueError("this design has its weights in ROM (built with WEIGHTS=rom)")
    manifest, arrays = read_bundle(bundle)
    specs = [spec for spec in manifest["layers"] if spec.get("kind", "linear") == "linear"]
    if len(specs) != len(amap["layers"]) or len(specs) != len(manifest["layers"]):
        raise ValueError(
            f"layers: the bundle has {len(manifest['layers'])}, the RAM build "
            f"{len(amap['layers'])} linear ones"
        )
    in_bits = int(manifest["input"]["bits"])
    in_signed = bool(manifest["input"].get("signed", False))
    entry_bits, neuron_bits = amap["entry_bits"], amap["neuron_bits"]
    writes = []
    for index, (spec, built) in enumerate(zip(specs, amap["layers"], strict=True)):
        name, fixed, word = built["name"], built["fixed"], built["word"]
        shape = (int(spec["out_features"]), int(spec["in_features"]))
        got = {
            "in_features": shape[1],
            "out_features": shape[0],
            "shift": int(spec["input_frac_bits"])
            + int(spec["weight_frac_bits"])
            - int(spec["output_frac_bits"]),
            "activation": spec["activation"],
            "in_bits": in_bits,
            "in_signed": in_signed,
            "output_bits": int(spec["output_bits"]),
        }
        if fixed["activation"] in ("sigmoid", "tanh"):
            got["output_frac_bits"] = int(spec["output_frac_bits"])
        for field, value in got.items():
            if value != fixed[field]:
                raise ValueError(
                    f"{name}.{field} is {value}, the RAM build has {fixed[field]}: "
                    "re-synthesise instead"
                )
        w = np.asarray(arrays[f"{spec['name']}.weight_int"], dtype=np.int64).reshape(shape)
        b = np.asarray(arrays[f"{spec['name']}.bias_int"], dtype=np.int64).reshape(shape[0])
        if word["format"] == "pow2":
            mags = np.abs(w[w != 0])
            if mags.size and np.any(mags & (mags - 1)):
                raise ValueError(f"{name}.weight_int: not ±2**e, the pow2 RAM build needs pow2")
            top = int(mags.max()).bit_length() - 1 if mags.size else 0
            if top > word["max_exp"]:
                raise ValueError(
                    f"{name}.pow2_max_exp: weight 2**{top} exceeds the build's 2**{word['max_exp']}"
                )
            exps = np.where(w == 0, 0, np.floor(np.log2(np.maximum(np.abs(w), 1))).astype(int))
            words = np.where(w == 0, 1, (w < 0).astype(np.int64) << 1 | exps << 2)
        else:
            bits = word["bits"]
            if w.size and (w.min() < -(1 << (bits - 1)) or w.max() >= 1 << (bits - 1)):
                raise ValueError(f"{name}.weight_int: values beyond the build's {bits}-bit weights")
            words = w & ((1 << bits) - 1)
        xmin = -(1 << (in_bits - 1)) if in_signed else 0
        xmax = (1 << (in_bits - 1)) - 1 if in_signed else (1 << in_bits) - 1
        hi = np.maximum(w * xmax, w * xmin).sum(axis=1) + b
        lo = np.minimum(w * xmax, w * xmin).sum(axis=1) + b
        lo = int(min(lo.min(), b.min(), 0))
        hi = int(max(hi.max(), 0)) + (1 << max(got["shift"] - 1, 0))
        if _signed_bits(lo, hi) > built["bias_bits"]:
            raise ValueError(
                f"{name}.acc_bits: the bundle's accumulator needs {_signed_bits(lo, hi)} bits, "
                f"the RAM build has {built['bias_bits']}"
            )
        for j in range(shape[0]):
            base = (index << neuron_bits | j) << entry_bits
            writes += [(4 * (base + k), int(v)) for k, v in enumerate(words[j])]
            writes.append((4 * (base + shape[1]), int(b[j]) & 0xFFFFFFFF))
        in_bits, in_signed = got["output_bits"], spec["activation"] in ("none", "tanh")
    return writes


class Driver:
    """``predict`` through the AXI DMA of ``overlay`` (attribute ``LAYOUT["dma_cell"]``, a
    pynq ``DMA``): one MM2S and one S2MM transfer per image."""

    def __init__(self, overlay, dma=None, allocate=None):
        if allocate is None:
            from pynq import allocate
        self.overlay = overlay
        self.dma = dma if dma is not None else getattr(overlay, LAYOUT["dma_cell"])
        mm2s, s2mm = LAYOUT["mm2s"], LAYOUT["s2mm"]
        beats = int(np.prod(LAYOUT["input"]["shape"]))
        if LAYOUT["design"] == "cnn":
            beats //= LAYOUT["input"]["shape"][0]
        self.tx = allocate(shape=(beats * mm2s["dma_bytes"],), dtype=np.uint8)
        self.rx = allocate(shape=(LAYOUT["outputs"] * s2mm["dma_bytes"],), dtype=np.uint8)

    def transfer(self, words: np.ndarray) -> bytes:
        """Send the MM2S bytes ``words``; the bytes S2MM wrote back."""
        data = np.asarray(words, dtype=np.uint8).reshape(-1)
        self.tx[: data.size] = data
        self.tx.flush()
        self.dma.recvchannel.transfer(self.rx)
        self.dma.sendchannel.transfer(self.tx, nbytes=data.size)
        self.dma.sendchannel.wait()
        self.dma.recvchannel.wait()
        self.rx.invalidate()
        received = int(self.dma.read(S2MM_LENGTH))
        return bytes(self.rx[:received])

    def load_weights(self, bundle, mmio=None) -> int:
        """``WEIGHTS=ram``: write ``bundle``'s weights and biases into the IP through its
        AXI4-Lite slave (``mmio``: a ``pynq.MMIO`` of it, by default the overlay's
        ``LAYOUT["core_cell"]``); only between images (no ``predict`` running). Returns the
        number of writes. The bundle is checked (:func:`weight_writes`) before any write."""
        writes = weight_writes(bundle)
        if mmio is None:
            mmio = getattr(self.overlay, LAYOUT["core_cell"]).mmio
        for address, word in writes:
            mmio.write(address, word)
        return len(writes)

    def predict(self, images, codes: bool = False) -> np.ndarray:
        """Class scores (codes; :func:`real_scores` for real values), one row per image.
        ``images``: real pixels (quantised here), or codes with ``codes=True``."""
        n = int(np.prod(LAYOUT["input"]["shape"]))
        q = np.asarray(images, dtype=np.int64).reshape(-1, n) if codes else quantise(images)
        return np.stack([unpack_result(self.transfer(pack_image(c))) for c in q])


try:
    from pynq import Overlay as _PynqOverlay
except ImportError:  # off the board: the packing above still works
    _PynqOverlay = None

if _PynqOverlay is not None:

    class BoardOverlay(_PynqOverlay):
        """The overlay (``overlay/<top>.bit`` next to this file by default) with ``predict``."""

        def __init__(self, bitfile=None, **kwargs):
            if bitfile is None:
                bitfile = Path(__file__).with_name("overlay") / f"{LAYOUT['top']}.bit"
            super().__init__(str(bitfile), **kwargs)
            self.driver = Driver(self)

        def predict(self, images, codes: bool = False) -> np.ndarray:
            return self.driver.predict(images, codes)

        def load_weights(self, bundle) -> int:
            """``WEIGHTS=ram``: load another bundle of the same shape (see the driver's)."""
            return self.driver.load_weights(bundle)


if __name__ == "__main__":
    print(json.dumps(LAYOUT, indent=2))
