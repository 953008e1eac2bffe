"""Deliberate bugs in the generators, to show that each proof can fail.

:func:`mutated` re-executes a generator module's source with one textual change and, while the
context is open, puts the mutated classes and functions wherever the original ones were
imported (``rtl_gen.*`` modules), so that a harness built inside the context elaborates the
mutant.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import types

__all__ = ["mutated"]


@contextlib.contextmanager
def mutated(module: str, old: str, new: str, count: int = 1):
    """Within the context, ``module`` behaves as if its source had ``old`` replaced by ``new``
    (``old`` must occur exactly ``count`` times)."""
    original = importlib.import_module(module)
    with open(original.__file__) as f:
        source = f.read()
    found = source.count(old)
    if found != count:
        raise ValueError(f"{old!r} occurs {found} times in {module}, expected {count}")
    copy = types.ModuleType(module)
    copy.__file__ = original.__file__
    copy.__package__ = original.__package__
    exec(compile(source.replace(old, new), original.__file__, "exec"), copy.__dict__)
    swaps = {}
    for name, value in vars(original).items():
        if name.startswith("__") or name not in copy.__dict__:
            continue
        if getattr(value, "__module__", None) != module:
            continue
        swaps[id(value)] = copy.__dict__[name]
    undo = []
    for mod_name, mod in list(sys.modules.items()):
        if mod is None or not (mod_name == "rtl_gen" or mod_name.startswith("rtl_gen.")):
            continue
        for name, value in list(vars(mod).items()):
            if id(value) in swaps:
                undo.append((mod, name, value))
                setattr(mod, name, swaps[id(value)])
    try:
        yield copy
    finally:
        for mod, name, value in reversed(undo):
            setattr(mod, name, value)


def mutant_build(mutation, build):
    """A proof's builder: ``build`` run with ``mutation`` (module, old, new) applied."""

    def run():
        with mutated(*mutation):
            return build()

    return run
