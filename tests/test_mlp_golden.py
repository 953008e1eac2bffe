"""The golden model equals the bundle's integer reference over the whole test set; the cycle
model's basic properties."""

import numpy as np
import pytest

from rtl_gen.neuron import layers_from_bundle
from rtl_gen.neuron.weights import load_bundle_any
from sim.mlp import bundle_for_tests
from tb.golden import mlp as golden


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    path, real = bundle_for_tests(tmp_path_factory.mktemp("golden_bundle"))
    manifest, arrays = load_bundle_any(path)
    return manifest, arrays, real


def test_golden_equals_bundle_reference(bundle):
    manifest, arrays, _ = bundle
    layers = layers_from_bundle((manifest, arrays))
    x = np.asarray(arrays["reference.test_inputs"], dtype=np.int64)
    out = golden.mlp_forward(layers, x)[-1]
    np.testing.assert_array_equal(out, arrays["reference.test_outputs"])
    np.testing.assert_array_equal(np.argmax(out, axis=1), arrays["reference.test_pred"])
    assert len(x) == manifest["reference"]["test_images"]


def test_golden_equals_integer_ref_forward(bundle):
    """Against ``compress.integer_ref.forward``, the network and its dense baseline."""
    integer_ref = pytest.importorskip("compress.integer_ref")
    manifest, arrays, _ = bundle
    x = np.asarray(arrays["reference.test_inputs"], dtype=np.int64)
    for baseline in (False, True):
        layers = layers_from_bundle((manifest, arrays), baseline=baseline)
        ours = golden.mlp_forward(layers, x)[-1]
        ref = integer_ref.forward((manifest, arrays), x, baseline=baseline)
        np.testing.assert_array_equal(ours, np.asarray(ref))


def test_csr_decodes_to_weights(bundle):
    manifest, arrays, _ = bundle
    for layer in layers_from_bundle((manifest, arrays)):
        cols = golden.entry_columns(layer, layer.weight_format)
        for j, c in enumerate(cols):
            dense = np.zeros(layer.in_features, np.int64)
            dense[c] = layer.codebook[layer.row_codes(j)]
            np.testing.assert_array_equal(dense, layer.weight_int[j])


def test_cycle_model_properties(bundle):
    manifest, arrays, _ = bundle
    layers = layers_from_bundle((manifest, arrays))
    build = layers[0].weight_format
    x = np.asarray(arrays["reference.test_inputs"][:20], dtype=np.int64)
    for image in x:
        plain = golden.mlp_cycles(layers, image, build, zero_skip=False)
        skip = golden.mlp_cycles(layers, image, build, zero_skip=True)
        # without skipping: one cycle per input element, plus the input queue, the result
        # latency (the neurons finish together) and the output walk
        latency = golden.QUEUE_LATENCY + golden.RESULT_LATENCY + golden.PRODUCT_LATENCY
        latency += golden.GATHER_LATENCY
        expect = sum(w.in_features + latency - 1 for w in layers)
        assert plain == expect + layers[-1].out_features
        assert skip <= plain + len(layers)
    zeros = np.zeros(layers[0].in_features, np.int64)
    assert golden.mlp_cycles(layers, zeros, build, zero_skip=True) < golden.mlp_cycles(
        layers, zeros, build, zero_skip=False
    )
