"""The board path (``make board DESIGN=mlp|cnn``): a PYNQ-Z2 block design and a Python driver.

Next to an exported folder (``build/verilog/<name>/``) it writes ``board/``:

* ``block_design.tcl``: a Vivado project for the part (default ``xc7z020clg400-1``, the
  PYNQ-Z2's Zynq-7020) with the packaged IP (``vivado/package_ip.tcl``'s ``ip/``, packaged first
  when missing) in its IP repository path, a block design of the Zynq PS7 (FCLK0 at the
  manifest's clock, HP0 on, DDR and MIO as on the PYNQ-Z2), an AXI DMA (MM2S and S2MM, no
  scatter-gather), two AXI4-Stream subset converters and the IP between them, an AXI
  interconnect (the PS's GP0 to the DMA's AXI4-Lite port) and a SmartConnect (the DMA's two
  memory ports to HP0), a ``proc_sys_reset`` driving every ``aresetn``, address assignment,
  validation, the HDL wrapper, the bitstream, and ``overlay/<top>.bit`` + ``overlay/<top>.hwh``
  for PYNQ;
* ``<top>_driver.py``: the driver, numpy only at import (``pynq`` is imported when an overlay
  is used): ``quantise``, ``pack_image`` (the bytes the DMA's MM2S channel reads, one transfer
  per image), ``unpack_result`` (the bytes the S2MM channel wrote), and :class:`Driver` /
  ``<Top>Overlay`` with ``predict(images) -> logits``;
* ``board.json``: the DMA byte layout both are generated from (:func:`board_layout`).

Why subset converters: the AXI DMA without scatter-gather carries ``tdata`` and ``tlast``
only, no ``tuser``, and its stream widths are powers of two. So the DMA's word holds the IP's
``tdata`` bytes (low bytes) and then its ``tuser`` bits in the next whole byte(s)
(``dma_bytes`` = the next power of two); the converter on the MM2S side moves those bits into
``tuser`` (``TUSER_REMAP``), the one on the S2MM side puts the result's ``tuser`` back into the
DMA word (``TDATA_REMAP``, a Verilog-style concatenation). :func:`dma_harness` writes the same
remapping as a Verilog module, with the remap strings of ``board.json`` substituted literally,
so the tests run the driver's bytes through the IP's AXI4-Stream top under cocotb.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

#: AXI DMA stream widths (bits) it accepts.
DMA_WIDTHS = (8, 16, 32, 64, 128, 256, 512, 1024)
#: The PS7 settings of the PYNQ-Z2 (TUL, Zynq-7020, 512 MB DDR3 on a 16-bit bus, 50 MHz
#: PS clock, UART0 on MIO 14..15, Ethernet, USB and SD as on the board), used when Vivado has
#: no PYNQ-Z2 board files (with them, the board preset is applied instead).
PYNQ_Z2_PS7 = {
    "PCW_CRYSTAL_PERIPHERAL_FREQMHZ": "50",
    "PCW_APU_PERIPHERAL_FREQMHZ": "650",
    "PCW_PRESET_BANK0_VOLTAGE": "LVCMOS 3.3V",
    "PCW_PRESET_BANK1_VOLTAGE": "LVCMOS 1.8V",
    "PCW_UIPARAM_DDR_MEMORY_TYPE": "DDR 3",
    "PCW_UIPARAM_DDR_PARTNO": "MT41K256M16 RE-125",
    "PCW_UIPARAM_DDR_BUS_WIDTH": "16 Bit",
    "PCW_UIPARAM_DDR_FREQ_MHZ": "525",
    "PCW_UART0_PERIPHERAL_ENABLE": "1",
    "PCW_UART0_UART0_IO": "MIO 14 .. 15",
    "PCW_ENET0_PERIPHERAL_ENABLE": "1",
    "PCW_ENET0_ENET0_IO": "MIO 16 .. 27",
    "PCW_ENET0_GRP_MDIO_ENABLE": "1",
    "PCW_ENET0_GRP_MDIO_IO": "MIO 52 .. 53",
    "PCW_USB0_PERIPHERAL_ENABLE": "1",
    "PCW_USB0_USB0_IO": "MIO 28 .. 39",
    "PCW_SD0_PERIPHERAL_ENABLE": "1",
    "PCW_SD0_SD0_IO": "MIO 40 .. 45",
    "PCW_SD0_GRP_CD_ENABLE": "1",
    "PCW_SD0_GRP_CD_IO": "MIO 47",
}
#: Block design cell names (the DMA is ``overlay.axi_dma_0`` in PYNQ).
DMA_CELL = "axi_dma_0"
PS_CELL = "processing_system7_0"
BD_NAME = "board"


def design_kind(manifest: dict) -> str:
    """``"mlp"`` or ``"cnn"`` from a manifest's ``name`` and ``parameters``; ``ValueError``
    for the designs the board path does not take."""
    params = manifest["parameters"]
    if "layers" in params and "build" in params:
        return "mlp"
    if "input_shape" in params and "fc" in params:
        return "cnn"
    raise ValueError(
        f"make board supports DESIGN=mlp and DESIGN=cnn, not {manifest['name']!r} "
        "(the conv engine's and the neuron's results are no class scores)"
    )


def _dma_bytes(needed: int) -> int:
    for width in DMA_WIDTHS:
        if width >= 8 * needed:
            return width // 8
    raise ValueError(f"a DMA word of {needed} bytes is wider than the AXI DMA's 1024 bits")


def _zeros(bits: int) -> str:
    return f"{bits}'b{'0' * bits}"


def board_layout(manifest: dict) -> dict:
    """The DMA byte layout of an exported folder's AXI4-Stream top (its ``manifest.json``).

    ``mm2s`` (memory to the IP's ``s_axis``) and ``s2mm`` (its ``m_axis`` to memory): the DMA
    word's ``dma_bytes``, each ``tdata`` lane's ``byte`` offset, ``bytes``, value bits,
    signedness and fractional bits, the ``tuser`` field's ``byte`` offset and ``bits``, and the
    subset converters' remap strings. ``input``: the quantisation and how an image becomes
    beats; ``outputs``: the number of class scores."""
    kind = design_kind(manifest)
    axis, params = manifest["axis"], manifest["parameters"]
    s, m = axis["s_axis"], axis["m_axis"]
    if m.get("tkeep") or s.get("tkeep"):
        raise ValueError("make board: a stream with tkeep has no DMA layout here")
    if not m["tuser"] or (kind == "mlp" and not s["tuser"]):
        raise ValueError(
            "make board: the scores (and the MLP's inputs) must carry their index in tuser"
        )

    def side(fields: dict, to_dma: bool) -> dict:
        tdata_bytes = fields["tdata_bytes"]
        tuser = fields["tuser"]
        tuser_bits = tuser["bits"][0] + 1 if tuser else 0
        tuser_bytes = -(-tuser_bits // 8)
        dma = _dma_bytes(tdata_bytes + tuser_bytes)
        lanes = []
        for lane in fields["lanes"]:
            hi, lo = lane["tdata_bits"]
            lanes.append(
                {
                    "byte": lo // 8,
                    "bytes": (hi - lo + 1) // 8,
                    "value_bits": lane["value_bits"],
                    "signed": lane["signed"],
                    "frac_bits": lane["frac_bits"],
                }
            )
        out = {
            "dma_bytes": dma,
            "dma_width": 8 * dma,
            "tdata_bytes": tdata_bytes,
            "lanes": lanes,
            "tuser": {"byte": tdata_bytes, "bits": tuser_bits} if tuser else None,
            "tlast_remap": "tlast[0]",
        }
        if not to_dma:  # DMA word -> the IP's s_axis
            out["tdata_remap"] = f"tdata[{8 * tdata_bytes - 1}:0]"
            if tuser:
                top = 8 * tdata_bytes + tuser_bits - 1
                out["tuser_remap"] = f"tdata[{top}:{8 * tdata_bytes}]"
        else:  # the IP's m_axis -> DMA word (MSB first, zero padding)
            parts = []
            pad = 8 * (dma - tdata_bytes - tuser_bytes)
            if pad:
                parts.append(_zeros(pad))
            if tuser:
                if 8 * tuser_bytes > tuser_bits:
                    parts.append(_zeros(8 * tuser_bytes - tuser_bits))
                parts.append(f"tuser[{tuser_bits - 1}:0]")
            parts.append(f"tdata[{8 * tdata_bytes - 1}:0]")
            out["tdata_remap"] = ",".join(parts)
            out["tkeep_remap"] = f"{dma}'b{'1' * dma}"
        return out

    quant = manifest["input_quantisation"]
    if kind == "mlp":
        outputs = int(params["layers"][-1])
        beats = "one beat per element: value in its lane, index in tuser"
        if params.get("zero_skip"):
            beats += "; zero elements left out (zero-skipping), the last element always sent"
        shape = [int(params["layers"][0])]
    else:
        outputs = int(params["fc"][-1])
        beats = "one beat per pixel in raster order, channel c in lane c"
        shape = [int(n) for n in params["input_shape"]]
    return {
        "design": kind,
        "name": manifest["name"],
        "top": manifest["top"],
        "axis_top": axis["top"],
        "ip_vlnv": manifest["vivado"]["ip_vlnv"],
        "part": manifest["part"],
        "clock_mhz": round(1000.0 / manifest["clock_period_ns"], 6),
        "bundle_sha256": (manifest.get("bundle") or {}).get("sha256"),
        "input": {
            "shape": shape,
            "bits": int(quant["bits"]),
            "frac_bits": int(quant["frac_bits"]),
            "code": quant["code"] + " (round half up)",
            "zero_skip": bool(kind == "mlp" and params.get("zero_skip")),
            "beats": beats,
            "tlast": "the DMA sets tlast on a transfer's last beat: one MM2S transfer per image",
        },
        "outputs": outputs,
        "output_beats": "one beat per class score, index in tuser, increasing; tlast on the "
        "last class ends the S2MM transfer (zero scores may be left out: zero-skipping)",
        "mm2s": side(s, to_dma=False),
        "s2mm": side(m, to_dma=True),
        "dma_cell": DMA_CELL,
        "core_cell": f"{axis['top']}_0",
        # WEIGHTS=ram: the AXI4-Lite address map (the driver's load_weights), else None
        "weights": manifest.get("weights"),
    }


def dma_harness(layout: dict, module: str | None = None) -> tuple[str, str]:
    """``(module name, Verilog)``: the block design's stream path between the DMA and the IP,
    for simulation: ``layout``'s remap strings substituted as Verilog concatenations (as the
    AXI4-Stream subset converters evaluate them), around the IP's AXI4-Stream top. Its ports
    are the DMA's side: ``s_axis_tdata`` (``mm2s.dma_bytes``), ``s_axis_tlast``, and
    ``m_axis_tdata``/``_tkeep``/``_tlast`` (``s2mm``)."""
    top = layout["axis_top"]
    module = module or f"{top}_dma_harness"
    mm2s, s2mm = layout["mm2s"], layout["s2mm"]

    def subst(remap: str, prefix: str) -> str:
        return "{" + re.sub(r"\b(tdata|tuser|tlast)\[", rf"{prefix}\1[", remap) + "}"

    lines = [
        "`timescale 1ns/1ps",
        f"// The stream path of the board's block design around {top} (simulation only):",
        "// the AXI4-Stream subset converters' remap strings of board/board.json.",
        f"module {module} (",
        "    input  wire aclk,",
        "    input  wire aresetn,",
        f"    input  wire [{8 * mm2s['dma_bytes'] - 1}:0] s_axis_tdata,",
        "    input  wire s_axis_tvalid,",
        "    output wire s_axis_tready,",
        "    input  wire [0:0] s_axis_tlast,",
        f"    output wire [{8 * s2mm['dma_bytes'] - 1}:0] m_axis_tdata,",
        f"    output wire [{s2mm['dma_bytes'] - 1}:0] m_axis_tkeep,",
        "    output wire m_axis_tvalid,",
        "    input  wire m_axis_tready,",
        "    output wire [0:0] m_axis_tlast",
        ");",
        f"    wire [{8 * mm2s['tdata_bytes'] - 1}:0] ip_s_tdata = "
        f"{subst(mm2s['tdata_remap'], 's_axis_')};",
        f"    wire ip_s_tlast = {subst(mm2s['tlast_remap'], 's_axis_')};",
        f"    wire [{8 * s2mm['tdata_bytes'] - 1}:0] ip_m_tdata;",
        "    wire [0:0] ip_m_tlast;",
    ]
    conns = [
        ".aclk(aclk)",
        ".aresetn(aresetn)",
        ".s_axis_tdata(ip_s_tdata)",
        ".s_axis_tvalid(s_axis_tvalid)",
        ".s_axis_tready(s_axis_tready)",
        ".s_axis_tlast(ip_s_tlast)",
        ".m_axis_tdata(ip_m_tdata)",
        ".m_axis_tvalid(m_axis_tvalid)",
        ".m_axis_tready(m_axis_tready)",
        ".m_axis_tlast(ip_m_tlast[0])",
    ]
    if mm2s["tuser"]:
        lines.append(
            f"    wire [{mm2s['tuser']['bits'] - 1}:0] ip_s_tuser = "
            f"{subst(mm2s['tuser_remap'], 's_axis_')};"
        )
        conns.append(".s_axis_tuser(ip_s_tuser)")
    if s2mm["tuser"]:
        lines.append(f"    wire [{s2mm['tuser']['bits'] - 1}:0] ip_m_tuser;")
        conns.append(".m_axis_tuser(ip_m_tuser)")
    lines.append(f"    {top} ip (")
    lines += [f"        {c}," for c in conns[:-1]] + [f"        {conns[-1]}", "    );"]
    lines += [
        f"    assign m_axis_tdata = {subst(s2mm['tdata_remap'], 'ip_m_')};",
        f"    assign m_axis_tkeep = {{{s2mm['tkeep_remap']}}};",
        f"    assign m_axis_tlast = {subst(s2mm['tlast_remap'], 'ip_m_')};",
        "endmodule",
        "",
    ]
    return module, "\n".join(lines)


def overlay_class(top: str) -> str:
    """The driver's ``pynq.Overlay`` subclass: ``mlp`` -> ``MlpOverlay``."""
    return "".join(part[:1].upper() + part[1:] for part in top.split("_")) + "Overlay"


def _config(settings: dict) -> str:
    return "[list " + " ".join(f"CONFIG.{k} {{{v}}}" for k, v in settings.items()) + "]"


def block_design_tcl(layout: dict) -> str:
    """The Vivado Tcl of the board (see the module's docstring), run with
    ``vivado -mode batch -source board/block_design.tcl [-tclargs part=<part> jobs=<n>]``."""
    top, mm2s, s2mm = layout["axis_top"], layout["mm2s"], layout["s2mm"]
    core = f"{top}_0"
    to_core = {
        "S_TDATA_NUM_BYTES": mm2s["dma_bytes"],
        "M_TDATA_NUM_BYTES": mm2s["tdata_bytes"],
        "S_HAS_TLAST": 1,
        "M_HAS_TLAST": 1,
        "S_HAS_TKEEP": 1,
        "M_HAS_TKEEP": 0,
        "S_TUSER_WIDTH": 0,
        "M_TUSER_WIDTH": mm2s["tuser"]["bits"] if mm2s["tuser"] else 0,
        "TDATA_REMAP": mm2s["tdata_remap"],
        "TLAST_REMAP": mm2s["tlast_remap"],
    }
    if mm2s["tuser"]:
        to_core["TUSER_REMAP"] = mm2s["tuser_remap"]
    from_core = {
        "S_TDATA_NUM_BYTES": s2mm["tdata_bytes"],
        "M_TDATA_NUM_BYTES": s2mm["dma_bytes"],
        "S_HAS_TLAST": 1,
        "M_HAS_TLAST": 1,
        "S_HAS_TKEEP": 0,
        "M_HAS_TKEEP": 1,
        "S_TUSER_WIDTH": s2mm["tuser"]["bits"] if s2mm["tuser"] else 0,
        "M_TUSER_WIDTH": 0,
        "TDATA_REMAP": s2mm["tdata_remap"],
        "TKEEP_REMAP": s2mm["tkeep_remap"],
        "TLAST_REMAP": s2mm["tlast_remap"],
    }
    dma = {
        "c_include_sg": 0,
        "c_sg_include_stscntrl_strm": 0,
        "c_include_mm2s": 1,
        "c_include_s2mm": 1,
        "c_m_axis_mm2s_tdata_width": mm2s["dma_width"],
        "c_s_axis_s2mm_tdata_width": s2mm["dma_width"],
        "c_m_axi_mm2s_data_width": 32,
        "c_m_axi_s2mm_data_width": 32,
        "c_mm2s_burst_size": 16,
        "c_s2mm_burst_size": 16,
        "c_sg_length_width": 23,
    }
    ps_fabric = {
        "PCW_FPGA0_PERIPHERAL_FREQMHZ": f"{layout['clock_mhz']:g}",
        "PCW_USE_M_AXI_GP0": 1,
        "PCW_USE_S_AXI_HP0": 1,
        "PCW_S_AXI_HP0_DATA_WIDTH": 64,
        "PCW_EN_CLK0_PORT": 1,
        "PCW_EN_RST0_PORT": 1,
    }
    name = layout["top"]
    clock_pins = [
        f"{PS_CELL}/FCLK_CLK0", f"{PS_CELL}/M_AXI_GP0_ACLK", f"{PS_CELL}/S_AXI_HP0_ACLK",
        f"{DMA_CELL}/s_axi_lite_aclk", f"{DMA_CELL}/m_axi_mm2s_aclk",
        f"{DMA_CELL}/m_axi_s2mm_aclk", f"{core}/aclk", "to_core/aclk", "from_core/aclk",
        "rst_fclk0/slowest_sync_clk", "ctrl_interconnect/ACLK", "ctrl_interconnect/S00_ACLK",
        "ctrl_interconnect/M00_ACLK", "mem_smartconnect/aclk",
    ]  # fmt: skip
    reset_pins = [
        "rst_fclk0/peripheral_aresetn", f"{core}/aresetn", "to_core/aresetn",
        "from_core/aresetn", f"{DMA_CELL}/axi_resetn", "ctrl_interconnect/S00_ARESETN",
        "ctrl_interconnect/M00_ARESETN", "mem_smartconnect/aresetn",
    ]  # fmt: skip
    streams = [
        (f"{PS_CELL}/M_AXI_GP0", "ctrl_interconnect/S00_AXI"),
        ("ctrl_interconnect/M00_AXI", f"{DMA_CELL}/S_AXI_LITE"),
        (f"{DMA_CELL}/M_AXI_MM2S", "mem_smartconnect/S00_AXI"),
        (f"{DMA_CELL}/M_AXI_S2MM", "mem_smartconnect/S01_AXI"),
        ("mem_smartconnect/M00_AXI", f"{PS_CELL}/S_AXI_HP0"),
        (f"{DMA_CELL}/M_AXIS_MM2S", "to_core/S_AXIS"),
        ("to_core/M_AXIS", f"{core}/s_axis"),
        (f"{core}/m_axis", "from_core/S_AXIS"),
        ("from_core/M_AXIS", f"{DMA_CELL}/S_AXIS_S2MM"),
    ]

    lite = bool(layout.get("weights"))
    if lite:  # WEIGHTS=ram: the IP's AXI4-Lite slave on the control interconnect's M01
        clock_pins.append("ctrl_interconnect/M01_ACLK")
        reset_pins.append("ctrl_interconnect/M01_ARESETN")
        streams.append(("ctrl_interconnect/M01_AXI", f"{core}/s_axi"))

    def pins(kind, items):
        return " ".join(f"[get_bd_{kind} {item}]" for item in items)

    lines = [
        f"# PYNQ-Z2 block design around {top} (compress2rtl): PS7 + AXI DMA + the IP.",
        "#   vivado -mode batch -source board/block_design.tcl [-tclargs part=<part> jobs=<n>]",
        "# Writes board/project/ (the Vivado project) and board/overlay/"
        f"{name}.bit + {name}.hwh (copy both",
        f"# and {name}_driver.py to the board: {name}_driver.{overlay_class(name)}).",
        "set BOARD [file normalize [file dirname [info script]]]",
        "set ROOT [file normalize [file join $BOARD ..]]",
        f"if {{![info exists PART]}} {{ set PART {layout['part']} }}",
        "if {![info exists JOBS]} { set JOBS 2 }",
        "if {[info exists argv]} {",
        "    foreach arg $argv {",
        "        if {[regexp {^(part|jobs)=(.+)$} $arg -> key value]} {",
        "            set [string toupper $key] $value",
        "        } else {",
        "            error \"block_design.tcl: unknown argument '$arg' (part=<part>, jobs=<n>)\"",
        "        }",
        "    }",
        "}",
        "if {![string is integer -strict $JOBS] || $JOBS < 1} {",
        "    error \"block_design.tcl: jobs must be a positive integer, not '$JOBS'\"",
        "}",
        "# the IP: vivado/package_ip.tcl's repository ip/, packaged first when missing",
        "set IP_REPO [file join $ROOT ip]",
        "if {![file exists [file join $IP_REPO component.xml]]} {",
        "    set saved_argv [expr {[info exists argv] ? $argv : {}}]",
        "    set argv [list part=$PART]",
        "    source [file join $ROOT vivado package_ip.tcl]",
        "    set argv $saved_argv",
        "}",
        "set PROJECT_DIR [file join $BOARD project]",
        f"create_project -force {BD_NAME} $PROJECT_DIR -part $PART",
        "set board_part [lindex [get_board_parts -quiet -latest_file_version {*pynq-z2*}] 0]",
        "if {$board_part ne {}} { set_property board_part $board_part [current_project] }",
        "set_property ip_repo_paths [list $IP_REPO] [current_project]",
        "update_ip_catalog",
        f"create_bd_design {BD_NAME}",
        f"set ps [create_bd_cell -type ip -vlnv xilinx.com:ip:processing_system7 {PS_CELL}]",
        "if {$board_part ne {}} {",
        "    set preset 1",
        "} else {",
        "    set preset 0",
        f"    set_property -dict {_config(PYNQ_Z2_PS7)} $ps",
        "}",
        "apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 -config "
        '[list make_external "FIXED_IO, DDR" apply_board_preset $preset Master Disable '
        "Slave Disable] $ps",
        f"set_property -dict {_config(ps_fabric)} $ps",
        f"set dma [create_bd_cell -type ip -vlnv xilinx.com:ip:axi_dma {DMA_CELL}]",
        f"set_property -dict {_config(dma)} $dma",
        f"set core [create_bd_cell -type ip -vlnv {layout['ip_vlnv']} {core}]",
        "set to_core [create_bd_cell -type ip -vlnv xilinx.com:ip:axis_subset_converter to_core]",
        f"set_property -dict {_config(to_core)} $to_core",
        "set from_core [create_bd_cell -type ip -vlnv xilinx.com:ip:axis_subset_converter "
        "from_core]",
        f"set_property -dict {_config(from_core)} $from_core",
        "set rst [create_bd_cell -type ip -vlnv xilinx.com:ip:proc_sys_reset rst_fclk0]",
        "set ctrl [create_bd_cell -type ip -vlnv xilinx.com:ip:axi_interconnect ctrl_interconnect]",
        f"set_property -dict [list CONFIG.NUM_SI {{1}} CONFIG.NUM_MI {{{2 if lite else 1}}}] $ctrl",
        "set mem [create_bd_cell -type ip -vlnv xilinx.com:ip:smartconnect mem_smartconnect]",
        "set_property -dict [list CONFIG.NUM_SI {2} CONFIG.NUM_MI {1}] $mem",
        "# one clock (FCLK0) and one reset domain",
        f"connect_bd_net {pins('pins', clock_pins)}",
        f"connect_bd_net [get_bd_pins {PS_CELL}/FCLK_RESET0_N] "
        "[get_bd_pins rst_fclk0/ext_reset_in]",
        f"connect_bd_net {pins('pins', reset_pins)}",
        "connect_bd_net [get_bd_pins rst_fclk0/interconnect_aresetn] "
        "[get_bd_pins ctrl_interconnect/ARESETN]",
    ]
    lines += [
        f"connect_bd_intf_net [get_bd_intf_pins {a}] [get_bd_intf_pins {b}]" for a, b in streams
    ]
    lines += [
        "assign_bd_address",
        "validate_bd_design",
        "save_bd_design",
        f"set bd_file [get_files {BD_NAME}.bd]",
        "generate_target all $bd_file",
        "set wrapper [make_wrapper -files $bd_file -top]",
        "add_files -norecurse $wrapper",
        f"set_property top {BD_NAME}_wrapper [current_fileset]",
        "update_compile_order -fileset sources_1",
        "launch_runs impl_1 -to_step write_bitstream -jobs $JOBS",
        "wait_on_run impl_1",
        "if {[get_property PROGRESS [get_runs impl_1]] ne {100%}} {",
        '    error "block_design.tcl: implementation failed (see $PROJECT_DIR)"',
        "}",
        "# PYNQ loads <name>.bit with the hardware handoff <name>.hwh next to it",
        "set OVERLAY [file join $BOARD overlay]",
        "file mkdir $OVERLAY",
        "set bit [glob -nocomplain [file join [get_property DIRECTORY [get_runs impl_1]] *.bit]]",
        f"set hwh [glob -nocomplain [file join $PROJECT_DIR {BD_NAME}.gen sources_1 bd {BD_NAME} "
        f"hw_handoff {BD_NAME}.hwh] [file join $PROJECT_DIR {BD_NAME}.srcs sources_1 bd "
        f"{BD_NAME} hw_handoff {BD_NAME}.hwh]]",
        "if {[llength $bit] != 1 || [llength $hwh] < 1} {",
        '    error "block_design.tcl: no bitstream or .hwh found under $PROJECT_DIR"',
        "}",
        f"file copy -force [lindex $bit 0] [file join $OVERLAY {name}.bit]",
        f"file copy -force [lindex $hwh 0] [file join $OVERLAY {name}.hwh]",
        f'puts "overlay: [file join $OVERLAY {name}.bit] and {name}.hwh"',
    ]
    return "\n".join(lines) + "\n"


def driver_source(layout: dict) -> str:
    """``<top>_driver.py``: :mod:`rtl_gen.export.board_driver` with ``LAYOUT`` set."""
    template = (Path(__file__).with_name("board_driver.py")).read_text()
    marker = "LAYOUT: dict = {}  # filled in by rtl_gen.export.board"
    if marker not in template:
        raise RuntimeError("board_driver.py lost its LAYOUT marker")
    text = json.dumps(layout, indent=4)
    overlay = overlay_class(layout["top"])
    header = (
        f'"""PYNQ driver of {layout["top"]} ({layout["name"]}), generated by compress2rtl '
        "from board/board.json.\n\n"
        f"    from {layout['top']}_driver import {overlay}\n"
        f"    overlay = {overlay}('overlay/{layout['top']}.bit')\n"
        "    logits = overlay.predict(images)   # real-valued pixels, one image per row\n\n"
        "Without pynq the packing functions still import (numpy only).\n"
        '"""\n'
    )
    body = template.split('"""', 2)[2]  # drop the template's own docstring
    body = body.replace(marker, f"LAYOUT: dict = json.loads(r'''{text}''')")
    body = body.replace("class BoardOverlay(", f"class {overlay}(")
    return header + body


def write_board(folder: Path) -> Path:
    """Write ``folder/board/`` (block design Tcl, driver, ``board.json``); return it."""
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    layout = board_layout(manifest)
    out = folder / "board"
    out.mkdir(exist_ok=True)
    (out / "board.json").write_text(json.dumps(layout, indent=2) + "\n")
    (out / "block_design.tcl").write_text(block_design_tcl(layout))
    (out / f"{layout['top']}_driver.py").write_text(driver_source(layout))
    return out
