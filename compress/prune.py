"""Unstructured pruning: masks by percentile or by ``sensitivity x std``, per layer."""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "apply_masks",
    "full_masks",
    "mask_stats",
    "prune_by_percentile",
    "prune_by_std",
    "prune_to_count",
]


def full_masks(layers: dict) -> dict:
    """``{module: all-True mask}`` for ``{name: module}``."""
    return {m: torch.ones_like(m.weight, dtype=torch.bool) for m in layers.values()}


@torch.no_grad()
def apply_masks(masks: dict) -> None:
    for m, mask in masks.items():
        m.weight.mul_(mask)


def prune_to_count(score: torch.Tensor, mask: torch.Tensor, keep: int) -> torch.Tensor:
    """New mask keeping the ``keep`` highest-``score`` weights among the alive ones."""
    keep = int(max(0, min(keep, int(mask.sum()))))
    flat = torch.where(mask.flatten(), score.flatten().double(), torch.tensor(-np.inf).double())
    new = torch.zeros(flat.numel(), dtype=torch.bool)
    if keep:
        new[torch.topk(flat, keep, sorted=False).indices] = True
    return new.reshape(mask.shape) & mask


@torch.no_grad()
def prune_by_percentile(masks: dict, q: float, score: dict | None = None) -> dict:
    """Prune ``q`` percent of each layer's alive weights, lowest ``|w|`` (or ``score``) first."""
    out = {}
    for m, mask in masks.items():
        alive = int(mask.sum())
        s = m.weight.abs() if score is None else score[m]
        out[m] = prune_to_count(s, mask, round(alive * (1 - q / 100.0)))
    apply_masks(out)
    return out


@torch.no_grad()
def prune_by_std(masks: dict, sensitivity: float) -> dict:
    """Prune weights with ``|w| < sensitivity * std`` (std of the layer's alive weights)."""
    out = {}
    for m, mask in masks.items():
        w = m.weight
        threshold = sensitivity * float(w[mask].std()) if int(mask.sum()) > 1 else 0.0
        out[m] = mask & (w.abs() >= threshold)
    apply_masks(out)
    return out


def mask_stats(masks: dict, names: dict) -> list[tuple[str, int, int, tuple]]:
    """``(name, nonzeros, total, shape)`` per layer; ``names`` maps module -> name."""
    return [
        (names[m], int(mask.sum()), mask.numel(), tuple(mask.shape)) for m, mask in masks.items()
    ]
