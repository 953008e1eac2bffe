"""`make mutate`'s list (scripts/mutations.toml) is well formed: every anchor occurs exactly once
in its generator, in the working tree and in HEAD, every mutant still parses, every test file it
names exists. The mutations themselves run in `make mutate`, not here."""

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "mutate.py"


@pytest.fixture(scope="module")
def mutate():
    spec = importlib.util.spec_from_file_location("mutate_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _head(path: str) -> str | None:
    """``path`` as committed in HEAD, or ``None`` outside a git checkout."""
    try:
        proc = subprocess.run(
            ["git", "show", f"HEAD:{path}"], cwd=ROOT, capture_output=True, text=True
        )
    except FileNotFoundError:
        return None
    return proc.stdout if proc.returncode == 0 else None


def test_mutation_list_is_well_formed(mutate):
    mutations = mutate.load()
    assert len(mutations) >= 24
    files = {m.file for m in mutations}
    assert not any(f.startswith("tb/") for f in files)  # golden models are never mutated
    in_git = _head("scripts/mutate.py") is not None
    for m in mutations:
        source = (ROOT / m.file).read_text()
        mutant = mutate.apply(source, m)  # raises unless the anchor occurs exactly once
        ast.parse(mutant, m.file)
        if in_git and (head := _head(m.file)) is not None:
            assert head.count(m.old) == 1, f"{m.name}: anchor not exactly once in HEAD:{m.file}"
        for arg in m.tests:
            if arg.startswith("tests/"):
                assert (ROOT / arg.split("::")[0]).is_file(), f"{m.name}: no {arg}"


def test_a_vanished_anchor_is_an_error(mutate, tmp_path):
    m = mutate.Mutation("x", "rtl_gen/skid.py", "no such text", "other", ("tests/x.py",))
    with pytest.raises(ValueError, match="occurs 0 times in rtl_gen/skid.py"):
        mutate.apply("some source", m)
    with pytest.raises(ValueError, match="occurs 2 times"):
        mutate.apply("no such text, no such text", m)
    bad = tmp_path / "mutations.toml"
    bad.write_text(
        '[[mutation]]\nname = "golden"\nfile = "tb/golden/conv.py"\nold = "a"\nnew = "b"\n'
        'tests = ["tests/test_conv_golden.py"]\n'
    )
    with pytest.raises(ValueError, match="not a generator"):
        mutate.load(bad)


def test_list_and_selection(mutate, capsys):
    assert mutate.main(["--list", "-k", "ring-", "-k", "skid-"]) == 0
    out = capsys.readouterr().out.splitlines()
    want = [m.name for m in mutate.load() if "ring-" in m.name or "skid-" in m.name]
    assert len(want) >= 2 and out[-1] == f"{len(want)} mutations"
    assert [line.split()[0] for line in out[:-1]] == want
    with pytest.raises(SystemExit):
        mutate.main(["-k", "no-such-mutation"])
    with pytest.raises(SystemExit):
        mutate.main(["--list", "-j", "0"])
