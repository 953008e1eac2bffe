"""PNG plots of the pipeline (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["write_all"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _hist(plt, path, weights: dict, title: str, nonzero: bool = False):
    fig, axes = plt.subplots(1, len(weights), figsize=(4 * len(weights), 3))
    axes = np.atleast_1d(axes)
    for ax, (name, w) in zip(axes, weights.items(), strict=True):
        v = w.ravel()
        if nonzero:
            v = v[v != 0]
        ax.hist(v, bins=100)
        ax.set_title(f"{name} ({v.size} weights)")
        ax.set_xlabel("weight")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_all(folder, before, pruned, retrained, sweep, schedule, importance, original_weights):
    plt = _plt()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _hist(plt, folder / "weights_before_pruning.png", before, "weights before pruning")
    _hist(plt, folder / "weights_after_pruning.png", pruned, "after pruning (alive)", True)
    _hist(plt, folder / "weights_after_retraining.png", retrained, "after retraining (alive)", True)

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([s["clusters"] for s in sweep], [100 * s["val_accuracy"] for s in sweep], "o-")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("clusters per layer")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title("weight sharing, no fine-tuning")
    fig.tight_layout()
    fig.savefig(folder / "accuracy_vs_clusters.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 3.5))
    f = [100 * s["pruned_fraction"] for s in schedule]
    ax.plot(f, [100 * s["val_pruned"] for s in schedule], "o--", label="after pruning")
    ax.plot(f, [100 * s["val_retrained"] for s in schedule], "o-", label="after retraining")
    ax.set_xlabel("weights pruned (% of the original network)")
    ax.set_ylabel("validation accuracy (%)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "accuracy_vs_pruned.png", dpi=100)
    plt.close(fig)

    if not importance:  # no hidden layer: no neuron to rank
        return
    fig, axes = plt.subplots(1, len(importance), figsize=(4.5 * len(importance), 3))
    axes = np.atleast_1d(axes)
    for ax, (name, imp) in zip(axes, importance.items(), strict=True):
        ax.bar(np.arange(len(imp)), np.sort(imp)[::-1] / max(imp.max(), 1e-30), width=1.0)
        ax.set_title(f"{name}: Taylor importance per neuron")
        ax.set_xlabel("neuron (sorted)")
        ax.set_ylabel("relative importance")
    fig.tight_layout()
    fig.savefig(folder / "taylor_importance.png", dpi=100)
    plt.close(fig)
