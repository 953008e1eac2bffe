"""scripts/report.py's report.png on synthetic rows (no synthesis): one panel row per design
family, values on the bars, the extrapolated dense baselines hatched and labelled, the
Zynq-7020 capacity on the resource panels; and its progress lines."""

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def report():
    spec = importlib.util.spec_from_file_location("report_script", ROOT / "scripts" / "report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row(design, lut, ff, dsp, ramb18=0, ramb36=0, source="yosys (whole design)", **extra):
    return {
        "design": design, "lut": lut, "ff": ff, "carry4": 0, "dsp": dsp, "ramb18": ramb18,
        "ramb36": ramb36, "lutram": 0, "rom_bits": extra.get("rom_bits", 1000),
        "latency_us": extra.get("latency_us", 8.18), "throughput_per_s": 122_249.4,
        "cycles": 818, "clock_mhz": 100.0, "fmax_mhz": None, "resources_from": source,
    }  # fmt: skip


ROWS = [
    row("conv K=3 N=2 28x28", 118, 88, 9),
    row("conv K=3 N=4 28x28", 150, 146, 9, ramb18=1),
    row(
        "MLP dense baseline",
        61_234,
        20_111,
        410,
        source="yosys (median neuron x neurons per layer)",
        rom_bits=1_234_567,
    ),  # fmt: skip
    row("MLP shift + zero-skip", 9122, 3105, 0, rom_bits=17_856, latency_us=1.18),
    row(
        "CNN dense baseline",
        80_000,
        50_000,
        300,
        ramb36=3,
        source="yosys (conv filters, pools, FIFOs, median neurons, scaled)",
    ),  # fmt: skip
    row("CNN LeNet-5 compressed", 20_035, 14_345, 0, ramb18=1),
]


def _panels(fig):
    return {ax.get_title(): ax for ax in fig.axes}


def test_families_on_separate_panels_with_values(report):
    fig = report.figure(ROWS)
    panels = _panels(fig)
    assert len(panels) == 3 * len(report.PANELS)
    lut = panels["MLP: LUT"]
    assert [round(p.get_height()) for p in lut.patches] == [61_234, 9122]
    assert [t.get_text() for t in lut.get_xticklabels()] == ["dense baseline", "shift + zero-skip"]
    # values on the bars, the extrapolated one marked
    assert [t.get_text() for t in lut.texts] == ["61.2k *", "9.12k"]
    assert [t.get_text() for t in panels["conv engine: BRAM (RAMB36 equiv.)"].texts] == [
        "0",
        "0.5",
    ]
    assert [t.get_text() for t in panels["MLP: ROM bits"].texts] == ["1.23M", "17.9k"]
    assert [t.get_text() for t in panels["CNN: BRAM (RAMB36 equiv.)"].texts] == ["3 *", "0.5"]


def test_baselines_hatched_on_resource_panels_only(report):
    panels = _panels(report.figure(ROWS))
    for family in ("MLP", "CNN"):
        for title in ("LUT", "FF", "DSP48E1", "BRAM (RAMB36 equiv.)"):
            hatches = [p.get_hatch() for p in panels[f"{family}: {title}"].patches]
            assert hatches == ["//", None], (family, title)
        for title in ("ROM bits", "latency (µs)", "throughput (/s)"):  # exact figures
            assert {p.get_hatch() for p in panels[f"{family}: {title}"].patches} == {None}
    assert {p.get_hatch() for p in panels["conv engine: LUT"].patches} == {None}
    legend = [t.get_text() for t in report.figure(ROWS).legends[0].get_texts()]
    assert legend[:3] == ["conv engine", "MLP", "CNN"]
    assert legend[3].startswith("* extrapolated")


def test_zynq_7020_capacity_lines(report):
    panels = _panels(report.figure(ROWS))
    capacity = {"LUT": 53_200, "FF": 106_400, "DSP48E1": 220, "BRAM (RAMB36 equiv.)": 140}
    for family in ("conv engine", "MLP", "CNN"):
        for title, limit in capacity.items():
            ax = panels[f"{family}: {title}"]
            assert [line.get_ydata()[0] for line in ax.lines] == [limit]
            assert ax.get_ylim()[1] > limit  # the line is in view
            assert ax.get_legend().get_texts()[0].get_text() == f"Zynq-7020: {limit:,}"
        for title in ("ROM bits", "latency (µs)", "throughput (/s)"):
            assert len(panels[f"{family}: {title}"].lines) == 0


def test_only_the_families_present(report, tmp_path):
    rows = [r for r in ROWS if not r["design"].startswith("CNN")]
    fig = report.figure(rows)
    assert len(fig.axes) == 2 * len(report.PANELS)
    assert not any(ax.get_title().startswith("CNN") for ax in fig.axes)
    assert len(fig.legends[0].get_texts()) == 3  # conv, MLP, extrapolated
    report.plot(rows, tmp_path / "report.png")
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compact_labels(report):
    assert [report.compact(v) for v in (0, 9, 8.18, 150, 53_200, 1_234_567, 0.5)] == [
        "0", "9", "8.18", "150", "53.2k", "1.23M", "0.5",
    ]  # fmt: skip


def test_progress_lines(report, capsys):
    report.progress("MLP dense baseline")
    line = capsys.readouterr().out
    assert line.startswith("[") and "s] MLP dense baseline" in line and line.endswith("\n")


def test_timing_router_places_the_cnn_with_router2(report):
    from rtl_gen.export.folder import Design

    cnn, mlp = Design("cnn_x", "cnn", None, {}), Design("mlp_x", "mlp", None, {})
    saved = dict(report.TIMING)
    try:
        report.TIMING["router"] = "auto"
        assert (report.timing_router(cnn), report.timing_router(mlp)) == ("router2", "router1")
        assert (report.timing_ripup(cnn), report.timing_ripup(mlp)) == (True, False)
        report.TIMING["router"] = "router2"
        assert report.timing_router(mlp) == "router2"
        assert not report.timing_ripup(cnn)  # a named router: no rip-up
        report.TIMING["router"] = "router1"
        assert report.timing_router(cnn) == "router1"
    finally:
        report.TIMING.update(saved)
