"""Stream properties shared by the formal harnesses (Amaranth 0.5 ``Assert``/``Assume``/``Cover``).

Every property is a combinational check, evaluated in every step of the solver's trace. Amaranth
0.5 has no ``Past``: the previous cycle's values are registers of the harness in the ``sync``
domain, so they reset together with the design and a reset in the middle of a trace (``rst`` is
a free input) is covered as well.
"""

from __future__ import annotations

from amaranth import Signal, Value
from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Assume, Cover, Fragment

__all__ = [
    "drive_source",
    "elaborated",
    "find_signal",
    "frames_owed",
    "idle_after_reset",
    "sink_rules",
    "source_rules",
]


def elaborated(dut):
    """``dut`` elaborated down to its fragments, so that a harness can name inner signals
    (registers created inside ``elaborate``) with :func:`find_signal`. Add the returned
    fragment to the harness instead of ``dut``; its ports are still ``dut``'s signals."""
    return Fragment.get(dut, None)


def _fragments(fragment, path=()):
    yield path, fragment
    for sub, name, _ in getattr(fragment, "subfragments", ()):
        yield from _fragments(sub, (*path, name))


def find_signal(fragment, name: str, *, under: tuple = (), domain: str | None = None) -> Signal:
    """The one signal called ``name`` assigned in ``fragment``'s hierarchy below the
    submodule path ``under`` (names as in ``m.submodules``), in ``domain`` if given
    (``"sync"``: a register). Raises ``LookupError`` when it is missing or ambiguous, so a
    renamed register breaks the harness loudly."""
    found = {}
    for path, frag in _fragments(fragment):
        if path[: len(under)] != tuple(under):
            continue
        for dom, statements in getattr(frag, "statements", {}).items():
            if domain is not None and dom != domain:
                continue
            for stmt in statements:
                for sig in stmt._lhs_signals():
                    if sig.name == name:
                        found[id(sig)] = sig
    if len(found) != 1:
        raise LookupError(f"{len(found)} signals called {name!r} under {under!r}")
    return next(iter(found.values()))


def drive_source(m, stream) -> None:
    """The solver drives ``stream`` (the design's input): any ``valid``, any payload."""
    payload = Value.cast(stream.payload)
    m.d.comb += [stream.valid.eq(AnySeq(1)), payload.eq(AnySeq(len(payload)))]


def source_rules(m, stream) -> None:
    """Assume the stream rule on the design's input: once offered, ``valid`` and the payload
    hold until the transfer."""
    payload = Value.cast(stream.payload).as_unsigned()  # a signed payload compares as bits
    stalled = Signal(name="src_stalled")
    held = Signal(len(payload), name="src_payload_q")
    m.d.sync += [stalled.eq(stream.valid & ~stream.ready), held.eq(payload)]
    with m.If(stalled):
        m.d.comb += Assume(stream.valid & (payload == held))


def sink_rules(m, stream) -> None:
    """Assert the stream rule on the design's output: ``valid`` never falls and the payload
    never changes while ``ready`` is low."""
    payload = Value.cast(stream.payload).as_unsigned()  # a signed payload compares as bits
    stalled = Signal(name="out_stalled")
    held = Signal(len(payload), name="out_payload_q")
    m.d.sync += [stalled.eq(stream.valid & ~stream.ready), held.eq(payload)]
    with m.If(stalled):
        m.d.comb += Assert(stream.valid)
        m.d.comb += Assert(payload == held)


def idle_after_reset(m, inp, out) -> Signal:
    """After a reset (from whatever state the design was in), no ``valid`` output until an
    input transfer. Returns the "an input has arrived since reset" register."""
    seen = Signal(name="seen_input")
    with m.If(inp.valid & inp.ready):
        m.d.sync += seen.eq(1)
    with m.If(~seen):
        m.d.comb += Assert(~out.valid)
    return seen


def cover(m, condition) -> None:
    m.d.comb += Cover(condition)


def frames_owed(m, in_end, out_end, out_ready, bound: int, give=None) -> None:
    """Frames (vectors, images) counted at both ends: ``in_end`` when a frame's input is
    complete, ``out_end`` when its last output beat leaves. A frame leaves only while one is
    owed (never more out than in); with ``give`` (any output beat leaving), every beat of a
    frame only then (results only for complete inputs); while one is owed, one leaves within
    ``bound`` cycles with ``out_ready`` high (nothing lost); cover: a frame leaves."""
    frames_in = Signal(range(8), name="frames_in")
    frames_out = Signal(range(8), name="frames_out")
    m.d.sync += [frames_in.eq(frames_in + in_end), frames_out.eq(frames_out + out_end)]
    m.d.comb += Assume(frames_in < 7)  # the counters do not wrap within the depth
    with m.If(out_end if give is None else give):
        m.d.comb += Assert(frames_out < frames_in)
    waited = Signal(range(bound + 2), name="waited")
    with m.If(out_end | (frames_out == frames_in)):
        m.d.sync += waited.eq(0)
    with m.Elif(out_ready):
        m.d.sync += waited.eq(waited + 1)
    m.d.comb += Assert(waited <= bound)
    cover(m, out_end)
