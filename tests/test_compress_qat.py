"""Quantisation-aware fine-tuning (compress/qat.py): its fake-quantised forward is the bundle's
integer forward (compress.integer_ref) bit for bit, and the fine-tuning trains through it."""

import numpy as np
import pytest
import torch

from compress import integer_ref, pow2, qat
from compress.calibrate_cnn import cnn_int_layers
from compress.data import Dataset
from compress.models import LeNet5, prunable


def _snapped_lenet(image_shape, channels, hidden, seed, sparsity=0.4):
    """A LeNet-5 with random masked weights snapped to power-of-two formats and random biases."""
    torch.manual_seed(seed)
    model = LeNet5(image_shape, channels=channels, hidden=hidden)
    masks, formats = {}, {}
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in prunable(model).values():
            m.bias.normal_(0, 0.3, generator=gen)
            mk = torch.rand(m.weight.shape, generator=gen) >= sparsity
            masks[m], formats[m] = mk, pow2.best_kmax(m.weight, mk, 3)
            m.weight.copy_(pow2.snap(m.weight, mk, formats[m]))
    return model, masks, formats


def _bundle(model, formats, image_shape, frac_bits, input_frac_bits=8):
    """The bundle (manifest, arrays) of ``model`` as the pipeline builds it."""
    layers = prunable(model)
    wint = {n: pow2.encode(m.weight.detach(), formats[m])[0] for n, m in layers.items()}
    wf = {n: formats[m].weight_frac_bits for n, m in layers.items()}
    biases = {n: m.bias.detach().numpy() for n, m in layers.items()}
    fr = dict(zip(layers, frac_bits, strict=True))
    specs, arrays = cnn_int_layers(
        image_shape, wint, wf, biases, input_frac_bits, fr, pool2=model.pool2
    )
    man = {
        "input": {"shape": list(image_shape), "bits": 8, "frac_bits": input_frac_bits},
        "layers": specs,
    }
    return man, arrays


# (image shape, filters, hidden widths, output fraction bits of conv1, conv2, fc1, fc2, fc3)
CASES = [
    ((1, 28, 28), (4, 6), (20, 12), (9, 8, 8, 8, 6)),
    ((1, 12, 12), (2, 3), (8, 6), (9, 9, 8, 8, 7)),
    ((2, 12, 12), (3, 4), (7, 5), (8, 8, 9, 9, 8)),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_fake_quant_forward_equals_integer_ref(case):
    shape, channels, hidden, frac_bits = CASES[case]
    model, _, formats = _snapped_lenet(shape, channels, hidden, seed=case)
    man, arrays = _bundle(model, formats, shape, frac_bits)
    rng = np.random.default_rng(case)
    x = rng.random((64, *shape)).astype(np.float32)
    x[0] = 255 / 256  # an all-255 image: every saturation reached
    x[1] = 0
    codes = integer_ref.quantize_inputs(man, x)
    ref = integer_ref.forward((man, arrays), codes)
    got = qat.forward(model, man["layers"], qat.input_codes(x, man["input"]))
    assert got.dtype in (torch.float32, torch.float64)
    assert np.array_equal(got.detach().numpy().astype(np.int64), ref)
    # the codes themselves: qat.input_codes is integer_ref.quantize_inputs
    assert np.array_equal(
        qat.input_codes(x, man["input"]).numpy().reshape(len(x), -1).astype(np.int64), codes
    )
    # saturation happens in these cases (so the clamps are checked, not only the products)
    outs = integer_ref.forward((man, arrays), codes, all_layers=True)
    acts = [
        (o, sp["activation"])
        for o, sp in zip(outs, man["layers"], strict=True)
        if "activation" in sp
    ]
    assert any((o == 255).any() for o, a in acts if a == "relu") or any(
        ((o == 127) | (o == -128)).any() for o, a in acts if a == "none"
    )
    assert all((o == 0).any() for o, a in acts if a == "relu")
    # and the predictions (first maximum) agree
    pred = qat.predict(model, man["layers"], man["input"], x)
    assert np.array_equal(pred, integer_ref.predict((man, arrays), codes))


def test_forward_passes_gradients_to_biases_and_weights():
    shape, channels, hidden, frac_bits = CASES[1]
    model, masks, formats = _snapped_lenet(shape, channels, hidden, seed=5)
    man, _ = _bundle(model, formats, shape, frac_bits)
    x = torch.rand(8, *shape)
    snapped = {m: m.weight.detach().clone() for m in masks}
    out = qat.forward(model, man["layers"], qat.input_codes(x, man["input"]), snap=snapped)
    out.sum().backward()
    for m in masks:
        assert m.bias.grad is not None and m.bias.grad.abs().sum() > 0
        assert m.weight.grad is not None and m.weight.grad.abs().sum() > 0


def _tiny_data(n_train=256, n_val=128, seed=0):
    """A separable 12x12 two-class problem: a bright left or right half."""
    rng = np.random.default_rng(seed)

    def make(n):
        y = rng.integers(0, 2, n)
        x = rng.random((n, 1, 12, 12)).astype(np.float32) * 0.3
        for i, c in enumerate(y):
            x[i, 0, :, :6] += 0.6 if c == 0 else 0
            x[i, 0, :, 6:] += 0.6 if c == 1 else 0
        return x, y.astype(np.int64)

    xt, yt = make(n_train)
    xv, yv = make(n_val)
    xs, ys = make(16)
    return Dataset("tiny", xt, yt, xs, ys, input_frac_bits=8, classes=2, x_val=xv, y_val=yv)


@pytest.mark.parametrize("weights", [False, True])
def test_finetune_keeps_best_integer_epoch_and_the_codes_snapped(weights):
    data = _tiny_data()
    model = LeNet5((1, 12, 12), channels=(2, 3), hidden=(8, 6), classes=2)
    masks, formats = {}, {}
    with torch.no_grad():
        for m in prunable(model).values():
            mk = torch.ones_like(m.weight, dtype=torch.bool)
            mk.view(-1)[::3] = False
            masks[m], formats[m] = mk, pow2.best_kmax(m.weight, mk, 3)
            m.weight.copy_(pow2.snap(m.weight, mk, formats[m]))
    frac_bits = (6, 5, 4, 4, 3)
    man, _ = _bundle(model, formats, (1, 12, 12), frac_bits)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    res = qat.finetune(
        model, masks, formats, man["layers"], man["input"], data,
        epochs=3, lr=1e-2, batch=32, seed=0, weights=weights,
    )  # fmt: skip
    assert len(res.epoch_val) == 3
    assert res.val_accuracy == max([res.val_before, *res.epoch_val])
    # the model kept is the one measured: the bundle rebuilt from it has that integer accuracy
    man2, arrays2 = _bundle(model, formats, (1, 12, 12), frac_bits)
    codes = integer_ref.quantize_inputs(man2, data.x_val)
    acc = float(np.mean(integer_ref.predict((man2, arrays2), codes) == data.y_val))
    assert acc == res.val_accuracy
    for m, mk in masks.items():
        w = m.weight.detach()
        assert torch.equal(w, pow2.snap(w, mk, formats[m]))  # snapped
        assert not w[~mk].any()  # pruned weights stay zero
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    if res.kept_epoch:
        assert any(k.endswith("bias") for k in changed)
        if not weights:
            assert not any(k.endswith("weight") for k in changed)
    else:
        assert not changed
