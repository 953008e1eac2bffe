"""Weight sharing: per-layer 1-D k-means (scikit-learn) and centroid fine-tuning.

The gradient of a centroid is the sum of the gradients of the weights that share it; the cluster
assignments stay fixed.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.cluster import KMeans

__all__ = ["SharedLayer", "centroid_grad", "init_centroids", "kmeans_share", "share_model"]


def init_centroids(w: np.ndarray, k: int, method: str = "linear", seed: int = 0) -> np.ndarray:
    """Initial centroids: ``linear`` (evenly spaced over [min, max]), ``density`` (evenly spaced
    over the CDF) or ``random`` (k of the weights)."""
    w = np.sort(np.asarray(w, dtype=np.float64).ravel())
    if method == "linear":
        c = np.linspace(w[0], w[-1], k)
    elif method == "density":
        c = np.quantile(w, (np.arange(k) + 0.5) / k)
    elif method == "random":
        c = np.random.default_rng(seed).choice(w, k, replace=False)
    else:
        raise ValueError(f"unknown centroid init {method!r} (linear, density, random)")
    return c


def kmeans_share(w: np.ndarray, k: int, method: str = "linear", seed: int = 0):
    """``(centroids, labels)`` of a 1-D k-means over ``w`` (``k`` capped at the distinct values)."""
    w = np.asarray(w, dtype=np.float64).ravel()
    k = int(min(k, len(np.unique(w))))
    if k <= 1:
        return np.array([w.mean() if len(w) else 0.0]), np.zeros(len(w), dtype=np.int64)
    init = init_centroids(w, k, method, seed)
    init = np.unique(init)
    if len(init) < k:  # duplicates in the init: fill with data quantiles
        extra = np.quantile(w, np.linspace(0, 1, 2 * k))
        init = np.unique(np.concatenate([init, extra]))[:k]
        init = np.sort(init)
    km = KMeans(n_clusters=len(init), init=init.reshape(-1, 1), n_init=1, random_state=seed)
    labels = km.fit_predict(w.reshape(-1, 1))
    return km.cluster_centers_.ravel(), labels.astype(np.int64)


def centroid_grad(weight_grad: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """Sum of the gradients of the weights in each cluster (``labels`` -1: not shared)."""
    g = weight_grad.flatten()
    lab = labels.flatten()
    sel = lab >= 0
    out = torch.zeros(k, dtype=g.dtype)
    return out.scatter_add_(0, lab[sel], g[sel])


class SharedLayer:
    """A module whose alive weights take the values ``centroids[labels]``."""

    def __init__(self, module, mask: torch.Tensor, k: int, method: str = "linear", seed: int = 0):
        self.module = module
        self.mask = mask
        w = module.weight.detach()
        c, lab = kmeans_share(w[mask].numpy(), k, method, seed)
        labels = torch.full(w.shape, -1, dtype=torch.long)
        labels[mask] = torch.as_tensor(lab)
        self.labels = labels
        self.centroids = torch.nn.Parameter(torch.as_tensor(c, dtype=w.dtype))
        self.write()

    @property
    def k(self) -> int:
        return len(self.centroids)

    @torch.no_grad()
    def write(self) -> None:
        w = torch.zeros_like(self.module.weight)
        w[self.mask] = self.centroids[self.labels[self.mask]]
        self.module.weight.copy_(w)

    def set_grad(self) -> None:
        self.centroids.grad = centroid_grad(self.module.weight.grad, self.labels, self.k)


def share_model(masks: dict, k: int, method: str = "linear", seed: int = 0) -> list[SharedLayer]:
    return [SharedLayer(m, mask, k, method, seed) for m, mask in masks.items()]


def finetune_centroids(
    model,
    shared: list[SharedLayer],
    x,
    y,
    epochs=3,
    lr=1e-4,
    batch=64,
    seed=0,
    quiet=True,
    augment: str = "none",
    distill=None,
):
    """Train the centroids (assignments fixed) and the biases (``augment``: the training
    batches augmented, `train.augment_batch`; ``distill``: a `train.Distillation`)."""
    from tqdm import tqdm

    from .train import AUGMENTATIONS, augment_batch, task_loss

    if augment not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {augment!r} ({', '.join(AUGMENTATIONS)})")

    gen = torch.Generator().manual_seed(seed)
    x, y = torch.as_tensor(np.asarray(x)), torch.as_tensor(np.asarray(y))
    biases = [s.module.bias for s in shared if s.module.bias is not None]
    opt = torch.optim.Adam([s.centroids for s in shared] + biases, lr=lr)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        for i in tqdm(
            range(0, len(x), batch),
            desc=f"centroids {epoch + 1}/{epochs}",
            leave=False,
            disable=True if quiet else None,  # None: off when not a terminal (logs)
        ):
            idx = perm[i : i + batch]
            model.zero_grad()
            opt.zero_grad()
            xb = x[idx] if augment == "none" else augment_batch(x[idx], augment, gen)
            task_loss(model(xb), y[idx], xb, distill).backward()
            for s in shared:
                s.set_grad()
            opt.step()
            for s in shared:
                s.write()
    return model
