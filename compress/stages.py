"""The training stages of the pipeline, shared by LeNet-300-100 and LeNet-5: float training, Taylor
structured pruning, iterative unstructured pruning, k-means weight sharing and power-of-two
snapping. Each stage works on the model in place and returns what the report needs.

Every choice is made on the validation split (``data.x_val``, held out of the training set):
the epoch each training phase keeps, and the accuracies logged along the way (Taylor steps,
pruning rounds, the cluster sweep). The test set is measured once at the end of each stage,
for the stage table."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from . import pow2, prune, share, taylor
from .models import MLP, build_model, prunable
from .train import accuracy, evaluate, test_line, train

__all__ = [
    "Pow2Result",
    "PruneResult",
    "ShareResult",
    "Trained",
    "layer_weights",
    "on_test",
    "on_val",
    "prune_structured",
    "prune_unstructured",
    "quantize_pow2",
    "share_weights",
    "train_float",
]


def on_val(model, data) -> float:
    """Accuracy on the validation split."""
    return accuracy(model, data.x_val, data.y_val)


def on_test(model, data) -> float:
    """Accuracy on the test set (reported once per stage, never used to choose)."""
    return accuracy(model, data.x_test, data.y_test)


def layer_weights(model) -> dict[str, np.ndarray]:
    """A copy of every prunable layer's weight, by layer name (for the histograms)."""
    return {n: m.weight.detach().numpy().copy() for n, m in prunable(model).items()}


@dataclass
class Trained:
    model: torch.nn.Module  # the float model, compressed in place by the later stages
    original: torch.nn.Module  # an untouched copy of the trained float model
    accuracy: float  # test
    val_accuracy: float
    epoch_val: list  # validation accuracy after every epoch (the best epoch is kept)
    weights: dict  # layer_weights(original)
    original_weights: int  # weight count of the original prunable layers
    dense_bytes: int  # fp32 bytes of the original weights and biases


def train_float(cfg, data, log, initial=None) -> Trained:
    """Build ``cfg.model``, train it in float (keeping the best epoch on the validation split),
    log the validation and test lines; return the model, a copy of it and its original size.

    ``initial``: a user's trained network already imported (``compress.importer``); it is
    trained further only for ``cfg.epochs`` > 0 (0, no training, by default)."""
    if initial is not None:
        model = initial
        log(f"imported model: {_describe(model)}, {cfg.epochs} further float epochs")
    else:
        model = build_model(cfg.model, data.image_shape, data.classes)
    epoch_val = []
    if initial is None or cfg.epochs > 0:
        train(
            model,
            data.x_train,
            data.y_train,
            epochs=cfg.epochs,
            lr=cfg.lr,
            batch=cfg.batch,
            seed=cfg.seed,
            l1=cfg.l1,
            lp=cfg.lp,
            lp_p=cfg.lp_p,
            weight_decay=cfg.weight_decay,
            schedule=cfg.train_schedule,
            augment=cfg.augment,
            desc="train",
            quiet=cfg.quiet,
            val=(data.x_val, data.y_val),
            history=epoch_val,
        )
    best = len(epoch_val) - int(np.argmax(epoch_val[::-1])) if epoch_val else 0
    val_acc = on_val(model, data)
    log(
        f"validation: epoch {best} of {len(epoch_val)} kept, accuracy {100 * val_acc:.2f}% "
        f"({len(data.y_val)} images)"
    )
    loss, correct, total = evaluate(model, data.x_test, data.y_test)
    log(test_line(loss, correct, total))
    original = copy.deepcopy(model)
    layers = prunable(original).values()
    return Trained(
        model=model,
        original=original,
        accuracy=correct / total,
        val_accuracy=val_acc,
        epoch_val=epoch_val,
        weights=layer_weights(model),
        original_weights=sum(m.weight.numel() for m in layers),
        dense_bytes=4 * sum(m.weight.numel() + m.bias.numel() for m in layers),
    )


def _describe(model) -> str:
    if isinstance(model, MLP):
        return "MLP " + " -> ".join(map(str, model.sizes))
    return (
        f"CNN conv {model.conv1.out_channels} (K={model.conv1.kernel_size[0]}), conv "
        f"{model.conv2.out_channels} (K={model.conv2.kernel_size[0]}), fc "
        + " -> ".join(map(str, model.sizes))
    )


def _retrain(
    cfg, model, data, seed: int, desc: str, masks=None, distill=None, *, rewind: bool = False
) -> tuple[float, float]:
    """``(validation accuracy before, after)`` a fine-tuning phase of ``cfg.finetune_epochs``
    that keeps its best epoch on the validation split. ``rewind``: ``cfg.rewind_epochs`` at the
    float training's rate ``cfg.lr``, cosine to 0, instead (learning-rate rewinding)."""
    before = on_val(model, data)
    train(
        model,
        data.x_train,
        data.y_train,
        epochs=cfg.rewind_epochs if rewind else cfg.finetune_epochs,
        lr=cfg.lr if rewind else cfg.finetune_lr,
        batch=cfg.batch,
        seed=seed,
        masks=masks,
        desc=desc,
        quiet=cfg.quiet,
        val=(data.x_val, data.y_val),
        schedule="cosine" if rewind else cfg.finetune_schedule,
        augment=cfg.finetune_augment,
        distill=distill,
    )
    return before, on_val(model, data)


def _conv_side(model, data) -> int:
    """Spatial positions per conv2 channel at the flatten (fc1 columns per filter)."""
    with torch.no_grad():
        x = torch.as_tensor(data.x_train[:1])
        x = torch.max_pool2d(torch.relu(model.conv1(x)), 2)
        x = torch.relu(model.conv2(x))
        if model.pool2:
            x = torch.max_pool2d(x, 2)
    return x.shape[-1] * x.shape[-2]


def prune_structured(cfg, model, data, log, distill=None) -> tuple[dict, list]:
    """Taylor structured pruning in ``cfg.structured_steps`` steps, each fine-tuned: hidden
    neurons of an MLP (down to ``cfg.hidden_targets``) or LeNet-5 conv filters (down to
    ``cfg.conv_targets``) and hidden fc neurons (down to ``cfg.hidden_targets``). Returns the
    group importance of the first step by layer name and one history entry per step.
    ``distill`` (a :class:`~compress.train.Distillation`): the fine-tuning distils from it."""
    mlp = isinstance(model, MLP)
    # None: every width kept (an imported network's default)
    hidden_t = cfg.hidden_targets if cfg.hidden_targets is not None else model.sizes[1:-1]
    if mlp:
        widths0 = model.sizes[1:-1]
        targets = list(hidden_t)[: len(widths0)]
        pairs = [(i, i + 1, 1) for i in range(len(widths0))]
        names = [f"fc{i + 1}" for i in range(len(widths0))]
    else:
        # conv filters, then the hidden fc neurons (a missing hidden target keeps the width)
        hidden0 = model.sizes[1:-1]
        widths0 = [model.conv1.out_channels, model.conv2.out_channels, *hidden0]
        hidden = list(hidden_t)[: len(hidden0)]
        conv_t = cfg.conv_targets if cfg.conv_targets is not None else widths0[:2]
        targets = [*conv_t, *hidden, *hidden0[len(hidden) :]]
        pairs = [("conv1", "conv2", 1), ("conv2", "fc1", _conv_side(model, data))]
        pairs += [(f"fc{i + 1}", f"fc{i + 2}", 1) for i in range(len(hidden0))]
        names = [a for a, _, _ in pairs]
    for name, w0, t in zip(names, widths0, targets, strict=False):
        if not 1 <= t <= w0:
            raise ValueError(
                f"structured pruning target {t} for {name} is not in 1..{w0} (its width)"
            )
    if list(targets) == list(widths0)[: len(targets)]:
        # nothing to remove: the importance once, for the plot, and no fine-tuning
        layers = prunable(model)
        _, gimp = taylor.taylor_importance(
            model, data.x_train, data.y_train, layers, batch=256, max_batches=cfg.taylor_batches
        )
        log(f"Taylor structured pruning: every width kept ({_describe(model)})")
        return {n: gimp[layers[n]].numpy().copy() for n in names}, []
    first, history = None, []
    for step in range(1, cfg.structured_steps + 1):
        layers = prunable(model)
        _, gimp = taylor.taylor_importance(
            model, data.x_train, data.y_train, layers, batch=256, max_batches=cfg.taylor_batches
        )
        if first is None:
            first = {n: gimp[layers[n]].numpy().copy() for n in names}
        for i, ((a, b, spatial), w0, t) in enumerate(zip(pairs, widths0, targets, strict=not mlp)):
            layer, nxt = (model.layer(a), model.layer(b)) if mlp else (layers[a], layers[b])
            width = int(round(w0 * (t / w0) ** (step / cfg.structured_steps)))
            keep = np.argsort(-gimp[layer].numpy(), kind="stable")[:width]
            taylor.remove_units(layer, nxt, keep, spatial=spatial)
            if mlp:
                model.sizes[i + 1] = width
            elif i == 1:
                model.sizes[0] = width * spatial
            elif i >= 2:
                model.sizes[i - 1] = width
        acc0, acc1 = _retrain(
            cfg, model, data, cfg.seed + 100 + step, f"taylor step {step}", distill=distill
        )
        if mlp:
            shape = {"sizes": list(model.sizes)}
            text = " -> ".join(map(str, model.sizes))
        else:
            shape = {
                "filters": [model.conv1.out_channels, model.conv2.out_channels],
                "hidden": list(model.sizes[1:-1]),
            }
            text = f"filters {shape['filters']}, fc {' -> '.join(map(str, model.sizes))}"
        history.append({"step": step, **shape, "val_pruned": acc0, "val_finetuned": acc1})
        log(f"Taylor step {step}: {text}  val {100 * acc0:.2f}% -> fine-tuned {100 * acc1:.2f}%")
    return first, history


@dataclass
class PruneResult:
    masks: dict  # module -> bool mask of the alive weights
    names: dict  # module -> layer name
    schedule: list  # one entry per round (validation accuracies)
    acc_pruned: float  # test accuracy right after the last pruning step
    acc_retrained: float  # test accuracy after its retraining
    val_pruned: float  # the same two on the validation split
    val_retrained: float
    weights_pruned: dict  # layer_weights right after the last pruning step
    weights_retrained: dict  # layer_weights after its retraining


def prune_unstructured(cfg, model, data, original_weights: int, log, distill=None) -> PruneResult:
    """Iterative magnitude (or Taylor, ``cfg.criterion``) pruning in ``cfg.prune_rounds`` rounds
    up to ``cfg.layer_sparsity`` per layer, each round retrained with the masks held (and
    distilled with ``distill``)."""
    layers = prunable(model)
    names = {m: n for n, m in layers.items()}
    masks = prune.full_masks(layers)
    sparsity = list(cfg.layer_sparsity)
    # one fraction per layer: the last repeated for more layers, extra ones unused
    sparsity = (sparsity + [sparsity[-1]] * (len(layers) - len(sparsity)))[: len(layers)]
    schedule = []
    acc_pruned = None
    weights_pruned = None
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
        if r == cfg.prune_rounds:
            acc_pruned = on_test(model, data)
        weights_pruned = layer_weights(model)
        val_pruned, acc = _retrain(
            cfg, model, data, cfg.seed + 200 + r, f"prune round {r}", masks, distill
        )
        alive = sum(int(mk.sum()) for mk in masks.values())
        frac = 1 - alive / original_weights
        schedule.append(
            {"round": r, "pruned_fraction": frac, "val_pruned": val_pruned, "val_retrained": acc}
        )
        log(
            f"prune round {r}: {100 * frac:.2f}% of the original weights pruned, "
            f"val {100 * val_pruned:.2f}% -> retrained {100 * acc:.2f}%"
        )
    val_retrained = schedule[-1]["val_retrained"]
    if cfg.rewind_epochs:
        # the pruned network retrained at the float training's rate and schedule rather than
        # fine-tuned at a small one
        before, val_retrained = _retrain(
            cfg, model, data, cfg.seed + 290, "rewind", masks, distill, rewind=True
        )
        log(
            f"rewound: {cfg.rewind_epochs} epochs at {cfg.lr:g}, cosine, "
            f"val {100 * before:.2f}% -> {100 * val_retrained:.2f}%"
        )
    return PruneResult(
        masks=masks,
        names=names,
        schedule=schedule,
        acc_pruned=acc_pruned,
        acc_retrained=on_test(model, data),
        val_pruned=schedule[-1]["val_pruned"],
        val_retrained=val_retrained,
        weights_pruned=weights_pruned,
        weights_retrained=layer_weights(model),
    )


@dataclass
class ShareResult:
    sweep: list  # [{"clusters", "val_accuracy"}] of the cluster sweep (no fine-tuning)
    acc_shared: float  # test accuracy with cfg.clusters shared weights per layer
    acc_tuned: float  # ... after centroid fine-tuning
    val_shared: float  # the same two on the validation split
    val_tuned: float


def share_weights(
    cfg, model, pruned: PruneResult, data, sweep_seed: int, distill=None
) -> ShareResult:
    """k-means weight sharing. First the accuracy for every ``cfg.cluster_sweep`` k on copies of
    the model (k-means seeded with ``sweep_seed``; validation accuracy), then ``cfg.clusters``
    clusters per layer on the model itself with the centroids fine-tuned (distilled with
    ``distill``)."""
    sweep = []
    for k in cfg.cluster_sweep:
        trial = copy.deepcopy(model)
        tl = prunable(trial)
        tmasks = {tl[pruned.names[m]]: mk for m, mk in pruned.masks.items()}
        share.share_model(tmasks, k, cfg.kmeans_init, sweep_seed)
        sweep.append({"clusters": k, "val_accuracy": on_val(trial, data)})
    shared = share.share_model(pruned.masks, cfg.clusters, cfg.kmeans_init, cfg.seed)
    acc_shared, val_shared = on_test(model, data), on_val(model, data)
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
        augment=cfg.finetune_augment,
        distill=distill,
    )
    return ShareResult(sweep, acc_shared, on_test(model, data), val_shared, on_val(model, data))


@dataclass
class Pow2Result:
    formats: dict  # module -> pow2.Pow2Format
    acc_snapped: float | None  # test accuracy right after snapping (None: not snapped first)
    accuracy: float  # test accuracy after straight-through fine-tuning
    val_snapped: float | None  # the same two on the validation split
    val_accuracy: float
    epoch_val: list  # validation accuracy of the snapped model after every epoch
    bias_val: list  # ... after every epoch of the bias retraining (cfg.bias_epochs)


def quantize_pow2(cfg, model, masks: dict, data, snap_first: bool, distill=None) -> Pow2Result:
    """Power-of-two weights (sign + ``cfg.exp_bits``-bit exponent, scale per layer): with
    ``snap_first`` the weights are snapped before the straight-through fine-tuning (which then
    starts from the snapped values), else it starts from the shared weights. Ends snapped, with
    the best epoch on the validation split. ``distill``: its fine-tuning and the biases' distil."""
    formats = {m: pow2.best_kmax(m.weight.detach(), mk, cfg.exp_bits) for m, mk in masks.items()}
    acc_snapped = val_snapped = None
    if snap_first:
        with torch.no_grad():
            for m, mk in masks.items():
                m.weight.copy_(pow2.snap(m.weight.detach(), mk, formats[m]))
        acc_snapped, val_snapped = on_test(model, data), on_val(model, data)
    epoch_val = []
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
        val=(data.x_val, data.y_val),
        history=epoch_val,
        schedule=cfg.pow2_schedule,
        augment=cfg.finetune_augment,
        distill=distill,
    )
    bias_val = []
    if cfg.bias_epochs:
        # the codes fixed: retrain the free parameters (the biases) on the snapped weights, kept
        # only if the validation split says they are better
        before, state = on_val(model, data), copy.deepcopy(model.state_dict())
        weights = [m.weight for m in masks]
        for w in weights:
            w.requires_grad_(False)
        train(
            model,
            data.x_train,
            data.y_train,
            epochs=cfg.bias_epochs,
            lr=cfg.pow2_lr,
            batch=cfg.batch,
            seed=cfg.seed + 500,
            desc="biases",
            quiet=cfg.quiet,
            augment=cfg.finetune_augment,
            val=(data.x_val, data.y_val),
            history=bias_val,
            distill=distill,
        )
        for w in weights:
            w.requires_grad_(True)
        if max(bias_val) < before:
            model.load_state_dict(state)
    return Pow2Result(
        formats,
        acc_snapped,
        on_test(model, data),
        val_snapped,
        on_val(model, data),
        epoch_val,
        bias_val,
    )
