"""The compression pipeline: train -> Taylor structured pruning -> iterative unstructured pruning ->
k-means weight sharing -> power-of-two snapping -> fixed-point calibration -> integer reference ->
CSR + Huffman -> bundle, report, plots, summary.json."""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import csr, fixedpoint, huffman, integer_ref, pow2, prune, share, sizes, taylor
from .bundle import save_bundle
from .data import load_dataset
from .models import MLP, build_model, linear_layers, prunable
from .train import accuracy, evaluate, seed_everything, test_line, train

__all__ = ["Config", "config_for", "run"]


@dataclass
class Config:
    dataset: str = "digits"
    model: str = "lenet300"
    out: str | None = None
    data_dir: str | None = None
    seed: int = 0
    epochs: int = 60
    batch: int = 32
    lr: float = 1e-3
    l1: float = 0.0  # optional L1 regularisation during float training
    finetune_epochs: int = 8
    finetune_lr: float = 5e-4
    # Taylor structured pruning: hidden widths after pruning, reached in `structured_steps` steps
    hidden_targets: tuple = (48, 24)
    structured_steps: int = 3
    taylor_batches: int | None = None
    # iterative unstructured pruning: fraction of each (structured) layer's weights pruned
    layer_sparsity: tuple = (0.4, 0.3, 0.1)
    prune_rounds: int = 3
    criterion: str = "magnitude"  # or "taylor"
    conv_targets: tuple = (4, 10)  # lenet5: filters kept in conv1, conv2
    conv_index_bits: int = 8
    # sharing / pow2 / encoding
    clusters: int = 16
    kmeans_init: str = "linear"
    centroid_epochs: int = 4
    exp_bits: int = 3
    pow2_epochs: int = 8
    pow2_lr: float = 2e-4
    index_bits: int = 4
    output_bits: int = 8
    calib_samples: int = 10000
    cluster_sweep: tuple = (4, 8, 16, 32, 64)
    train_limit: int | None = None
    test_limit: int | None = None
    plots: bool = True
    quiet: bool = False
    extra: dict = field(default_factory=dict)


def config_for(dataset: str, model: str = "lenet300", **overrides) -> Config:
    cfg = Config(dataset=dataset, model=model)
    if dataset != "digits":
        cfg.epochs, cfg.batch, cfg.lr = 12, 256, 1e-3
        cfg.finetune_epochs, cfg.prune_rounds = 5, 4
        cfg.hidden_targets = (100, 50)
        cfg.layer_sparsity = (0.75, 0.4, 0.1)
        cfg.centroid_epochs, cfg.pow2_epochs = 2, 4
        cfg.taylor_batches = 40
    if model == "lenet5":
        cfg.conv_targets = (4, 10)
        cfg.layer_sparsity = (0.2, 0.5, 0.8, 0.9, 0.5)
        cfg.index_bits = 4
        if dataset == "digits":
            cfg.epochs, cfg.lr = 60, 2e-3
    for k, v in overrides.items():
        if v is not None:
            setattr(cfg, k, v)
    return cfg


def _log(cfg, msg):
    if not cfg.quiet:
        print(msg, flush=True)


def _weights(model) -> dict[str, np.ndarray]:
    return {n: m.weight.detach().numpy().copy() for n, m in prunable(model).items()}


def _structured(cfg, model: MLP, data, log):
    """Taylor group importance per hidden neuron; remove the least important neurons in steps."""
    widths0 = model.sizes[1:-1]
    targets = list(cfg.hidden_targets)[: len(widths0)]
    first_importance = None
    history = []
    for step in range(1, cfg.structured_steps + 1):
        layers = linear_layers(model)
        _, gimp = taylor.taylor_importance(
            model, data.x_train, data.y_train, layers, batch=256, max_batches=cfg.taylor_batches
        )
        if first_importance is None:
            first_importance = {
                n: gimp[m].numpy().copy() for n, m in layers.items() if n != f"fc{model.n_layers}"
            }
        for i, (w0, t) in enumerate(zip(widths0, targets, strict=False)):
            width = int(round(w0 * (t / w0) ** (step / cfg.structured_steps)))
            layer, nxt = model.layer(i), model.layer(i + 1)
            imp = gimp[layer].numpy()
            keep = np.argsort(-imp, kind="stable")[:width]
            taylor.remove_units(layer, nxt, keep)
            model.sizes[i + 1] = width
        acc0 = accuracy(model, data.x_test, data.y_test)
        train(
            model,
            data.x_train,
            data.y_train,
            epochs=cfg.finetune_epochs,
            lr=cfg.finetune_lr,
            batch=cfg.batch,
            seed=cfg.seed + 100 + step,
            desc=f"taylor step {step}",
            quiet=cfg.quiet,
        )
        acc1 = accuracy(model, data.x_test, data.y_test)
        history.append(
            {"step": step, "sizes": list(model.sizes), "acc_pruned": acc0, "acc_finetuned": acc1}
        )
        log(
            f"Taylor step {step}: {' -> '.join(map(str, model.sizes))}  "
            f"acc {100 * acc0:.2f}% -> fine-tuned {100 * acc1:.2f}%"
        )
    return first_importance, history


def _unstructured(cfg, model, data, original_weights: int, log):
    layers = prunable(model)
    names = {m: n for n, m in layers.items()}
    masks = prune.full_masks(layers)
    sparsity = list(cfg.layer_sparsity)
    sparsity += [sparsity[-1]] * (len(layers) - len(sparsity))
    schedule = []
    acc_pruned = None
    hist_pruned = None
    for r in range(1, cfg.prune_rounds + 1):
        score = None
        if cfg.criterion == "taylor":
            score, _ = taylor.taylor_importance(
                model, data.x_train, data.y_train, layers, max_batches=cfg.taylor_batches
            )
        new = {}
        for (m, mask), s in zip(masks.items(), sparsity, strict=True):
            keep = round(mask.numel() * (1 - s * r / cfg.prune_rounds))
            sc = m.weight.detach().abs() if score is None else score[m]
            new[m] = prune.prune_to_count(sc, mask, keep)
        masks = new
        prune.apply_masks(masks)
        acc_pruned = accuracy(model, data.x_test, data.y_test)
        hist_pruned = _weights(model)
        train(
            model,
            data.x_train,
            data.y_train,
            epochs=cfg.finetune_epochs,
            lr=cfg.finetune_lr,
            batch=cfg.batch,
            seed=cfg.seed + 200 + r,
            masks=masks,
            desc=f"prune round {r}",
            quiet=cfg.quiet,
        )
        acc = accuracy(model, data.x_test, data.y_test)
        alive = sum(int(mk.sum()) for mk in masks.values())
        frac = 1 - alive / original_weights
        schedule.append(
            {"round": r, "pruned_fraction": frac, "acc_pruned": acc_pruned, "acc_retrained": acc}
        )
        log(
            f"prune round {r}: {100 * frac:.2f}% of the original weights pruned, "
            f"acc {100 * acc_pruned:.2f}% -> retrained {100 * acc:.2f}%"
        )
    return masks, names, schedule, acc_pruned, hist_pruned


def _calibrate(cfg, model, masks, formats, data, names, log):
    """Integer layers for the pow2 model; calibration method picked on training data."""
    lnames = list(linear_layers(model))
    mods = [linear_layers(model)[n] for n in lnames]
    xcal = torch.as_tensor(data.x_train[: cfg.calib_samples])
    with torch.no_grad():
        acts = [a.numpy() for a in model.hidden_activations(xcal)]
    wint, extra, codes = [], [], {}
    for n, m in zip(lnames, mods, strict=True):
        fmt = formats[m]
        w_i, c, sgn, e = pow2.encode(m.weight.detach(), fmt)
        wint.append(w_i)
        codes[n] = (c, sgn, e, masks[m].numpy())
        extra.append(
            {
                "weight_format": "pow2",
                "exp_bits": cfg.exp_bits,
                "pow2_max_exp": fmt.max_exp,
                "codebook_bits": cfg.exp_bits + 1,
                "index_bits": cfg.index_bits,
            }
        )
    biases = [m.bias.detach().numpy() for m in mods]
    xq = integer_ref.quantize_inputs(
        {"input": _input_spec(data)}, data.x_train[: cfg.calib_samples]
    )
    best = None
    for method, pct in (
        ("max", None),
        ("percentile", 99.999),
        ("percentile", 99.99),
        ("percentile", 99.9),
    ):
        fr = []
        for i, a in enumerate(acts):
            last = i == len(acts) - 1
            rng = fixedpoint.activation_range(a, method, pct or 100)
            fr.append(fixedpoint.frac_bits_for(rng, cfg.output_bits, signed=last))
        specs, arrays = fixedpoint.int_layers(
            lnames,
            wint,
            [f.weight_frac_bits for f in (formats[m] for m in mods)],
            biases,
            data.input_frac_bits,
            fr,
            output_bits=cfg.output_bits,
            extra=extra,
        )
        man = {"input": _input_spec(data), "layers": specs}
        acc = float(np.mean(integer_ref.predict((man, arrays), xq) == data.y_train[: len(xq)]))
        label = method if pct is None else f"percentile {pct}"
        log(f"calibration {label}: frac bits {fr}, train integer accuracy {100 * acc:.2f}%")
        if best is None or acc > best[0] + 1e-12:
            best = (acc, label, specs, arrays)
    return best[1], best[2], best[3], codes


def _input_spec(data):
    return {"shape": [data.features], "bits": 8, "frac_bits": data.input_frac_bits, "signed": False}


def _baseline(cfg, original, data, log):
    lnames = list(linear_layers(original))
    mods = [linear_layers(original)[n] for n in lnames]
    xcal = torch.as_tensor(data.x_train[: cfg.calib_samples])
    with torch.no_grad():
        acts = [a.numpy() for a in original.hidden_activations(xcal)]
    wf = [fixedpoint.dense_weight_frac_bits(m.weight.detach().numpy(), 16) for m in mods]
    wint = [
        np.floor(m.weight.detach().numpy().astype(np.float64) * 2.0**f + 0.5).astype(np.int64)
        for m, f in zip(mods, wf, strict=True)
    ]
    xq = integer_ref.quantize_inputs(
        {"input": _input_spec(data)}, data.x_train[: cfg.calib_samples]
    )
    best = None
    for pct in (100.0, 99.999, 99.99, 99.9):
        fr = [
            fixedpoint.frac_bits_for(
                fixedpoint.activation_range(a, "percentile", pct),
                cfg.output_bits,
                signed=i == len(acts) - 1,
            )
            for i, a in enumerate(acts)
        ]
        specs, arrays = fixedpoint.int_layers(
            lnames,
            wint,
            wf,
            [m.bias.detach().numpy() for m in mods],
            data.input_frac_bits,
            fr,
            output_bits=cfg.output_bits,
            extra=[{"weight_format": "dense", "weight_bits": 16}] * len(mods),
        )
        man = {"input": _input_spec(data), "layers": specs}
        acc = float(np.mean(integer_ref.predict((man, arrays), xq) == data.y_train[: len(xq)]))
        if best is None or acc > best[0] + 1e-12:
            best = (acc, specs, arrays)
    specs, arrays = best[1], best[2]
    man = {"input": _input_spec(data), "layers": specs}
    xt = integer_ref.quantize_inputs(man, data.x_test)
    test_acc = float(np.mean(integer_ref.predict((man, arrays), xt) == data.y_test))
    log(f"dense 16-bit baseline: integer accuracy {100 * test_acc:.2f}%")
    return specs, {f"baseline.{k}": v for k, v in arrays.items()}, test_acc


def run(cfg: Config) -> dict:
    t0 = time.time()
    torch.set_num_threads(2)
    seed_everything(cfg.seed)
    out = Path(cfg.out or f"build/compress/{cfg.dataset}_{cfg.model}")
    out.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []

    def log(msg=""):
        lines.append(msg)
        _log(cfg, msg)

    data = load_dataset(cfg.dataset, cfg.data_dir, cfg.seed)
    if cfg.train_limit or cfg.test_limit:
        data = data.subset(cfg.train_limit, cfg.test_limit)
    if cfg.model == "lenet5":
        return run_cnn(cfg, data, out, log, lines, t0)
    log(
        f"compress: dataset {cfg.dataset} ({len(data.x_train)} train / {len(data.x_test)} test, "
        f"input {data.image_shape}), model {cfg.model}"
    )
    timings = {}

    # 1. float training
    t = time.time()
    model = build_model(cfg.model, data.image_shape, data.classes)
    train(
        model,
        data.x_train,
        data.y_train,
        epochs=cfg.epochs,
        lr=cfg.lr,
        batch=cfg.batch,
        seed=cfg.seed,
        l1=cfg.l1,
        desc="train",
        quiet=cfg.quiet,
    )
    loss, correct, total = evaluate(model, data.x_test, data.y_test)
    log(test_line(loss, correct, total))
    float_acc = correct / total
    original = copy.deepcopy(model)
    hist_before = _weights(model)
    orig_layers = linear_layers(original)
    original_weights = sum(m.weight.numel() for m in orig_layers.values())
    original_bias = sum(m.bias.numel() for m in orig_layers.values())
    dense_bytes = 4 * (original_weights + original_bias)
    timings["train"] = time.time() - t

    # 2. Taylor structured pruning
    t = time.time()
    importance, structured_hist = _structured(cfg, model, data, log)
    timings["structured"] = time.time() - t

    # 3. iterative unstructured pruning
    t = time.time()
    masks, names, schedule, acc_pruned, hist_pruned = _unstructured(
        cfg, model, data, original_weights, log
    )
    acc_retrained = accuracy(model, data.x_test, data.y_test)
    hist_retrained = _weights(model)
    timings["unstructured"] = time.time() - t

    # 4. weight sharing: cluster sweep (no fine-tuning), then k = clusters with centroid tuning
    t = time.time()
    sweep = []
    for k in cfg.cluster_sweep:
        trial = copy.deepcopy(model)
        tl = prunable(trial)
        tmasks = {tl[names[m]]: mk for m, mk in masks.items()}
        share.share_model(tmasks, k, cfg.kmeans_init, cfg.seed)
        sweep.append({"clusters": k, "accuracy": accuracy(trial, data.x_test, data.y_test)})
    log(
        "accuracy vs clusters: "
        + ", ".join(f"{s['clusters']}: {100 * s['accuracy']:.2f}%" for s in sweep)
    )
    shared = share.share_model(masks, cfg.clusters, cfg.kmeans_init, cfg.seed)
    acc_shared0 = accuracy(model, data.x_test, data.y_test)
    share.finetune_centroids(
        model,
        shared,
        data.x_train,
        data.y_train,
        epochs=cfg.centroid_epochs,
        lr=cfg.finetune_lr / 5,
        batch=cfg.batch,
        seed=cfg.seed + 300,
        quiet=cfg.quiet,
    )
    acc_shared = accuracy(model, data.x_test, data.y_test)
    log(
        f"shared ({cfg.clusters} clusters, {cfg.kmeans_init} init): {100 * acc_shared0:.2f}% "
        f"-> centroids fine-tuned {100 * acc_shared:.2f}%"
    )
    timings["share"] = time.time() - t

    # 5. power-of-two snapping + straight-through fine-tuning
    t = time.time()
    formats = {m: pow2.best_kmax(m.weight.detach(), mk, cfg.exp_bits) for m, mk in masks.items()}
    with torch.no_grad():
        for m, mk in masks.items():
            m.weight.copy_(pow2.snap(m.weight.detach(), mk, formats[m]))
    acc_snap = accuracy(model, data.x_test, data.y_test)
    pow2.finetune(
        model,
        masks,
        formats,
        data.x_train,
        data.y_train,
        epochs=cfg.pow2_epochs,
        lr=cfg.pow2_lr,
        batch=cfg.batch,
        seed=cfg.seed + 400,
        quiet=cfg.quiet,
    )
    acc_pow2 = accuracy(model, data.x_test, data.y_test)
    log(
        f"power-of-two (sign + {cfg.exp_bits}-bit exponent): snapped {100 * acc_snap:.2f}% -> "
        f"fine-tuned {100 * acc_pow2:.2f}%"
    )
    timings["pow2"] = time.time() - t

    # 6. fixed-point calibration and integer reference
    t = time.time()
    method, specs, arrays, codes = _calibrate(cfg, model, masks, formats, data, names, log)
    input_spec = _input_spec(data)
    man = {"input": input_spec, "layers": specs}
    x_test_q = integer_ref.quantize_inputs(man, data.x_test)
    test_out = integer_ref.forward((man, arrays), x_test_q)
    test_pred = np.argmax(test_out, axis=1)
    int_acc = float(np.mean(test_pred == data.y_test))
    log(
        f"integer reference ({method} calibration): {int(np.sum(test_pred == data.y_test))}/"
        f"{len(data.y_test)} ({100 * int_acc:.2f}%)"
    )
    timings["integer"] = time.time() - t

    # 7. encoding: CSR, Huffman, sizes
    layer_rows = []
    stage_bytes = {"dense": 0, "pruned": 0, "shared": 0, "pow2": 0, "huffman": 0}
    pow2_book = None
    for spec in specs:
        n = spec["name"]
        c, sgn, e, mk = codes[n]
        m = linear_layers(model)[n]
        book = pow2.codebook(formats[m], spec["codebook_bits"])
        pow2_book = book
        rel, code, rowptr = csr.encode(c, cfg.index_bits)
        assert np.array_equal(csr.decode(rel, code, rowptr, c.shape[1]), c)
        assert np.array_equal(
            book[csr.decode(rel, code, rowptr, c.shape[1])], arrays[f"{n}.weight_int"]
        )
        hc = huffman.encode(code)
        hr = huffman.encode(rel)
        assert np.array_equal(huffman.decode(*hc), code.astype(np.int64))
        assert np.array_equal(huffman.decode(*hr), rel.astype(np.int64))
        hbits = hc[1] + hr[1]
        htable = huffman.table_bits(hc[2], spec["codebook_bits"]) + huffman.table_bits(
            hr[2], cfg.index_bits
        )
        orig = orig_layers[n]
        sz = sizes.layer_sizes(
            c.size,
            c.shape[0],
            c.shape[0],
            len(rel),
            cfg.index_bits,
            spec["codebook_bits"],
            cfg.clusters,
            hbits,
            htable,
        )
        sz["dense"] = 4 * (orig.weight.numel() + orig.bias.numel())
        for k in stage_bytes:
            stage_bytes[k] += sz[k]
        arrays.update(
            {
                f"{n}.mask": mk.astype(bool),
                f"{n}.codes": c.astype(np.uint8),
                f"{n}.codebook": book.astype(np.int32),
                f"{n}.pow2_sign": sgn.astype(np.int8),
                f"{n}.pow2_exp": e.astype(np.int8),
                f"{n}.csr_rel": rel,
                f"{n}.csr_code": code,
                f"{n}.csr_rowptr": rowptr,
            }
        )
        spec["csr_entries"] = len(rel)
        spec["csr_fillers"] = int(np.sum(code == 0))
        layer_rows.append(
            {
                "name": n,
                "nonzeros": int(mk.sum()),
                "pruned_shape": list(c.shape),
                "original_shape": list(orig.weight.shape),
                "original": int(orig.weight.numel()),
                "csr_entries": len(rel),
                "fillers": int(np.sum(code == 0)),
                "bytes": dict(sz),
            }
        )
    del pow2_book
    alive = sum(r["nonzeros"] for r in layer_rows)
    pruned_fraction = 1 - alive / original_weights
    compressed_bytes = stage_bytes["huffman"]

    # 8. dense 16-bit baseline
    base_specs, base_arrays, base_acc = _baseline(cfg, original, data, log)
    arrays.update(base_arrays)

    # 9. bundle
    arrays["reference.test_inputs"] = x_test_q.astype(np.uint8)
    arrays["reference.test_labels"] = data.y_test.astype(np.int64)
    arrays["reference.test_outputs"] = test_out.astype(np.int32)
    arrays["reference.test_pred"] = test_pred.astype(np.int64)
    manifest = {
        "dataset": cfg.dataset,
        "model": cfg.model,
        "created_by": "compress 0.1.0",
        "input": input_spec,
        "layers": specs,
        "architecture": {"original": list(original.sizes), "compressed": list(model.sizes)},
        "calibration": method,
        "reference": {
            "test_images": len(data.y_test),
            "integer_accuracy": int_acc,
            "float_accuracy": float_acc,
        },
        "baseline": {
            "layers": base_specs,
            "integer_accuracy": base_acc,
            "float_accuracy": float_acc,
        },
    }
    bundle_dir = save_bundle(out / "bundle", manifest, arrays)

    def ratio(b):
        return dense_bytes / b

    stages = [
        {"name": "float", "bytes": dense_bytes, "accuracy": float_acc},
        {"name": "pruned", "bytes": stage_bytes["pruned"], "accuracy": acc_pruned},
        {"name": "pruned+retrained", "bytes": stage_bytes["pruned"], "accuracy": acc_retrained},
        {"name": "shared", "bytes": stage_bytes["shared"], "accuracy": acc_shared},
        {"name": "shift-quantized", "bytes": stage_bytes["pow2"], "accuracy": acc_pow2},
        {"name": "integer reference", "bytes": stage_bytes["pow2"], "accuracy": int_acc},
        {"name": "huffman", "bytes": stage_bytes["huffman"], "accuracy": int_acc},
    ]
    for s in stages:
        s["ratio"] = ratio(s["bytes"])
    timings["total"] = time.time() - t0
    summary = {
        "dataset": cfg.dataset,
        "model": cfg.model,
        "float_accuracy": float_acc,
        "integer_accuracy": int_acc,
        "pruned_fraction": pruned_fraction,
        "dense_bytes": dense_bytes,
        "compressed_bytes": compressed_bytes,
        "compression_ratio": ratio(compressed_bytes),
        "rom_bytes": stage_bytes["pow2"],
        "stages": stages,
        "bundle": str(bundle_dir),
        "architecture": manifest["architecture"],
        "baseline_integer_accuracy": base_acc,
        "layers": layer_rows,
        "schedule": schedule,
        "structured": structured_hist,
        "cluster_sweep": sweep,
        "calibration": method,
        "timings_s": timings,
        "config": {k: v for k, v in asdict(cfg).items() if k not in ("extra",)},
    }
    from . import report

    text = report.render(summary)
    for line in text.splitlines():
        log(line)
    (out / "report.txt").write_text("\n".join(lines) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
    if cfg.plots:
        from . import plots

        plots.write_all(
            out / "plots",
            hist_before,
            hist_pruned,
            hist_retrained,
            sweep,
            schedule,
            importance,
            original_weights,
        )
    summary["out"] = str(out)
    return summary


def _structured_cnn(cfg, model, data, log):
    """Taylor importance per conv filter; remove the least important filters in steps."""
    side = None
    with torch.no_grad():
        x = torch.as_tensor(data.x_train[:1])
        x = torch.max_pool2d(torch.relu(model.conv1(x)), 2)
        x = torch.relu(model.conv2(x))
        if model.pool2:
            x = torch.max_pool2d(x, 2)
        side = x.shape[-1] * x.shape[-2]
    widths0 = [model.conv1.out_channels, model.conv2.out_channels]
    first = None
    history = []
    for step in range(1, cfg.structured_steps + 1):
        layers = prunable(model)
        _, gimp = taylor.taylor_importance(
            model, data.x_train, data.y_train, layers, batch=256, max_batches=cfg.taylor_batches
        )
        if first is None:
            first = {n: gimp[layers[n]].numpy().copy() for n in ("conv1", "conv2")}
        pairs = ((model.conv1, model.conv2, 1), (model.conv2, model.fc1, side))
        for (layer, nxt, spatial), w0, t in zip(pairs, widths0, cfg.conv_targets, strict=True):
            width = int(round(w0 * (t / w0) ** (step / cfg.structured_steps)))
            keep = np.argsort(-gimp[layer].numpy(), kind="stable")[:width]
            taylor.remove_units(layer, nxt, keep, spatial=spatial)
        acc0 = accuracy(model, data.x_test, data.y_test)
        train(
            model,
            data.x_train,
            data.y_train,
            epochs=cfg.finetune_epochs,
            lr=cfg.finetune_lr,
            batch=cfg.batch,
            seed=cfg.seed + 100 + step,
            desc=f"taylor step {step}",
            quiet=cfg.quiet,
        )
        acc1 = accuracy(model, data.x_test, data.y_test)
        filters = [model.conv1.out_channels, model.conv2.out_channels]
        history.append(
            {"step": step, "filters": filters, "acc_pruned": acc0, "acc_finetuned": acc1}
        )
        log(
            f"Taylor step {step}: filters {filters}  acc {100 * acc0:.2f}% -> fine-tuned "
            f"{100 * acc1:.2f}%"
        )
    return first, history


def run_cnn(cfg: Config, data, out: Path, log, lines, t0) -> dict:
    """LeNet-5: the same compression stages (Taylor filter pruning, iterative pruning, sharing,
    pow2, CSR + Huffman sizes). The bundle's integer reference covers linear layers only, so this
    path writes report, plots and summary.json (``bundle`` and ``integer_accuracy`` are null)."""
    model = build_model(cfg.model, data.image_shape, data.classes)
    train(
        model,
        data.x_train,
        data.y_train,
        epochs=cfg.epochs,
        lr=cfg.lr,
        batch=cfg.batch,
        seed=cfg.seed,
        desc="train",
        quiet=cfg.quiet,
        l1=cfg.l1,
    )
    loss, correct, total = evaluate(model, data.x_test, data.y_test)
    log(test_line(loss, correct, total))
    float_acc = correct / total
    original = copy.deepcopy(model)
    hist_before = _weights(model)
    orig_layers = prunable(original)
    original_weights = sum(m.weight.numel() for m in orig_layers.values())
    dense_bytes = 4 * sum(m.weight.numel() + m.bias.numel() for m in orig_layers.values())
    importance, structured_hist = _structured_cnn(cfg, model, data, log)
    masks, names, schedule, acc_pruned, hist_pruned = _unstructured(
        cfg, model, data, original_weights, log
    )
    acc_retrained = accuracy(model, data.x_test, data.y_test)
    hist_retrained = _weights(model)
    sweep = []
    for k in cfg.cluster_sweep:
        trial = copy.deepcopy(model)
        tl = prunable(trial)
        share.share_model({tl[names[m]]: mk for m, mk in masks.items()}, k, cfg.kmeans_init)
        sweep.append({"clusters": k, "accuracy": accuracy(trial, data.x_test, data.y_test)})
    shared = share.share_model(masks, cfg.clusters, cfg.kmeans_init, cfg.seed)
    share.finetune_centroids(
        model,
        shared,
        data.x_train,
        data.y_train,
        epochs=cfg.centroid_epochs,
        lr=cfg.finetune_lr / 5,
        batch=cfg.batch,
        seed=cfg.seed + 300,
        quiet=cfg.quiet,
    )
    acc_shared = accuracy(model, data.x_test, data.y_test)
    formats = {m: pow2.best_kmax(m.weight.detach(), mk, cfg.exp_bits) for m, mk in masks.items()}
    pow2.finetune(
        model,
        masks,
        formats,
        data.x_train,
        data.y_train,
        epochs=cfg.pow2_epochs,
        lr=cfg.pow2_lr,
        batch=cfg.batch,
        seed=cfg.seed + 400,
        quiet=cfg.quiet,
    )
    acc_pow2 = accuracy(model, data.x_test, data.y_test)
    log(f"shared {100 * acc_shared:.2f}%, power-of-two {100 * acc_pow2:.2f}%")
    stage_bytes = {"pruned": 0, "shared": 0, "pow2": 0, "huffman": 0}
    layer_rows = []
    for m, mk in masks.items():
        n = names[m]
        _, c, _, _ = pow2.encode(m.weight.detach(), formats[m])
        bits = cfg.conv_index_bits if isinstance(m, torch.nn.Conv2d) else cfg.index_bits
        rel, code, rowptr = csr.encode(c, bits)
        rows = c.reshape(len(c), -1)
        assert np.array_equal(csr.decode(rel, code, rowptr, rows.shape[1]), rows)
        hc, hr = huffman.encode(code), huffman.encode(rel)
        htable = huffman.table_bits(hc[2], cfg.exp_bits + 1) + huffman.table_bits(hr[2], bits)
        sz = sizes.layer_sizes(
            c.size,
            len(c),
            len(c),
            len(rel),
            bits,
            cfg.exp_bits + 1,
            cfg.clusters,
            hc[1] + hr[1],
            htable,
        )
        for k in stage_bytes:
            stage_bytes[k] += sz[k]
        orig = orig_layers[n]
        layer_rows.append(
            {
                "name": n,
                "nonzeros": int(mk.sum()),
                "original": int(orig.weight.numel()),
                "original_shape": list(orig.weight.shape),
                "pruned_shape": list(c.shape),
                "csr_entries": len(rel),
                "fillers": int(np.sum(code == 0)),
                "bytes": dict(sz),
            }
        )
    alive = sum(r["nonzeros"] for r in layer_rows)
    stages = [
        {"name": "float", "bytes": dense_bytes, "accuracy": float_acc},
        {"name": "pruned", "bytes": stage_bytes["pruned"], "accuracy": acc_pruned},
        {"name": "pruned+retrained", "bytes": stage_bytes["pruned"], "accuracy": acc_retrained},
        {"name": "shared", "bytes": stage_bytes["shared"], "accuracy": acc_shared},
        {"name": "shift-quantized", "bytes": stage_bytes["pow2"], "accuracy": acc_pow2},
        {"name": "huffman", "bytes": stage_bytes["huffman"], "accuracy": acc_pow2},
    ]
    for s in stages:
        s["ratio"] = dense_bytes / s["bytes"]
    summary = {
        "dataset": cfg.dataset,
        "model": cfg.model,
        "float_accuracy": float_acc,
        "integer_accuracy": None,
        "pruned_fraction": 1 - alive / original_weights,
        "dense_bytes": dense_bytes,
        "compressed_bytes": stage_bytes["huffman"],
        "compression_ratio": dense_bytes / stage_bytes["huffman"],
        "rom_bytes": stage_bytes["pow2"],
        "stages": stages,
        "bundle": None,
        "architecture": {"filters": [model.conv1.out_channels, model.conv2.out_channels]},
        "layers": layer_rows,
        "schedule": schedule,
        "structured": structured_hist,
        "cluster_sweep": sweep,
        "timings_s": {"total": time.time() - t0},
        "config": {k: v for k, v in asdict(cfg).items() if k != "extra"},
    }
    from . import report

    for line in report.render(summary).splitlines():
        log(line)
    (out / "report.txt").write_text("\n".join(lines) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
    if cfg.plots:
        from . import plots

        plots.write_all(
            out / "plots",
            hist_before,
            hist_pruned,
            hist_retrained,
            sweep,
            schedule,
            importance,
            original_weights,
        )
    summary["out"] = str(out)
    return summary
