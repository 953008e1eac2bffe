"""The whole CNN in hardware: conv and pool stages on pixel streams, the flatten, the MLP."""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from rtl_gen.mlp import Mlp
from rtl_gen.skid import SkidBuffer

from .conv_layer import ConvLayer
from .flatten import Flatten
from .maxpool import MaxPool2
from .pixels import pixel_layout, value_shape
from .spec import CnnSpec, ConvSpec

__all__ = ["FIFO_LATENCY", "Cnn"]

#: Cycles from a beat written into a :class:`amaranth.lib.fifo.SyncFIFOBuffered` to the cycle it
#: is first offered on the read side (an empty FIFO; a full-rate reader then takes one a cycle).
FIFO_LATENCY = 2


class _StreamFifo(wiring.Component):
    """``SyncFIFOBuffered`` between two streams of ``layout`` (block RAM or LUTRAM inferred).

    ``i.ready`` is a register: high when the FIFO held at most ``depth - 2`` entries in the
    previous cycle, so a write fits (one entry of slack), and the level's compare is not on a
    path into the writer's logic. A FIFO that never holds ``depth - 1`` entries takes every
    beat when offered, as ``tb.golden.cnn_network`` assumes (it checks the peak)."""

    def __init__(self, layout, depth: int):
        self.layout, self.depth = layout, depth
        super().__init__({"i": In(stream.Signature(layout)), "o": Out(stream.Signature(layout))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = buf = fifo.SyncFIFOBuffered(
            width=self.i.payload.shape().size, depth=self.depth
        )
        room = Signal(init=1)
        m.d.sync += room.eq(buf.level <= self.depth - 2)
        m.d.comb += [
            buf.w_data.eq(self.i.payload),
            buf.w_en.eq(self.i.valid & room),
            self.i.ready.eq(room),
            self.o.payload.eq(buf.r_data),
            self.o.valid.eq(buf.r_rdy),
            buf.r_en.eq(self.o.ready),
        ]
        return m


class Cnn(wiring.Component):
    """A CNN from its :class:`~rtl_gen.cnn.spec.CnnSpec`: pixels in, class scores out.

    ``ConvLayer`` and ``MaxPool2`` stages in the bundle's order, a :class:`Flatten` (``hwc``)
    and the fully connected layers (:class:`~rtl_gen.mlp.Mlp`). Three FIFOs decouple the parts
    whose rates differ, so that at full rate no stage stalls the one before it (the cycle
    model ``tb.golden.cnn_network.cnn_timing`` checks that and gives every cycle):

    * before every conv layer after the first that runs in a row-scan mode (``N >= K``: it
      stops taking pixels while its window scans): one input row;
    * before the flatten: one frame of its pixels (a pixel of ``C`` channels leaves as up to
      ``C`` elements, one per cycle);
    * before the first fully connected layer: one frame of elements (the CSR walk of a layer
      takes one cycle per ROM word), then a register slice (one cycle), so that the block RAM's
      read data does not drive the first layer's broadcast directly.

    A :class:`~rtl_gen.skid.SkidBuffer` (one cycle) follows every conv and pool stage whose
    output does not go into a conv layer's FIFO (:attr:`slices`), the last one's too: each
    stage's ``ready`` then comes from a register, so no combinational path runs from one
    stage's pipeline enable into the next one's (without them the enables of every stage chain
    through ``ready``; without the last one, from the flatten FIFO's level through the last
    pool into the slice before it).

    Images follow each other with no gap: image ``i + 1`` enters while image ``i`` is still in
    later stages.

    Parameters
    ----------
    spec : CnnSpec
    line_buffers : int or list of int, optional
        ``N`` of each conv layer (one value for all, or one per layer): ``K - 1`` streaming
        (default), ``K`` serial, ``>= K + 1`` overlapped, as :class:`ConvLayer`.
    zero_skip : bool
        The flatten leaves zero activations out and the MLP skips zeros (default on).
    layout : str
        ROM layout of the fully connected layers: ``"direct"`` (the default for compressed
        weights: one code per input, every element in one cycle), ``"auto"`` or ``"csr"`` (the
        only one of dense weights, the default for them). The composed cycle model covers a
        first fc layer in the direct layout.

    Attributes
    ----------
    inp : stream.Signature(pixel_layout(C, unsigned(input_bits))), in
        The image's pixels in raster order (``last`` ignored: the stages count).
    out : stream
        The class scores: elements ``{index, value, last}`` of the last layer, in index order.
    """

    def __init__(self, spec: CnnSpec, *, line_buffers=None, zero_skip: bool = True,
                 layout: str | None = None):  # fmt: skip
        try:
            line_buffers = self._check(spec, line_buffers)
        except (TypeError, ValueError):
            self._MustUse__silence = True
            raise
        self.spec = spec
        self.line_buffers = line_buffers
        self.zero_skip = bool(zero_skip)
        self.stages = []
        self.fifo_depths = {}
        n_iter = iter(line_buffers)
        for index, stage in enumerate(spec.stages):
            c, h, w = stage.in_shape
            if isinstance(stage, ConvSpec):
                n = next(n_iter)
                if index > 0 and n >= stage.kernel:
                    self.fifo_depths[stage.name] = max(4, w)
                self.stages.append(
                    ConvLayer(
                        height=h,
                        width=w,
                        in_channels=c,
                        weights=stage.weights,
                        bias=stage.bias,
                        shift=stage.shift,
                        activation=stage.activation,
                        out_bits=stage.out_bits,
                        in_bits=stage.in_bits,
                        line_buffers=n,
                        weight_format=stage.weight_format,
                    )  # fmt: skip
                )
            else:
                self.stages.append(MaxPool2(height=h, width=w, channels=c, bits=stage.bits))
        names = [stage.name for stage in spec.stages]
        self.slices = [
            name for name, after in zip(names, [*names[1:], None], strict=True)
            if after not in self.fifo_depths
        ]  # fmt: skip
        fc, fh, fw = spec.flatten_shape
        flat_bits = spec.fc[0].in_bits
        self.flatten = Flatten(
            height=fh, width=fw, channels=fc, bits=flat_bits, drop_zeros=self.zero_skip
        )
        self.fifo_depths["flatten"] = max(4, fh * fw)
        self.fifo_depths["fc"] = max(4, fh * fw * fc)
        build = spec.fc[0].weight_format
        if layout is None:
            layout = "csr" if build == "dense" else "direct"
        self.mlp = Mlp(list(spec.fc), build=build, zero_skip=self.zero_skip, layout=layout)
        self.layouts = self.mlp.layouts
        c0 = spec.input_shape[0]
        super().__init__(
            {
                "inp": In(stream.Signature(pixel_layout(c0, value_shape(spec.input_bits, False)))),
                "out": Out(stream.Signature(self.mlp.out.payload.shape())),
            }
        )

    @staticmethod
    def _check(spec, line_buffers) -> list[int]:
        """The validated ``N`` of every conv layer."""
        if not isinstance(spec, CnnSpec):
            raise TypeError(f"spec must be a CnnSpec, not {type(spec).__name__}")
        convs = spec.convs
        if line_buffers is None:
            line_buffers = [c.kernel - 1 for c in convs]
        elif isinstance(line_buffers, int) and not isinstance(line_buffers, bool):
            line_buffers = [line_buffers] * len(convs)
        line_buffers = list(line_buffers)
        if len(line_buffers) != len(convs):
            raise ValueError(
                f"line_buffers must give one N per conv layer ({len(convs)}), not {line_buffers!r}"
            )
        for conv, n in zip(convs, line_buffers, strict=True):
            if isinstance(n, bool) or not isinstance(n, int) or n < conv.kernel - 1:
                raise ValueError(
                    f"line_buffers of {conv.name} must be an integer >= K - 1 "
                    f"({conv.kernel - 1}), not {n!r}"
                )
        return line_buffers

    @property
    def timing_arguments(self) -> dict:
        """The build, as ``tb.golden.cnn_network.cnn_timing`` takes it (plain data)."""
        return {
            "line_buffers": list(self.line_buffers),
            "latencies": self.latencies,
            "fifo_depths": dict(self.fifo_depths),
            "slices": list(self.slices),
            "zero_skip": self.zero_skip,
            "layouts": list(self.layouts),
            "build": self.spec.fc[0].weight_format,
        }

    @property
    def latencies(self) -> list[int]:
        """Per stage, :attr:`ConvLayer.latency` or :attr:`MaxPool2.latency`."""
        return [s.latency for s in self.stages]

    def elaborate(self, platform):
        m = Module()
        upstream = wiring.flipped(self.inp)
        for spec, block in zip(self.spec.stages, self.stages, strict=True):
            if spec.name in self.fifo_depths:
                buf = _StreamFifo(block.i.payload.shape(), self.fifo_depths[spec.name])
                m.submodules[f"{spec.name}_fifo"] = buf
                wiring.connect(m, upstream, buf.i)
                upstream = buf.o
            m.submodules[spec.name] = block
            wiring.connect(m, upstream, block.i)
            upstream = block.o
            if spec.name in self.slices:
                m.submodules[f"{spec.name}_slice"] = slice_ = SkidBuffer(block.o.payload.shape())
                wiring.connect(m, upstream, slice_.i)
                upstream = slice_.o
        m.submodules.flatten_fifo = pix = _StreamFifo(
            self.flatten.i.payload.shape(), self.fifo_depths["flatten"]
        )
        m.submodules.flatten = self.flatten
        m.submodules.fc_fifo = elems = _StreamFifo(
            self.flatten.o.payload.shape(), self.fifo_depths["fc"]
        )
        # the element FIFO's read data is a block RAM output: a register slice keeps its slow
        # clock-to-out off the broadcast into every fc1 neuron
        m.submodules.fc_slice = fc_slice = SkidBuffer(self.flatten.o.payload.shape())
        m.submodules.mlp = self.mlp
        wiring.connect(m, upstream, pix.i)
        wiring.connect(m, pix.o, self.flatten.i)
        wiring.connect(m, self.flatten.o, elems.i)
        wiring.connect(m, elems.o, fc_slice.i)
        wiring.connect(m, fc_slice.o, self.mlp.inp)
        wiring.connect(m, self.mlp.out, wiring.flipped(self.out))
        return m
