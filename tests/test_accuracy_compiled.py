"""The compiled Verilator harness (``make accuracy``): the whole test set of the digits bundle
through the MLP's RTL, bit-exact and cycle-exact; a deliberately wrong layer is caught; the image
selection of ``make sim`` / ``make accuracy`` rejects bad values."""

import dataclasses
import json

import numpy as np
import pytest

from rtl_gen.layer import Layer
from rtl_gen.neuron import layers_from_bundle
from rtl_gen.neuron.weights import load_bundle_any
from sim import accuracy
from sim.compiled import CompiledHarness
from sim.mlp import BUILD, bundle_for_tests
from sim.selection import select_images
from sim.tools import is_available
from tb.golden import mlp as golden
from tb.mlp_tb import ElementFormat, _index_bits

pytestmark = pytest.mark.hardware


@pytest.fixture(scope="module")
def bundle_path(tmp_path_factory):
    if not is_available("verilator"):
        pytest.skip("Verilator is not installed")
    return bundle_for_tests(tmp_path_factory.mktemp("accuracy_bundle"))[0]


def test_whole_test_set_bit_and_cycle_exact(bundle_path):
    """Every test image through the Verilated CSR build: logits, cycles and accuracy exact."""
    assert accuracy.main(["--bundle", str(bundle_path), "--layout", "csr", "--jobs", "2"]) == 0
    res = json.loads((BUILD / "accuracy_mlp_digits_lenet300" / "results.json").read_text())
    _, arrays = load_bundle_any(bundle_path)
    labels = np.asarray(arrays["reference.test_labels"])
    ref = np.argmax(arrays["reference.test_outputs"], axis=1)
    assert res["images"] == len(labels)
    assert res["mismatches"] == 0 and res["cycle_errors"] == 0
    assert res["rtl_equals_bundle_reference"]
    assert res["rtl_accuracy"] == pytest.approx(float(np.mean(ref == labels)), abs=0)
    assert res["cycles_min"] <= res["cycles_mean"] <= res["cycles_max"]


def test_a_wrong_layer_is_caught(bundle_path):
    """The last layer (dense build) with one weight's sign flipped: the harness sees the
    mutant's outputs, which differ from the golden model's, so the comparison would fail."""
    manifest, arrays = load_bundle_any(bundle_path)
    layers = layers_from_bundle((manifest, arrays))
    good = layers[-1]
    x = golden.mlp_forward(layers, np.asarray(arrays["reference.test_inputs"][:40]))[-2]
    weights = good.weight_int.copy()
    j, i = np.unravel_index(np.argmax(np.abs(weights)), weights.shape)
    weights[j, i] = -weights[j, i]
    dense = dict(weight_format="dense", codebook=None, csr_rel=None, csr_code=None, csr_rowptr=None)
    bad = dataclasses.replace(good, weight_int=weights, **dense)
    good = dataclasses.replace(good, **dense)
    dut = Layer(bad, build="dense", drop_zeros=False)
    fin = ElementFormat(_index_bits(bad.in_features), bad.in_bits, bad.in_signed)
    fout = ElementFormat(_index_bits(bad.out_features), bad.output_bits, bad.out_signed)
    harness = CompiledHarness(
        dut, "layer", BUILD / "test_accuracy_mutant", last_bit=fout.index_bits + fout.value_bits
    )
    beats = [[fin.pack(k, int(v), k == len(row) - 1) for k, v in enumerate(row)] for row in x]
    results = harness.run(beats, jobs=2)
    rtl = np.zeros((len(x), bad.out_features), dtype=np.int64)
    for n, r in enumerate(results):
        for word in r.outputs:
            index, value, _ = fout.unpack(word)
            rtl[n, index] = value
    np.testing.assert_array_equal(rtl, golden.layer_forward(bad, x))
    assert np.any(rtl != golden.layer_forward(good, x))


@pytest.mark.parametrize(
    ("images", "offset", "indices", "message"),
    [
        (0, 0, None, "--images must be a positive integer, not 0"),
        (-5, 0, None, "--images must be a positive integer, not -5"),
        (3, 360, None, "--offset must be in 0..359, not 360"),
        (None, 0, "4,400", "--indices: 400 is outside the test set"),
        (None, 0, "4,x", "--indices: 'x' is not an index"),
    ],
)
def test_bad_image_selection(images, offset, indices, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.").replace("'", "'")):
        select_images(360, images, offset, indices)


def test_image_selection():
    assert select_images(10, None, 0, None).tolist() == list(range(10))
    assert select_images(10, 3, 8, None).tolist() == [8, 9]
    assert select_images(10, None, 0, "1,4-6").tolist() == [1, 4, 5, 6]


def test_cnn_through_the_compiled_harness():
    """A small random CNN (tests/test_cnn_network.py) Verilated with the stream harness, as
    ``make accuracy DESIGN=cnn`` runs it: every image's scores and cycles exact."""
    if not is_available("verilator"):
        pytest.skip("Verilator is not installed")
    from rtl_gen.cnn.network import Cnn
    from tb.golden.cnn_network import cnn_forward, cnn_timing
    from tests.test_cnn_network import small_spec

    spec = small_spec(seed=6)
    dut = Cnn(spec)
    final = spec.fc[-1]
    fout = ElementFormat(_index_bits(final.out_features), final.output_bits, final.out_signed)
    images = np.random.default_rng(8).integers(0, 256, size=(12, 14 * 14))
    images[3] = 0
    harness = CompiledHarness(
        dut, "cnn", BUILD / "test_accuracy_cnn", last_bit=fout.index_bits + fout.value_bits
    )
    beats = [[int(v) | int(k == len(img) - 1) << 8 for k, v in enumerate(img)] for img in images]
    results = harness.run(beats, jobs=2)
    _, want = cnn_forward(spec.stages, spec.fc, images)
    for img, r, w in zip(images, results, want, strict=True):
        got = [0] * final.out_features
        for word in r.outputs:
            index, value, _ = fout.unpack(word)
            got[index] = value
        assert got == w.tolist()
        timing = cnn_timing(spec.stages, spec.fc, img[None], **dut.timing_arguments)
        assert r.cycles == timing.cycles
