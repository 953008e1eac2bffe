"""Text report: per-layer pruning lines, the compression summary and the stage table."""

from __future__ import annotations

__all__ = ["layer_line", "render", "stage_table", "summary_line"]


def layer_line(name: str, nonzeros: int, total: int, shape) -> str:
    return (
        f"{name}.weight | nonzeros = {nonzeros} / {total} ({100 * nonzeros / total:.2f}%) "
        f"| total_pruned = {total - nonzeros} | shape = {tuple(shape)}"
    )


def summary_line(alive: int, total: int) -> str:
    return (
        f"alive: {alive}, pruned: {total - alive}, total: {total}, "
        f"Compression rate : {total / max(alive, 1):.2f}x "
        f"({100 * (total - alive) / total:.2f}% pruned)"
    )


def stage_table(stages) -> str:
    """Bytes, ratio, and the validation and test accuracy of every stage (the validation split
    chose; the test column is measured once per stage)."""
    rows = [f"{'stage':<20} {'bytes':>10} {'ratio':>9} {'val':>9} {'test':>9}"]

    def pct(v):
        return "" if v is None else f"{100 * v:.2f}%"

    for s in stages:
        val, acc = pct(s.get("val_accuracy")), pct(s["accuracy"])
        rows.append(f"{s['name']:<20} {s['bytes']:>10} {s['ratio']:>8.2f}x {val:>9} {acc:>9}")
    return "\n".join(rows)


def render(summary: dict) -> str:
    out = ["", "Per layer (against the original dense layer; structured pruning included):"]
    for r in summary["layers"]:
        out.append(layer_line(r["name"], r["nonzeros"], r["original"], r["original_shape"]))
    alive = sum(r["nonzeros"] for r in summary["layers"])
    total = sum(r["original"] for r in summary["layers"])
    out.append(summary_line(alive, total))
    arch = summary.get("architecture", {})
    if arch and "original" in arch:
        out.append(
            f"architecture: {' -> '.join(map(str, arch['original']))}  =>  "
            f"{' -> '.join(map(str, arch['compressed']))}"
        )
    out += ["", stage_table(summary["stages"]), ""]
    if summary.get("integer_accuracy") is not None:
        out.append(
            f"float accuracy {100 * summary['float_accuracy']:.2f}%, integer reference "
            f"{100 * summary['integer_accuracy']:.2f}%, dense 16-bit baseline "
            f"{100 * summary.get('baseline_integer_accuracy', float('nan')):.2f}%"
        )
    out.append(
        f"dense fp32 {summary['dense_bytes']} B -> compressed {summary['compressed_bytes']} B: "
        f"{summary['compression_ratio']:.2f}x (ROM words, no Huffman: {summary['rom_bytes']} B)"
    )
    return "\n".join(out)
