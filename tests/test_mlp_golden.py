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


def _layer_timing_loop(cols, elements, first_valid=0, drop_filter=False, queue_depth=None):
    """The cycle model's rule, element by element (what ``layer_timing`` computes with vectors
    and a window over the queues)."""
    if cols is None:
        accepts = [first_valid + k for k in range(len(elements))]
        return accepts, accepts[-1]
    depth = golden.QUEUE_DEPTH if queue_depth is None else queue_depth
    count = len(cols)
    ptr = [0] * count
    pushes = []  # accept cycles of the broadcast elements
    takes = []  # per broadcast element, the cycle each neuron takes it
    previous = np.full(count, -(1 << 40), dtype=np.int64)
    t = first_valid
    accepts = []
    finish = None
    for j, x, last in elements:
        if drop_filter and x == 0 and not last:
            accepts.append(t)
            t += 1
            continue
        while pushes:  # room(t): the levels in cycle t - ROOM_LATENCY
            before = t - golden.ROOM_LATENCY
            pushed = int(np.searchsorted(pushes, before - golden.PUSH_LATENCY, side="left"))
            taken = (np.asarray(takes) < before).sum(axis=0)
            if int((pushed - taken).max()) <= depth - 1 - golden.ROOM_LATENCY - golden.PUSH_LATENCY:
                break
            t += 1
        skipped = np.zeros(count, dtype=np.int64)
        for n, c in enumerate(cols):
            p = ptr[n]
            k = int(np.searchsorted(c[p:], j, side="left"))
            skipped[n] = k
            p += k
            if p < len(c) and c[p] == j:
                p += 1
            ptr[n] = p
        take = np.maximum(t + golden.QUEUE_LATENCY, previous + 1) + skipped
        pushes.append(t)
        takes.append(take)
        previous = take
        accepts.append(t)
        t += 1
        if last:
            finish = int(take.max())
            ptr = [0] * count
    return accepts, finish


@pytest.mark.parametrize("seed", range(20))
def test_layer_timing_equals_element_by_element_rule(seed):
    rng = np.random.default_rng(seed)
    features = int(rng.integers(4, 40))
    cols = [np.flatnonzero(rng.random(features) < rng.random()) for _ in range(rng.integers(1, 9))]
    elements = []
    for _ in range(3):
        x = rng.integers(0, 3, features) * (rng.random(features) < 0.6)
        keep = (x != 0) | (rng.random(features) < 0.5)
        keep[-1] = True
        elements += [(i, int(x[i]), i == features - 1) for i in np.flatnonzero(keep)]
    for drop in (False, True):
        for depth in (None, 4, 5):  # small queues: the room rule stalls the layer
            want = _layer_timing_loop(cols, elements, 3, drop, depth)
            assert golden.layer_timing(cols, elements, 3, drop, depth) == want
