"""compress: the validation split (held out of the training set, stratified, fixed seed) and the
epoch selection made on it, for float training and the power-of-two fine-tuning."""

import numpy as np
import pytest
import torch

from compress import pow2, prune
from compress.data import Dataset, load_digits
from compress.models import MLP, linear_layers
from compress.train import accuracy, train


def _data(n=300, features=16, seed=0):
    g = np.random.default_rng(seed)
    x = g.random((n, features)).astype(np.float32)
    y = (x[:, :4].sum(1) > 2).astype(np.int64) + 2 * (x[:, 4] > 0.5)
    return x, y


def _split_and_model(*, torch_seed: int, val_seed: int, epochs: int):
    """Training and validation data (the validation set doubles as the test set) and a small
    MLP trained ``epochs`` on it."""
    from types import SimpleNamespace

    torch.manual_seed(torch_seed)
    x, y = _data()
    xv, yv = _data(120, seed=val_seed)
    data = SimpleNamespace(x_train=x, y_train=y, x_val=xv, y_val=yv, x_test=xv, y_test=yv)
    model = MLP([16, 12, 4])
    train(model, x, y, epochs=epochs, quiet=True)
    return data, model


def test_split_is_stratified_disjoint_and_fixed():
    d = load_digits()
    s = d.split_validation(0.1)
    n = len(d.y_train)
    assert len(s.y_val) == round(0.1 * n) and len(s.y_train) + len(s.y_val) == n
    # disjoint, and together exactly the training set (rows compared as bytes)
    rows = {r.tobytes() for r in d.x_train.reshape(n, -1)}
    tr = [r.tobytes() for r in s.x_train.reshape(len(s.x_train), -1)]
    va = [r.tobytes() for r in s.x_val.reshape(len(s.x_val), -1)]
    assert set(tr) | set(va) <= rows and len(tr) + len(va) == n
    # the test set is untouched
    np.testing.assert_array_equal(s.x_test, d.x_test)
    np.testing.assert_array_equal(s.y_test, d.y_test)
    # stratified: every class's share of the split within one image of its share of the train set
    for c in range(10):
        expect = np.sum(d.y_train == c) * len(s.y_val) / n
        assert abs(np.sum(s.y_val == c) - expect) <= 1
    # fixed seed: the same split every time, another seed another one
    again = d.split_validation(0.1)
    np.testing.assert_array_equal(again.x_val, s.x_val)
    other = d.split_validation(0.1, seed=1)
    assert not np.array_equal(other.y_val, s.y_val) or not np.array_equal(other.x_val, s.x_val)
    # a subset keeps the split
    sub = s.subset(100, 50)
    assert sub.x_val is s.x_val and len(sub.y_train) == 100


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1e-6])
def test_bad_val_fraction_is_an_error(fraction):
    x, y = _data(50)
    d = Dataset("t", x.reshape(50, 1, 4, 4), y, x[:5].reshape(5, 1, 4, 4), y[:5], 8)
    with pytest.raises(ValueError, match="val_fraction"):
        d.split_validation(fraction)


def test_train_keeps_the_best_epoch_on_validation():
    torch.manual_seed(0)
    x, y = _data()
    xv, yv = _data(120, seed=1)
    model = MLP([16, 12, 4])
    hist = []
    # a large learning rate makes the validation accuracy move from epoch to epoch
    train(model, x, y, epochs=6, lr=0.05, batch=16, quiet=True, val=(xv, yv), history=hist)
    assert len(hist) == 6
    assert accuracy(model, xv, yv) == pytest.approx(max(hist))
    # the latest of the best epochs: retraining the same way for that many epochs gives it back
    best = len(hist) - int(np.argmax(hist[::-1]))
    torch.manual_seed(0)
    again = MLP([16, 12, 4])
    train(again, x, y, epochs=best, lr=0.05, batch=16, quiet=True)
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_pow2_finetune_keeps_the_best_snapped_epoch():
    torch.manual_seed(1)
    x, y = _data()
    xv, yv = _data(120, seed=2)
    model = MLP([16, 12, 4])
    train(model, x, y, epochs=3, quiet=True)
    layers = linear_layers(model)
    masks = prune.prune_by_percentile(prune.full_masks(layers), 50)
    prune.apply_masks(masks)
    formats = {m: pow2.best_kmax(m.weight.detach(), mk) for m, mk in masks.items()}
    hist = []
    pow2.finetune(
        model, masks, formats, x, y, epochs=5, lr=0.02, batch=16, val=(xv, yv), history=hist
    )
    assert len(hist) == 5
    assert accuracy(model, xv, yv) == pytest.approx(max(hist))
    for m, mk in masks.items():
        # the kept weights are snapped: zero where pruned, +-2**k in the format's range elsewhere
        torch.testing.assert_close(m.weight.detach(), pow2.snap(m.weight.detach(), mk, formats[m]))
        assert torch.all(m.weight[~mk] == 0)


def test_quantize_pow2_cosine_and_bias_retraining_keep_the_codes():
    from types import SimpleNamespace

    from compress import stages

    data, model = _split_and_model(torch_seed=2, val_seed=3, epochs=3)
    x, y, xv, yv = data.x_train, data.y_train, data.x_val, data.y_val
    masks = prune.prune_by_percentile(prune.full_masks(linear_layers(model)), 50)
    prune.apply_masks(masks)
    cfg = SimpleNamespace(
        exp_bits=3,
        pow2_epochs=3,
        pow2_lr=0.01,
        pow2_schedule="cosine",
        bias_epochs=3,
        finetune_augment="none",
        batch=16,
        seed=0,
        quiet=True,
    )
    q = stages.quantize_pow2(cfg, model, masks, data, snap_first=True)
    assert len(q.epoch_val) == 3 and len(q.bias_val) == 3
    # the bias retraining is kept only when it is at least as good on the validation split
    assert q.val_accuracy == pytest.approx(accuracy(model, xv, yv))
    assert q.val_accuracy >= max(q.epoch_val) - 1e-12
    for m, mk in masks.items():
        torch.testing.assert_close(
            m.weight.detach(), pow2.snap(m.weight.detach(), mk, q.formats[m])
        )
    with pytest.raises(ValueError, match="schedule"):
        pow2.finetune(model, masks, q.formats, x, y, epochs=1, schedule="step")


def test_cosine_schedule_decays_to_zero_and_bad_schedule_is_an_error():
    x, y = _data()
    opt_model = MLP([16, 12, 4])
    opt = torch.optim.Adam(opt_model.parameters(), lr=0.01)
    train(opt_model, x, y, epochs=2, batch=32, quiet=True, optimizer=opt, schedule="cosine")
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="schedule"):
        train(MLP([16, 4]), x, y, epochs=1, quiet=True, schedule="step")


@pytest.mark.parametrize("rewind", [0, 2])
def test_learning_rate_rewinding_keeps_the_masks(rewind):
    from types import SimpleNamespace

    from compress import stages

    data, model = _split_and_model(torch_seed=4, val_seed=5, epochs=2)
    xv, yv = data.x_val, data.y_val
    cfg = SimpleNamespace(
        criterion="magnitude",
        layer_sparsity=(0.5, 0.3),
        prune_rounds=2,
        finetune_epochs=1,
        finetune_lr=1e-3,
        finetune_schedule="constant",
        finetune_augment="none",
        batch=16,
        seed=0,
        quiet=True,
        rewind_epochs=rewind,
        lr=1e-2,
    )
    lines = []
    res = stages.prune_unstructured(cfg, model, data, 16 * 12 + 12 * 4, lines.append)
    rewound = [s for s in lines if s.startswith("rewound")]
    assert len(rewound) == (1 if rewind else 0)
    if rewind:
        assert f"{rewind} epochs at 0.01, cosine" in rewound[0]
    # the retrained figures are the model's after the rewinding, the pruned weights still zero
    assert res.val_retrained == pytest.approx(accuracy(model, xv, yv))
    for m, mk in res.masks.items():
        assert torch.all(m.weight[~mk] == 0) and int(mk.sum()) < mk.numel()
