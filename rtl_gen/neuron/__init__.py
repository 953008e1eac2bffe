"""Neurons built from the bundle: weight ROM, MAC with bias, activation unit."""

from .activation import CircuitActivation, LutActivation, lut_table, output_shape
from .mac import MulProduct, ShiftProduct
from .neuron import BroadcastSignature, Neuron, element_layout, index_bits
from .weights import BUILDS, LAYOUTS, LayerWeights, layers_from_bundle

__all__ = [
    "BUILDS",
    "LAYOUTS",
    "BroadcastSignature",
    "CircuitActivation",
    "LayerWeights",
    "LutActivation",
    "MulProduct",
    "Neuron",
    "ShiftProduct",
    "element_layout",
    "index_bits",
    "layers_from_bundle",
    "lut_table",
    "output_shape",
]
