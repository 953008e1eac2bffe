"""A CNN as the hardware builds it: conv and pool stages, the flatten, the fully connected layers.

:func:`cnn_from_bundle` reads a version-2 bundle (docs/bundle.md) and checks, before anything is
elaborated, that every layer is one the hardware supports; a layer that is not gives one
:class:`UnsupportedLayer` error naming the layer and what is unsupported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtl_gen.neuron import LayerWeights
from rtl_gen.neuron.weights import layers_from_bundle, load_bundle_any

__all__ = ["CnnSpec", "ConvSpec", "PoolSpec", "UnsupportedLayer", "cnn_from_bundle"]


class UnsupportedLayer(ValueError):
    """A bundle layer the CNN hardware does not build (the message names the layer)."""


@dataclass(frozen=True)
class ConvSpec:
    """One convolution layer: integer weights ``(C_out, C_in, K, K)``, bias, requantisation."""

    name: str
    in_shape: tuple[int, int, int]  # (C, H, W)
    weights: np.ndarray
    bias: np.ndarray
    shift: int
    activation: str
    out_bits: int
    in_bits: int
    weight_format: str = "pow2"

    @property
    def kernel(self) -> int:
        return int(self.weights.shape[-1])

    @property
    def out_shape(self) -> tuple[int, int, int]:
        c, h, w = self.in_shape
        k = self.kernel
        return (int(self.weights.shape[0]), h - k + 1, w - k + 1)


@dataclass(frozen=True)
class PoolSpec:
    """A 2x2, stride-2 max-pool of unsigned ``bits``-wide values."""

    name: str
    in_shape: tuple[int, int, int]
    bits: int

    @property
    def out_shape(self) -> tuple[int, int, int]:
        c, h, w = self.in_shape
        return (c, h // 2, w // 2)


@dataclass(frozen=True)
class CnnSpec:
    """``stages`` (conv and pool, in order), then the flatten (``hwc``) into ``fc``."""

    input_shape: tuple[int, int, int]
    input_bits: int
    stages: tuple
    fc: tuple[LayerWeights, ...]

    @property
    def convs(self) -> list[ConvSpec]:
        return [s for s in self.stages if isinstance(s, ConvSpec)]

    @property
    def flatten_shape(self) -> tuple[int, int, int]:
        return self.stages[-1].out_shape if self.stages else self.input_shape

    @property
    def classes(self) -> int:
        return self.fc[-1].out_features


def _shape(spec: dict, key: str, name: str) -> tuple[int, ...]:
    value = spec.get(key)
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) for v in value):
        raise UnsupportedLayer(f"layer {name}: {key} must be a list of integers, not {value!r}")
    return tuple(value)


def cnn_from_bundle(bundle, baseline: bool = False) -> CnnSpec:
    """The CNN of a version-2 bundle (path, ``Bundle`` or ``(manifest, arrays)``), or with
    ``baseline`` its dense 16-bit baseline (the uncompressed network, ``"baseline"`` in the
    manifest, ``baseline.*`` arrays).

    Supported: ``conv2d`` (stride 1, no padding, odd square kernel, power-of-two weights or, in
    the baseline, dense ones; ReLU), ``maxpool2d`` (2x2, stride 2), one ``flatten`` in ``hwc``
    order, then ``linear`` layers.
    """
    manifest, arrays = load_bundle_any(bundle)
    if baseline:
        if "baseline" not in manifest:
            raise UnsupportedLayer("the bundle has no dense baseline ('baseline' in the manifest)")
        layers = manifest["baseline"]["layers"]
        arrays = {k.removeprefix("baseline."): v for k, v in arrays.items()
                  if k.startswith("baseline.")}  # fmt: skip
    else:
        layers = manifest["layers"]
    shape = tuple(manifest["input"]["shape"])
    if len(shape) != 3:
        raise UnsupportedLayer(f"input shape must be [C, H, W] for a CNN, not {list(shape)}")
    bits, signed = int(manifest["input"]["bits"]), bool(manifest["input"].get("signed", False))
    if signed:
        raise UnsupportedLayer("input: signed pixels are not supported (unsigned codes only)")
    stages, fc_start, flat = [], None, None
    current = shape
    for i, spec in enumerate(layers):
        name, kind = spec.get("name", f"#{i}"), spec.get("kind", "linear")
        if kind == "linear":
            fc_start = i
            break
        if flat is not None:
            raise UnsupportedLayer(f"layer {name}: {kind} after the flatten is not supported")
        if kind in ("conv2d", "maxpool2d", "flatten"):
            in_shape = _shape(spec, "in_shape", name)
            if in_shape != current:
                raise UnsupportedLayer(
                    f"layer {name}: in_shape {list(in_shape)} does not chain with the previous "
                    f"output {list(current)}"
                )
        if kind == "conv2d":
            for key, want in (("stride", 1), ("padding", 0)):
                if spec.get(key, want) != want:
                    raise UnsupportedLayer(
                        f"layer {name}: {key} {spec.get(key)!r} is not supported (only {want})"
                    )
            fmt = spec.get("weight_format")
            if fmt not in ("pow2", "dense"):
                raise UnsupportedLayer(
                    f"layer {name}: weight_format {fmt!r} is not supported (the conv hardware "
                    "shifts and adds pow2 weights, or multiplies dense ones)"
                )
            if spec.get("activation") != "relu":
                raise UnsupportedLayer(
                    f"layer {name}: activation {spec.get('activation')!r} is not supported "
                    "(relu only)"
                )
            w = np.asarray(arrays[f"{name}.weight_int"], dtype=np.int64)
            k = int(spec["kernel_size"])
            if w.shape != (spec["out_channels"], current[0], k, k) or k % 2 == 0:
                raise UnsupportedLayer(
                    f"layer {name}: weights of shape {w.shape} with kernel_size {k} are not "
                    f"supported (expected (out, {current[0]}, K, K), odd K)"
                )
            shift = spec["input_frac_bits"] + spec["weight_frac_bits"] - spec["output_frac_bits"]
            conv = ConvSpec(
                name=name,
                in_shape=current,
                weights=w,
                bias=np.asarray(arrays[f"{name}.bias_int"], dtype=np.int64),
                shift=int(shift),
                activation="relu",
                out_bits=int(spec["output_bits"]),
                in_bits=bits,
                weight_format=fmt,
            )
            stages.append(conv)
            current, bits = conv.out_shape, conv.out_bits
        elif kind == "maxpool2d":
            if spec.get("kernel_size") != 2 or spec.get("stride") != 2:
                raise UnsupportedLayer(
                    f"layer {name}: max-pool kernel_size {spec.get('kernel_size')!r}, stride "
                    f"{spec.get('stride')!r} is not supported (2x2, stride 2 only)"
                )
            pool = PoolSpec(name=name, in_shape=current, bits=bits)
            stages.append(pool)
            current = pool.out_shape
        elif kind == "flatten":
            if spec.get("order") != "hwc":
                raise UnsupportedLayer(
                    f"layer {name}: flatten order {spec.get('order')!r} is not supported "
                    "(hwc only: the order in which the pixel stream delivers features)"
                )
            flat = current
        else:
            raise UnsupportedLayer(f"layer {name}: kind {kind!r} is not supported")
    if flat is None or fc_start is None:
        raise UnsupportedLayer("a CNN bundle needs a flatten followed by linear layers")
    linear = {
        "input": {"bits": bits, "signed": False},
        "layers": layers[fc_start:],
    }
    fc = layers_from_bundle((linear, arrays))
    features = int(np.prod(flat))
    if fc[0].in_features != features:
        raise UnsupportedLayer(
            f"layer {fc[0].name}: {fc[0].in_features} inputs do not chain with the flatten's "
            f"{features} features"
        )
    return CnnSpec(input_shape=shape, input_bits=int(manifest["input"]["bits"]),
                   stages=tuple(stages), fc=tuple(fc))  # fmt: skip
