"""Validated parameters of the line-buffer convolution engine.

Every check runs in :class:`ConvParams`'s constructor, before any hardware is built, so a bad
value gives one clear :class:`ValueError` naming the parameter and the value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "BASE_LATENCY",
    "MAX_HEIGHT",
    "MAX_PIPELINE",
    "MAX_WIDTH",
    "PIXELS_PER_CLOCK",
    "ROUNDING_MODES",
    "ConvParams",
    "accumulator_width",
    "default_coefficients",
    "default_pipeline",
    "sum_width",
]

ROUNDING_MODES = ("half_up", "truncate")
#: Supported numbers of pixels per input beat (and results per output beat).
PIXELS_PER_CLOCK = (1, 2, 4)
#: Largest image: a line buffer holds one row, and 4096 rows of 4096 pixels is already a
#: 16-megapixel frame (hours in an event-driven simulator).
MAX_WIDTH = 4096
MAX_HEIGHT = 4096
#: Cycles from a beat read from the line buffers (streaming: accepted) to its results on the
#: output stream with no extra pipeline stage: read data, window + MAC register, output register.
#: The row-scan modes add their read register (``ConvParams.read_stage``), ``pipeline`` its stages.
BASE_LATENCY = 3
#: Extra pipeline stages the window datapath can take (see ``ConvParams.pipeline``).
MAX_PIPELINE = 4


def _check_int(name: str, value, minimum: int, what: str | None = None, maximum=None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        bound = what if what is not None else str(minimum)
        raise ValueError(f"{name} must be an integer >= {bound}, not {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be an integer <= {maximum}, not {value!r}")
    return int(value)


def sum_width(pixel_width: int, coef_width: int, kernel: int) -> int:
    """Signed width that holds any sum of ``kernel**2`` pixel-times-coefficient products.

    A pixel is unsigned (``0 .. 2**pixel_width - 1``) and a coefficient signed
    (``-2**(coef_width-1) .. 2**(coef_width-1) - 1``), so a product's magnitude is below
    ``2**(pixel_width + coef_width - 1)`` and a sum of ``n = kernel**2`` of them below
    ``2**(pixel_width + coef_width - 1 + ceil(log2(n)))``: one sign bit more gives
    ``pixel_width + coef_width + ceil(log2(kernel**2))``.
    """
    return pixel_width + coef_width + math.ceil(math.log2(kernel * kernel))


def accumulator_width(pixel_width: int, coef_width: int, kernel: int, bias_width: int) -> int:
    """Signed accumulator width for which no overflow is possible.

    ``max(sum_width, bias_width) + 1``: the product sum and a ``bias_width``-bit signed bias
    each fit ``max(...)`` bits, so their sum fits one bit more.
    """
    return max(sum_width(pixel_width, coef_width, kernel), bias_width) + 1


def default_pipeline(kernel: int, pixels_per_clock: int = 1) -> int:
    """Extra pipeline stages that reach 100 MHz on an ECP5-85k (measured, docs/conv.md).

    2 (products and the window column registered) up to ``K = 3``, whose ``K·K <= 16``
    products sum in four adder levels in one stage; 3 (the adder tree split too) above; 4
    (each lane's window registered next to its multipliers too) above with ``P = 4``, whose
    ``4·K·K`` multipliers spread over the device so that the window registers' fan-out to
    them sets the clock.
    """
    if kernel * kernel <= 16:
        return 2
    return 4 if pixels_per_clock >= 4 else 3


def default_coefficients(kernel: int) -> np.ndarray:
    """A small signed integer kernel (a sharpening filter) that exercises signed arithmetic.

    ``max(3 - 2 * (|dx| + |dy|), -1)`` around a centre weight of ``2 * kernel - 2``; for
    ``kernel == 3``: ``[[-1, 1, -1], [1, 4, 1], [-1, 1, -1]]``. Fits 8-bit signed for K up to 65.
    """
    r = kernel // 2
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    coefs = np.maximum(3 - 2 * (np.abs(x) + np.abs(y)), -1)
    coefs[r, r] = 2 * kernel - 2
    return coefs.astype(np.int64)


@dataclass(frozen=True)
class ConvParams:
    """Parameters of one convolution engine; validated on construction.

    Parameters
    ----------
    width, height : int
        Image size in pixels (``W``, ``H``), both ``>= kernel``.
    kernel : int
        Odd kernel size ``K >= 1``.
    line_buffers : int
        Number ``N`` of line buffers, ``N >= K - 1``; it selects the engine's mode
        (:attr:`mode`). ``N == K - 1`` (``"streaming"``): the incoming pixel is the window's
        bottom row, the buffers hold the ``K - 1`` rows above it. ``N == K`` (``"serial"``):
        filling a row and computing an output row take turns. ``N >= K + 1``
        (``"overlapped"``): a spare buffer fills while the window computes.
    pixels_per_clock : int
        ``P``, one of :data:`PIXELS_PER_CLOCK`: pixels per input beat and results per output
        beat. ``W`` must be a multiple of ``P``.
    pipeline : int, optional
        Extra register stages in the window datapath, ``0 .. MAX_PIPELINE``, each adding one
        cycle of latency per frame (never per pixel): ``>= 1`` registers the products,
        ``>= 2`` also the window column after the line-buffer row selection, ``>= 3`` also
        splits the adder tree, ``4`` also registers each lane's ``K × K`` window (a copy per
        lane) before its multipliers. :attr:`latency` is ``BASE_LATENCY + read_stage + pipeline``
        (:attr:`read_stage`: 1 in the row-scan modes). Default: :func:`default_pipeline`
        (chosen by measured Fmax); ``0`` gives the shortest latency.
    coefficients : array_like of int, shape ``(K, K)``, optional
        Signed kernel coefficients, each fitting ``coef_width`` bits. Output pixel ``(y, x)``
        is ``sum(coefficients[i, j] * image[y + i, x + j])`` (correlation, like
        ``torch.nn.functional.conv2d``). Default: :func:`default_coefficients`.
    pixel_width : int
        Width of the unsigned input pixels.
    coef_width : int
        Width of the signed coefficients.
    bias : int
        Signed bias added to the sum of products, fitting ``bias_width`` bits.
    bias_width : int, optional
        Width of the bias. Default: :func:`sum_width`.
    shift : int
        Arithmetic right shift applied to the accumulator, ``>= 0``.
    rounding : str
        ``"half_up"``: ``(acc + (1 << (shift - 1))) >> shift``; ``"truncate"``: ``acc >> shift``
        (towards minus infinity). Irrelevant when ``shift == 0``.
    out_width : int
        Width of the signed output; the shifted value saturates to its range.
    relu : bool
        Clamp negative results to zero (before saturation).
    """

    width: int
    height: int
    kernel: int = 3
    line_buffers: int = 4
    pixels_per_clock: int = 1
    pipeline: int | None = None
    coefficients: np.ndarray | None = None
    pixel_width: int = 8
    coef_width: int = 8
    bias: int = 0
    bias_width: int | None = None
    shift: int = 2
    rounding: str = "half_up"
    out_width: int = 16
    relu: bool = False

    def __post_init__(self):
        s = object.__setattr__
        kernel = _check_int("kernel", self.kernel, 1)
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be an odd integer >= 1, not {self.kernel!r}")
        s(self, "kernel", kernel)
        s(
            self,
            "width",
            _check_int("width", self.width, kernel, f"kernel ({kernel})", MAX_WIDTH),
        )
        s(
            self,
            "height",
            _check_int("height", self.height, kernel, f"kernel ({kernel})", MAX_HEIGHT),
        )
        s(
            self,
            "line_buffers",
            _check_int("line_buffers", self.line_buffers, kernel - 1, f"kernel - 1 ({kernel - 1})"),
        )
        ppc = self.pixels_per_clock
        if (
            isinstance(ppc, bool)
            or not isinstance(ppc, (int, np.integer))
            or (ppc not in PIXELS_PER_CLOCK)
        ):
            raise ValueError(f"pixels_per_clock must be one of {PIXELS_PER_CLOCK}, not {ppc!r}")
        s(self, "pixels_per_clock", int(ppc))
        if self.width % ppc:
            raise ValueError(f"width ({self.width}) must be a multiple of pixels_per_clock ({ppc})")
        stages = default_pipeline(kernel, ppc) if self.pipeline is None else self.pipeline
        s(self, "pipeline", _check_int("pipeline", stages, 0, maximum=MAX_PIPELINE))
        s(self, "pixel_width", _check_int("pixel_width", self.pixel_width, 1))
        s(self, "coef_width", _check_int("coef_width", self.coef_width, 2))
        s(self, "out_width", _check_int("out_width", self.out_width, 2))
        s(self, "shift", _check_int("shift", self.shift, 0))
        if self.rounding not in ROUNDING_MODES:
            raise ValueError(f"rounding must be one of {ROUNDING_MODES}, not {self.rounding!r}")
        if not isinstance(self.relu, (bool, np.bool_)):
            raise ValueError(f"relu must be a bool, not {self.relu!r}")
        s(self, "relu", bool(self.relu))

        coefs = self.coefficients
        if coefs is None:
            coefs = default_coefficients(kernel)
        arr = np.asarray(coefs)
        if arr.shape != (kernel, kernel):
            raise ValueError(
                f"coefficients must have shape ({kernel}, {kernel}) for kernel {kernel}, "
                f"not {arr.shape}"
            )
        if arr.dtype.kind == "f":
            if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
                raise ValueError("coefficients must be integers, not fractional values")
        elif arr.dtype.kind not in "iub":
            raise ValueError(f"coefficients must be integers, not dtype {arr.dtype}")
        arr = arr.astype(np.int64)
        lo, hi = -(1 << (self.coef_width - 1)), (1 << (self.coef_width - 1)) - 1
        bad = np.argwhere((arr < lo) | (arr > hi))
        if len(bad):
            i, j = (int(v) for v in bad[0])
            raise ValueError(
                f"coefficients[{i}, {j}] = {int(arr[i, j])} does not fit coef_width "
                f"{self.coef_width} (signed range {lo} .. {hi})"
            )
        arr.setflags(write=False)
        s(self, "coefficients", arr)

        bias_width = self.bias_width
        if bias_width is None:
            bias_width = sum_width(self.pixel_width, self.coef_width, kernel)
        s(self, "bias_width", _check_int("bias_width", bias_width, 1))
        if isinstance(self.bias, bool) or not isinstance(self.bias, (int, np.integer)):
            raise ValueError(f"bias must be an integer, not {self.bias!r}")
        blo, bhi = -(1 << (self.bias_width - 1)), (1 << (self.bias_width - 1)) - 1
        if not blo <= self.bias <= bhi:
            raise ValueError(
                f"bias {int(self.bias)} does not fit bias_width {self.bias_width} "
                f"(signed range {blo} .. {bhi})"
            )
        s(self, "bias", int(self.bias))

    # Derived quantities -------------------------------------------------------------------

    @property
    def acc_width(self) -> int:
        """Signed accumulator width, see :func:`accumulator_width`."""
        return accumulator_width(self.pixel_width, self.coef_width, self.kernel, self.bias_width)

    @property
    def mode(self) -> str:
        """``"streaming"`` (``N = K - 1``), ``"serial"`` (``N = K``) or ``"overlapped"``."""
        n, k = self.line_buffers, self.kernel
        return "streaming" if n == k - 1 else "serial" if n == k else "overlapped"

    @property
    def read_stage(self) -> int:
        """Register stages between the line buffers' read data and the row selection.

        1 in the row-scan modes (``N >= K``): their line buffers become block RAM for wide
        images (an ECP5 DP16KD's data output has no register of its own), and the ``N``-to-``K``
        row selection after it would otherwise set the clock (docs/conv.md). 0 in the
        streaming mode, whose ``K - 1``-to-``K - 1`` rotation does not need it.
        """
        return 0 if self.mode == "streaming" else 1

    @property
    def latency(self) -> int:
        """Cycles from a beat's read (streaming: its acceptance) to its results on the stream:
        ``BASE_LATENCY + read_stage + pipeline``."""
        return BASE_LATENCY + self.read_stage + self.pipeline

    @property
    def beats_per_row(self) -> int:
        """Input beats per image row, ``W / P``: the depth of each line buffer."""
        return self.width // self.pixels_per_clock

    @property
    def storage_bits(self) -> int:
        """Bits of line-buffer memory, ``N·W·pixel_width``."""
        return self.line_buffers * self.width * self.pixel_width

    @property
    def window_bits(self) -> int:
        """Bits of window registers: ``K`` rows of the ``K - 1`` previous columns."""
        return self.kernel * (self.kernel - 1) * self.pixel_width

    @property
    def out_cols(self) -> int:
        """Outputs per row of the valid convolution, ``W - K + 1``."""
        return self.width - self.kernel + 1

    @property
    def out_rows(self) -> int:
        """Output rows per frame, ``H - K + 1``."""
        return self.height - self.kernel + 1

    @property
    def outputs_per_frame(self) -> int:
        return self.out_rows * self.out_cols

    def check_image(self, image, name: str = "image") -> np.ndarray:
        """Return ``image`` as an int64 array after checking its shape and pixel range.

        Accepts one frame ``(H, W)`` or a stack of frames ``(F, H, W)``.
        """
        arr = np.asarray(image)
        if arr.ndim not in (2, 3) or arr.shape[-2:] != (self.height, self.width):
            raise ValueError(
                f"{name} must have shape (height, width) = ({self.height}, {self.width}) "
                f"or (frames, {self.height}, {self.width}), not {arr.shape}"
            )
        if arr.dtype.kind not in "iub":
            raise ValueError(f"{name} must hold integer pixels, not dtype {arr.dtype}")
        arr = arr.astype(np.int64)
        top = (1 << self.pixel_width) - 1
        if arr.size and (arr.min() < 0 or arr.max() > top):
            raise ValueError(
                f"{name} pixels must lie in 0 .. {top} (pixel_width {self.pixel_width}), "
                f"found {int(arr.min())} .. {int(arr.max())}"
            )
        return arr

    def to_dict(self) -> dict:
        """JSON-able form; ``ConvParams(**d)`` rebuilds it."""
        return {
            "width": self.width,
            "height": self.height,
            "kernel": self.kernel,
            "line_buffers": self.line_buffers,
            "pixels_per_clock": self.pixels_per_clock,
            "pipeline": self.pipeline,
            "coefficients": self.coefficients.tolist(),
            "pixel_width": self.pixel_width,
            "coef_width": self.coef_width,
            "bias": self.bias,
            "bias_width": self.bias_width,
            "shift": self.shift,
            "rounding": self.rounding,
            "out_width": self.out_width,
            "relu": self.relu,
        }
