"""LeNet-300-100 (input size from the data) and a small LeNet-5 style CNN.

Fully connected layers are named ``fc1, fc2, ...`` and conv layers ``conv1, conv2``; the bundle uses
the same names. The CNN's convolutions are odd-K, stride-1, valid-padding (line-buffer engine).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MLP", "LeNet5", "build_model", "linear_layers", "prunable"]


class MLP(nn.Module):
    """ReLU MLP ``sizes[0] -> ... -> sizes[-1]``; the input is flattened."""

    def __init__(self, sizes):
        super().__init__()
        self.sizes = list(sizes)
        for i, (a, b) in enumerate(zip(self.sizes, self.sizes[1:], strict=False)):
            setattr(self, f"fc{i + 1}", nn.Linear(a, b))

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    def layer(self, i: int) -> nn.Linear:
        return getattr(self, f"fc{i + 1}")

    def forward(self, x):
        x = x.flatten(1)
        for i in range(self.n_layers):
            x = self.layer(i)(x)
            if i < self.n_layers - 1:
                x = torch.relu(x)
        return x

    def hidden_activations(self, x):
        """Outputs of every layer (after ReLU for hidden layers)."""
        outs = []
        x = x.flatten(1)
        for i in range(self.n_layers):
            x = self.layer(i)(x)
            if i < self.n_layers - 1:
                x = torch.relu(x)
            outs.append(x)
        return outs


class LeNet5(nn.Module):
    """conv(K) -> ReLU -> maxpool 2 -> conv(K) -> ReLU -> [maxpool 2] -> fc -> fc -> fc."""

    def __init__(self, image_shape=(1, 28, 28), channels=(6, 16), hidden=(120, 84), classes=10):
        super().__init__()
        c, h, w = image_shape
        k = 5 if h >= 20 else 3
        self.conv1 = nn.Conv2d(c, channels[0], k)
        self.conv2 = nn.Conv2d(channels[0], channels[1], k)
        h1 = (h - k + 1) // 2
        h2 = h1 - k + 1
        self.pool2 = h2 >= 4
        side = h2 // 2 if self.pool2 else h2
        sizes = [channels[1] * side * side, *hidden, classes]
        self.sizes = sizes
        for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)):
            setattr(self, f"fc{i + 1}", nn.Linear(a, b))
        self.n_fc = len(sizes) - 1

    def forward(self, x):
        return self.hidden_activations(x)[-1]

    def hidden_activations(self, x):
        """Outputs of every conv and fc layer (after ReLU for all but the last), before pooling."""
        outs = [torch.relu(self.conv1(x))]
        x = torch.max_pool2d(outs[-1], 2)
        outs.append(torch.relu(self.conv2(x)))
        x = torch.max_pool2d(outs[-1], 2) if self.pool2 else outs[-1]
        x = x.flatten(1)
        for i in range(self.n_fc):
            x = getattr(self, f"fc{i + 1}")(x)
            if i < self.n_fc - 1:
                x = torch.relu(x)
            outs.append(x)
        return outs


def build_model(name: str, image_shape, classes: int = 10, hidden=None) -> nn.Module:
    features = 1
    for s in image_shape:
        features *= s
    if name == "lenet300":
        hidden = list(hidden or (300, 100))
        return MLP([features, *hidden, classes])
    if name == "lenet5":
        return LeNet5(tuple(image_shape), classes=classes)
    raise ValueError(f"unknown model {name!r} (expected lenet300 or lenet5)")


def prunable(model: nn.Module) -> dict[str, nn.Module]:
    """Weight-carrying layers by name, in forward order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}


def linear_layers(model: nn.Module) -> dict[str, nn.Linear]:
    return {name: m for name, m in prunable(model).items() if isinstance(m, nn.Linear)}
