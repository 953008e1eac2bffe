"""A multilayer perceptron: layers chained by element streams."""

from __future__ import annotations

from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .layer import QUEUE_DEPTH, Layer
from .neuron import LayerWeights

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
        (per layer, the smaller ROM); see :class:`~rtl_gen.layer.Layer`. :attr:`layouts` lists
        the resolved layout of each layer.
    queue_depth : int
        Entries of each neuron's input queue in the CSR and dense layers (see
        :class:`~rtl_gen.layer.Layer`).
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
    ):
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
            )
            for i, w in enumerate(layers)
        ]
        self.layout = layout
        self.layouts = [layer.layout for layer in self.layers]
        first, final = self.layers[0], self.layers[-1]
        super().__init__(
            {
                "inp": In(stream.Signature(first.inp.payload.shape())),
                "out": Out(stream.Signature(final.out.payload.shape())),
            }
        )

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
        return m
