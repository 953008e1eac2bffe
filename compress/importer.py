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
    "import_model",
    "load_model_file",
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
    """The module in ``path``: TorchScript, a whole pickled ``nn.Module`` or a ``state_dict``
    (loaded into :func:`model_from_arch` of ``arch``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
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
