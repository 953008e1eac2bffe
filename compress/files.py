"""Files written whole or not at all: the one write-then-rename helper of the project."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path, text: str, *, durable: bool = False) -> Path:
    """Write ``text`` to ``path`` (parents created) through a temporary file in the same
    directory, then rename it over ``path``: a reader in another process (a simulator build,
    a resumed sweep, a second ``make timing``) sees the old file or the new one, never half of
    one, and two writers never share a temporary file. ``durable`` also fsyncs before the
    rename, so the file survives a crash of the machine, not only of the process. Returns the
    path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
