"""The design-space sweep (sweep/, docs/sweep.md): grid and keys, the Pareto front on a hand
example, atomic records, and tiny sweeps on a local Ray (one CPU): conv engine points checked in
RTL, a failing point, resume, and one MLP point from a 1-epoch compress run."""

import csv
import os
from pathlib import Path

import pytest

from compress.files import write_atomic
from sweep import pareto_front, run_sweep
from sweep.grid import SweepError, sweep_from_dict
from sweep.pareto import front_markdown
from sweep.store import Store
from tb.golden.conv import conv_cycles


def test_pareto_front_hand_example():
    pts = [
        {"acc": 0.90, "bits": 100},  # 0: front (smallest)
        {"acc": 0.95, "bits": 200},  # 1: front
        {"acc": 0.94, "bits": 250},  # 2: dominated by 1
        {"acc": 0.97, "bits": 400},  # 3: front (most accurate)
        {"acc": 0.90, "bits": 150},  # 4: dominated by 0
        {"acc": 0.95, "bits": 200},  # 5: equal to 1, not dominated
        {"acc": 0.99},  # 6: no bits: left out
    ]
    assert pareto_front(pts, [("acc", "max"), ("bits", "min")]) == [0, 1, 3, 5]
    # reversed senses: least accurate (4), most bits (3), and 2 (fewer bits than 3, worse than 4)
    assert pareto_front(pts, [("acc", "min"), ("bits", "max")]) == [2, 3, 4]
    three = [{"a": 1, "b": 1, "c": 3}, {"a": 1, "b": 2, "c": 1}, {"a": 2, "b": 2, "c": 3}]
    assert pareto_front(three, [("a", "min"), ("b", "min"), ("c", "min")]) == [0, 1]


def test_front_table_uses_the_objectives_present():
    rows = [
        {"line_buffers": 2, "cycles_per_pixel": 1.08, "storage_bits": 128, "mode": "streaming"},
        {"line_buffers": 4, "cycles_per_pixel": 1.22, "storage_bits": 256, "mode": "overlapped"},
        {"line_buffers": 3, "cycles_per_pixel": 0.94, "storage_bits": 300, "mode": "serial"},
    ]
    text = front_markdown(rows, "conv", ["line_buffers"])
    lines = text.splitlines()
    assert lines[0] == "| line_buffers | cycles_per_pixel | storage_bits | mode |"
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| 3", "| 2"]


def test_front_table_writes_small_settings_in_full():
    rows = [{"lp": 3e-6, "cycles_mean": 693.42, "rom_bits": 96632, "accuracy": 0.8759}]
    text = front_markdown(rows, "mlp", ["lp"])
    assert "| 3e-06 | 87.59 % | 96632 |" in text  # not 0.000


def test_every_sweep_file_parses():
    """Every file in sweeps/ loads, and an MLP one names only settings its points accept (an
    unknown one would otherwise fail only when each point runs)."""
    from compress.pipeline import config_for
    from compress2rtl.api import config_overrides
    from sweep.grid import MLP_HARDWARE, load_sweep

    files = sorted((Path(__file__).resolve().parents[1] / "sweeps").glob("*.toml"))
    assert files
    for path in files:
        sweep = load_sweep(path, version="v")
        assert sweep.points, path
        for point in sweep.points if sweep.kind == "mlp" else []:
            cfg = {k: v for k, v in point.config.items() if k not in MLP_HARDWARE}
            dataset, model = cfg.pop("dataset", "digits"), cfg.pop("model", "lenet300")
            overrides = config_overrides(cfg, ("dataset", "model", "out", "extra"), str(path))
            config_for(dataset, model, **overrides)


def test_grid_product_and_keys():
    data = {
        "name": "g",
        "kind": "conv",
        "fixed": {"size": 8},
        "axes": {"line_buffers": [2, 3], "pixels_per_clock": [1, 2, 4]},
        "check": {"synth": False},
    }
    sweep = sweep_from_dict(data, version="v1")
    assert len(sweep.points) == 6
    assert len({p.key for p in sweep.points}) == 6
    assert sweep.points[0].config["width"] == sweep.points[0].config["height"] == 8
    again = sweep_from_dict(data, version="v1")
    assert [p.key for p in again.points] == [p.key for p in sweep.points]
    other = sweep_from_dict(data, version="v2")  # a new code version: every key changes
    assert not {p.key for p in other.points} & {p.key for p in sweep.points}
    with pytest.raises(SweepError, match="unknown conv settings"):
        sweep_from_dict({**data, "fixed": {"colour": 1}})
    with pytest.raises(SweepError, match="non-empty list"):
        sweep_from_dict({**data, "axes": {"line_buffers": []}})


def test_records_are_atomic(tmp_path):
    sweep = sweep_from_dict(
        {"name": "a", "kind": "conv", "axes": {"line_buffers": [2]}}, version="v"
    )
    store, point = Store(tmp_path), sweep.points[0]
    assert store.load(point) is None
    store.save(point, {"status": "ok", "figures": {"cycles": 5}})
    assert store.load(point)["figures"] == {"cycles": 5}
    assert [p.name for p in store.points.iterdir()] == [store.path(point).name]  # no tmp left
    store.path(point).write_text('{"key": "')  # a half-written file (not ours) counts as none
    assert store.load(point) is None
    with pytest.raises(TypeError):
        write_atomic(store.path(point), object())
    assert [p.name for p in store.points.iterdir()] == [store.path(point).name]


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    saved = os.environ.pop("RAY_ADDRESS", None)
    from sweep.runner import init_ray

    init_ray(num_cpus=1)
    yield ray
    ray.shutdown()
    if saved is not None:
        os.environ["RAY_ADDRESS"] = saved


def _conv_sweep():
    return sweep_from_dict(
        {
            "name": "tiny_conv",
            "kind": "conv",
            "fixed": {"size": 8},
            "axes": {"line_buffers": [1, 2, 4]},  # N = 1 < K - 1: an invalid point
            "check": {"synth": False, "rtl_images": 1},
        }
    )


@pytest.mark.hardware
@pytest.mark.slow
def test_conv_sweep_records_resumes_and_survives_a_failing_point(local_ray, tmp_path):
    sweep = _conv_sweep()
    quiet = {"progress": False, "log": lambda *a: None}
    first = run_sweep(sweep, tmp_path, **quiet)
    assert (first["computed"], first["skipped"], first["failed"]) == (3, 0, 1)
    store = Store(tmp_path / "tiny_conv")
    records = [store.load(p) for p in sweep.points]
    bad, *good = records
    assert bad["status"] == "error" and "line_buffers" in bad["error"]
    assert "Traceback" in (store.root / bad["traceback"]).read_text()
    for point, record in zip(sweep.points[1:], good, strict=True):
        fig = record["figures"]
        assert record["status"] == "ok"
        assert fig["cycles"] == conv_cycles(8, 8, 3, point.config["line_buffers"],
                                            pipeline=fig["pipeline_stages"])  # fmt: skip
        assert fig["rtl_cycles"] == [fig["cycles"]] and fig["rtl_mismatches"] == 0
        assert fig["rtl_outputs"] == 36
    with open(store.root / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [row["line_buffers"] for row in table] == ["1", "2", "4"]
    assert [row["status"] for row in table] == ["error", "ok", "ok"]
    assert table[0]["error"] == bad["error"] and table[2]["cycles"] == str(
        good[1]["figures"]["cycles"]
    )
    assert "| line_buffers |" in (store.root / "front.md").read_text()
    assert (store.root / "pareto_cycles_per_pixel_vs_storage_bits.png").stat().st_size > 1000

    again = run_sweep(sweep, tmp_path, **quiet)  # everything recorded: no task runs
    assert (again["computed"], again["skipped"]) == (0, 3)
    assert [store.load(p) for p in sweep.points] == records

    store.path(sweep.points[2]).unlink()  # as if killed while that point was in flight
    resumed = run_sweep(sweep, tmp_path, **quiet)
    assert (resumed["computed"], resumed["skipped"], resumed["failed"]) == (1, 2, 0)
    assert store.load(sweep.points[2])["figures"]["cycles"] == good[1]["figures"]["cycles"]
    retried = run_sweep(sweep, tmp_path, retry_failed=True, **quiet)
    assert (retried["computed"], retried["failed"]) == (1, 1)


@pytest.mark.hardware
@pytest.mark.slow
def test_mlp_points_share_one_compress_run(local_ray, tmp_path):
    fast = {"epochs": 1, "finetune_epochs": 1, "prune_rounds": 1, "structured_steps": 1,
            "centroid_epochs": 1, "pow2_epochs": 1, "cluster_sweep": [], "train_limit": 300,
            "hidden": [16, 8], "clusters": 4}  # fmt: skip
    sweep = sweep_from_dict(
        {
            "name": "tiny_mlp",
            "kind": "mlp",
            "fixed": {"dataset": "digits", **fast},
            "axes": {"layout": ["csr", "direct"]},  # hardware only: one compress run
            "check": {"synth": False, "rtl_images": 1, "cycle_images": 10},
        }
    )
    result = run_sweep(sweep, tmp_path, progress=False, log=lambda *a: None)
    assert (result["computed"], result["failed"]) == (2, 0)
    store = Store(tmp_path / "tiny_mlp")
    csr, direct = (store.load(p)["figures"] for p in sweep.points)
    assert sorted([csr["compress_reused"], direct["compress_reused"]]) == [False, True]
    assert csr["compress_dir"] == direct["compress_dir"]
    assert csr["layouts"] == "csr/csr/csr" and direct["layouts"] == "direct/direct/direct"
    assert csr["rom_bits"] != direct["rom_bits"]
    for fig in (csr, direct):
        assert fig["widths"] == "64x16x8x10"
        # the golden model's accuracy is the pipeline's integer reference's
        assert fig["accuracy"] == pytest.approx(fig["integer_accuracy_pipeline"])
        assert fig["accuracy"] == csr["accuracy"]
        assert fig["rtl_mismatches"] == 0 and len(fig["rtl_cycles"]) == 1
        assert fig["cycles_min"] <= fig["rtl_cycles"][0] <= fig["cycles_max"]
