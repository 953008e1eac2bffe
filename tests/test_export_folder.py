"""The export folder on a small design: ROM files, Tcl, manifest, Icarus from the folder alone."""

import json
import shutil
import subprocess

import pytest
from amaranth import Module
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from rtl_gen.export.folder import Design, export_design
from rtl_gen.export.roms import find_roms, read_mem

WORDS = [0x12, 0xFE, 0x00, 0x7F, 0x80, 0x01, 0x33, 0xC4]


class RomReader(wiring.Component):
    """Stream of addresses in, stream of ROM words out, one cycle of latency."""

    def __init__(self):
        super().__init__({"addr": In(stream.Signature(3)), "word": Out(stream.Signature(8))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.table = table = memory.Memory(shape=8, depth=8, init=WORDS)
        port = table.read_port()
        m.d.comb += [port.addr.eq(self.addr.payload), self.addr.ready.eq(1)]
        m.d.comb += self.word.payload.eq(port.data)
        m.d.sync += self.word.valid.eq(self.addr.valid)
        return m


TESTBENCH = """
`timescale 1ns/1ps
module tb;
  reg clk = 0, rst = 0, valid = 1;
  reg [2:0] addr = 0;
  wire [7:0] word; wire word_valid, ready;
  rom_reader dut(.clk(clk), .rst(rst), .addr__payload(addr), .addr__valid(valid),
                 .addr__ready(ready), .word__payload(word), .word__valid(word_valid),
                 .word__ready(1'b1));
  integer i;
  initial begin
    for (i = 0; i < 8; i = i + 1) begin
      addr = i; #1 clk = 1; #1 clk = 0; $display("%02x", word);
    end
    $finish;
  end
endmodule
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "rom_reader"
    design = Design("rom_reader", "rom_reader", RomReader(), {"depth": 8})
    return export_design(design, out)


def test_rom_files_hold_the_init_words(folder):
    manifest = json.loads((folder / "manifest.json").read_text())
    assert len(manifest["roms"]) == 1
    rom = manifest["roms"][0]
    assert (rom["depth"], rom["width"], rom["bits"]) == (8, 8, 64)
    assert read_mem(folder / rom["mem"]) == WORDS
    coe = (folder / rom["coe"]).read_text()
    assert "memory_initialization_radix=16;" in coe
    assert coe.rstrip().endswith("c4;")


def test_manifest_ports_match_the_signature(folder):
    manifest = json.loads((folder / "manifest.json").read_text())
    ports = {p["name"]: (p["direction"], p["width"]) for p in manifest["ports"]}
    assert ports == {
        "clk": ("input", 1),
        "rst": ("input", 1),
        "addr__payload": ("input", 3),
        "addr__valid": ("input", 1),
        "addr__ready": ("output", 1),
        "word__payload": ("output", 8),
        "word__valid": ("output", 1),
        "word__ready": ("input", 1),
    }


def test_find_roms_ignores_written_memories():
    text = (
        "module m(clk);\n  reg [7:0] ram [3:0];\n  initial begin\n    ram[0] = 8'h01;\n  end\n"
        "  always @(posedge clk) ram[a] <= d;\nendmodule\n"
    )
    assert find_roms(text) == []


@pytest.mark.parametrize("rom_files", [False, True], ids=["inline", "readmemh"])
def test_icarus_compiles_the_folder_alone(folder, rom_files, tmp_path):
    if shutil.which("iverilog") is None:
        pytest.skip("iverilog not installed")
    (tmp_path / "tb.v").write_text(TESTBENCH)
    defines = ["-DCOMPRESS2RTL_ROM_FILES"] if rom_files else []
    sources = [str(folder / "rom_reader.v"), str(tmp_path / "tb.v")]
    binary = tmp_path / "sim.vvp"
    subprocess.run(["iverilog", *defines, "-o", str(binary), *sources], check=True)
    out = subprocess.run(["vvp", "-n", str(binary)], cwd=folder, capture_output=True, text=True)
    words = [int(line, 16) for line in out.stdout.split() if len(line) == 2]
    assert words == WORDS


def test_swapped_mem_file_changes_the_rom_without_regenerating(folder, tmp_path):
    if shutil.which("iverilog") is None:
        pytest.skip("iverilog not installed")
    swapped = tmp_path / "swapped"
    shutil.copytree(folder, swapped)
    manifest = json.loads((swapped / "manifest.json").read_text())
    mem = swapped / manifest["roms"][0]["mem"]
    mem.write_text("".join(f"{(w ^ 0xFF):02x}\n" for w in WORDS))
    (tmp_path / "tb.v").write_text(TESTBENCH)
    binary = tmp_path / "sim.vvp"
    sources = [str(swapped / "rom_reader.v"), str(tmp_path / "tb.v")]
    define = "-DCOMPRESS2RTL_ROM_FILES"
    subprocess.run(["iverilog", define, "-o", str(binary), *sources], check=True)
    out = subprocess.run(["vvp", "-n", str(binary)], cwd=swapped, capture_output=True, text=True)
    words = [int(line, 16) for line in out.stdout.split() if len(line) == 2]
    assert words == [w ^ 0xFF for w in WORDS]
