"""A user's PyTorch network and data into the pipeline: compress.importer and --data files."""

import numpy as np
import pytest
import torch
from torch import nn

from compress.__main__ import main as compress_main
from compress.data import DataError, dataset_from_arrays, load_npz
from compress.importer import (
    SUPPORTED,
    UnsupportedModel,
    import_model,
    load_model_file,
    model_from_arch,
)
from compress.models import MLP, LeNet5, prunable

torch.set_num_threads(1)


def _mlp(sizes=(16, 64, 32, 32, 5), seed=0, dropout=False):
    torch.manual_seed(seed)
    mods = [nn.Flatten()]
    for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)):
        mods.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            mods.append(nn.ReLU())
            if dropout:
                mods.append(nn.Dropout(0.2))
    return nn.Sequential(*mods)


def _cnn(k=3, pool2=True, bias=True, size=12):
    torch.manual_seed(1)
    side = (((size - k + 1) // 2) - k + 1) // (2 if pool2 else 1)
    mods = [nn.Conv2d(1, 3, k, bias=bias), nn.ReLU(), nn.MaxPool2d(2)]
    mods += [nn.Conv2d(3, 4, k), nn.ReLU()]
    if pool2:
        mods.append(nn.MaxPool2d(2))
    mods += [nn.Flatten(), nn.Linear(4 * side * side, 8), nn.ReLU(), nn.Linear(8, 3)]
    return nn.Sequential(*mods)


def _same_output(a, b, shape):
    x = torch.rand((5, *shape), generator=torch.Generator().manual_seed(3))
    a.eval()
    with torch.no_grad():
        return torch.allclose(a(x), b(x), atol=1e-6)


def test_mlp_weights_equal_after_import():
    user = _mlp(dropout=True)
    model = import_model(user, (16,), classes=5)
    assert isinstance(model, MLP) and model.sizes == [16, 64, 32, 32, 5]
    linears = [m for m in user if isinstance(m, nn.Linear)]
    for i, src in enumerate(linears):
        dst = model.layer(i)
        assert torch.equal(dst.weight, src.weight) and torch.equal(dst.bias, src.bias)
    assert _same_output(user, model, (16,))
    assert _same_output(user, import_model(_mlp(dropout=True).double(), (16,), 5), (16,))
    # the imported model is a copy: training it leaves the user's weights alone
    with torch.no_grad():
        model.fc1.weight.zero_()
    assert linears[0].weight.abs().sum() > 0


@pytest.mark.parametrize(
    "k,pool2,bias,size", [(3, True, True, 12), (3, False, False, 12), (5, False, True, 16)]
)
def test_cnn_import_equals_the_original(k, pool2, bias, size):
    user = _cnn(k, pool2, bias, size)
    model = import_model(user, (1, size, size), classes=3)
    assert isinstance(model, LeNet5) and model.pool2 == pool2
    assert model.conv1.kernel_size == (k, k)
    assert list(prunable(model)) == ["conv1", "conv2", "fc1", "fc2"]
    assert torch.equal(model.conv2.weight, user[3].weight)
    assert _same_output(user, model, (1, size, size))
    with pytest.raises(UnsupportedModel, match=r"leaves 0x0 pixels for 1x6x6 images"):
        import_model(user, (1, 6, 6))


def test_torchscript_whole_model_and_state_dict_files(tmp_path):
    user = _mlp((16, 8, 5))
    torch.save(user, tmp_path / "whole.pt")
    torch.jit.save(torch.jit.script(user), tmp_path / "script.pt")
    torch.jit.save(torch.jit.trace(user, torch.zeros(1, 16)), tmp_path / "trace.pt")
    torch.save(user.state_dict(), tmp_path / "sd.pt")
    for name in ("whole.pt", "script.pt", "trace.pt"):
        model = import_model(load_model_file(tmp_path / name), (16,), 5)
        assert torch.equal(model.fc1.weight, user[1].weight), name
    with pytest.raises(UnsupportedModel, match="holds a state_dict, not a model: give its layers"):
        load_model_file(tmp_path / "sd.pt")
    module = load_model_file(tmp_path / "sd.pt", "linear 16 8, relu, linear 8 5")
    assert _same_output(user, import_model(module, (16,), 5), (16,))
    with pytest.raises(UnsupportedModel, match="does not fit --arch"):
        load_model_file(tmp_path / "sd.pt", "linear 16 9, relu, linear 9 5")
    with pytest.raises(UnsupportedModel, match="'tanh' is not one of"):
        model_from_arch("linear 16 8, tanh, linear 8 5")


def test_traced_cnn_with_padding_is_caught(tmp_path):
    """A trace hides stride and padding: the output comparison catches them."""
    user = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3),
    )  # fmt: skip
    traced = torch.jit.trace(user, torch.zeros(1, 1, 12, 12))
    with pytest.raises(UnsupportedModel):
        import_model(traced, (1, 12, 12), 3)


@pytest.mark.parametrize(
    "module,shape,message",
    [
        (
            nn.Sequential(nn.Linear(4, 3), nn.Sigmoid(), nn.Linear(3, 2)),
            (4,),
            r"^layer 1 \(Sigmoid\) is not supported; supported layers: Linear, Conv2d",
        ),
        (
            nn.Sequential(nn.Linear(4, 3), nn.Sequential(nn.ReLU(), nn.BatchNorm1d(3))),
            (4,),
            r"^layer 1\.1 \(BatchNorm1d\) is not supported",
        ),
        (
            nn.Sequential(nn.Conv2d(1, 2, 3, stride=2), nn.ReLU()),
            (1, 8, 8),
            r"^layer 0 \(Conv2d: stride \(2, 2\), only stride 1\) is not supported",
        ),
        (
            nn.Sequential(nn.Conv2d(1, 2, 3, padding=1)),
            (1, 8, 8),
            r"^layer 0 \(Conv2d: padding \(1, 1\), only padding 0\)",
        ),
        (
            nn.Sequential(nn.Conv2d(1, 2, 4)),
            (1, 8, 8),
            r"^layer 0 \(Conv2d: kernel 4x4, the engine takes odd K x K\)",
        ),
        (
            nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(3)),
            (1, 8, 8),
            r"^layer 2 \(MaxPool2d: kernel \(3, 3\)",
        ),
        (
            nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.ReLU(), nn.Linear(3, 2)),
            (4,),
            r"^layer 2 \(ReLU\) is not supported here: expected Linear",
        ),
        (
            nn.Sequential(nn.Linear(4, 3), nn.ReLU()),
            (4,),
            r"^the model ends after layer 1: expected Linear",
        ),
        (
            nn.Sequential(nn.Linear(5, 3), nn.ReLU(), nn.Linear(3, 2)),
            (4,),
            r"^layer 0 \(Linear\) takes 5 inputs, the data has 4 features",
        ),
    ],
)
def test_unsupported_layers_one_line(module, shape, message):
    with pytest.raises(UnsupportedModel, match=message) as info:
        import_model(module, shape)
    assert "\n" not in str(info.value)


def test_forward_that_is_not_the_chain_is_rejected():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.relu, self.fc2 = nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)

        def forward(self, x):
            h = self.relu(self.fc1(x)) + x
            return self.fc2(h)

    with pytest.raises(UnsupportedModel, match="differs from the chain of its layers"):
        import_model(Residual(), (4,))
    with pytest.raises(UnsupportedModel, match="5 outputs, the data 3 classes"):
        import_model(_mlp((16, 8, 5)), (16,), classes=3)
    assert "MaxPool2d(2)" in SUPPORTED


def _arrays(n=40, features=6, classes=3):
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.random((n, features)).astype(np.float32),
        "y_train": np.arange(n) % classes,
        "x_test": rng.random((n // 2, features)).astype(np.float32),
        "y_test": np.arange(n // 2) % classes,
    }


def test_npz_data_and_its_input_format(tmp_path):
    a = _arrays()
    a["x_train"][0, 0] = 1.0
    np.savez(tmp_path / "my-data.npz", **a)
    d = load_npz(tmp_path / "my-data.npz")
    assert d.name == "my_data" and d.classes == 3 and d.image_shape == (6,)
    # max 1.0: 7 fractional bits fit 8 unsigned bits; every input on the code grid
    assert d.input_frac_bits == 7
    codes = d.x_train * 2**7
    assert np.array_equal(codes, np.round(codes)) and codes.max() == 128
    assert np.max(np.abs(d.x_test - a["x_test"])) <= 2**-8
    small = dict(a, x_train=a["x_train"] * 0.1, x_test=a["x_test"] * 0.1)
    assert dataset_from_arrays(small).input_frac_bits == 11


@pytest.mark.parametrize(
    "change,message",
    [
        ({"y_test": None}, r"f\.npz: missing y_test \(needs x_train, y_train, x_test, y_test\)$"),
        ({"x_train": -1}, r"f\.npz: x_train has negative values \(min -1\); the hardware takes"),
        ({"x_test": np.zeros((20, 5), np.float32)}, r"x_test samples have shape \(5,\), x_train"),
        ({"x_train": np.zeros((40, 2, 3), np.float32)}, r"x_train has shape \(40, 2, 3\)"),
        ({"x_test": np.full((20, 6), np.nan, np.float32)}, r"x_test holds NaN"),
        ({"y_train": np.zeros(39, np.int64)}, r"y_train has 39 labels, x_train 40 rows"),
        ({"y_train": np.full(40, 0.5)}, r"y_train has dtype float64, expected integer class"),
        ({"y_train": np.zeros((40, 3))}, r"y_train has shape \(40, 3\), expected \(n,\)"),
        ({"y_test": np.full(20, 7)}, r"y_test has label 7, never seen in y_train"),
        ({"y_train": np.zeros(40, np.int64), "y_test": np.zeros(20, np.int64)}, "single class"),
        ({"x_train": np.array(["a"] * 40)}, r"x_train has dtype <U1, expected real numbers"),
    ],
)
def test_npz_validation_errors(tmp_path, change, message):
    a = _arrays()
    for k, v in change.items():
        if v is None:
            del a[k]
        elif isinstance(v, int):
            a[k] = a[k] * 0 + v
        else:
            a[k] = v
    np.savez(tmp_path / "f.npz", **a)
    with pytest.raises(DataError, match=message) as info:
        load_npz(tmp_path / "f.npz")
    assert "\n" not in str(info.value)


def test_cli_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    assert compress_main(["--data", str(tmp_path / "bad.npz"), "--out", str(tmp_path)]) == 2
    assert "cannot read a .npz archive" in capsys.readouterr().err
    assert compress_main(["--onnx", str(tmp_path / "m.onnx")]) == 2
    assert "m.onnx: no such ONNX file" in capsys.readouterr().err
    np.savez(tmp_path / "d.npz", **_arrays())
    torch.save(nn.Sequential(nn.Linear(6, 3), nn.Tanh()), tmp_path / "m.pt")
    out = tmp_path / "out"
    args = ["--data", str(tmp_path / "d.npz"), "--model-file", str(tmp_path / "m.pt")]
    assert compress_main([*args, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("compress: error: layer 1 (Tanh) is not supported; supported layers")
    assert err.count("\n") == 1 and not out.exists()


def test_cli_state_dict_with_arch_end_to_end(tmp_path, capsys):
    """`python -m compress --model-file weights.pt --arch ... --data d.npz` writes a bundle
    whose float layers are the user's (no float training) and whose name is the file's."""
    a = _arrays(n=120)
    np.savez(tmp_path / "tiny.npz", **a)
    torch.manual_seed(0)
    user = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    torch.save(user.state_dict(), tmp_path / "w.pt")
    out = tmp_path / "out"
    args = [
        "--data", str(tmp_path / "tiny.npz"), "--model-file", str(tmp_path / "w.pt"),
        "--arch", "linear 6 5, relu, linear 5 3", "--out", str(out), "--quiet", "--no-plots",
        "--finetune-epochs", "1", "--prune-rounds", "1",
    ]  # fmt: skip
    assert compress_main(args) == 0
    assert capsys.readouterr().out.strip() == str(out)
    from compress.bundle import load_bundle

    b = load_bundle(out / "bundle")
    assert b.manifest["dataset"] == "tiny" and b.manifest["model"] == "imported"
    assert b.manifest["architecture"]["original"] == [6, 5, 3]
    # the dense baseline is the user's float network in 16 bits
    w = (
        b.arrays["baseline.fc1.weight_int"]
        * 2.0 ** -b.manifest["baseline"]["layers"][0]["weight_frac_bits"]
    )
    assert np.allclose(w, user[0].weight.detach().numpy(), atol=2**-10)
    assert compress_main([*args[:6], "--out", str(tmp_path / "o2"), "--hidden", "9"]) == 2
    assert "structured pruning target 9 for fc1 is not in 1..5" in capsys.readouterr().err
