"""The dense 16-bit baseline of a LeNet-5 bundle as hardware: ``cnn_from_bundle(baseline=True)``
builds the uncompressed network (conv multipliers, dense fc layers), and its golden model equals
the bundle's baseline integer reference."""

import numpy as np
import pytest

from compress import integer_ref
from rtl_gen.cnn.network import Cnn
from rtl_gen.cnn.spec import UnsupportedLayer, cnn_from_bundle
from tb.golden.cnn_network import cnn_forward
from tests.test_cnn_bundle import synthetic_cnn_bundle
from tests.test_compress_cnn import cnn_run  # noqa: F401  (the tiny LeNet-5 run, a fixture)


def test_baseline_golden_equals_the_baseline_reference(cnn_run):  # noqa: F811
    _, bundle = cnn_run
    spec = cnn_from_bundle(bundle, baseline=True)
    assert [s.weight_format for s in spec.convs] == ["dense", "dense"]
    assert [s.out_shape[0] for s in spec.convs] == [6, 16]
    assert [layer.out_features for layer in spec.fc] == [120, 84, 10]
    images = np.asarray(bundle.arrays["reference.test_inputs"], dtype=np.int64)
    _, scores = cnn_forward(spec.stages, spec.fc, images)
    want = integer_ref.forward(bundle, images, baseline=True)
    np.testing.assert_array_equal(scores, want)
    cnn = Cnn(spec, zero_skip=False)
    assert cnn.layouts == ["csr", "csr", "csr"]
    cnn._MustUse__silence = True


def test_a_bundle_without_baseline_says_so():
    manifest, arrays = synthetic_cnn_bundle(seed=1)
    manifest = {k: v for k, v in manifest.items() if k != "baseline"}
    with pytest.raises(UnsupportedLayer, match="no dense baseline"):
        cnn_from_bundle((manifest, arrays), baseline=True)
