"""compress.files.write_atomic: the whole text or the old file, never a temporary left over."""

import pytest

from compress.files import write_atomic


def test_write_atomic_replaces_and_cleans_up(tmp_path):
    path = tmp_path / "sub" / "figures.json"
    assert write_atomic(path, "first\n") == path
    write_atomic(path, "second\n", durable=True)
    assert path.read_text() == "second\n"
    with pytest.raises(TypeError):
        write_atomic(path, None)  # fails after the temporary file exists
    assert path.read_text() == "second\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["figures.json"]
