"""A version-2 bundle into the CNN hardware's description (``cnn_from_bundle``): the golden
model built from it equals the bundle's own integer reference (``compress.integer_ref``), and a
layer the hardware does not support is a one-line error naming it, before any elaboration."""

import copy

import numpy as np
import pytest

from compress import integer_ref
from rtl_gen.cnn.network import Cnn
from rtl_gen.cnn.spec import UnsupportedLayer, cnn_from_bundle
from tb.golden.cnn_network import cnn_forward


def _pow2(rng, shape):
    w = rng.choice([-1, 1], size=shape) * (1 << rng.integers(0, 6, size=shape))
    w[rng.random(shape) < 0.4] = 0
    return w


def _number(fmt, **extra):
    base = dict(weight_frac_bits=6, input_frac_bits=4, output_frac_bits=4, output_bits=8,
                activation="relu", weight_format=fmt)  # fmt: skip
    if fmt == "pow2":
        base.update(exp_bits=3, pow2_max_exp=6, codebook_bits=4, index_bits=4)
    return {**base, **extra}


def synthetic_cnn_bundle(seed=0, size=12, channels=(2, 3), hidden=6, classes=4):
    """A random version-2 bundle: conv3, pool, conv3, pool, flatten (hwc), fc, fc (dense
    16-bit fc weights, pow2 conv weights)."""
    rng = np.random.default_rng(seed)
    c1, c2 = channels
    s1 = size - 2
    p1 = s1 // 2
    s2 = p1 - 2
    p2 = s2 // 2
    feats = c2 * p2 * p2
    layers = [
        dict(name="conv1", kind="conv2d", in_shape=[1, size, size], out_shape=[c1, s1, s1],
             in_channels=1, out_channels=c1, kernel_size=3, stride=1, padding=0,
             **_number("pow2")),
        dict(name="pool1", kind="maxpool2d", in_shape=[c1, s1, s1], out_shape=[c1, p1, p1],
             kernel_size=2, stride=2),
        dict(name="conv2", kind="conv2d", in_shape=[c1, p1, p1], out_shape=[c2, s2, s2],
             in_channels=c1, out_channels=c2, kernel_size=3, stride=1, padding=0,
             **_number("pow2")),
        dict(name="pool2", kind="maxpool2d", in_shape=[c2, s2, s2], out_shape=[c2, p2, p2],
             kernel_size=2, stride=2),
        dict(name="flatten", kind="flatten", in_shape=[c2, p2, p2], out_shape=[feats],
             order="hwc"),
        dict(name="fc1", kind="linear", in_shape=[feats], out_shape=[hidden], in_features=feats,
             out_features=hidden, weight_bits=16, **_number("dense")),
        dict(name="fc2", kind="linear", in_shape=[hidden], out_shape=[classes],
             in_features=hidden, out_features=classes, weight_bits=16,
             **_number("dense", activation="none")),
    ]  # fmt: skip
    arrays = {
        "conv1.weight_int": _pow2(rng, (c1, 1, 3, 3)),
        "conv1.bias_int": rng.integers(-300, 300, c1),
        "conv2.weight_int": _pow2(rng, (c2, c1, 3, 3)),
        "conv2.bias_int": rng.integers(-300, 300, c2),
        "fc1.weight_int": rng.integers(-90, 90, (hidden, feats)),
        "fc1.bias_int": rng.integers(-300, 300, hidden),
        "fc2.weight_int": rng.integers(-90, 90, (classes, hidden)),
        "fc2.bias_int": rng.integers(-300, 300, classes),
    }
    manifest = {
        "format": "compress2rtl-bundle",
        "version": 2,
        "input": {"shape": [1, size, size], "bits": 8, "frac_bits": 4, "signed": False},
        "layers": layers,
    }
    return manifest, arrays


def with_reference(manifest, arrays, images, seed):
    """The bundle with ``images`` random reference inputs and the integer reference's outputs,
    as compress writes them (``reference.*`` arrays, ``manifest["reference"]``)."""
    size = int(np.prod(manifest["input"]["shape"]))
    classes = manifest["layers"][-1]["out_features"]
    x = np.random.default_rng(seed).integers(0, 256, (images, size)).astype(np.uint8)
    out = integer_ref.forward((manifest, arrays), x).astype(np.int32)
    arrays.update(
        {
            "reference.test_inputs": x,
            "reference.test_labels": np.arange(images) % classes,
            "reference.test_outputs": out,
            "reference.test_pred": np.argmax(out, axis=1),
        }
    )
    manifest["reference"] = {"test_images": images}
    return manifest, arrays


def test_golden_from_bundle_equals_integer_reference():
    manifest, arrays = synthetic_cnn_bundle(seed=3)
    spec = cnn_from_bundle((manifest, arrays))
    x = np.random.default_rng(5).integers(0, 256, size=(20, 144))
    _, scores = cnn_forward(spec.stages, spec.fc, x)
    np.testing.assert_array_equal(scores, integer_ref.forward((manifest, arrays), x))
    assert [s.name for s in spec.stages] == ["conv1", "pool1", "conv2", "pool2"]
    assert spec.flatten_shape == (3, 1, 1) and spec.classes == 4
    Cnn(spec)  # elaboratable parameters


def _broken(edit):
    manifest, arrays = synthetic_cnn_bundle()
    manifest = copy.deepcopy(manifest)
    edit(manifest["layers"], arrays)
    return manifest, arrays


def _set(index, **values):
    def edit(layers, arrays):
        layers[index].update(values)

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set(0, stride=2), r"layer conv1: stride 2 is not supported \(only 1\)"),
        (_set(2, padding=1), r"layer conv2: padding 1 is not supported \(only 0\)"),
        (_set(1, kind="avgpool2d"), r"layer pool1: kind 'avgpool2d' is not supported"),
        (_set(1, kernel_size=3), r"layer pool1: max-pool kernel_size 3, stride 2"),
        (_set(4, order="chw"), r"layer flatten: flatten order 'chw' is not supported"),
        (_set(2, in_shape=[2, 6, 5]), r"layer conv2: in_shape \[2, 6, 5\] does not chain"),
        (_set(0, weight_format="codebook"), r"layer conv1: weight_format 'codebook'"),
        (_set(2, activation="tanh"), r"layer conv2: activation 'tanh' is not supported"),
    ],
    ids=["stride", "padding", "avgpool", "pool3", "flatten_order", "chain", "codebook", "tanh"],
)
def test_unsupported_layers(edit, message):
    with pytest.raises(UnsupportedLayer, match=message):
        cnn_from_bundle(_broken(edit))


def test_flatten_features_must_chain():
    def edit(layers, arrays):
        layers[5]["in_features"] = 13
        arrays["fc1.weight_int"] = np.zeros((6, 13), dtype=np.int64)

    with pytest.raises(
        UnsupportedLayer, match="layer fc1: 13 inputs do not chain with the flatten's 3 features"
    ):
        cnn_from_bundle(_broken(edit))
