"""The Pareto front of the finished points, its plots (PNG) and its Markdown table."""

from __future__ import annotations

from pathlib import Path

# (figure, "max" or "min") of the front of each kind of sweep
OBJECTIVES = {
    "mlp": [("accuracy", "max"), ("rom_bits", "min"), ("LUT", "min"), ("cycles_mean", "min")],
    "conv": [("cycles_per_pixel", "min"), ("LUT", "min"), ("FF", "min"), ("storage_bits", "min")],
}
# (x, y) of each plot; the front drawn is the 2-D front of the pair
PLOTS = {
    "mlp": [("rom_bits", "accuracy"), ("LUT", "accuracy"), ("LUT", "cycles_mean")],
    "conv": [
        ("LUT", "cycles_per_pixel"),
        ("storage_bits", "cycles_per_pixel"),
        ("FF", "cycles_per_pixel"),
    ],
}
SENSE = {"accuracy": "max"}


def pareto_front(points: list[dict], objectives: list[tuple[str, str]]) -> list[int]:
    """Indices (in order) of the points no other point dominates: at least as good in every
    objective (``max``: larger is better, ``min``: smaller) and better in one. Points missing
    an objective are left out."""
    signs = [1 if sense == "max" else -1 for _, sense in objectives]
    names = [name for name, _ in objectives]
    vals = {}
    for i, p in enumerate(points):
        if all(isinstance(p.get(n), (int, float)) for n in names):
            vals[i] = [s * float(p[n]) for s, n in zip(signs, names, strict=True)]
    front = []
    for i, a in vals.items():
        dominated = any(_dominates(b, a) for j, b in vals.items() if j != i)
        if not dominated:
            front.append(i)
    return front


def _dominates(b, a) -> bool:
    pairs = list(zip(b, a, strict=True))
    return all(x >= y for x, y in pairs) and any(x > y for x, y in pairs)


def plot_fronts(
    rows: list[dict], kind: str, out: Path, labels: list[str], title: str = ""
) -> list[Path]:
    """One PNG per pair of :data:`PLOTS`: every point, its 2-D front marked and joined, the
    front's points labelled (``title``: what the labels list)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for x, y in PLOTS[kind]:
        idx = [
            i
            for i, r in enumerate(rows)
            if isinstance(r.get(x), (int, float)) and isinstance(r.get(y), (int, float))
        ]
        if not idx:
            continue
        sub = [rows[i] for i in idx]
        front = pareto_front(sub, [(x, "min"), (y, SENSE.get(y, "min"))])
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        ax.scatter([r[x] for r in sub], [r[y] for r in sub], c="0.6", s=22, label="points")
        f = sorted(front, key=lambda i: sub[i][x])
        ax.plot(
            [sub[i][x] for i in f], [sub[i][y] for i in f], "o-", c="C3", ms=6, label="Pareto front"
        )
        marks = {}  # points at the same place share one label
        for i in f:
            marks.setdefault((sub[i][x], sub[i][y]), []).append(labels[idx[i]])
        for xy, names in marks.items():
            ax.annotate("\n".join(names), xy, fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, title=f"labels: {title}" if title else None, title_fontsize=7)
        fig.tight_layout()
        path = out / f"pareto_{y}_vs_{x}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


def front_markdown(rows: list[dict], kind: str, axes: list[str]) -> str:
    """The Markdown table of the front over the objectives of ``kind`` every row has (a sweep
    without synthesis has no LUT), best first."""
    objectives = [
        (n, s) for n, s in OBJECTIVES[kind] if all(isinstance(r.get(n), (int, float)) for r in rows)
    ]
    front = pareto_front(rows, objectives)
    first, sense = objectives[0]
    front.sort(key=lambda i: rows[i][first], reverse=sense == "max")
    extra = {
        "mlp": [
            "integer_val_accuracy",
            "compression_ratio",
            "DSP",
            "FF",
            "BRAM18",
            "rtl_mismatches",
        ],
        "conv": ["mode", "cycles", "first_output_cycle", "DSP", "rtl_mismatches"],
    }[kind]
    cols = [*axes, *[n for n, _ in objectives], *extra]
    cols = [c for c in dict.fromkeys(cols) if any(c in rows[i] for i in front)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for i in front:
        lines.append("| " + " | ".join(_fmt(c, rows[i].get(c, "")) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def _fmt(name: str, value) -> str:
    if isinstance(value, float):
        if "accuracy" in name or "fraction" in name:
            return f"{100 * value:.2f} %"
        if value and abs(value) < 0.01:  # e.g. an L_p weight of 3e-06, not 0.000
            return f"{value:.3g}"
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.2f}"
    return str(value)
