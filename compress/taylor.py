"""First-order Taylor importance and structured pruning.

Per weight ``I_m = (g_m w_m)**2``; per group S (a neuron's incoming weights and bias, or a conv
filter) ``I_S = (sum_{s in S} g_s w_s)**2``; both accumulated (summed) over mini-batches.
Structured pruning physically removes neurons/filters and shrinks the next layer to match.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["group_importance", "remove_units", "taylor_importance"]


def taylor_importance(model, x, y, layers: dict, batch: int = 256, max_batches: int | None = None):
    """``(weight_importance, group_importance)``: dicts ``{module: tensor}`` accumulated over
    batches. Group importance is per output unit (row of a Linear, filter of a Conv2d)."""
    model.eval()
    x, y = torch.as_tensor(np.asarray(x)), torch.as_tensor(np.asarray(y))
    wimp = {m: torch.zeros_like(m.weight) for m in layers.values()}
    gimp = {m: torch.zeros(m.weight.shape[0], dtype=torch.float64) for m in layers.values()}
    for b, i in enumerate(range(0, len(x), batch)):
        if max_batches is not None and b >= max_batches:
            break
        model.zero_grad()
        F.cross_entropy(model(x[i : i + batch]), y[i : i + batch]).backward()
        with torch.no_grad():
            for m in layers.values():
                gw = m.weight.grad * m.weight
                wimp[m] += gw**2
                gimp[m] += group_importance(m).double()
    model.zero_grad()
    return wimp, gimp


def group_importance(m: nn.Module) -> torch.Tensor:
    """``(sum_s g_s w_s)**2`` per output unit of ``m`` from its ``.grad`` (bias included)."""
    gw = (m.weight.grad * m.weight).flatten(1).sum(1)
    if m.bias is not None and m.bias.grad is not None:
        gw = gw + m.bias.grad * m.bias
    return gw.detach() ** 2


@torch.no_grad()
def remove_units(layer: nn.Module, next_layer: nn.Module, keep, spatial: int = 1):
    """Keep only output units ``keep`` of ``layer`` (rows / filters) and the matching inputs of
    ``next_layer`` (columns; for a conv followed by a flatten, ``spatial`` columns per channel).
    Modules are replaced in place (their parameters shrink)."""
    keep = torch.as_tensor(np.sort(np.asarray(keep)), dtype=torch.long)
    layer.weight = nn.Parameter(layer.weight[keep].clone())
    if layer.bias is not None:
        layer.bias = nn.Parameter(layer.bias[keep].clone())
    if isinstance(layer, nn.Linear):
        layer.out_features = len(keep)
    else:
        layer.out_channels = len(keep)
    if isinstance(next_layer, nn.Linear):
        cols = (keep[:, None] * spatial + torch.arange(spatial)[None, :]).flatten()
        next_layer.weight = nn.Parameter(next_layer.weight[:, cols].clone())
        next_layer.in_features = len(cols)
    else:
        next_layer.weight = nn.Parameter(next_layer.weight[:, keep].clone())
        next_layer.in_channels = len(keep)
    return keep
