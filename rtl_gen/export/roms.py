"""ROM contents found in generated Verilog, written as ``.mem`` and Xilinx ``.coe`` files.

The contents are read back from the Verilog that Amaranth emits, so the files always match the
design bit for bit. A memory counts as a ROM when it has an ``initial`` block and no write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROM_FILES_DEFINE = "COMPRESS2RTL_ROM_FILES"
#: The folder (a string ending in ``/``) the ``$readmemh`` calls read from; default ``roms/``
#: relative to the simulator's working directory, an absolute path from ``vivado/build.tcl``.
ROM_DIR_DEFINE = "COMPRESS2RTL_ROM_DIR"

_MODULE = re.compile(r"^module\s+(\\\S+|\w+)\s*\(", re.M)
_MEMORY = re.compile(r"^\s*reg\s+(?:\[(\d+):(\d+)\]\s+)?(\\\S+|\w+)\s+\[(\d+):(\d+)\];", re.M)
_INIT_BLOCK = r"^(\s*)initial begin\n((?:\s*{name}\s*\[\d+\] = \d+'h[0-9a-fA-F]+;\n)+)\s*end\n"
_INIT_WORD = re.compile(r"\[(\d+)\] = \d+'h([0-9a-fA-F]+);")


@dataclass(frozen=True)
class RomImage:
    """One ROM of a generated design."""

    module: str
    name: str
    width: int
    depth: int
    words: tuple[int, ...]

    @property
    def bits(self) -> int:
        return self.width * self.depth

    @property
    def file_stem(self) -> str:
        stem = f"{self.module}.{self.name}".replace("\\", "")
        return re.sub(r"[^A-Za-z0-9_.]+", "_", stem)


def _modules(text: str) -> list[tuple[str, str]]:
    starts = list(_MODULE.finditer(text))
    out = []
    for i, match in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        out.append((match.group(1), text[match.start() : end]))
    return out


def _init_block(name: str) -> re.Pattern:
    return re.compile(_INIT_BLOCK.format(name=re.escape(name)), re.M)


def find_roms(verilog_text: str) -> list[RomImage]:
    """All initialised, never-written memories of ``verilog_text``, module by module."""
    roms = []
    for module, body in _modules(verilog_text):
        for mem in _MEMORY.finditer(body):
            hi, lo, name, d_hi, d_lo = mem.groups()
            width = int(hi) - int(lo) + 1 if hi is not None else 1
            depth = abs(int(d_hi) - int(d_lo)) + 1
            block = _init_block(name).search(body)
            # a write: ``name[addr] <=``, the address possibly a slice (``name[a[5:0]] <=``)
            written = re.search(rf"(?<![\w$.\\]){re.escape(name)}\s*\[[^\n;]*\]\s*<=", body)
            if block is None or written:
                continue
            words = [0] * depth
            for index, value in _INIT_WORD.findall(block.group(2)):
                words[int(index) - min(int(d_hi), int(d_lo))] = int(value, 16)
            roms.append(RomImage(module, name, width, depth, tuple(words)))
    return roms


def write_mem(rom: RomImage, path: Path) -> None:
    """``$readmemh`` file: one hexadecimal word per line, address 0 first."""
    digits = max(1, (rom.width + 3) // 4)
    path.write_text("".join(f"{word:0{digits}x}\n" for word in rom.words))


def write_coe(rom: RomImage, path: Path) -> None:
    """Xilinx coefficient file for a Block Memory Generator or distributed ROM."""
    digits = max(1, (rom.width + 3) // 4)
    vector = ",\n".join(f"{word:0{digits}x}" for word in rom.words)
    path.write_text(
        "; " + f"{rom.module}.{rom.name}: {rom.depth} x {rom.width} bits\n"
        "memory_initialization_radix=16;\n"
        f"memory_initialization_vector=\n{vector};\n"
    )


def read_mem(path: Path) -> list[int]:
    """Words of a ``.mem`` file written by :func:`write_mem`."""
    return [int(line, 16) for line in path.read_text().split()]


def with_rom_files(verilog_text: str, roms: list[RomImage], mem_dir: str = "roms/") -> str:
    """Give every ROM an alternative ``$readmemh`` initialisation.

    With ``COMPRESS2RTL_ROM_FILES`` defined, the ROMs load their ``.mem`` files, so weights can be
    swapped without regenerating; without it the inline contents are used, as Amaranth emitted them.
    The files are read from ``{`COMPRESS2RTL_ROM_DIR, "<stem>.mem"}``: the define defaults to
    ``mem_dir`` (relative to the working directory); Vivado's ``build.tcl`` sets it to the
    folder's absolute ``roms/``.
    """
    by_module = {}
    for rom in roms:
        by_module.setdefault(rom.module, []).append(rom)
    pieces = []
    for module, body in _modules(verilog_text) or [("", verilog_text)]:
        for rom in by_module.get(module, []):
            path = f'{{`{ROM_DIR_DEFINE}, "{rom.file_stem}.mem"}}'

            def guarded(match, rom=rom, path=path):
                indent = match.group(1)
                return (
                    f"`ifdef {ROM_FILES_DEFINE}\n"
                    f"{indent}initial $readmemh({path}, {rom.name} );\n"
                    "`else\n"
                    f"{match.group(0)}"
                    "`endif\n"
                )

            body = _init_block(rom.name).sub(guarded, body, count=1)
        pieces.append(body)
    first = _MODULE.search(verilog_text)
    prefix = verilog_text[: first.start()] if first else ""
    if roms:
        prefix += f'`ifndef {ROM_DIR_DEFINE}\n`define {ROM_DIR_DEFINE} "{mem_dir}"\n`endif\n'
    return prefix + "".join(pieces)
