"""Hardware blocks of a convolutional network on pixel streams (docs/cnn.md).

:class:`ConvLayer` (multi-channel convolution, power-of-two weights), :class:`MaxPool2` (2x2,
stride 2) and :class:`Flatten` (pixels to the fully connected layers' element stream).
"""

from .conv_layer import ACTIVATIONS, ConvLayer, tree_stages
from .flatten import Flatten
from .maxpool import MaxPool2
from .pixels import pixel_layout, value_shape

__all__ = [
    "ACTIVATIONS",
    "ConvLayer",
    "Flatten",
    "MaxPool2",
    "pixel_layout",
    "tree_stages",
    "value_shape",
]
