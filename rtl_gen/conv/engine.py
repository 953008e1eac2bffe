"""Top of the streaming N-line-buffer convolution engine."""

from __future__ import annotations

import dataclasses

from amaranth import Module, Value
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .params import ConvParams
from .row_scan import RowScan
from .streaming import StreamingRows
from .window import WindowMAC, datapath_latency, output_layout

__all__ = ["ConvEngine", "pack_coefficients"]


def pack_coefficients(params: ConvParams) -> int:
    """The coefficient ROM word: ``K·K`` two's-complement fields, row-major, (0, 0) lowest."""
    mask = (1 << params.coef_width) - 1
    word = 0
    for index, coef in enumerate(params.coefficients.reshape(-1).tolist()):
        word |= (int(coef) & mask) << (index * params.coef_width)
    return word


def input_shape(params: ConvParams):
    """Payload of the input stream: one unsigned pixel, or ``P`` of them (lane 0 lowest)."""
    if params.pixels_per_clock == 1:
        return params.pixel_width
    return data.ArrayLayout(params.pixel_width, params.pixels_per_clock)


class ConvEngine(wiring.Component):
    """Streaming 2-D convolution ("valid" region) over ``N`` line buffers, ``P`` pixels a beat.

    Pixels enter in raster order, ``P`` per transfer; results leave in raster order,
    ``(H - K + 1) × (W - K + 1)`` per frame, up to ``P`` per transfer, the frame's last beat
    marked. Frames follow each other with no gap and no separator: the engine counts rows and
    columns.

    Three modes, chosen by the number ``N`` of line buffers (:attr:`ConvParams.mode`):

    * ``N = K - 1``, streaming (:class:`~rtl_gen.conv.streaming.StreamingRows`): the incoming
      beat is the window's bottom row; least memory and latency, no elasticity: output
      backpressure stalls the input at once;
    * ``N = K``, serial (:class:`~rtl_gen.conv.row_scan.RowScan`): the window scans ``K``
      complete rows; filling the next row waits for it;
    * ``N >= K + 1``, overlapped (``RowScan``): a spare buffer fills while the window scans,
      one row of elasticity between input and output.

    Parameters
    ----------
    params : ConvParams, optional
        Validated parameters. Keyword arguments build one (``ConvEngine(width=28, height=28,
        line_buffers=4)``) or override fields of ``params``. A bad value raises
        :class:`ValueError` here, before any elaboration.

    Attributes
    ----------
    i : stream.Signature(input_shape(params)), in
        Pixels, unsigned; with ``P > 1`` an array of ``P`` pixels, the leftmost in lane 0.
        ``i.ready`` never depends on ``i.valid``. Row-scan modes: it depends only on
        registered state and falls at the start of a row when all ``N`` buffers hold rows the
        window still needs (with ``N == K`` for every row after the first ``K`` of a frame,
        for ``W/P`` cycles; with ``N >= K + 1`` and an always-ready sink never). Streaming
        mode: ``i.ready = ~o.valid | o.ready``.
    o : stream.Signature(output_layout(out_width, P)), out
        ``payload.value`` (signed ``out_width``, or ``P`` of them), ``payload.keep`` (``P >
        1``: lanes holding a result) and ``payload.last`` (end of frame). Result ``(y, x)``
        travels in lane ``(x + K - 1) mod P``: only a row's first result beat can be partial.
        ``o.valid`` is registered. Backpressure (``o.ready`` low) stalls the whole window
        pipeline and, through the held line buffers (at once in the streaming mode), the input.

    Notes
    -----
    Timing, for a full-rate source and an always-ready sink, first beat accepted at cycle 0:

    * streaming: a beat's results are valid :attr:`latency` (``L = 3 + pipeline``) cycles
      after it is accepted; a frame takes ``H·W/P + L`` cycles, ``F`` frames ``F·H·W/P + L``;
    * row-scan: a row is complete in the cycle its last beat is accepted; the window starts
      reading the next output row on the following cycle (when its ``K`` rows are held and the
      window is idle), one beat per cycle, results valid ``L`` cycles after the read
      (``L = 4 + pipeline``: the read data is registered before the row selection); a row is
      released the cycle after its last read. One frame takes ``(2H - K + 1)·W/P + L`` cycles
      with ``N == K`` and ``(H + 1)·W/P + L`` with ``N >= K + 1``.

    ``tb.golden.conv.conv_cycles`` gives the exact count for any number of frames.
    """

    @property
    def latency(self) -> int:
        """Cycles from a beat read (streaming: accepted) to its results on ``o``:
        :attr:`ConvParams.latency`, ``READ_TO_OUTPUT_LATENCY + read_stage + pipeline`` (the
        front end's read register, then :func:`datapath_latency`)."""
        return self.params.read_stage + datapath_latency(self.params)

    def __init__(self, params: ConvParams | None = None, /, **kwargs):
        try:
            if params is None:
                params = ConvParams(**kwargs)
            elif not isinstance(params, ConvParams):
                raise TypeError(f"params must be a ConvParams, not {params!r}")
            elif kwargs:
                params = dataclasses.replace(params, **kwargs)
        except (TypeError, ValueError):
            self._MustUse__silence = True  # never built: no "created but never used" warning
            raise
        self.params = params
        super().__init__(
            {
                "i": In(stream.Signature(input_shape(params))),
                "o": Out(
                    stream.Signature(output_layout(params.out_width, params.pixels_per_clock))
                ),
            }
        )

    def elaborate(self, platform):
        m = Module()
        p = self.params
        k = p.kernel

        m.submodules.coef_rom = rom = memory.Memory(
            shape=k * k * p.coef_width, depth=1, init=[pack_coefficients(p)]
        )
        rom_read = rom.read_port(domain="sync")
        if p.mode == "streaming":
            m.submodules.front = front = StreamingRows(p)
        else:
            m.submodules.front = front = RowScan(p, read_register=bool(p.read_stage))
        m.submodules.mac = mac = WindowMAC(p)
        wiring.connect(m, wiring.flipped(self.o), mac.o)
        m.d.comb += [
            front.i.valid.eq(self.i.valid),
            front.i.payload.eq(Value.cast(self.i.payload)),
            self.i.ready.eq(front.i.ready),
            front.advance.eq(mac.advance),
            mac.issue.eq(front.issue),
            mac.emit.eq(front.emit),
            mac.keep.eq(front.keep),
            mac.last.eq(front.last),
            mac.column.eq(front.column),
            mac.coefficients.eq(rom_read.data),
        ]
        return m
