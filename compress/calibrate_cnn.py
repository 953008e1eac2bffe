"""Integer layers of the LeNet-5 bundle (version 2, ``docs/bundle.md``): the layer list with its
shapes (conv, pool, flatten, linear), fc1's columns permuted to the ``hwc`` flatten order, and
the fixed-point calibration of the power-of-two model and of the dense 16-bit baseline, each
choosing the activation range that gives the best integer accuracy on the training data."""

from __future__ import annotations

import numpy as np
import torch

from . import fixedpoint, integer_ref, pow2
from .models import prunable

__all__ = [
    "calibrate_cnn_pow2",
    "cnn_dense_baseline",
    "cnn_input_spec",
    "cnn_int_layers",
    "hwc_permutation",
]

# activation ranges tried by the calibration, as for the MLP (calibrate.calibrate_pow2)
METHODS = (("max", None), ("percentile", 99.999), ("percentile", 99.99), ("percentile", 99.9))


def cnn_input_spec(data) -> dict:
    """The bundle's ``input`` entry: unsigned 8-bit pixels of shape ``[C, H, W]``."""
    return {
        "shape": list(data.image_shape),
        "bits": 8,
        "frac_bits": data.input_frac_bits,
        "signed": False,
    }


def hwc_permutation(c: int, h: int, w: int) -> np.ndarray:
    """``src`` with ``src[(y * w + x) * c + ch] = ch * h * w + y * w + x``: column ``q`` of the
    hwc-ordered fc1 is PyTorch's ``(c, h, w)`` flatten column ``src[q]``."""
    return np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).ravel()


def _layer_plan(image_shape, weights: dict, pool2: bool) -> list[dict]:
    """Names, kinds and shapes of every layer of LeNet-5 in forward order (no number formats)."""
    shape = list(image_shape)
    plan = []
    for name, w in weights.items():
        if w.ndim == 4:
            o, c, k, _ = w.shape
            if c != shape[0]:
                raise ValueError(f"{name} has {c} input channels, its input has {shape[0]}")
            out = [o, shape[1] - k + 1, shape[2] - k + 1]
            plan.append(
                {
                    "name": name,
                    "kind": "conv2d",
                    "in_shape": shape,
                    "out_shape": out,
                    "in_channels": c,
                    "out_channels": o,
                    "kernel_size": k,
                    "stride": 1,
                    "padding": 0,
                }
            )
            shape = out
            if name == "conv1" or pool2:
                out = [shape[0], shape[1] // 2, shape[2] // 2]
                pname = "pool" + name.removeprefix("conv")
                plan.append(
                    {
                        "name": pname,
                        "kind": "maxpool2d",
                        "in_shape": shape,
                        "out_shape": out,
                        "kernel_size": 2,
                        "stride": 2,
                    }
                )
                shape = out
        else:
            if len(shape) == 3:
                flat = [shape[0] * shape[1] * shape[2]]
                plan.append(
                    {
                        "name": "flatten",
                        "kind": "flatten",
                        "in_shape": shape,
                        "out_shape": flat,
                        "order": "hwc",
                    }
                )
                shape = flat
            if w.shape[1] != shape[0]:
                raise ValueError(f"{name} has {w.shape[1]} inputs, its input has {shape[0]}")
            plan.append(
                {
                    "name": name,
                    "kind": "linear",
                    "in_shape": shape,
                    "out_shape": [int(w.shape[0])],
                    "in_features": int(w.shape[1]),
                    "out_features": int(w.shape[0]),
                }
            )
            shape = [int(w.shape[0])]
    return plan


def cnn_int_layers(
    image_shape,
    weight_int: dict,
    weight_frac_bits: dict,
    biases: dict,
    input_frac_bits: int,
    out_frac_bits: dict,
    *,
    pool2: bool = True,
    output_bits: int = 8,
    extra: dict | None = None,
):
    """``(specs, arrays)`` of a LeNet-5 bundle.

    Parameters
    ----------
    image_shape : tuple
        ``(C, H, W)`` of the input.
    weight_int : dict
        Integer weights by layer name in forward order, in PyTorch's layout (fc1's columns in
        ``(c, h, w)`` order: they are permuted to ``hwc`` here).
    weight_frac_bits, biases, out_frac_bits : dict
        Per weight layer: weight fraction bits, float bias, output fraction bits.
    input_frac_bits : int
    pool2 : bool
        Whether a max pool follows conv2 (LeNet-5 on 28x28; not on the 8x8 digits).
    output_bits : int
    extra : dict, optional
        Additional keys per weight layer (weight format, codebook bits...).

    Returns
    -------
    tuple
        ``(specs, arrays)``: every layer's manifest entry in forward order and the
        ``<name>.weight_int`` / ``<name>.bias_int`` arrays. Biases are rounded half up to the
        accumulator format; pool and flatten layers carry their input's format.
    """
    plan = _layer_plan(image_shape, {n: np.asarray(w) for n, w in weight_int.items()}, pool2)
    specs, arrays = [], {}
    fin, last_name = int(input_frac_bits), list(weight_int)[-1]
    perm = None
    for spec in plan:
        name, kind = spec["name"], spec["kind"]
        if kind == "maxpool2d":
            specs.append(spec)
            continue
        if kind == "flatten":
            perm = hwc_permutation(*spec["in_shape"])
            specs.append(spec)
            continue
        w = np.asarray(weight_int[name], dtype=np.int64)
        if kind == "linear" and perm is not None:
            w, perm = w[:, perm], None
        wf = int(weight_frac_bits[name])
        b = np.floor(np.asarray(biases[name], dtype=np.float64) * 2.0 ** (fin + wf) + 0.5)
        b = np.clip(b, -(2**31), 2**31 - 1).astype(np.int64)
        fout = int(out_frac_bits[name])
        shift = fin + wf - fout
        spec.update(
            {
                "weight_frac_bits": wf,
                "input_frac_bits": fin,
                "output_frac_bits": fout,
                "output_bits": output_bits,
                "activation": "none" if name == last_name else "relu",
                # every layer's input is unsigned 8-bit: the image, or a ReLU output (max pooled)
                "acc_bits": integer_ref.acc_bits(w.reshape(len(w), -1), b, 8, False, shift),
            }
        )
        if extra:
            spec.update(extra[name])
        specs.append(spec)
        arrays[f"{name}.weight_int"] = w.astype(np.int32)
        arrays[f"{name}.bias_int"] = b.astype(np.int32)
        fin = fout
    return specs, arrays


def _activations(model, data, n: int) -> dict:
    """Float outputs of every weight layer on the first ``n`` training images."""
    x = torch.as_tensor(data.x_train[:n])
    with torch.no_grad():
        acts = [a.numpy() for a in model.hidden_activations(x)]
    return dict(zip(prunable(model), acts, strict=True))


def _shifts_positive(specs) -> bool:
    return all(
        sp["input_frac_bits"] + sp["weight_frac_bits"] - sp["output_frac_bits"] > 0
        for sp in specs
        if sp["kind"] in ("conv2d", "linear")
    )


def _choose(cfg, data, acts: dict, build, pcts, log=None, tag="", refine: int = 0) -> tuple:
    """Try every activation range in ``pcts`` (``(method, percentile)``); keep the layers with
    the best integer accuracy on the calibration (training) images. ``refine``: then up to that
    many passes of a per-layer search, each layer's output fraction bits moved by -1 and +1 and
    the move kept when it raises the integer accuracy on the same training images (every
    requantisation shift kept positive). Returns ``(accuracy, label, specs, arrays)``."""
    man0 = {"input": cnn_input_spec(data)}
    xq = integer_ref.quantize_inputs(man0, data.x_train[: cfg.calib_samples])
    labels = data.y_train[: len(xq)]
    names = list(acts)
    best = None
    for method, pct in pcts:
        fr = {
            n: fixedpoint.frac_bits_for(
                fixedpoint.activation_range(acts[n], method, pct or 100),
                cfg.output_bits,
                signed=n == names[-1],
            )
            for n in names
        }
        specs, arrays = build(fr)
        pred = integer_ref.predict(({**man0, "layers": specs}, arrays), xq)
        acc = float(np.mean(pred == labels))
        label = method if pct is None else f"percentile {pct}"
        if log is not None:
            log(
                f"{tag}calibration {label}: frac bits {list(fr.values())}, "
                f"train integer accuracy {100 * acc:.2f}%"
            )
        if best is None or acc > best[0] + 1e-12:
            best = (acc, label, specs, arrays, fr)
    acc, label, specs, arrays, fr = best
    moved = False
    for _ in range(refine):
        improved = False
        for n in names:
            for d in (-1, 1):
                trial = {**fr, n: fr[n] + d}
                t_specs, t_arrays = build(trial)
                if not _shifts_positive(t_specs):
                    continue
                pred = integer_ref.predict(({**man0, "layers": t_specs}, t_arrays), xq)
                t_acc = float(np.mean(pred == labels))
                if t_acc > acc + 1e-12:
                    acc, specs, arrays, fr = t_acc, t_specs, t_arrays, trial
                    improved = moved = True
        if not improved:
            break
    if moved:
        label += " + per-layer search"
        if log is not None:
            log(
                f"{tag}calibration {label}: frac bits {list(fr.values())}, "
                f"train integer accuracy {100 * acc:.2f}%"
            )
    return acc, label, specs, arrays


def calibrate_cnn_pow2(cfg, model, masks: dict, formats: dict, data, log, frac_bits=None):
    """Integer layers of the power-of-two LeNet-5 (``frac_bits``: every weight layer's output
    fraction bits by name, given instead of calibrated: the formats the quantisation-aware
    fine-tuning trained with, `compress.qat`).

    Returns
    -------
    tuple
        ``(method, specs, arrays, codes)`` as `compress.calibrate.calibrate_pow2`; ``codes`` is
        ``{name: (codes, sign, exponent, mask)}`` in the bundle's layout (fc1's columns in
        ``hwc`` order, like its ``weight_int``).
    """
    layers = prunable(model)
    wint, wf, biases, extra, raw = {}, {}, {}, {}, {}
    for n, m in layers.items():
        fmt = formats[m]
        w_i, c, sgn, e = pow2.encode(m.weight.detach(), fmt)
        wint[n], wf[n] = w_i, fmt.weight_frac_bits
        biases[n] = m.bias.detach().numpy()
        raw[n] = (c, sgn, e, masks[m].numpy())
        extra[n] = {
            "weight_format": "pow2",
            "exp_bits": cfg.exp_bits,
            "pow2_max_exp": fmt.max_exp,
            "codebook_bits": cfg.exp_bits + 1,
            "index_bits": cfg.conv_index_bits if m.weight.ndim == 4 else cfg.index_bits,
        }

    def build(fr):
        return cnn_int_layers(
            data.image_shape,
            wint,
            wf,
            biases,
            data.input_frac_bits,
            fr,
            pool2=model.pool2,
            output_bits=cfg.output_bits,
            extra=extra,
        )

    if frac_bits is None:
        acts = _activations(model, data, cfg.calib_samples)
        _, method, specs, arrays = _choose(
            cfg, data, acts, build, METHODS, log, refine=getattr(cfg, "calib_refine", 0)
        )
    else:
        method = "given"
        specs, arrays = build({n: int(frac_bits[n]) for n in layers})
    codes = {}
    for spec in specs:
        if spec["kind"] == "flatten":
            perm = hwc_permutation(*spec["in_shape"])
        elif spec["kind"] == "linear" and spec["name"] == "fc1":
            codes["fc1"] = tuple(a[:, perm] for a in raw["fc1"])
    for n in raw:
        codes.setdefault(n, raw[n])
    return method, specs, arrays, codes


def cnn_dense_baseline(cfg, original, data, log):
    """Dense 16-bit integer layers of the uncompressed float LeNet-5 (original filter counts and
    widths, no pruning), calibrated like `calibrate_cnn_pow2`.

    Returns
    -------
    tuple
        ``(specs, arrays, test_accuracy)`` with the array names prefixed by ``baseline.``.
    """
    layers = prunable(original)
    wf, wint, biases = {}, {}, {}
    for n, m in layers.items():
        w = m.weight.detach().numpy()
        wf[n] = fixedpoint.dense_weight_frac_bits(w, 16)
        wint[n] = np.floor(w.astype(np.float64) * 2.0 ** wf[n] + 0.5).astype(np.int64)
        biases[n] = m.bias.detach().numpy()
    dense = {"weight_format": "dense", "weight_bits": 16}

    def build(fr):
        return cnn_int_layers(
            data.image_shape,
            wint,
            wf,
            biases,
            data.input_frac_bits,
            fr,
            pool2=original.pool2,
            output_bits=cfg.output_bits,
            extra=dict.fromkeys(layers, dense),
        )

    acts = _activations(original, data, cfg.calib_samples)
    pcts = tuple(("percentile", p) for p in (100.0, 99.999, 99.99, 99.9))
    _, _, specs, arrays = _choose(cfg, data, acts, build, pcts)
    man = {"input": cnn_input_spec(data), "layers": specs}
    xt = integer_ref.quantize_inputs(man, data.x_test)
    test_acc = float(np.mean(integer_ref.predict((man, arrays), xt) == data.y_test))
    log(f"dense 16-bit baseline: integer accuracy {100 * test_acc:.2f}%")
    return specs, {f"baseline.{k}": v for k, v in arrays.items()}, test_acc
