"""A multilayer perceptron: layers chained by element streams."""

from __future__ import annotations

from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .layer import QUEUE_DEPTH, Layer
from .neuron import LayerWeights
from .neuron.neuron import LoadSignature
from .neuron.ram import ram_format, ram_map

__all__ = ["Mlp"]


class Mlp(wiring.Component):
    """Fully connected layers in a chain; structured-pruned layers just have fewer neurons.

    Input: the image as a stream of elements ``{index, value, last}`` (see :class:`Layer`).
    Output: the last layer's results, every element in index order, ``last`` on the final one.

    With ``zero_skip``, the first layer drops zero input elements (``drop_zeros``) and every hidden
    layer sends only its nonzero results (plus the ``last`` one), so the next layer is offered
    only nonzero activations. A source may also leave zero pixels out of the stream altogether.

    Parameters
    ----------
    layers : list of LayerWeights
    build : str
        ``"dense"``, ``"codebook"`` or ``"pow2"``.
    zero_skip : bool
    layout : str
        ROM layout of the compressed builds, ``"csr"`` (default), ``"direct"`` or ``"auto"``
        (per layer, the cheaper ROMs: fewer block RAMs, then fewer LUT-ROM bits); see
        :class:`~rtl_gen.layer.Layer`. :attr:`layouts` lists the resolved layout of each layer.
    queue_depth : int
        Entries of each neuron's input queue in the CSR and dense layers (see
        :class:`~rtl_gen.layer.Layer`).
    weights : str
        ``"rom"`` (default): weights and biases are constants of the design. ``"ram"``: every
        neuron's weights are a RAM in the direct layout (one decoded word per input) and its
        bias a register, initialised from ``layers`` and written through the ``load`` port
        (``{en, addr, data}``, one word per cycle, the word address of :attr:`ram_map`,
        :mod:`rtl_gen.neuron.ram`); ``layout`` is then ignored (every layer is direct).
    rom_style : str
        Where the neurons' ROMs go: ``"auto"`` (default: block RAM for a ROM of at least
        :data:`~rtl_gen.neuron.neuron.BLOCK_ROM_BITS` bits, LUTs below), ``"block"`` or
        ``"logic"`` (see :class:`~rtl_gen.neuron.Neuron`).
    """

    def __init__(
        self,
        layers,
        *,
        build: str,
        zero_skip: bool = False,
        lut_bits: int = 8,
        layout: str = "csr",
        queue_depth: int = QUEUE_DEPTH,
        weights: str = "rom",
        rom_style: str = "auto",
    ):
        if weights not in ("rom", "ram"):
            raise ValueError(f"weights must be 'rom' or 'ram', not {weights!r}")
        layers = list(layers)
        if not layers or not all(isinstance(w, LayerWeights) for w in layers):
            raise TypeError("layers must be a non-empty list of LayerWeights")
        for a, b in zip(layers, layers[1:], strict=False):
            if a.out_features != b.in_features:
                raise ValueError(
                    f"{a.name} has {a.out_features} outputs but {b.name} has {b.in_features} inputs"
                )
        self.build = build
        self.zero_skip = bool(zero_skip)
        self.weights = weights
        self.ram_map = None
        load_bits = None
        if weights == "ram":
            self.ram_map = ram_map(ram_format(w, build) for w in layers)
            amap = self.ram_map
            load_bits = (amap.neuron_bits, amap.entry_bits, amap.data_bits)
        last = len(layers) - 1
        self.layers = [
            Layer(
                w,
                build=build,
                layout=layout,
                drop_zeros=self.zero_skip and i == 0,
                skip_zero_outputs=self.zero_skip and i != last,
                lut_bits=lut_bits,
                queue_depth=queue_depth,
                weight_memory=weights,
                load_bits=load_bits,
                rom_style=rom_style,
            )
            for i, w in enumerate(layers)
        ]
        if self.ram_map is not None:  # the accumulators as the layers built them
            self.ram_map = ram_map(layer.ram for layer in self.layers)
        self.layout = layout
        self.layouts = [layer.layout for layer in self.layers]
        first, final = self.layers[0], self.layers[-1]
        members = {
            "inp": In(stream.Signature(first.inp.payload.shape())),
            "out": Out(stream.Signature(final.out.payload.shape())),
        }
        if self.ram_map is not None:
            amap = self.ram_map
            members["load"] = In(LoadSignature(amap.word_address_bits, amap.data_bits))
        super().__init__(members)

    @classmethod
    def from_bundle(
        cls,
        bundle,
        *,
        build=None,
        zero_skip: bool = False,
        baseline: bool = False,
        layout: str = "csr",
    ):
        """The network of a bundle (path or loaded), or its dense baseline with ``baseline``.

        ``build`` defaults to the bundle's weight format (``"dense"`` for the baseline).
        """
        from .neuron import layers_from_bundle

        layers = layers_from_bundle(bundle, baseline=baseline)
        if build is None:
            build = "dense" if baseline else layers[0].weight_format
        return cls(layers, build=build, zero_skip=zero_skip, layout=layout)

    @property
    def rom_bits(self) -> int:
        return sum(layer.rom_bits for layer in self.layers)

    def elaborate(self, platform):
        m = Module()
        for i, layer in enumerate(self.layers):
            m.submodules[f"layer{i}"] = layer
        for a, b in zip(self.layers, self.layers[1:], strict=False):
            wiring.connect(m, a.out, b.inp)
        wiring.connect(m, wiring.flipped(self.inp), self.layers[0].inp)
        wiring.connect(m, self.layers[-1].out, wiring.flipped(self.out))
        if self.ram_map is not None:
            amap, load = self.ram_map, self.load
            entry = load.addr[: amap.entry_bits]
            neuron = load.addr[amap.entry_bits : amap.entry_bits + amap.neuron_bits]
            which = load.addr[amap.entry_bits + amap.neuron_bits :]
            for i, layer in enumerate(self.layers):
                m.d.comb += [
                    layer.load.en.eq(load.en & (which == i)),
                    layer.load.neuron.eq(neuron),
                    layer.load.entry.eq(entry),
                    layer.load.data.eq(load.data),
                ]
        return m
