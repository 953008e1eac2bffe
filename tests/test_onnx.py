"""ONNX in: compress.importer.load_onnx maps a graph onto the PyTorch importer's layers; each
layer kind equals the original model's float output, unsupported nodes are one line, and the
ONNX route's bundle equals the PyTorch route's."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import compress2rtl  # noqa: E402
from compress.__main__ import main as compress_main  # noqa: E402
from compress.bundle import load_bundle  # noqa: E402
from compress.importer import (  # noqa: E402
    SUPPORTED_ONNX,
    UnsupportedModel,
    import_model,
    load_model_file,
    load_onnx,
)
from compress.models import MLP, LeNet5  # noqa: E402

torch.set_num_threads(1)


def _export(model, shape, path, dynamic=True):
    """``torch.onnx.export`` with the TorchScript exporter (``dynamo=False``: no onnxscript)."""
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation notice
        torch.onnx.export(
            model, (torch.rand(1, *shape),), str(path), dynamo=False, input_names=["x"],
            dynamic_axes={"x": {0: "n"}} if dynamic else None,
        )  # fmt: skip
    return path


class _ViewCnn(nn.Module):
    """A CNN whose forward flattens with ``view``: ``view(x.size(0), -1)`` exports as a
    Shape/Gather/Unsqueeze/Concat/Reshape chain, ``view(-1, n)`` as a constant Reshape."""

    def __init__(self, by_size):
        super().__init__()
        torch.manual_seed(2)
        self.by_size = by_size
        self.c1, self.c2 = nn.Conv2d(2, 3, 3), nn.Conv2d(3, 4, 3, bias=False)
        self.fc1, self.fc2 = nn.Linear(4 * 3 * 3, 6), nn.Linear(6, 3)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.c1(x)), 2)
        x = torch.relu(self.c2(x))
        x = x.view(x.size(0), -1) if self.by_size else x.view(-1, 36)
        return self.fc2(torch.relu(self.fc1(x)))


def _seq(*mods, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(*mods)


CASES = {
    # Gemm (Linear with a bias), Flatten, Dropout dropped
    "mlp-gemm": (
        lambda: _seq(nn.Flatten(), nn.Linear(6, 5), nn.ReLU(), nn.Dropout(0.3), nn.Linear(5, 3)),
        (6,), MLP,
    ),
    # MatMul (Linear without a bias)
    "mlp-matmul": (
        lambda: _seq(nn.Linear(6, 5, bias=False), nn.ReLU(), nn.Linear(5, 3, bias=False)),
        (6,), MLP,
    ),
    # Conv, Relu, MaxPool, Conv, Relu, MaxPool, Flatten, Gemm
    "cnn-pool2": (
        lambda: _seq(
            nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(3, 4, 3), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3),
        ),
        (1, 14, 14), LeNet5,
    ),
    # 5x5 kernels, no second pool, Identity dropped
    "cnn-k5": (
        lambda: _seq(
            nn.Conv2d(1, 2, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Identity(), nn.Conv2d(2, 3, 5),
            nn.ReLU(), nn.Flatten(), nn.Linear(3 * 2 * 2, 3),
        ),
        (1, 16, 16), LeNet5,
    ),
    "cnn-view-size": (lambda: _ViewCnn(True), (2, 12, 12), LeNet5),
    "cnn-view-const": (lambda: _ViewCnn(False), (2, 12, 12), LeNet5),
}  # fmt: skip


@pytest.mark.parametrize("dynamic", [True, False], ids=["dynamic-batch", "batch-1"])
@pytest.mark.parametrize("case", list(CASES))
def test_onnx_layers_equal_the_torch_model(case, dynamic, tmp_path):
    make, shape, kind = CASES[case]
    user = make().eval()
    path = _export(user, shape, tmp_path / "m.onnx", dynamic)
    layers = load_onnx(path)
    model = import_model(layers, shape, classes=3)
    assert isinstance(model, kind)
    x = torch.rand((7, *shape), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        want = user(x)
        assert torch.allclose(layers(x), want, atol=1e-6)
        assert torch.allclose(model(x), want, atol=1e-6)
    # the weights are the user's, bit for bit
    first = next(m for m in user.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))
    own = model.conv1 if kind is LeNet5 else model.fc1
    assert torch.equal(own.weight, first.weight)
    # the model-file path takes the same file
    assert isinstance(load_model_file(path), nn.Sequential)


def _graph(nodes, inits, in_shape, out_shape, path):
    """A hand-written ONNX model (what other exporters write: MatMul + Add, Gemm transB 0)."""
    g = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()],
    )  # fmt: skip
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(m, str(path))
    return path


def _reference(inits, x):
    """The graphs below in NumPy: relu(x @ w1 + b1), then 2 * (h @ w2) + 0.5 * b2."""
    h = np.maximum(x @ inits["w1"] + inits["b1"], 0)
    return 2.0 * (h @ inits["w2"]) + 0.5 * inits["b2"]


def test_onnx_matmul_add_and_gemm_attributes(tmp_path):
    rng = np.random.default_rng(0)
    inits = {
        "w1": rng.normal(size=(6, 4)), "b1": rng.normal(size=4),
        "w2": rng.normal(size=(4, 3)), "b2": rng.normal(size=(1, 3)),
    }  # fmt: skip
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h0"], name="mm"),
        helper.make_node("Add", ["b1", "h0"], ["h1"], name="bias"),  # the bias first
        helper.make_node("Relu", ["h1"], ["h2"], name="act"),
        helper.make_node("Gemm", ["h2", "w2", "b2"], ["y"], alpha=2.0, beta=0.5, transB=0),
    ]
    path = _graph(nodes, inits, ["n", 6], ["n", 3], tmp_path / "h.onnx")
    model = import_model(load_onnx(path), (6,), classes=3)
    assert isinstance(model, MLP) and model.sizes == [6, 4, 3]
    x = rng.random((5, 6)).astype(np.float32)
    with torch.no_grad():
        got = model(torch.from_numpy(x)).numpy()
    assert np.allclose(got, _reference(inits, x.astype(np.float64)), atol=1e-5)


def test_onnx_numpy_check_catches_a_wrong_mapping(tmp_path, monkeypatch):
    """load_onnx's own NumPy evaluation of the graph: a Gemm mapped with its weight transposed
    the wrong way (a square layer, so the shapes still fit) is caught; Gemm transA 1 and a
    dynamic feature dimension are rejected."""
    rng = np.random.default_rng(1)
    inits = {"w": rng.normal(size=(4, 4)), "b": rng.normal(size=4)}
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc", transB=1)]
    path = _graph(nodes, inits, ["n", 4], ["n", 4], tmp_path / "g.onnx")
    load_onnx(path)
    import compress.importer as importer

    right = importer._linear_from
    monkeypatch.setattr(importer, "_linear_from", lambda w, b: right(w.T, b))
    _one_line(path, "the imported layers' outputs differ from the ONNX graph's")
    monkeypatch.undo()
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc", transA=1)]
    _one_line(
        _graph(nodes, inits, [4, 4], [4, 4], tmp_path / "a.onnx"), "node 0 (Gemm 'fc': transA 1)"
    )
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc")]
    _one_line(
        _graph(nodes, inits, ["n", "f"], ["n", 4], tmp_path / "f.onnx"), "has shape ['?', '?']"
    )


def _one_line(path, *parts):
    with pytest.raises(UnsupportedModel) as info:
        load_onnx(path)
    text = str(info.value)
    assert "\n" not in text
    for part in parts:
        assert part in text, text
    return text


@pytest.mark.parametrize(
    "mods,shape,parts",
    [
        ((nn.Linear(4, 3), nn.Sigmoid(), nn.Linear(3, 2)), (4,), ["node 1 (Sigmoid '/1/Sigmoid')"]),
        (
            (nn.Conv2d(1, 2, 3, stride=2), nn.ReLU()), (1, 9, 9),
            ["node 0 (Conv '/0/Conv': strides [2, 2]) is not supported"],
        ),
        (
            (nn.Conv2d(1, 2, 3, padding=1), nn.ReLU()), (1, 9, 9),
            ["node 0 (Conv '/0/Conv': pads [1, 1, 1, 1])"],
        ),
        ((nn.Conv2d(1, 2, 3, groups=1, dilation=2),), (1, 9, 9), ["dilations [2, 2]"]),
        ((nn.Conv2d(2, 2, 3, groups=2),), (2, 9, 9), ["group 2"]),
        ((nn.Conv2d(1, 2, 2),), (1, 9, 9), ["kernel 2x2, the engine takes odd K x K"]),
        (
            (nn.Conv2d(1, 2, 3), nn.AvgPool2d(2)), (1, 10, 10),
            ["node 1 (AveragePool '/1/AveragePool') is not supported"],
        ),
        ((nn.Conv2d(1, 2, 3), nn.MaxPool2d(3)), (1, 10, 10), ["kernel_shape [3, 3]"]),
        ((nn.Conv2d(1, 2, 3), nn.MaxPool2d(2, 1)), (1, 10, 10), ["strides [1, 1]"]),
        ((nn.Linear(4, 3), nn.Tanh()), (4,), ["node 1 (Tanh"]),
    ],
    ids=["sigmoid", "stride2", "padding", "dilation", "groups", "even-k", "avgpool",
         "maxpool3", "maxpool-stride1", "tanh"],
)  # fmt: skip
def test_onnx_unsupported_nodes_are_one_line(mods, shape, parts, tmp_path):
    path = _export(_seq(*mods), shape, tmp_path / "u.onnx")
    text = _one_line(path, *parts, f"supported ONNX operators: {SUPPORTED_ONNX}")
    assert text.startswith("node ")


class _Skip(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, x):
        h = torch.relu(self.a(x))
        return self.b(h) + h


class _Flat3d(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(1, 2, 3)

    def forward(self, x):
        return self.c(x).view(x.size(0), 2, -1)


def test_onnx_graph_shape_errors(tmp_path):
    """Not a chain (a skip connection), a Reshape that is not a flatten, a bad file."""
    _one_line(
        _export(_Skip(), (4,), tmp_path / "s.onnx"),
        "node 3 (Add '/Add': not on the chain from the graph input",
        "is not supported here",
    )
    _one_line(
        _export(_Flat3d(), (1, 6, 6), tmp_path / "r.onnx"),
        "(Reshape '/Reshape': reshapes [4, 2, 4, 4] to [4, 2, 16], only to (batch, features))",
    )
    (tmp_path / "bad.onnx").write_bytes(b"not a protobuf")
    _one_line(tmp_path / "bad.onnx", "bad.onnx: not a valid ONNX model")
    with pytest.raises(FileNotFoundError, match="no such ONNX file"):
        load_onnx(tmp_path / "none.onnx")


def test_onnx_pattern_errors_name_the_node(tmp_path):
    """Supported nodes in an order the hardware does not build: the PyTorch importer's message,
    the position being the ONNX node's index."""
    path = _export(
        _seq(nn.Linear(4, 3), nn.ReLU(), nn.ReLU(), nn.Linear(3, 2)), (4,), tmp_path / "p.onnx"
    )
    with pytest.raises(UnsupportedModel, match=r"^layer 2 \(ReLU\) is not supported here"):
        import_model(load_onnx(path), (4,), classes=2)


FAST = dict(
    finetune_epochs=1, prune_rounds=1, centroid_epochs=1, pow2_epochs=1,
    cluster_sweep=(16,), calib_samples=200, seed=0,
)  # fmt: skip


def _data(n=120, features=6, classes=3):
    rng = np.random.default_rng(0)
    centres = rng.random((classes, features)) * 0.6 + 0.2
    y_tr, y_te = np.arange(n) % classes, np.arange(n // 2) % classes
    x_tr = np.clip(centres[y_tr] + rng.normal(0, 0.08, (n, features)), 0, 0.99)
    x_te = np.clip(centres[y_te] + rng.normal(0, 0.08, (n // 2, features)), 0, 0.99)
    return {
        "x_train": x_tr.astype(np.float32), "y_train": y_tr,
        "x_test": x_te.astype(np.float32), "y_test": y_te,
    }  # fmt: skip


def assert_same_bundle(a, b):
    """Two bundles with the same manifest and the same arrays."""
    assert a.manifest == b.manifest
    assert sorted(a.arrays) == sorted(b.arrays)
    for k in a.arrays:
        assert np.array_equal(a.arrays[k], b.arrays[k]), k


def test_onnx_route_bundle_equals_the_pytorch_route(tmp_path, capsys):
    """The same tiny MLP through compress2rtl.compress as a module, as model.onnx, and through
    ``python -m compress --onnx``: the same bundle, array for array."""
    data = _data()
    user = _seq(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = torch.optim.Adam(user.parameters(), 1e-2)
    for _ in range(40):
        opt.zero_grad()
        x, y = torch.tensor(data["x_train"]), torch.tensor(data["y_train"])
        nn.functional.cross_entropy(user(x), y).backward()
        opt.step()
    path = _export(user, (6,), tmp_path / "tiny.onnx")
    torch_route = compress2rtl.compress(user, data, out=tmp_path / "t", name="tiny", **FAST)
    onnx_route = compress2rtl.compress(path, data, out=tmp_path / "o", name="tiny", **FAST)
    assert_same_bundle(torch_route, onnx_route)
    np.savez(tmp_path / "tiny.npz", **data)
    args = [
        "--onnx", str(path), "--data", str(tmp_path / "tiny.npz"), "--out", str(tmp_path / "c"),
        "--quiet", "--no-plots", "--finetune-epochs", "1", "--prune-rounds", "1",
    ]  # fmt: skip
    assert compress_main(args) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "c")
    cli = load_bundle(tmp_path / "c" / "bundle")
    assert cli.manifest["model"] == "imported" and cli.manifest["dataset"] == "tiny"
    assert compress_main([*args[:4], "--model-file", str(path)]) == 2
    assert "give --model-file or --onnx, not both" in capsys.readouterr().err
