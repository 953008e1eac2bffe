"""compress: each stage on small data (pruning masks, Taylor importance, sharing, pow2, CSR,
Huffman, IDX validation, bundle, integer reference)."""

import gzip
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from compress import csr, huffman, integer_ref, pow2, prune, share, taylor
from compress.bundle import BundleError, load_bundle, save_bundle
from compress.data import IdxError, load_idx_dataset, read_idx
from compress.models import MLP, linear_layers
from compress.train import LP_EPSILON, Distillation, lp_penalty, train


def _data(n=200, features=16, seed=0):
    g = np.random.default_rng(seed)
    x = g.random((n, features)).astype(np.float32)
    y = (x[:, :4].sum(1) > 2).astype(np.int64) + 2 * (x[:, 4] > 0.5)
    return x, y


def test_masks_stay_zero_after_adam_finetuning():
    torch.manual_seed(0)
    x, y = _data()
    model = MLP([16, 12, 8, 4])
    layers = linear_layers(model)
    # Adam state that would move pruned weights: train unmasked first with the same optimizer
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    train(model, x, y, epochs=2, optimizer=opt, quiet=True)
    masks = prune.prune_by_percentile(prune.full_masks(layers), 70)
    train(model, x, y, epochs=3, optimizer=opt, masks=masks, quiet=True)
    for m, mask in masks.items():
        assert torch.all(m.weight[~mask] == 0)
        assert int((m.weight[mask] != 0).sum()) == int(mask.sum())


def test_lp_penalty_formula_and_finite_gradient_at_zero():
    w = torch.tensor([0.0, 0.1, -2.0], requires_grad=True)
    value = lp_penalty(w, 0.5)
    expected = sum((v * v + LP_EPSILON**2) ** 0.25 for v in (0.0, 0.1, -2.0))
    assert value.item() == pytest.approx(expected, rel=1e-6)
    value.backward()
    assert torch.isfinite(w.grad).all() and w.grad[0] == 0
    assert w.grad[1] > 0 > w.grad[2]  # pulls toward zero
    # below 1, small weights are pulled harder than by L1 (whose pull is 1 everywhere)
    assert w.grad[1] > 1 > -w.grad[2]


def test_lp_regularisation_makes_small_weights():
    x, y = _data()

    def small_fraction(**reg):
        torch.manual_seed(0)
        model = MLP([16, 12, 8, 4])
        train(model, x, y, epochs=20, lr=1e-2, quiet=True, **reg)
        w = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, nn.Linear)])
        return float((w.abs() < 0.02).float().mean())

    assert small_fraction(lp=2e-3, lp_p=0.5) > small_fraction() + 0.2
    with pytest.raises(ValueError, match="lp_p must be in"):
        train(MLP([16, 4]), x, y, epochs=1, lp=1e-3, lp_p=1.0, quiet=True)


def test_distillation_pulls_the_student_toward_the_teacher():
    """With weight 1 the loss is the KL divergence from the teacher's softened outputs alone:
    the student ends closer to a teacher that disagrees with the labels than the same student
    trained on the labels; a weight or temperature out of range is refused."""
    x, y = _data()
    torch.manual_seed(1)
    teacher = MLP([16, 12, 4])
    with torch.no_grad():  # a teacher that prefers class 3 whatever the labels say
        teacher.layer(1).bias[3] += 3.0

    def kl_to_teacher(distill=None):
        torch.manual_seed(0)
        student = MLP([16, 12, 8, 4])
        train(student, x, y, epochs=10, lr=1e-2, quiet=True, distill=distill)
        with torch.no_grad():
            xt = torch.as_tensor(x)
            return F.kl_div(
                F.log_softmax(student(xt), 1), F.softmax(teacher(xt), 1), reduction="batchmean"
            ).item()

    assert kl_to_teacher(Distillation(teacher, 1.0, temperature=1.0)) < 0.5 * kl_to_teacher()
    for weight, temperature in ((0.0, 4.0), (1.5, 4.0), (0.5, 0.0)):
        with pytest.raises(ValueError, match="distillation"):
            Distillation(teacher, weight, temperature)


def test_prune_by_percentile_hits_sparsity():
    torch.manual_seed(1)
    lin = nn.Linear(50, 40)
    w0 = lin.weight.detach().clone()
    masks = prune.prune_by_percentile({lin: torch.ones(40, 50, dtype=torch.bool)}, 90)
    assert int(masks[lin].sum()) == 200
    assert float(w0[masks[lin]].abs().min()) >= float(w0[~masks[lin]].abs().max())
    masks = prune.prune_by_percentile(masks, 50)  # of the alive weights
    assert float(w0[masks[lin]].abs().min()) >= float(w0[~masks[lin]].abs().max())
    assert int(masks[lin].sum()) == 100
    assert int((lin.weight != 0).sum()) == 100


def test_prune_by_percentile_keeps_largest():
    lin = nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.1, -0.5, 0.05, 0.3]]))
    m = prune.prune_by_percentile({lin: torch.ones(1, 4, dtype=torch.bool)}, 50)[lin]
    assert m.tolist() == [[False, True, False, True]]


def test_prune_by_std_threshold():
    lin = nn.Linear(5, 1, bias=False)
    w = torch.tensor([[1.0, -2.0, 0.2, -0.1, 3.0]])
    with torch.no_grad():
        lin.weight.copy_(w)
    thr = 0.5 * float(w.std())
    m = prune.prune_by_std({lin: torch.ones(1, 5, dtype=torch.bool)}, 0.5)[lin]
    assert m.tolist() == (w.abs() >= thr).tolist()
    assert m.sum() == 3


def test_taylor_group_importance_by_hand():
    torch.manual_seed(2)
    model = MLP([3, 2, 2])
    x = torch.randn(4, 3)
    y = torch.tensor([0, 1, 1, 0])
    wimp, gimp = taylor.taylor_importance(model, x, y, linear_layers(model), batch=2)
    # by hand: two batches of 2, (sum over the neuron's weights and bias of g*w)**2 summed
    exp_g = torch.zeros(2, dtype=torch.float64)
    exp_w = torch.zeros(2, 3)
    for i in (0, 2):
        model.zero_grad()
        F.cross_entropy(model(x[i : i + 2]), y[i : i + 2]).backward()
        w, b = model.fc1.weight.detach(), model.fc1.bias.detach()
        wg, bg = model.fc1.weight.grad, model.fc1.bias.grad
        for j in range(2):
            s = sum(float(wg[j, k] * w[j, k]) for k in range(3)) + float(bg[j] * b[j])
            exp_g[j] += s * s
        exp_w += (wg * w) ** 2
    np.testing.assert_allclose(gimp[model.fc1].numpy(), exp_g.numpy(), rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(wimp[model.fc1].numpy(), exp_w.numpy(), rtol=1e-5, atol=1e-12)


def test_structured_pruning_shrinks_next_layer_and_keeps_function():
    torch.manual_seed(3)
    model = MLP([6, 5, 4, 3])
    x = torch.randn(10, 6)
    keep = [0, 2, 4]
    with torch.no_grad():
        h_before = torch.relu(model.fc1(x))[:, keep]
        # silence the removed neurons' outgoing weights: the network output must not change
        model.fc2.weight[:, [1, 3]] = 0
        out_before = model(x)
    taylor.remove_units(model.fc1, model.fc2, keep)
    assert model.fc1.weight.shape == (3, 6) and model.fc1.bias.shape == (3,)
    assert model.fc2.weight.shape == (4, 3)
    with torch.no_grad():
        torch.testing.assert_close(torch.relu(model.fc1(x)), h_before)
        torch.testing.assert_close(model(x), out_before)


def test_centroid_gradient_is_sum_of_member_gradients():
    torch.manual_seed(4)
    lin = nn.Linear(8, 6)
    mask = torch.rand(6, 8) > 0.3
    with torch.no_grad():
        lin.weight.mul_(mask)
    s = share.SharedLayer(lin, mask, 4, "linear")
    x = torch.randn(5, 8)
    lin.zero_grad()
    (lin(x) ** 2).sum().backward()
    s.set_grad()
    expected = torch.zeros(s.k)
    for (i, j), lab in np.ndenumerate(s.labels.numpy()):
        if lab >= 0:
            expected[lab] += lin.weight.grad[i, j]
    torch.testing.assert_close(s.centroids.grad, expected)
    # shared weights take exactly the centroid values, pruned ones stay zero
    assert torch.all(lin.weight[~mask] == 0)
    assert set(lin.weight[mask].tolist()) <= set(s.centroids.tolist())


@pytest.mark.parametrize("method", ["linear", "density", "random"])
def test_kmeans_init_methods(method):
    w = np.random.default_rng(0).normal(size=300)
    c, lab = share.kmeans_share(w, 8, method)
    assert len(c) == 8 and lab.min() >= 0 and lab.max() < 8
    # assignment = nearest centroid
    np.testing.assert_array_equal(lab, np.argmin(np.abs(w[:, None] - c[None, :]), axis=1))


def test_pow2_values_in_range():
    g = torch.Generator().manual_seed(5)
    w = torch.randn(20, 30, generator=g) * 0.3
    mask = torch.rand(20, 30, generator=g) > 0.5
    fmt = pow2.best_kmax(w, mask, exp_bits=3)
    q = pow2.snap(w, mask, fmt)
    assert torch.all(q[~mask] == 0)
    a = q[mask].abs()
    k = torch.log2(a)
    assert torch.all(k == torch.round(k))
    assert k.min() >= fmt.kmin and k.max() <= fmt.kmax
    w_int, codes, sign, e = pow2.encode(q, fmt)
    book = pow2.codebook(fmt, 4)
    np.testing.assert_array_equal(book[codes], w_int)
    assert e.max() <= fmt.max_exp == 6 and e.min() >= 0
    np.testing.assert_allclose(w_int * 2.0**-fmt.weight_frac_bits, q.numpy())
    nz = w_int != 0
    assert np.all(np.abs(w_int[nz]) & (np.abs(w_int[nz]) - 1) == 0)


def test_csr_round_trip_with_fillers():
    codes = np.zeros((3, 60), dtype=np.int64)
    codes[0, [0, 40, 59]] = [3, 5, 1]  # gap 39 > 15: fillers
    codes[1, 16] = 2  # gap of exactly 16 -> one filler (rel 15) then rel 0
    rel, code, rowptr = csr.encode(codes, 4)
    assert rel.max() <= 15
    assert np.sum(code == 0) >= 3
    np.testing.assert_array_equal(csr.decode(rel, code, rowptr, 60), codes)
    # row 1: filler (15, 0) then (0, 2)
    r1 = slice(rowptr[1], rowptr[2])
    assert rel[r1].tolist() == [15, 0] and code[r1].tolist() == [0, 2]
    assert rowptr[3] == rowptr[2]  # empty row
    g = np.random.default_rng(1)
    codes = np.where(g.random((20, 200)) < 0.05, g.integers(1, 16, (20, 200)), 0)
    for bits in (2, 3, 4, 8):
        np.testing.assert_array_equal(csr.decode(*csr.encode(codes, bits), 200), codes)


def test_huffman_round_trip():
    g = np.random.default_rng(2)
    for sym in (g.integers(0, 16, 1000), g.geometric(0.4, 500), np.array([7] * 9), np.array([])):
        payload, nbits, lengths = huffman.encode(sym)
        np.testing.assert_array_equal(huffman.decode(payload, nbits, lengths), sym.astype(np.int64))
    skewed = g.geometric(0.6, 2000)
    _, nbits, _ = huffman.encode(skewed)
    assert nbits < 2000 * 4


def _write_idx(path, arr, magic_dims=None, truncate=0):
    arr = np.asarray(arr, dtype=np.uint8)
    dims = arr.ndim if magic_dims is None else magic_dims
    data = struct.pack(">HBB", 0, 8, dims) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data += arr.tobytes()
    if truncate:
        data = data[:-truncate]
    with gzip.open(path, "wb") as f:
        f.write(data)


def test_idx_reader_rejects_corrupt_files(tmp_path):
    good = tmp_path / "ok-idx3-ubyte.gz"
    _write_idx(good, np.arange(2 * 4 * 4).reshape(2, 4, 4))
    assert read_idx(good, 3).shape == (2, 4, 4)
    short = tmp_path / "short-idx3-ubyte.gz"
    _write_idx(short, np.zeros((2, 4, 4)), truncate=5)
    with pytest.raises(IdxError, match="short-idx3-ubyte.gz"):
        read_idx(short, 3)
    bad = tmp_path / "bad-idx1-ubyte"
    bad.write_bytes(b"\x00\x00\x0d\x01\x00\x00\x00\x02ab")
    with pytest.raises(IdxError, match="bad-idx1-ubyte.*magic"):
        read_idx(bad, 1)
    with pytest.raises(IdxError, match="ok-idx3-ubyte.gz.*dimensions"):
        read_idx(good, 1)


def test_idx_dataset_label_count_mismatch_and_missing(tmp_path):
    d = tmp_path / "f"
    d.mkdir()
    _write_idx(d / "train-images-idx3-ubyte.gz", np.zeros((5, 4, 4)))
    _write_idx(d / "train-labels-idx1-ubyte.gz", np.zeros(4))
    _write_idx(d / "t10k-images-idx3-ubyte.gz", np.zeros((3, 4, 4)))
    _write_idx(d / "t10k-labels-idx1-ubyte.gz", np.zeros(3))
    with pytest.raises(IdxError, match="train-images-idx3-ubyte.gz"):
        load_idx_dataset("fashion", d)
    _write_idx(d / "train-labels-idx1-ubyte.gz", np.arange(5))
    ds = load_idx_dataset("fashion", d)
    assert ds.x_train.shape == (5, 1, 4, 4) and ds.input_frac_bits == 8
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte.gz"):
        load_idx_dataset("kmnist", tmp_path / "empty")


def _tiny_bundle():
    w1 = np.array([[4, 0, -2], [0, 1, 8]], dtype=np.int32)
    w2 = np.array([[2, -1], [-4, 16]], dtype=np.int32)
    spec = dict(
        kind="linear",
        weight_format="pow2",
        weight_frac_bits=3,
        input_frac_bits=4,
        output_frac_bits=4,
        output_bits=8,
        codebook_bits=4,
        index_bits=4,
        exp_bits=3,
        pow2_max_exp=6,
    )
    layers = [
        dict(spec, name="fc1", in_features=3, out_features=2, activation="relu"),
        dict(spec, name="fc2", in_features=2, out_features=2, activation="none"),
    ]
    arrays = {
        "fc1.weight_int": w1,
        "fc1.bias_int": np.array([5, -300], np.int32),
        "fc2.weight_int": w2,
        "fc2.bias_int": np.array([0, 3], np.int32),
    }
    # the pow2 codebook and CSR rows the hardware reads (docs/bundle.md)
    book = [0, *(1 << e for e in range(7)), *(-(1 << e) for e in range(7)), 0]
    for name, w in (("fc1", w1), ("fc2", w2)):
        codes = np.vectorize(book.index)(w).astype(np.uint8)
        rel, code, rowptr = csr.encode(codes, 4)
        arrays.update(
            {
                f"{name}.codebook": np.array(book, np.int32),
                f"{name}.codes": codes,
                f"{name}.csr_rel": rel,
                f"{name}.csr_code": code,
                f"{name}.csr_rowptr": rowptr,
            }
        )
    manifest = {
        "dataset": "t",
        "model": "m",
        "input": {"shape": [3], "bits": 8, "frac_bits": 4, "signed": False},
        "layers": layers,
    }
    return manifest, arrays


def test_integer_ref_matches_manual_computation():
    manifest, arrays = _tiny_bundle()
    x = np.array([[16, 200, 3], [255, 0, 255]])
    out = integer_ref.forward((manifest, arrays), x)
    # by hand: acc = w.x + b, shift = 4 + 3 - 4 = 3, y = (acc + 4) >> 3, relu clip 0..255
    expect = []
    for row in x:
        h = []
        for j in range(2):
            acc = sum(int(arrays["fc1.weight_int"][j, i]) * int(row[i]) for i in range(3))
            acc += int(arrays["fc1.bias_int"][j])
            h.append(min(max((acc + 4) >> 3, 0), 255))
        o = []
        for j in range(2):
            acc = sum(int(arrays["fc2.weight_int"][j, i]) * h[i] for i in range(2))
            acc += int(arrays["fc2.bias_int"][j])
            o.append(min(max((acc + 4) >> 3, -128), 127))
        expect.append(o)
    np.testing.assert_array_equal(out, np.array(expect))
    assert integer_ref.requantise(np.array([-12, -13, 12, 11]), 3).tolist() == [-1, -2, 2, 1]
    q = integer_ref.quantize_inputs(manifest, np.array([[0.0, 1.0, 20.0], [0.03125, -1, 0.5]]))
    assert q.dtype == np.uint8 and q.tolist() == [[0, 16, 255], [1, 0, 8]]


def test_bundle_round_trip_and_validation(tmp_path):
    manifest, arrays = _tiny_bundle()
    x = np.array([[0, 0, 0], [16, 200, 3]], np.uint8)
    out = integer_ref.forward((manifest, arrays), x).astype(np.int32)
    arrays.update(
        {
            "reference.test_inputs": x,
            "reference.test_labels": np.array([0, 1]),
            "reference.test_outputs": out,
            "reference.test_pred": np.argmax(out, axis=1),
        }
    )
    path = save_bundle(tmp_path / "b", manifest, arrays)
    b = load_bundle(path)
    assert b.manifest["format"] == "compress2rtl-bundle" and b.manifest["version"] == 1
    assert b.manifest["layers"] == manifest["layers"]
    for k, v in arrays.items():
        np.testing.assert_array_equal(b.arrays[k], v)
        assert b.arrays[k].dtype == v.dtype
    import json

    m = json.loads((path / "manifest.json").read_text())
    m["version"] = 99
    (path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match="version 99"):
        load_bundle(path)
    with pytest.raises(BundleError, match="no manifest.json"):
        load_bundle(tmp_path)
