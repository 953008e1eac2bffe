"""The compression pipeline: train -> Taylor structured pruning -> iterative unstructured pruning ->
k-means weight sharing -> power-of-two snapping -> fixed-point calibration -> integer reference ->
CSR + Huffman -> bundle, report, plots, summary.json."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import integer_ref, plots, pow2, qat, report, stages
from .bundle import save_bundle
from .calibrate import calibrate_pow2, dense_baseline, input_spec
from .calibrate_cnn import calibrate_cnn_pow2, cnn_dense_baseline, cnn_input_spec
from .data import load_dataset, load_npz
from .encode import encode_layer
from .environment import environment
from .importer import import_model, load_model_file
from .models import LeNet5, linear_layers, prunable
from .train import Distillation, seed_everything

__all__ = ["Config", "config_for", "run"]


@dataclass
class Config:
    dataset: str = "digits"
    model: str = "lenet300"  # or "lenet5"; "imported" for a user's network (model_file, run())
    out: str | None = None
    data_dir: str | None = None
    # a user's trained network (compress.importer): TorchScript, a whole pickled model or a
    # state_dict with its layer list ``arch``; and a user's data, ``x_train, y_train, x_test,
    # y_test`` in a .npz (compress.data.load_npz)
    model_file: str | None = None
    arch: str | None = None
    data_file: str | None = None
    seed: int = 0
    epochs: int = 60
    batch: int = 32
    lr: float = 1e-3
    l1: float = 0.0  # optional L1 regularisation during float training
    # optional L_p regularisation (0 < p < 1, compress.train.lp_penalty) during float training
    lp: float = 0.0
    lp_p: float = 0.5
    train_schedule: str = "constant"  # or "cosine": the float training's learning rate
    weight_decay: float = 0.0  # Adam weight decay of the float training
    # training-time augmentation (train.AUGMENTATIONS: none, shift, flip, shift+flip) of the
    # float training and of the fine-tuning phases (Taylor steps, pruning rounds, centroids,
    # power of two, biases); the validation and test images and the calibration are never
    # augmented
    augment: str = "none"
    finetune_augment: str = "none"
    finetune_epochs: int = 8
    finetune_lr: float = 5e-4
    finetune_schedule: str = "constant"  # or "cosine": each fine-tuning phase's learning rate
    # knowledge distillation from the float model in every fine-tuning phase before the
    # calibration: the weight of its loss (0: off) and its temperature (compress.train.Distillation)
    distill: float = 0.0
    distill_temperature: float = 4.0
    # Taylor structured pruning: hidden widths after pruning, reached in `structured_steps` steps
    # (None: every width kept, the default of an imported network)
    hidden_targets: tuple | None = (48, 24)
    structured_steps: int = 3
    taylor_batches: int | None = None
    # iterative unstructured pruning: fraction of each (structured) layer's weights pruned
    layer_sparsity: tuple = (0.4, 0.3, 0.1)
    prune_rounds: int = 3
    # epochs of retraining after the last pruning round at ``lr`` with a cosine schedule
    # (learning-rate rewinding; 0: none)
    rewind_epochs: int = 0
    criterion: str = "magnitude"  # or "taylor"
    conv_targets: tuple | None = (4, 10)  # lenet5: filters kept in conv1, conv2 (None: all)
    conv_index_bits: int = 8
    # sharing / pow2 / encoding
    clusters: int = 16
    kmeans_init: str = "linear"
    centroid_epochs: int = 4
    exp_bits: int = 3
    pow2_epochs: int = 8
    pow2_lr: float = 2e-4
    pow2_schedule: str = "constant"  # or "cosine": the pow2 fine-tuning's learning rate
    bias_epochs: int = 0  # after pow2: biases retrained on the fixed snapped weights
    # LeNet-5: quantisation-aware fine-tuning after the calibration (compress/qat.py): the
    # bundle's integer forward in training (straight-through), the calibrated formats fixed, the
    # biases (and with qat_weights the pow2 weights) trained, learning rate cosine to 0 from
    # qat_lr; the epoch with the best integer validation accuracy kept (none if none beats it)
    qat_epochs: int = 0
    qat_lr: float = 1e-3
    qat_weights: bool = False
    index_bits: int = 4
    output_bits: int = 8
    calib_samples: int = 10000
    calib_refine: int = 0  # LeNet-5: passes of the per-layer fraction-bits search (training data)
    cluster_sweep: tuple = (4, 8, 16, 32, 64)
    train_limit: int | None = None
    test_limit: int | None = None
    # held out of the (limited) training set, stratified, fixed seed: every choice is made on it
    val_fraction: float = 0.1
    plots: bool = True
    quiet: bool = False
    # torch CPU threads: 1 by default. These models are small, and on a shared CPU extra OpenMP
    # threads spin against other jobs (measured 470 it/s with 1 thread vs 5 it/s with 2 under load)
    threads: int = 1
    extra: dict = field(default_factory=dict)


def config_for(dataset: str, model: str = "lenet300", **overrides) -> Config:
    """The defaults of ``model`` on ``dataset``, then every ``overrides`` that is not None.

    ``model="imported"`` (a user's trained network): no float training (``epochs`` 0: the
    pipeline starts from the user's weights; more epochs continue training them) and no
    structured pruning unless ``hidden_targets`` / ``conv_targets`` are given; the other stages
    as for the built-in networks, with the small-data (digits) defaults unless the data set is
    one of the IDX ones."""
    from .data import IDX_DATASETS

    cfg = Config(dataset=dataset, model=model)
    if dataset in IDX_DATASETS:
        cfg.epochs, cfg.batch, cfg.lr = 12, 256, 1e-3
        cfg.finetune_epochs, cfg.prune_rounds = 5, 4
        cfg.hidden_targets = (100, 50)
        cfg.layer_sparsity = (0.75, 0.4, 0.1)
        cfg.centroid_epochs, cfg.pow2_epochs = 2, 4
        cfg.taylor_batches = 40
    if model == "lenet5":
        cfg.conv_targets = (4, 10)
        cfg.hidden_targets = (120, 84)  # LeNet-5's own widths: no neuron pruning
        cfg.layer_sparsity = (0.2, 0.5, 0.8, 0.9, 0.5)
        cfg.index_bits = 4
        if dataset == "digits":
            cfg.epochs, cfg.lr = 60, 2e-3
        else:
            # Taylor-pruned fc neurons, every filter kept. Chosen on the validation split
            # (docs/compress.md): 30 float epochs with a cosine learning rate (no augmentation:
            # it cost validation accuracy), the fine-tuning phases on randomly mirrored images;
            # pruning filters (6/12, 6/14) cost integer accuracy on every seed measured
            cfg.epochs, cfg.batch, cfg.train_schedule = 30, 64, "cosine"
            cfg.conv_targets, cfg.hidden_targets = (6, 16), (64, 32)
            cfg.finetune_augment = "flip"
            # less unstructured pruning of conv2, fc1, fc2 than (0.2, 0.5, 0.85, 0.7, 0.3): the
            # integer reference +0.65 pt on validation, 38.6x instead of 46.2x (docs/compress.md)
            cfg.layer_sparsity = (0.2, 0.4, 0.75, 0.6, 0.3)
            cfg.structured_steps, cfg.prune_rounds, cfg.finetune_epochs = 2, 3, 3
            # learning-rate rewinding after the last pruning round: with the 16 filters, the
            # integer gap to float 0.48 pt on validation, mean of three seeds (1.08 before)
            cfg.rewind_epochs = 15
            cfg.centroid_epochs, cfg.pow2_epochs, cfg.pow2_lr = 1, 12, 5e-4
            cfg.conv_index_bits = 4
            # chosen on the validation split (docs/compress.md): the pow2 fine-tuning with a
            # cosine learning rate, then the biases retrained on the fixed codes
            cfg.pow2_schedule, cfg.bias_epochs = "cosine", 3
            # then quantisation-aware fine-tuning of the weights and biases through the integer
            # forward (compress/qat.py): +0.10 pt integer accuracy on validation
            cfg.qat_epochs, cfg.qat_lr, cfg.qat_weights = 3, 2e-4, True
    if model == "imported":
        cfg.epochs, cfg.hidden_targets, cfg.conv_targets = 0, None, None
    for k, v in overrides.items():
        if v is not None:
            setattr(cfg, k, v)
    return cfg


def _distillation(cfg, trained) -> Distillation | None:
    """Distillation from the float model in every fine-tuning phase (``cfg.distill``), or None."""
    if not cfg.distill:
        return None
    return Distillation(trained.original, cfg.distill, cfg.distill_temperature)


def _log(cfg, msg):
    if not cfg.quiet:
        print(msg, flush=True)


def run(cfg: Config, model=None, data=None) -> dict:
    """Run the pipeline for ``cfg.model`` on ``cfg.dataset``.

    ``model``: a user's trained ``torch.nn.Module`` (else ``cfg.model_file`` when set), imported
    with :func:`compress.importer.import_model`; the pipeline then starts from its weights.
    ``data``: a :class:`compress.data.Dataset` (else ``cfg.data_file`` when set, else the
    built-in ``cfg.dataset``).

    Writes ``report.txt``, ``summary.json``, the plots (``cfg.plots``) and the bundle (version 1
    for LeNet-300-100, version 2 for LeNet-5) to ``cfg.out`` (default
    ``build/compress/<dataset>_<model>``).

    Returns
    -------
    dict
        The summary, with the output directory under ``out``.
    """
    t0 = time.time()
    torch.set_num_threads(max(1, cfg.threads))
    seed_everything(cfg.seed)
    if data is None and cfg.data_file:
        data = load_npz(cfg.data_file)
    if data is None:
        data = load_dataset(cfg.dataset, cfg.data_dir, cfg.seed)
    else:  # a user's data set: its name labels the outputs
        cfg.dataset = data.name
    if cfg.train_limit or cfg.test_limit:
        data = data.subset(cfg.train_limit, cfg.test_limit)
    data = data.split_validation(cfg.val_fraction)
    imported = None
    if model is None and cfg.model_file:
        model = load_model_file(cfg.model_file, cfg.arch)
    if model is not None:
        imported = import_model(model, data.image_shape, data.classes)
    out = Path(cfg.out or f"build/compress/{cfg.dataset}_{cfg.model}")
    out.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []

    def log(msg=""):
        lines.append(msg)
        _log(cfg, msg)

    cnn = isinstance(imported, LeNet5) if imported is not None else cfg.model == "lenet5"
    if cnn:
        return run_cnn(cfg, data, out, log, lines, t0, imported)
    return run_mlp(cfg, data, out, log, lines, t0, imported)


def run_mlp(cfg: Config, data, out: Path, log, lines: list, t0: float, imported=None) -> dict:
    """LeNet-300-100: every stage, then the integer reference, CSR + Huffman encoding, the dense
    16-bit baseline and the bundle."""
    log(
        f"compress: dataset {cfg.dataset} ({len(data.x_train)} train / {len(data.x_val)} "
        f"validation / {len(data.x_test)} test, input {data.image_shape}), model {cfg.model}"
    )
    timings = {}
    t = time.time()
    trained = stages.train_float(cfg, data, log, imported)
    distill = _distillation(cfg, trained)
    model = trained.model
    timings["train"] = time.time() - t

    t = time.time()
    importance, structured_hist = stages.prune_structured(cfg, model, data, log, distill)
    timings["structured"] = time.time() - t

    t = time.time()
    pruned = stages.prune_unstructured(cfg, model, data, trained.original_weights, log, distill)
    timings["unstructured"] = time.time() - t

    t = time.time()
    shared = stages.share_weights(cfg, model, pruned, data, sweep_seed=cfg.seed, distill=distill)
    _log_shared(cfg, shared, log)
    timings["share"] = time.time() - t

    t = time.time()
    quant = stages.quantize_pow2(cfg, model, pruned.masks, data, snap_first=True, distill=distill)
    log(
        f"power-of-two (sign + {cfg.exp_bits}-bit exponent): val snapped "
        f"{100 * quant.val_snapped:.2f}% -> fine-tuned {100 * quant.val_accuracy:.2f}% "
        f"({_pow2_epochs(quant)})"
    )
    timings["pow2"] = time.time() - t

    t = time.time()
    method, specs, arrays, codes = calibrate_pow2(
        cfg, model, pruned.masks, quant.formats, data, log
    )
    man = {"input": input_spec(data), "layers": specs}
    x_test_q = integer_ref.quantize_inputs(man, data.x_test)
    test_out = integer_ref.forward((man, arrays), x_test_q)
    test_pred = np.argmax(test_out, axis=1)
    int_acc = float(np.mean(test_pred == data.y_test))
    int_val = _integer_val_accuracy(man, arrays, data)
    log(
        f"integer reference ({method} calibration): val {100 * int_val:.2f}%, test "
        f"{int(np.sum(test_pred == data.y_test))}/{len(data.y_test)} ({100 * int_acc:.2f}%)"
    )
    timings["integer"] = time.time() - t

    orig_layers = linear_layers(trained.original)
    fmts = {n: quant.formats[m] for n, m in linear_layers(model).items()}
    layer_rows, stage_bytes = _encode_layers(cfg, specs, arrays, codes, fmts, orig_layers)
    base_specs, base_arrays, base_acc = dense_baseline(cfg, trained.original, data, log)
    arrays.update(base_arrays)
    arrays["reference.test_inputs"] = x_test_q.astype(np.uint8)
    arrays["reference.test_labels"] = data.y_test.astype(np.int64)
    arrays["reference.test_outputs"] = test_out.astype(np.int32)
    arrays["reference.test_pred"] = test_pred.astype(np.int64)
    manifest = {
        "dataset": cfg.dataset,
        "model": cfg.model,
        "created_by": "compress 0.1.0",
        "input": man["input"],
        "layers": specs,
        "architecture": {
            "original": list(trained.original.sizes),
            "compressed": list(model.sizes),
        },
        "calibration": method,
        "reference": {
            "test_images": len(data.y_test),
            "integer_accuracy": int_acc,
            "float_accuracy": trained.accuracy,
        },
        "baseline": {
            "layers": base_specs,
            "integer_accuracy": base_acc,
            "float_accuracy": trained.accuracy,
        },
    }
    bundle_dir = save_bundle(out / "bundle", manifest, arrays)

    timings["total"] = time.time() - t0
    summary = _summary(
        cfg, data, trained=trained, pruned=pruned, shared=shared, quant=quant,
        stage_bytes=stage_bytes, layer_rows=layer_rows, int_acc=int_acc, int_val=int_val,
        base_acc=base_acc, architecture=manifest["architecture"], bundle_dir=bundle_dir,
        structured_hist=structured_hist, method=method, timings=timings,
    )  # fmt: skip
    return _write_outputs(cfg, out, summary, lines, log, trained, pruned, importance)


def run_cnn(cfg: Config, data, out: Path, log, lines: list, t0: float, imported=None) -> dict:
    """LeNet-5: the same stages (Taylor filter and neuron pruning, iterative pruning, sharing,
    pow2), then the integer layers (conv, pool, flatten, linear; fc1 in hwc order), the integer
    reference, CSR + Huffman encoding, the dense 16-bit baseline and a version-2 bundle."""
    log(
        f"compress: dataset {cfg.dataset} ({len(data.x_train)} train / {len(data.x_val)} "
        f"validation / {len(data.x_test)} test, input {data.image_shape}), model {cfg.model}"
    )
    timings = {}
    t = time.time()
    trained = stages.train_float(cfg, data, log, imported)
    distill = _distillation(cfg, trained)
    model = trained.model
    timings["train"] = time.time() - t

    t = time.time()
    importance, structured_hist = stages.prune_structured(cfg, model, data, log, distill)
    timings["structured"] = time.time() - t

    t = time.time()
    pruned = stages.prune_unstructured(cfg, model, data, trained.original_weights, log, distill)
    timings["unstructured"] = time.time() - t

    t = time.time()
    # the LeNet-5 cluster sweep seeds k-means with 0, whatever cfg.seed
    shared = stages.share_weights(cfg, model, pruned, data, sweep_seed=0, distill=distill)
    _log_shared(cfg, shared, log)
    timings["share"] = time.time() - t

    t = time.time()
    quant = stages.quantize_pow2(cfg, model, pruned.masks, data, snap_first=False, distill=distill)
    log(
        f"power-of-two (sign + {cfg.exp_bits}-bit exponent), fine-tuned from the shared weights: "
        f"val {100 * quant.val_accuracy:.2f}% ({_pow2_epochs(quant)})"
    )
    timings["pow2"] = time.time() - t

    t = time.time()
    method, specs, arrays, codes = calibrate_cnn_pow2(
        cfg, model, pruned.masks, quant.formats, data, log
    )
    qat_res = None
    if cfg.qat_epochs:
        timings["calibration"] = time.time() - t
        qat_res = qat.finetune(
            model, pruned.masks, quant.formats, specs, cnn_input_spec(data), data,
            epochs=cfg.qat_epochs, lr=cfg.qat_lr, batch=cfg.batch, seed=cfg.seed + 600,
            weights=cfg.qat_weights, augment=cfg.finetune_augment,
        )  # fmt: skip
        what = "weights and biases" if cfg.qat_weights else "biases"
        log(
            f"quantisation-aware fine-tuning ({what}, formats fixed): integer val "
            f"{100 * qat_res.val_before:.2f}% -> "
            f"{100 * qat_res.val_accuracy:.2f}% ({_qat_epochs(qat_res)})"
        )
        if qat_res.kept_epoch:
            _, specs, arrays, codes = calibrate_cnn_pow2(
                cfg, model, pruned.masks, quant.formats, data, log,
                frac_bits=qat.frac_bits_of(specs),
            )  # fmt: skip
            method += " + quantisation-aware fine-tuning"
        timings["qat"] = time.time() - t - timings["calibration"]
    man = {"input": cnn_input_spec(data), "layers": specs}
    x_test_q = integer_ref.quantize_inputs(man, data.x_test)
    test_out = integer_ref.forward((man, arrays), x_test_q)
    test_pred = np.argmax(test_out, axis=1)
    int_acc = float(np.mean(test_pred == data.y_test))
    int_val = _integer_val_accuracy(man, arrays, data)
    log(
        f"integer reference ({method} calibration): val {100 * int_val:.2f}%, test "
        f"{int(np.sum(test_pred == data.y_test))}/{len(data.y_test)} ({100 * int_acc:.2f}%)"
    )
    timings["integer"] = time.time() - t

    t = time.time()
    fmts = {pruned.names[m]: f for m, f in quant.formats.items()}
    weight_specs = [sp for sp in specs if sp["kind"] in ("conv2d", "linear")]
    layer_rows, stage_bytes = _encode_layers(
        cfg, weight_specs, arrays, codes, fmts, prunable(trained.original)
    )
    base_specs, base_arrays, base_acc = cnn_dense_baseline(cfg, trained.original, data, log)
    timings["encode+baseline"] = time.time() - t
    arrays.update(base_arrays)
    arrays["reference.test_inputs"] = x_test_q.astype(np.uint8)
    arrays["reference.test_labels"] = data.y_test.astype(np.int64)
    arrays["reference.test_outputs"] = test_out.astype(np.int32)
    arrays["reference.test_pred"] = test_pred.astype(np.int64)
    manifest = {
        "dataset": cfg.dataset,
        "model": cfg.model,
        "created_by": "compress 0.1.0",
        "input": man["input"],
        "layers": specs,
        "architecture": {
            "filters": [model.conv1.out_channels, model.conv2.out_channels],
            "original": _cnn_arch(trained.original),
            "compressed": _cnn_arch(model),
        },
        "calibration": method,
        "reference": {
            "test_images": len(data.y_test),
            "integer_accuracy": int_acc,
            "float_accuracy": trained.accuracy,
        },
        "baseline": {
            "layers": base_specs,
            "integer_accuracy": base_acc,
            "float_accuracy": trained.accuracy,
        },
    }
    bundle_dir = save_bundle(out / "bundle", manifest, arrays)

    timings["total"] = time.time() - t0
    summary = _summary(
        cfg, data, trained=trained, pruned=pruned, shared=shared, quant=quant,
        stage_bytes=stage_bytes, layer_rows=layer_rows, int_acc=int_acc, int_val=int_val,
        base_acc=base_acc, architecture=manifest["architecture"], bundle_dir=bundle_dir,
        structured_hist=structured_hist, method=method, timings=timings, qat_res=qat_res,
    )  # fmt: skip
    return _write_outputs(cfg, out, summary, lines, log, trained, pruned, importance)


# which split every choice of a run is made on (summary.json "chosen_on")
CHOSEN_ON = {
    "float training epoch": "validation",
    "fine-tuning epochs (Taylor steps, pruning rounds)": "validation",
    "power-of-two fine-tuning epoch": "validation",
    "quantisation-aware fine-tuning epoch (integer accuracy)": "validation",
    "cluster sweep (reported)": "validation",
    "fixed-point calibration": "train",
    "stage table test column": "test (measured once per stage, chooses nothing)",
}


def _summary(
    cfg, data, *, trained, pruned, shared, quant, stage_bytes, layer_rows, int_acc, int_val,
    base_acc, architecture, bundle_dir, structured_hist, method, timings, qat_res=None,
) -> dict:  # fmt: skip
    """``summary.json`` of a run (MLP or CNN): sizes, accuracies, per-stage and per-layer rows,
    which split chose what, timings and the configuration."""
    dense_bytes = trained.dense_bytes
    compressed_bytes = stage_bytes["huffman"]
    return {
        "dataset": cfg.dataset,
        "model": cfg.model,
        "float_accuracy": trained.accuracy,
        "integer_accuracy": int_acc,
        "pruned_fraction": _pruned_fraction(layer_rows, trained.original_weights),
        "dense_bytes": dense_bytes,
        "compressed_bytes": compressed_bytes,
        "compression_ratio": dense_bytes / compressed_bytes,
        "rom_bytes": stage_bytes["pow2"],
        "stages": _stage_rows(trained, stage_bytes, pruned, shared, quant, int_acc, int_val),
        "bundle": str(bundle_dir),
        "architecture": architecture,
        "baseline_integer_accuracy": base_acc,
        "layers": layer_rows,
        "schedule": pruned.schedule,
        "structured": structured_hist,
        "cluster_sweep": shared.sweep,
        "calibration": method,
        "splits": _splits(cfg, data),
        "chosen_on": CHOSEN_ON,
        "epoch_val": {
            "train": trained.epoch_val,
            "pow2": quant.epoch_val,
            "biases": quant.bias_val,
            "qat": [] if qat_res is None else qat_res.epoch_val,
        },
        # the quantisation-aware fine-tuning (LeNet-5, cfg.qat_epochs): integer validation
        # accuracy before it and of the epoch kept (0: none)
        "qat": None
        if qat_res is None
        else {
            "val_before": qat_res.val_before,
            "val_accuracy": qat_res.val_accuracy,
            "kept_epoch": qat_res.kept_epoch,
        },
        "timings_s": timings,
        "config": _config_dict(cfg),
    }


def _splits(cfg, data) -> dict:
    from .data import VAL_SEED

    return {
        "train": len(data.y_train),
        "validation": len(data.y_val),
        "test": len(data.y_test),
        "val_fraction": cfg.val_fraction,
        "val_seed": VAL_SEED,
        "stratified": True,
    }


def _pow2_epochs(quant) -> str:
    """Which epochs the pow2 stage kept and their validation accuracy: its fine-tuning's, then
    the bias retraining's when there was one (kept only if it raised the validation accuracy)."""
    text = f"epoch {_best_epoch(quant.epoch_val)} of {len(quant.epoch_val)}"
    if quant.epoch_val:
        text += f": {100 * max(quant.epoch_val):.2f}%"
    if quant.bias_val:
        best = max(quant.bias_val)
        if abs(best - quant.val_accuracy) < 1e-12:
            text += (
                f"; biases retrained, epoch {_best_epoch(quant.bias_val)} of "
                f"{len(quant.bias_val)}: {100 * best:.2f}%"
            )
        else:
            text += "; bias retraining not kept"
    return text


def _qat_epochs(res) -> str:
    if not res.kept_epoch:
        return f"{len(res.epoch_val)} epochs, none kept"
    return f"epoch {res.kept_epoch} of {len(res.epoch_val)} kept"


def _best_epoch(history: list) -> int:
    """1-based epoch the selection kept (the latest of the best): 0 when there was none."""
    return len(history) - int(np.argmax(history[::-1])) if history else 0


def _integer_val_accuracy(man: dict, arrays: dict, data) -> float:
    xq = integer_ref.quantize_inputs(man, data.x_val)
    return float(np.mean(integer_ref.predict((man, arrays), xq) == data.y_val))


def _log_shared(cfg, shared, log) -> None:
    log(
        "validation accuracy vs clusters: "
        + ", ".join(f"{s['clusters']}: {100 * s['val_accuracy']:.2f}%" for s in shared.sweep)
    )
    log(
        f"shared ({cfg.clusters} clusters, {cfg.kmeans_init} init): val "
        f"{100 * shared.val_shared:.2f}% -> centroids fine-tuned {100 * shared.val_tuned:.2f}%"
    )


def _cnn_arch(model) -> list:
    """Conv filter counts and fc widths of a LeNet-5, for the report's architecture line."""
    return [
        f"conv {model.conv1.out_channels}",
        f"conv {model.conv2.out_channels}",
        *model.sizes,
    ]


def _encode_layers(cfg, specs, arrays, codes, formats, orig_layers) -> tuple[list, dict]:
    """CSR + Huffman encode every weight layer of the bundle (``spec["index_bits"]`` per layer;
    ``formats``: `pow2.Pow2Format` by layer name): adds the mask, codes, codebook, pow2 and CSR
    arrays to ``arrays`` and the CSR counts to ``specs``; returns the per-layer rows and the
    total bytes per stage."""
    layer_rows = []
    stage_bytes = {"dense": 0, "pruned": 0, "shared": 0, "pow2": 0, "huffman": 0}
    for spec in specs:
        n = spec["name"]
        c, sgn, e, mk = codes[n]
        book = pow2.codebook(formats[n], spec["codebook_bits"])
        assert np.array_equal(book[c], arrays[f"{n}.weight_int"])
        enc = encode_layer(c, spec["index_bits"], spec["codebook_bits"], cfg.clusters)
        orig = orig_layers[n]
        sz = enc.sizes
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
                f"{n}.csr_rel": enc.rel,
                f"{n}.csr_code": enc.code,
                f"{n}.csr_rowptr": enc.rowptr,
            }
        )
        spec["csr_entries"] = len(enc.rel)
        spec["csr_fillers"] = enc.fillers
        layer_rows.append(
            {
                "name": n,
                "nonzeros": int(mk.sum()),
                "pruned_shape": list(c.shape),
                "original_shape": list(orig.weight.shape),
                "original": int(orig.weight.numel()),
                "csr_entries": len(enc.rel),
                "fillers": enc.fillers,
                "bytes": dict(sz),
            }
        )
    return layer_rows, stage_bytes


def _pruned_fraction(layer_rows: list, original_weights: int) -> float:
    return 1 - sum(r["nonzeros"] for r in layer_rows) / original_weights


def _stage_rows(
    trained, stage_bytes, pruned, shared, quant, int_acc=None, int_val=None
) -> list[dict]:
    """Bytes, compression ratio, validation and test accuracy after every stage (``int_acc``,
    ``int_val``: the integer reference's, also those of the Huffman-coded model; else the pow2
    model's)."""

    def row(name, key, test, val):
        return {"name": name, "bytes": stage_bytes[key], "accuracy": test, "val_accuracy": val}

    rows = [
        {
            "name": "float",
            "bytes": trained.dense_bytes,
            "accuracy": trained.accuracy,
            "val_accuracy": trained.val_accuracy,
        },
        row("pruned", "pruned", pruned.acc_pruned, pruned.val_pruned),
        row("pruned+retrained", "pruned", pruned.acc_retrained, pruned.val_retrained),
        row("shared", "shared", shared.acc_tuned, shared.val_tuned),
        row("shift-quantized", "pow2", quant.accuracy, quant.val_accuracy),
    ]
    if int_acc is not None:
        rows.append(row("integer reference", "pow2", int_acc, int_val))
    final = (quant.accuracy, quant.val_accuracy) if int_acc is None else (int_acc, int_val)
    rows.append(row("huffman", "huffman", *final))
    for r in rows:
        r["ratio"] = trained.dense_bytes / r["bytes"]
    return rows


def _config_dict(cfg: Config) -> dict:
    return {k: v for k, v in asdict(cfg).items() if k != "extra"}


def _write_outputs(cfg, out: Path, summary, lines, log, trained, pruned, importance) -> dict:
    """Log the report, write ``report.txt``, ``summary.json`` and the plots; return the summary
    with ``out`` added."""
    summary["environment"] = environment()
    for line in report.render(summary).splitlines():
        log(line)
    (out / "report.txt").write_text("\n".join(lines) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
    if cfg.plots:
        plots.write_all(
            out / "plots",
            trained.weights,
            pruned.weights_pruned,
            pruned.weights_retrained,
            summary["cluster_sweep"],
            pruned.schedule,
            importance,
            trained.original_weights,
        )
    summary["out"] = str(out)
    return summary
