"""What a compression run ran on: accuracy figures move with the CPU's kernel path (AVX2 vs
AVX-512 vs default), so every ``summary.json`` records it next to the library versions."""

from __future__ import annotations

import os
import platform
from importlib import metadata

import numpy as np
import torch

__all__ = ["environment"]


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict:
    """Machine, CPU kernel path and versions, for ``summary.json``."""
    return {
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-learn": _version("scikit-learn"),
    }
