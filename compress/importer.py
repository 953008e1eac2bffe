"""A user's trained PyTorch network onto the pipeline's models (``compress.models``).

The hardware runs chains of ``Linear``, ``Conv2d`` (stride 1, no padding, odd square kernel),
``ReLU``, ``MaxPool2d(2)`` and ``Flatten``; ``Dropout`` and ``Identity`` are no-ops at inference
and are dropped. :func:`import_model` takes an ``nn.Sequential`` (nested ones are flattened), a
module whose children, in registration order, form its forward chain, or a TorchScript module
of either (``torch.jit.script`` or ``torch.jit.trace``), and returns the equivalent
:class:`~compress.models.MLP` (``[Flatten] (Linear ReLU)* Linear``) or
:class:`~compress.models.LeNet5` (``Conv2d ReLU MaxPool2d Conv2d ReLU [MaxPool2d] Flatten
(Linear ReLU)* Linear``) with the user's weights copied, then checks that both give the same
float outputs on random inputs (which also catches a forward that is not the chain of its
children, or a traced convolution with a stride or padding the trace does not show).

:func:`load_model_file` reads ``--model-file``: a whole model saved with ``torch.save(model)``
or a TorchScript file (``torch.jit.save``); a ``state_dict`` needs an architecture
(``arch``: the layer list, e.g. ``"linear 16 64, relu, linear 64 5"``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .models import MLP, LeNet5

__all__ = [
    "SUPPORTED",
    "UnsupportedModel",
    "SUPPORTED_ONNX",
    "import_model",
    "load_model_file",
    "load_onnx",
    "model_from_arch",
]

SUPPORTED = (
    "Linear, Conv2d (stride 1, no padding, odd square kernel), ReLU, MaxPool2d(2), Flatten "
    "(Dropout and Identity are dropped)"
)
_KINDS = {"Linear", "Conv2d", "ReLU", "MaxPool2d", "Flatten", "Dropout", "Identity", "Sequential"}
_DROPPED = {"Dropout", "Identity"}


class UnsupportedModel(ValueError):
    """A model the hardware cannot run: the message names the layer and its position."""


def _kind(module) -> str:
    """The layer class name, also of a TorchScript submodule (``original_name``)."""
    name = getattr(module, "original_name", None)
    if isinstance(name, str) and isinstance(module, torch.jit.ScriptModule):
        return name
    return type(module).__name__


def _chain(module, prefix: str = "") -> list[tuple[str, object]]:
    """``(position, layer)`` of every leaf of ``module``'s children, in order; nested
    ``Sequential`` containers flattened (position ``"2.1"``)."""
    out = []
    for name, child in module.named_children():
        pos = f"{prefix}{name}"
        if _kind(child) == "Sequential":
            out += _chain(child, pos + ".")
        else:
            out.append((pos, child))
    return out


def _unsupported(pos, layer, why: str = "") -> UnsupportedModel:
    text = f"layer {pos} ({_kind(layer)}"
    text += f": {why})" if why else ")"
    return UnsupportedModel(f"{text} is not supported; supported layers: {SUPPORTED}")


def _pair(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _check_layer(pos, layer) -> None:
    kind = _kind(layer)
    if kind not in _KINDS:
        raise _unsupported(pos, layer)
    if kind == "Conv2d":
        w = layer.weight
        k = tuple(w.shape[2:])
        if k[0] != k[1] or k[0] % 2 == 0:
            raise _unsupported(pos, layer, f"kernel {k[0]}x{k[1]}, the engine takes odd K x K")
        for attr, want in (("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1)):
            if hasattr(layer, attr):
                got = getattr(layer, attr)
                if attr == "groups" and got != 1 or attr != "groups" and _pair(got) != (want,) * 2:
                    raise _unsupported(pos, layer, f"{attr} {got}, only {attr} {want}")
    if kind == "MaxPool2d" and hasattr(layer, "kernel_size"):
        ks, st = _pair(layer.kernel_size), _pair(layer.stride or layer.kernel_size)
        pad = _pair(getattr(layer, "padding", 0))
        if ks != (2, 2) or st != (2, 2) or pad != (0, 0):
            raise _unsupported(pos, layer, f"kernel {ks}, stride {st}: only 2x2, stride 2")
    if kind == "Flatten" and hasattr(layer, "start_dim"):
        if layer.start_dim != 1 or layer.end_dim != -1:
            raise _unsupported(pos, layer, "only Flatten(1, -1)")


def _linear(src, in_features=None) -> nn.Linear:
    w = src.weight.detach().to(torch.float32)
    out_f, in_f = w.shape
    dst = nn.Linear(in_f, out_f)
    with torch.no_grad():
        dst.weight.copy_(w)
        b = getattr(src, "bias", None)
        dst.bias.copy_(b.detach() if b is not None else torch.zeros(out_f))
    return dst


def _conv(src) -> nn.Conv2d:
    w = src.weight.detach().to(torch.float32)
    o, c, k, _ = w.shape
    dst = nn.Conv2d(c, o, k)
    with torch.no_grad():
        dst.weight.copy_(w)
        b = getattr(src, "bias", None)
        dst.bias.copy_(b.detach() if b is not None else torch.zeros(o))
    return dst


def _pattern_error(layers, i: int, expected: str) -> UnsupportedModel:
    if i < len(layers):
        pos, layer = layers[i]
        return UnsupportedModel(
            f"layer {pos} ({_kind(layer)}) is not supported here: expected {expected}; the "
            "hardware runs [Flatten] (Linear ReLU)* Linear, or Conv2d ReLU MaxPool2d Conv2d "
            f"ReLU [MaxPool2d] Flatten (Linear ReLU)* Linear; supported layers: {SUPPORTED}"
        )
    return UnsupportedModel(
        f"the model ends after layer {layers[-1][0] if layers else '(none)'}: expected {expected}"
    )


def _fc_tail(layers, i: int) -> list:
    """The ``(Linear ReLU)* Linear`` tail from ``layers[i]``: the Linear layers."""
    fcs = []
    while True:
        if i >= len(layers) or _kind(layers[i][1]) != "Linear":
            raise _pattern_error(layers, i, "Linear")
        fcs.append(layers[i][1])
        i += 1
        if i == len(layers):
            return fcs
        if _kind(layers[i][1]) != "ReLU":
            raise _pattern_error(layers, i, "ReLU or the end of the model")
        i += 1


def _expect(layers, i: int, kind: str) -> int:
    if i >= len(layers) or _kind(layers[i][1]) != kind:
        raise _pattern_error(layers, i, kind)
    return i + 1


def import_model(module, input_shape=None, classes: int | None = None, check: bool = True):
    """The pipeline model (:class:`MLP` or :class:`LeNet5`) with ``module``'s trained weights.

    Parameters
    ----------
    module : torch.nn.Module
        ``nn.Sequential``, a module whose children are its forward chain, or TorchScript.
    input_shape : tuple, optional
        One sample's shape (``(features,)`` or ``(C, H, W)``): required for a CNN, checked
        against the first layer of an MLP.
    classes : int, optional
        Checked against the last layer's outputs.
    check : bool
        Compare the float outputs of ``module`` and the imported model on random inputs.

    Raises
    ------
    UnsupportedModel
        One line naming the layer, its position and the supported set.
    """
    if not isinstance(module, nn.Module):
        raise UnsupportedModel(
            f"expected a torch.nn.Module, not {type(module).__name__}; supported layers: "
            f"{SUPPORTED}"
        )
    layers = _chain(module)
    if not layers:
        kind = _kind(module)
        if kind in _KINDS:  # a bare layer, e.g. a single Linear
            layers = [("0", module)]
        else:
            raise _unsupported("0", module, "no child layers to import")
    for pos, layer in layers:
        _check_layer(pos, layer)
    layers = [(p, m) for p, m in layers if _kind(m) not in _DROPPED]
    if any(_kind(m) == "Conv2d" for _, m in layers):
        model = _import_cnn(layers, input_shape)
    else:
        model = _import_mlp(layers, input_shape)
    if classes is not None and model.sizes[-1] != classes:
        raise UnsupportedModel(
            f"the model has {model.sizes[-1]} outputs, the data {classes} classes"
        )
    if check:
        _check_equal(module, model, input_shape)
    return model


def _import_mlp(layers, input_shape) -> MLP:
    i = 1 if layers and _kind(layers[0][1]) == "Flatten" else 0
    fcs = _fc_tail(layers, i)
    sizes = [fcs[0].weight.shape[1]] + [fc.weight.shape[0] for fc in fcs]
    for a, b in zip(fcs, fcs[1:], strict=False):
        if b.weight.shape[1] != a.weight.shape[0]:
            pos = next(p for p, m in layers if m is b)
            raise UnsupportedModel(
                f"layer {pos} (Linear) takes {b.weight.shape[1]} inputs, the layer before it "
                f"gives {a.weight.shape[0]}"
            )
    if input_shape is not None and int(np.prod(input_shape)) != sizes[0]:
        raise UnsupportedModel(
            f"layer {layers[i][0]} (Linear) takes {sizes[0]} inputs, the data has "
            f"{int(np.prod(input_shape))} features (shape {tuple(input_shape)})"
        )
    model = MLP(sizes)
    for j, fc in enumerate(fcs):
        setattr(model, f"fc{j + 1}", _linear(fc))
    return model


def _import_cnn(layers, input_shape) -> LeNet5:
    if input_shape is None or len(input_shape) != 3:
        raise UnsupportedModel(
            "a model with Conv2d layers needs image data of shape (C, H, W), not "
            f"{None if input_shape is None else tuple(input_shape)}"
        )
    i = _expect(layers, 0, "Conv2d")
    conv1 = layers[0][1]
    i = _expect(layers, i, "ReLU")
    i = _expect(layers, i, "MaxPool2d")
    j = _expect(layers, i, "Conv2d")
    conv2 = layers[i][1]
    i = _expect(layers, j, "ReLU")
    pool2 = i < len(layers) and _kind(layers[i][1]) == "MaxPool2d"
    i = _expect(layers, i + pool2, "Flatten")
    fcs = _fc_tail(layers, i)
    c, h, w = (int(v) for v in input_shape)
    if conv1.weight.shape[1] != c:
        raise UnsupportedModel(
            f"layer {layers[0][0]} (Conv2d) takes {conv1.weight.shape[1]} channels, the data "
            f"has {c}"
        )
    k1, k2 = conv1.weight.shape[-1], conv2.weight.shape[-1]
    h1, w1 = (h - k1 + 1) // 2, (w - k1 + 1) // 2
    h2, w2 = h1 - k2 + 1, w1 - k2 + 1
    if pool2:
        h2, w2 = h2 // 2, w2 // 2
    if min(h2, w2) < 1:
        pos = next(p for p, m in layers if m is conv2)
        raise UnsupportedModel(
            f"layer {pos} (Conv2d) leaves {max(h2, 0)}x{max(w2, 0)} pixels for {c}x{h}x{w} images"
        )
    flat = conv2.weight.shape[0] * h2 * w2
    if fcs[0].weight.shape[1] != flat:
        pos = next(p for p, m in layers if m is fcs[0])
        raise UnsupportedModel(
            f"layer {pos} (Linear) takes {fcs[0].weight.shape[1]} inputs, the flatten gives "
            f"{flat} for {c}x{h}x{w} images"
        )
    model = LeNet5.__new__(LeNet5)  # its own constructor derives K from the image size
    nn.Module.__init__(model)
    model.conv1, model.conv2, model.pool2 = _conv(conv1), _conv(conv2), pool2
    model.sizes = [flat] + [fc.weight.shape[0] for fc in fcs]
    model.n_fc = len(fcs)
    for n, fc in enumerate(fcs):
        setattr(model, f"fc{n + 1}", _linear(fc))
    return model


def _check_equal(module, model, input_shape) -> None:
    """Raise unless ``module`` and ``model`` give the same float outputs on random inputs."""
    shape = tuple(input_shape) if input_shape is not None else (model.sizes[0],)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand((8, *shape), generator=gen)
    param = next(iter(module.parameters()), None)
    was = module.training
    module.eval()
    try:
        with torch.no_grad():
            # the user's module in its own dtype and device (float64, a GPU), compared in float32
            want = module(x if param is None else x.to(param)).float().cpu()
            got = model(x)
    except RuntimeError as exc:
        raise UnsupportedModel(
            f"the model does not run on inputs of shape {shape} ({str(exc).splitlines()[0]})"
        ) from exc
    finally:
        module.train(was)
    if tuple(want.shape) != tuple(got.shape) or not torch.allclose(want, got, atol=1e-5, rtol=1e-4):
        raise UnsupportedModel(
            "the model's output differs from the chain of its layers (outputs "
            f"{tuple(want.shape)} vs {tuple(got.shape)}): its forward must be its children in "
            f"order, convolutions stride 1 without padding; supported layers: {SUPPORTED}"
        )


_ARCH_ITEM = re.compile(r"(linear|conv2d|relu|maxpool2d|maxpool|flatten)((?:\s+\d+)*)")


def model_from_arch(arch: str) -> nn.Sequential:
    """An ``nn.Sequential`` from a layer list such as ``"linear 16 64, relu, linear 64 5"`` or
    ``"conv2d 1 6 5, relu, maxpool2d, conv2d 6 16 5, relu, maxpool2d, flatten, linear 256 10"``
    (``linear IN OUT``, ``conv2d IN OUT K``): the module a ``state_dict`` is loaded into."""
    mods = []
    for raw in arch.split(","):
        item = raw.strip().lower()
        m = _ARCH_ITEM.fullmatch(item)
        if not m:
            raise UnsupportedModel(
                f"--arch item {raw.strip()!r} is not one of: linear IN OUT, conv2d IN OUT K, "
                "relu, maxpool2d, flatten"
            )
        kind, nums = m.group(1), [int(v) for v in m.group(2).split()]
        want = {"linear": 2, "conv2d": 3}.get(kind, 0)
        if len(nums) != want:
            raise UnsupportedModel(f"--arch item {raw.strip()!r} takes {want} numbers")
        if kind == "linear":
            mods.append(nn.Linear(*nums))
        elif kind == "conv2d":
            mods.append(nn.Conv2d(*nums))
        elif kind == "relu":
            mods.append(nn.ReLU())
        elif kind.startswith("maxpool"):
            mods.append(nn.MaxPool2d(2))
        else:
            mods.append(nn.Flatten())
    return nn.Sequential(*mods)


def load_model_file(path, arch: str | None = None) -> nn.Module:
    """The module in ``path``: an ONNX file (``.onnx``, :func:`load_onnx`), TorchScript, a whole
    pickled ``nn.Module`` or a ``state_dict`` (loaded into :func:`model_from_arch` of
    ``arch``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    if path.suffix.lower() == ".onnx":
        return load_onnx(path)
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError):
        pass  # not TorchScript
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is one line for the user
        raise UnsupportedModel(
            f"{path}: cannot read a model ({type(exc).__name__}: {str(exc).splitlines()[0]})"
        ) from exc
    if isinstance(obj, nn.Module):
        return obj
    if isinstance(obj, dict) and obj and all(torch.is_tensor(v) for v in obj.values()):
        if arch is None:
            raise UnsupportedModel(
                f"{path} holds a state_dict, not a model: give its layers with --arch (e.g. "
                '"linear 16 64, relu, linear 64 5"), or save the whole model (torch.save(model)) '
                "or TorchScript (torch.jit.save(torch.jit.script(model)))"
            )
        module = model_from_arch(arch)
        own = list(module.state_dict())
        if len(own) != len(obj):
            raise UnsupportedModel(
                f"{path}: the state_dict has {len(obj)} tensors, --arch {arch!r} {len(own)}"
            )
        renamed = dict(zip(own, obj.values(), strict=True))  # by order: any prefix works
        try:
            module.load_state_dict(renamed)
        except RuntimeError as exc:
            raise UnsupportedModel(
                f"{path}: the state_dict does not fit --arch {arch!r} "
                f"({str(exc).splitlines()[-1].strip()})"
            ) from exc
        return module
    raise UnsupportedModel(
        f"{path} holds a {type(obj).__name__}, not a torch.nn.Module, TorchScript or state_dict"
    )


# ONNX ------------------------------------------------------------------------------------------

SUPPORTED_ONNX = (
    "Gemm (transA 0), MatMul (by a constant, + Add of a constant bias), Conv (2-D, stride 1, "
    "no padding, dilation 1, group 1, odd square kernel), Relu, MaxPool (2x2, stride 2), "
    "Flatten (axis 1), Reshape (to (batch, features)); Identity and Dropout are dropped, "
    "Constant and the shape ops of a Reshape (Shape, Gather, Unsqueeze, Squeeze, Concat, Slice, "
    "Cast) are evaluated"
)
# nodes off the data path: they compute a Reshape's target shape
_SHAPE_OPS = {"Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast", "Constant"}


def _onnx():
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - the project's environment has it
        raise UnsupportedModel(
            "reading ONNX needs the onnx package (pip install -c constraints.txt onnx==1.23.2, "
            "or the project's `make setup`)"
        ) from exc
    return onnx


def _node_error(i: int, node, why: str = "", here: bool = False) -> UnsupportedModel:
    text = f"node {i} ({node.op_type} {node.name!r}" + (f": {why})" if why else ")")
    text += " is not supported here" if here else " is not supported"
    return UnsupportedModel(f"{text}; supported ONNX operators: {SUPPORTED_ONNX}")


def _attrs(node) -> dict:
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def _constant_value(node) -> np.ndarray:
    from onnx import numpy_helper

    a = _attrs(node)
    if "value" in a:
        return numpy_helper.to_array(a["value"])
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32)):
        if key in a:
            return np.asarray(a[key], dtype=dtype)
    for key in ("value_int", "value_ints"):
        if key in a:
            return np.asarray(a[key], dtype=np.int64)
    raise UnsupportedModel(f"Constant {node.name!r}: only tensor, float and int values")


def _onnx_input_shape(graph, init_names) -> tuple[str, list]:
    inputs = [v for v in graph.input if v.name not in init_names]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise UnsupportedModel(
            f"the ONNX graph has {len(inputs)} inputs and {len(graph.output)} outputs: the "
            "hardware runs one input and one output"
        )
    dims = inputs[0].type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if len(shape) not in (2, 4) or any(s is None or s < 1 for s in shape[1:]):
        text = [s if s is not None else "?" for s in shape]
        raise UnsupportedModel(
            f"the ONNX graph's input {inputs[0].name!r} has shape {text}: expected (batch, "
            "features) or (batch, C, H, W), static except the batch"
        )
    return inputs[0].name, shape


def _const(consts, name: str, i: int, node, what: str) -> np.ndarray:
    if name not in consts:
        raise _node_error(i, node, f"its {what} must be an initializer or a Constant")
    return consts[name]


def _check_attrs(i, node, a: dict, want: dict) -> None:
    """Reject any attribute of ``node`` not in ``want`` or with another value (``want``'s
    values: the allowed value, a list of allowed values, or a callable check)."""
    for key, value in a.items():
        if key not in want:
            raise _node_error(i, node, f"attribute {key}")
        ok = want[key]
        good = ok(value) if callable(ok) else value in ok if isinstance(ok, tuple) else value == ok
        if not good:
            raise _node_error(i, node, f"{key} {value}")


def _ones(v) -> bool:
    return all(int(x) == 1 for x in v)


def _zeros(v) -> bool:
    return all(int(x) == 0 for x in v)


def _linear_from(weight: np.ndarray, bias: np.ndarray) -> nn.Linear:
    out_f, in_f = weight.shape
    lin = nn.Linear(in_f, out_f)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(np.asarray(weight, dtype=np.float32)))
        lin.bias.copy_(torch.tensor(np.asarray(bias, dtype=np.float32)))
    return lin


def _bias_vector(b, out: int, i, node) -> np.ndarray:
    b = np.array(b, dtype=np.float32)  # a writable copy
    if b.size == 1:
        return np.full(out, float(b.reshape(())), np.float32)
    if b.size != out or b.shape[-1] != out:
        raise _node_error(i, node, f"bias of shape {list(b.shape)} for {out} outputs")
    return b.reshape(out)


def _map_node(i, node, consts, shapes, cur, bias_of):
    """The torch layer of data-path node ``node`` (or None: dropped), checking its attributes
    and that it reads ``cur``; ``bias_of``: the Linear whose output ``cur`` is (for Add);
    ``shapes``: the outputs of shape ops (a Reshape's target)."""
    op, a = node.op_type, _attrs(node)
    data_in = [n for n in node.input if n and n not in consts and n not in shapes]
    if data_in != [cur]:
        raise _node_error(
            i, node, "not on the chain from the graph input (each node takes the last one's "
            "output)", here=True
        )  # fmt: skip
    if op in ("Identity", "Dropout"):
        return None
    if op == "Relu":
        return nn.ReLU()
    if op == "Flatten":
        _check_attrs(i, node, a, {"axis": 1})
        return nn.Flatten()
    if op == "Reshape":
        _check_attrs(i, node, a, {"allowzero": 0})
        return nn.Flatten()  # that the result is (batch, features) is checked on the evaluation
    if op == "Gemm":
        _check_attrs(
            i, node, a,
            {"alpha": lambda v: True, "beta": lambda v: True, "transA": 0, "transB": (0, 1)},
        )  # fmt: skip
        w = _const(consts, node.input[1], i, node, "weight (B)").astype(np.float32)
        if w.ndim != 2:
            raise _node_error(i, node, f"weight of shape {list(w.shape)}")
        w = (w if a.get("transB", 0) else w.T) * np.float32(a.get("alpha", 1.0))
        b = np.zeros(w.shape[0], np.float32)
        if len(node.input) > 2 and node.input[2]:
            c = _const(consts, node.input[2], i, node, "bias (C)")
            b = _bias_vector(c, w.shape[0], i, node) * np.float32(a.get("beta", 1.0))
        return _linear_from(w, b)
    if op == "MatMul":
        if node.input[0] != cur:
            raise _node_error(i, node, "only the data times a constant weight", here=True)
        w = _const(consts, node.input[1], i, node, "weight").astype(np.float32)
        if w.ndim != 2:
            raise _node_error(i, node, f"weight of shape {list(w.shape)}")
        return _linear_from(w.T, np.zeros(w.shape[1], np.float32))
    if op == "Add":
        if bias_of is None:
            raise _node_error(i, node, "only as the bias of a MatMul or Gemm", here=True)
        other = node.input[1] if node.input[0] == cur else node.input[0]
        b = _bias_vector(consts[other], bias_of.out_features, i, node)
        with torch.no_grad():
            bias_of.bias.add_(torch.tensor(b))
        return None
    if op == "Conv":
        _check_attrs(
            i, node, a,
            {"auto_pad": ("NOTSET", "VALID"), "dilations": _ones, "group": 1, "pads": _zeros,
             "strides": _ones, "kernel_shape": lambda v: True},
        )  # fmt: skip
        w = _const(consts, node.input[1], i, node, "weight").astype(np.float32)
        if w.ndim != 4:
            raise _node_error(i, node, f"weight of shape {list(w.shape)}, only 2-D convolutions")
        o, c, kh, kw = w.shape
        if kh != kw or kh % 2 == 0:
            raise _node_error(i, node, f"kernel {kh}x{kw}, the engine takes odd K x K")
        b = np.zeros(o, np.float32)
        if len(node.input) > 2 and node.input[2]:
            b = _bias_vector(_const(consts, node.input[2], i, node, "bias"), o, i, node)
        conv = nn.Conv2d(c, o, kh)
        with torch.no_grad():
            conv.weight.copy_(torch.tensor(w))
            conv.bias.copy_(torch.tensor(b))
        return conv
    if op == "MaxPool":
        _check_attrs(
            i, node, a,
            {"auto_pad": ("NOTSET", "VALID"), "ceil_mode": 0, "dilations": _ones,
             "kernel_shape": lambda v: list(v) == [2, 2], "pads": _zeros,
             "storage_order": lambda v: True, "strides": lambda v: list(v) == [2, 2]},
        )  # fmt: skip
        if list(a.get("strides", [1, 1])) != [2, 2]:
            raise _node_error(i, node, "strides 1, only 2x2 with stride 2")
        if len([n for n in node.output if n]) != 1:
            raise _node_error(i, node, "its Indices output")
        return nn.MaxPool2d(2)
    raise _node_error(i, node)


def _evaluate(graph, consts, input_name: str, x: np.ndarray) -> dict:
    """Every tensor of ``graph`` (nodes already checked by :func:`load_onnx`) on input ``x``,
    in NumPy float64: an evaluation independent of the torch layers."""
    from numpy.lib.stride_tricks import sliding_window_view

    v = {k: np.asarray(c) for k, c in consts.items()}
    v[input_name] = x.astype(np.float64)
    for node in graph.node:
        op, a = node.op_type, _attrs(node)
        ins = [v[n] if n else None for n in node.input]
        if op == "Constant":
            continue
        if op in ("Identity", "Dropout"):
            y = ins[0]
        elif op == "Relu":
            y = np.maximum(ins[0], 0)
        elif op == "Flatten":
            y = ins[0].reshape(int(np.prod(ins[0].shape[:1])), -1)
        elif op == "Reshape":
            shape = [d if d != 0 else ins[0].shape[j] for j, d in enumerate(ins[1].tolist())]
            y = ins[0].reshape(shape)
        elif op == "Gemm":
            b = ins[1].T if a.get("transB", 0) else ins[1]
            y = a.get("alpha", 1.0) * (ins[0] @ b)
            if len(ins) > 2 and ins[2] is not None:
                y = y + a.get("beta", 1.0) * ins[2]
        elif op == "MatMul":
            y = ins[0] @ ins[1]
        elif op == "Add":
            y = ins[0] + ins[1]
        elif op == "Conv":
            win = sliding_window_view(ins[0], ins[1].shape[2:], axis=(2, 3))
            y = np.einsum("nchwij,ocij->nohw", win, ins[1].astype(np.float64))
            if len(ins) > 2 and ins[2] is not None:
                y = y + ins[2].reshape(1, -1, 1, 1)
        elif op == "MaxPool":
            n, c, h, w = ins[0].shape
            t = ins[0][:, :, : h // 2 * 2, : w // 2 * 2]
            y = t.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))
        elif op == "Shape":
            s = np.asarray(ins[0].shape, np.int64)
            y = s[a.get("start", 0) : a.get("end", len(s))]
        elif op == "Gather":
            y = np.take(ins[0], ins[1].astype(np.int64), axis=a.get("axis", 0))
        elif op == "Unsqueeze":
            axes = ins[1] if len(ins) > 1 else a["axes"]
            y = np.expand_dims(ins[0], tuple(int(d) for d in np.ravel(axes)))
        elif op == "Squeeze":
            axes = ins[1] if len(ins) > 1 and ins[1] is not None else a.get("axes")
            y = np.squeeze(ins[0], None if axes is None else tuple(int(d) for d in np.ravel(axes)))
        elif op == "Concat":
            y = np.concatenate([np.atleast_1d(t) for t in ins], axis=a.get("axis", 0))
        elif op == "Slice":
            starts, ends = ins[1], ins[2]
            axes = ins[3] if len(ins) > 3 and ins[3] is not None else range(len(starts))
            steps = ins[4] if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
            idx = [slice(None)] * ins[0].ndim
            for ax, s0, e0, st in zip(axes, starts, ends, steps, strict=True):
                idx[int(ax)] = slice(int(s0), int(e0), int(st))
            y = ins[0][tuple(idx)]
        elif op == "Cast":
            from onnx import helper

            y = ins[0].astype(helper.tensor_dtype_to_np_dtype(a["to"]))
        else:  # pragma: no cover - load_onnx rejected it
            raise UnsupportedModel(f"no evaluation of {op}")
        v[node.output[0]] = y
    return v


def load_onnx(path, check: bool = True) -> nn.Sequential:
    """The layers of the ONNX network in ``path`` as an ``nn.Sequential`` of ``Linear``,
    ``Conv2d``, ``ReLU``, ``MaxPool2d(2)`` and ``Flatten`` (child ``i``: ONNX node ``i``), the
    same modules :func:`import_model` takes from a PyTorch network, weights from the graph's
    initializers. The graph must be one chain from its input to its output of
    :data:`SUPPORTED_ONNX` (``onnx.checker`` first). With ``check``, the graph is evaluated in
    NumPy on 4 random inputs (of its input's shape; a dynamic batch taken as 4) and the layers
    must give the same outputs (``atol`` 1e-5, ``rtol`` 1e-4)."""
    onnx = _onnx()
    from onnx import numpy_helper

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such ONNX file")
    try:
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
    except Exception as exc:  # noqa: BLE001 - a bad file is one line for the user
        first = (str(exc).strip().splitlines() or [""])[0]
        raise UnsupportedModel(
            f"{path}: not a valid ONNX model ({type(exc).__name__}: {first})"
        ) from exc
    graph = proto.graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    input_name, shape = _onnx_input_shape(graph, set(consts))
    for node in graph.node:
        if node.op_type == "Constant":
            consts[node.output[0]] = _constant_value(node)
    layers, cur, bias_of, reshapes, shapes = [], input_name, None, [], set()
    for i, node in enumerate(graph.node):
        if node.op_type in _SHAPE_OPS:
            shapes.update(node.output)
            continue  # off the data path: evaluated below
        if node.op_type == "Reshape" and node.input[1] not in {*consts, *shapes}:
            raise _node_error(i, node, "its shape must be computed by shape ops", here=True)
        layer = _map_node(i, node, consts, shapes, cur, bias_of)
        if layer is not None:
            layers.append((str(i), layer))
        if node.op_type == "Reshape":
            reshapes.append((i, node))
        if isinstance(layer, nn.Linear):
            bias_of = layer
        elif node.op_type not in ("Add", "Identity", "Dropout"):
            bias_of = None
        cur = node.output[0]
    if cur != graph.output[0].name:
        raise UnsupportedModel(
            f"the ONNX graph's output {graph.output[0].name!r} is not the end of its chain of "
            f"supported nodes ({cur!r}); supported ONNX operators: {SUPPORTED_ONNX}"
        )
    if not layers:
        raise UnsupportedModel(f"{path}: the ONNX graph has no layers")
    from collections import OrderedDict

    module = nn.Sequential(OrderedDict(layers)).eval()
    if not check and not reshapes:
        return module
    batch = shape[0] or 4
    x = np.random.default_rng(0).random((batch, *shape[1:]))
    values = _evaluate(graph, consts, input_name, x)
    for i, node in reshapes:
        src, got = values[node.input[0]].shape, values[node.output[0]].shape
        if len(got) != 2 or got[0] != src[0]:
            raise _node_error(
                i, node, f"reshapes {list(src)} to {list(got)}, only to (batch, features)"
            )
    if check:
        want = values[graph.output[0].name]
        with torch.no_grad():
            got = module(torch.from_numpy(x.astype(np.float32))).double().numpy()
        if want.shape != got.shape or not np.allclose(want, got, atol=1e-5, rtol=1e-4):
            raise UnsupportedModel(
                f"{path}: the imported layers' outputs differ from the ONNX graph's (shapes "
                f"{list(got.shape)} and {list(want.shape)}); supported ONNX operators: "
                f"{SUPPORTED_ONNX}"
            )
    return module
