"""Design-space sweeps on Ray (docs/sweep.md): a TOML grid of points, each point compressed,
generated, synthesised, cycle-counted and checked in RTL as one Ray task; results keyed by a
SHA-256 of the point and the code version, one JSON per point, a CSV table, Pareto plots."""

from .grid import Point, Sweep, load_sweep
from .pareto import pareto_front
from .runner import run_sweep

__all__ = ["Point", "Sweep", "load_sweep", "pareto_front", "run_sweep"]
