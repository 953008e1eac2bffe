"""AXI4-Stream top of an exported design: a generated Verilog wrapper around the Amaranth core.

The core (``<core>.v``, ports ``clk``, ``rst`` and its Amaranth streams) is left as it is; the
wrapper module ``<core>_axis`` instantiates it and maps

* ``aclk`` to ``clk``; ``aresetn`` (active low, sampled on ``aclk``) to ``rst = !aresetn``;
  while ``aresetn`` is low both ``tready`` and ``tvalid`` of the wrapper are held low;
* the input stream (or the neuron's broadcast input) to ``s_axis_*``, the output stream to
  ``m_axis_*``.

``tdata`` is byte-aligned: each value (each lane with ``P`` pixels per clock, each channel of a
CNN pixel) sits in its own field of ``ceil(width / 8)`` bytes, lane 0 in the lowest. Outputs are
sign-extended (signed values) or zero-extended to their field; on inputs the core reads the low
``width`` bits of each field and ignores the rest. An element's index travels in ``tuser``,
``last`` in ``tlast``; the conv engine's lane ``keep`` mask becomes ``m_axis_tkeep`` (every byte of
a lane). Vivado's ``X_INTERFACE_INFO`` / ``X_INTERFACE_PARAMETER`` attributes on the ports make IP
integrator infer the two AXI4-Stream interfaces, the clock and the reset.

A Verilog wrapper rather than an Amaranth component: an Amaranth top always names its clock and
reset ``clk`` and ``rst`` (active high), and would re-emit the whole core under new module
names; this way the folder's core file is the same file the core's own tests check.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from amaranth.hdl import Shape
from amaranth.lib import data, stream, wiring

__all__ = ["AxisSide", "AxisTop", "axis_top", "interface_attributes"]

#: Vivado VLNVs of the inferred interfaces.
AXIS_VLNV = "xilinx.com:interface:axis:1.0"
CLOCK_VLNV = "xilinx.com:signal:clock:1.0"
RESET_VLNV = "xilinx.com:signal:reset:1.0"
AXIMM_VLNV = "xilinx.com:interface:aximm:1.0"


@dataclass(frozen=True)
class Lane:
    """One value of a payload: ``width`` bits at ``offset`` of the core's payload."""

    offset: int
    width: int
    signed: bool

    @property
    def bytes(self) -> int:
        return -(-self.width // 8)


@dataclass
class AxisSide:
    """How one core stream maps to an AXI4-Stream interface (``s_axis`` or ``m_axis``)."""

    name: str  # "s_axis" / "m_axis"
    core: str  # the core's member: "i", "inp", "o", "out"
    kind: str  # "stream" (valid/ready) or "broadcast" (valid/done/accept: the neuron's input)
    payload_port: str  # the core's payload port ("i__payload", "inp__data")
    payload_width: int
    lanes: list[Lane]
    index: Lane | None = None  # -> tuser
    last: int | None = None  # bit of the payload -> tlast
    keep: Lane | None = None  # lane mask (conv engine output with P > 1) -> tkeep

    @property
    def lane_bytes(self) -> int:
        return max(lane.bytes for lane in self.lanes)

    @property
    def tdata_bytes(self) -> int:
        return self.lane_bytes * len(self.lanes)

    @property
    def tuser_width(self) -> int:
        return self.index.width if self.index else 0

    def ports(self) -> list[dict]:
        """``[{"name", "direction", "width"}, ...]`` of this interface on the wrapper."""
        out, inp = ("output", "input") if self.name == "m_axis" else ("input", "output")
        ports = [
            {"name": f"{self.name}_tdata", "direction": out, "width": 8 * self.tdata_bytes},
            {"name": f"{self.name}_tvalid", "direction": out, "width": 1},
            {"name": f"{self.name}_tready", "direction": inp, "width": 1},
            {"name": f"{self.name}_tlast", "direction": out, "width": 1},
        ]
        if self.index is not None:
            ports.append(
                {"name": f"{self.name}_tuser", "direction": out, "width": self.tuser_width}
            )
        if self.keep is not None:
            ports.append(
                {"name": f"{self.name}_tkeep", "direction": out, "width": self.tdata_bytes}
            )
        return ports

    def fields(self) -> dict:
        """The bit fields of this interface, for the manifest and the docs."""
        lanes = []
        for i, lane in enumerate(self.lanes):
            lo = i * 8 * self.lane_bytes
            lanes.append(
                {
                    "tdata_bits": [lo + 8 * self.lane_bytes - 1, lo],
                    "value_bits": lane.width,
                    "signed": lane.signed,
                    "extension": (
                        ("sign" if lane.signed else "zero")
                        if self.name == "m_axis"
                        else "ignored above value_bits"
                    ),
                }
            )
        fields = {"tdata_bytes": self.tdata_bytes, "lanes": lanes}
        fields["tuser"] = (
            {"bits": [self.index.width - 1, 0], "meaning": "element index"} if self.index else None
        )
        if self.last is not None and self.name == "s_axis":
            fields["tlast"] = (
                "to the core's last: the vector's last element (MLP, neuron); the CNN counts "
                "pixels and does not use it"
            )
        elif self.last is not None:
            fields["tlast"] = "the core's last: a frame's last result (conv), a vector's (MLP, CNN)"
        elif self.name == "m_axis":
            fields["tlast"] = "1 on every beat (one result per input vector)"
        else:
            fields["tlast"] = "ignored (the core counts pixels)"
        if self.keep is not None:
            fields["tkeep"] = (
                f"each lane's {self.lane_bytes} byte(s) set when the lane holds a result"
            )
        return fields


@dataclass
class AxisTop:
    """The wrapper: its module name, Verilog text and interfaces."""

    module: str
    core: str
    source: str
    text: str
    s_axis: AxisSide
    m_axis: AxisSide
    ports: list[dict] = field(default_factory=list)
    lite: LiteSide | None = None

    def manifest(self) -> dict:
        extra = {}
        if self.lite:
            extra["s_axi"] = {
                "protocol": "AXI4-Lite slave, 32-bit data",
                "address_bits": self.lite.address_bits,
                "write_data_bits": self.lite.data_bits,
                "write_latency_cycles": self.lite.latency + 1,
                "reads": "return 0 (OKAY)",
                "map": "manifest.json key weights",
            }
        return {
            "top": self.module,
            "source": self.source,
            "core": self.core,
            "clock": {"port": "aclk", "core_port": "clk"},
            "reset": {
                "port": "aresetn",
                "polarity": "active low, synchronous (sampled on aclk)",
                "core_port": "rst = !aresetn",
            },
            "ports": self.ports,
            "s_axis": self.s_axis.fields(),
            "m_axis": self.m_axis.fields(),
            **extra,
        }


def _lanes(shape, base: int) -> list[Lane]:
    if isinstance(shape, data.ArrayLayout):
        elem = Shape.cast(shape.elem_shape)
        return [Lane(base + i * elem.width, elem.width, elem.signed) for i in range(shape.length)]
    s = Shape.cast(shape)
    return [Lane(base, s.width, s.signed)]


def _side(name: str, core: str, kind: str, port: str, shape) -> AxisSide:
    """Map the payload ``shape`` of a core stream: a value (or ``P`` of them), or a struct of
    ``value`` with ``index``, ``last`` and ``keep``."""
    if isinstance(shape, data.StructLayout):
        members = dict(shape)
        unknown = set(members) - {"value", "index", "last", "keep"}
        if unknown or "value" not in members:
            raise ValueError(f"no AXI4-Stream mapping for payload fields {sorted(members)}")
        side = AxisSide(
            name, core, kind, port, shape.size, _lanes(shape["value"].shape, shape["value"].offset)
        )
        if "index" in members:
            side.index = _lanes(shape["index"].shape, shape["index"].offset)[0]
        if "last" in members:
            side.last = shape["last"].offset
        if "keep" in members:
            side.keep = _lanes(shape["keep"].shape, shape["keep"].offset)[0]
        return side
    return AxisSide(name, core, kind, port, Shape.cast(shape).width, _lanes(shape, 0))


def _sides(component) -> tuple[AxisSide, AxisSide]:
    inputs, outputs = [], []
    for member_name, member in component.signature.members.items():
        if member_name == "load" and getattr(component, "ram_map", None) is not None:
            continue  # WEIGHTS=ram: the AXI4-Lite slave (LiteSide)
        if not member.is_signature:
            raise ValueError(f"no AXI4-Stream mapping for port {member_name!r}")
        sig = member.signature
        if isinstance(sig, stream.Signature):
            shape = sig.members["payload"].shape
            kind, port = "stream", f"{member_name}__payload"
        elif {"data", "valid", "done", "accept"} == set(sig.members):  # the neuron's broadcast
            shape = sig.members["data"].shape
            kind, port = "broadcast", f"{member_name}__data"
        else:
            raise ValueError(f"no AXI4-Stream mapping for port {member_name!r}")
        (inputs if member.flow == wiring.In else outputs).append((member_name, kind, port, shape))
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError("an AXI4-Stream top needs exactly one input and one output stream")
    (iname, ikind, iport, ishape), (oname, okind, oport, oshape) = inputs[0], outputs[0]
    if okind != "stream":
        raise ValueError("the output must be a stream")
    return _side("s_axis", iname, ikind, iport, ishape), _side(
        "m_axis", oname, okind, oport, oshape
    )


def interface_attributes(side: AxisSide) -> dict[str, list[str]]:
    """``{port: [attribute lines]}`` of one AXI4-Stream interface."""
    params = [
        f"XIL_INTERFACENAME {side.name}",
        f"TDATA_NUM_BYTES {side.tdata_bytes}",
        f"TUSER_WIDTH {side.tuser_width}",
        "HAS_TREADY 1",
        "HAS_TSTRB 0",
        f"HAS_TKEEP {int(side.keep is not None)}",
        "HAS_TLAST 1",
    ]
    return _attributes(side.ports(), AXIS_VLNV, side.name, "TDATA", ", ".join(params))


def _attributes(ports, vlnv: str, interface: str, carrier: str, params: str) -> dict:
    """``{port: [attribute lines]}``: each port's ``X_INTERFACE_INFO`` (its logical name is the
    part after the last ``_``), the interface's parameters on the ``carrier`` port."""
    attrs = {}
    for port in ports:
        logical = port["name"].rsplit("_", 1)[1].upper()
        lines = [f'(* X_INTERFACE_INFO = "{vlnv} {interface} {logical}" *)']
        if logical == carrier:
            lines.append(f'(* X_INTERFACE_PARAMETER = "{params}" *)')
        attrs[port["name"]] = lines
    return attrs


def _decl(port: dict) -> str:
    rng = f"[{port['width'] - 1}:0] " if port["width"] > 1 else ""
    return f"{port['direction']:<6} wire {rng}{port['name']}"


def _extend(src: str, lane: Lane, width: int) -> str:
    """``src[offset +: lane.width]`` sign- or zero-extended to ``width`` bits."""
    bits = f"{src}[{lane.offset + lane.width - 1}:{lane.offset}]"
    pad = width - lane.width
    if pad == 0:
        return bits
    fill = f"{src}[{lane.offset + lane.width - 1}]" if lane.signed else "1'b0"
    return f"{{{{{pad}{{{fill}}}}}, {bits}}}"


@dataclass
class LiteSide:
    """``WEIGHTS=ram``: the AXI4-Lite slave ``s_axi`` that writes the core's ``load`` port."""

    address_bits: int  # byte address
    data_bits: int  # bits of a write the core takes
    latency: int  # cycles from the core's load.en to the write done

    def ports(self) -> list[dict]:
        a = self.address_bits
        spec = [
            ("awaddr", "input", a), ("awprot", "input", 3), ("awvalid", "input", 1),
            ("awready", "output", 1), ("wdata", "input", 32), ("wstrb", "input", 4),
            ("wvalid", "input", 1), ("wready", "output", 1), ("bresp", "output", 2),
            ("bvalid", "output", 1), ("bready", "input", 1), ("araddr", "input", a),
            ("arprot", "input", 3), ("arvalid", "input", 1), ("arready", "output", 1),
            ("rdata", "output", 32), ("rresp", "output", 2), ("rvalid", "output", 1),
            ("rready", "input", 1),
        ]  # fmt: skip
        return [{"name": f"s_axi_{n}", "direction": d, "width": w} for n, d, w in spec]

    def attributes(self) -> dict[str, list[str]]:
        params = (
            "XIL_INTERFACENAME s_axi, PROTOCOL AXI4LITE, DATA_WIDTH 32, "
            f"ADDR_WIDTH {self.address_bits}, READ_WRITE_MODE READ_WRITE, HAS_BURST 0, "
            "HAS_LOCK 0, HAS_PROT 1, HAS_CACHE 0, HAS_QOS 0, HAS_REGION 0, HAS_WSTRB 1, "
            "HAS_BRESP 1, HAS_RRESP 1, SUPPORTS_NARROW_BURST 0, MAX_BURST_LENGTH 1"
        )
        return _attributes(self.ports(), AXIMM_VLNV, "s_axi", "AWADDR", params)

    def body(self) -> list[str]:
        """The slave: a write is taken when AWVALID and WVALID are both high (one word, WSTRB
        ignored), registered into the core's load port, and answered (BRESP OKAY) once it has
        reached the RAM or register; reads answer 0."""
        a, d, n = self.address_bits, self.data_bits, self.latency
        return [
            '    // AXI4-Lite s_axi: weights and biases (manifest.json "weights")',
            "    // hold aresetn low from the first aclk edge: the core's RAMs and bias memories",
            "    // keep their contents through a reset and take no write while it is low",
            "    reg load_en;",
            f"    reg [{a - 3}:0] load_addr;",
            f"    reg [{d - 1}:0] load_data;",
            f"    reg [{n - 1}:0] load_done;",
            "    reg write_open, bvalid, rvalid;",
            "    wire write_take = s_axi_awvalid & s_axi_wvalid & ~write_open & aresetn;",
            "    assign s_axi_awready = write_take;",
            "    assign s_axi_wready = write_take;",
            "    assign s_axi_bvalid = bvalid;",
            "    assign s_axi_bresp = 2'b00;",
            "    assign s_axi_arready = ~rvalid & aresetn;",
            "    assign s_axi_rvalid = rvalid;",
            "    assign s_axi_rdata = 32'd0;",
            "    assign s_axi_rresp = 2'b00;",
            "    always @(posedge aclk) begin",
            "        if (!aresetn) begin",
            "            load_en <= 1'b0;",
            f"            load_done <= {n}'d0;",
            "            write_open <= 1'b0;",
            "            bvalid <= 1'b0;",
            "            rvalid <= 1'b0;",
            "        end else begin",
            "            load_en <= write_take;",
            f"            load_done <= {{load_done[{n - 2}:0], load_en}};"
            if n > 1
            else "            load_done <= load_en;",
            "            if (write_take) begin",
            f"                load_addr <= s_axi_awaddr[{a - 1}:2];",
            f"                load_data <= s_axi_wdata[{d - 1}:0];",
            "                write_open <= 1'b1;",
            "            end",
            f"            if (load_done[{n - 1}]) bvalid <= 1'b1;",
            "            if (bvalid & s_axi_bready) begin",
            "                bvalid <= 1'b0;",
            "                write_open <= 1'b0;",
            "            end",
            "            if (s_axi_arvalid & ~rvalid) rvalid <= 1'b1;",
            "            else if (s_axi_rready) rvalid <= 1'b0;",
            "        end",
            "    end",
            "    /* verilator lint_off UNUSEDSIGNAL */",
            "    wire unused_axi = &{1'b0, s_axi_awprot, s_axi_arprot, s_axi_wstrb, s_axi_araddr,",
            f"        s_axi_awaddr[1:0], s_axi_wdata[31:{d}]}};"
            if d < 32
            else "        s_axi_awaddr[1:0]};",
            "    /* verilator lint_on UNUSEDSIGNAL */",
        ]


def _lite(component) -> LiteSide | None:
    amap = getattr(component, "ram_map", None)
    if amap is None:
        return None
    from rtl_gen.layer import LOAD_LATENCY

    return LiteSide(amap.byte_address_bits, amap.data_bits, LOAD_LATENCY)


def axis_top(component, core: str, module: str | None = None) -> AxisTop:
    """The AXI4-Stream wrapper of ``component`` (converted to Verilog as module ``core``); with
    an AXI4-Lite slave ``s_axi`` when the core loads its weights at run time (``WEIGHTS=ram``)."""
    module = module or f"{core}_axis"
    s, m = _sides(component)
    lite = _lite(component)
    busif = "s_axis:m_axis" + (":s_axi" if lite else "")
    clock_params = f"XIL_INTERFACENAME aclk, ASSOCIATED_BUSIF {busif}, ASSOCIATED_RESET aresetn"
    ports = [
        {"name": "aclk", "direction": "input", "width": 1},
        {"name": "aresetn", "direction": "input", "width": 1},
        *s.ports(),
        *m.ports(),
        *(lite.ports() if lite else []),
    ]
    attrs = {
        "aclk": [
            f'(* X_INTERFACE_INFO = "{CLOCK_VLNV} aclk CLK" *)',
            f'(* X_INTERFACE_PARAMETER = "{clock_params}" *)',
        ],
        "aresetn": [
            f'(* X_INTERFACE_INFO = "{RESET_VLNV} aresetn RST" *)',
            '(* X_INTERFACE_PARAMETER = "XIL_INTERFACENAME aresetn, POLARITY ACTIVE_LOW" *)',
        ],
        **interface_attributes(s),
        **interface_attributes(m),
        **(lite.attributes() if lite else {}),
    }
    header = []
    for i, port in enumerate(ports):
        header += [f"    {line}" for line in attrs[port["name"]]]
        header.append(f"    {_decl(port)}" + ("," if i < len(ports) - 1 else ""))

    body = []
    si, mo = s.core, m.core  # the core's member names: i / inp, o / out
    body.append(f"    wire [{s.payload_width - 1}:0] core_in;")
    body.append(f"    wire [{m.payload_width - 1}:0] core_out;")
    body.append("    wire core_in_ready;")
    body.append("    wire core_out_valid;")
    # input fields
    unused = []
    for i, lane in enumerate(s.lanes):
        lo = i * 8 * s.lane_bytes
        body.append(
            f"    assign core_in[{lane.offset + lane.width - 1}:{lane.offset}] = "
            f"s_axis_tdata[{lo + lane.width - 1}:{lo}];"
        )
        if lane.width < 8 * s.lane_bytes:
            unused.append(f"s_axis_tdata[{lo + 8 * s.lane_bytes - 1}:{lo + lane.width}]")
    if s.index is not None:
        top = s.index.offset + s.index.width - 1
        body.append(f"    assign core_in[{top}:{s.index.offset}] = s_axis_tuser;")
    if s.last is not None:
        body.append(f"    assign core_in[{s.last}] = s_axis_tlast;")
    else:
        unused.append("s_axis_tlast")
    # output fields
    for i, lane in enumerate(m.lanes):
        lo = i * 8 * m.lane_bytes
        hi = lo + 8 * m.lane_bytes - 1
        body.append(
            f"    assign m_axis_tdata[{hi}:{lo}] = {_extend('core_out', lane, 8 * m.lane_bytes)};"
        )
    if m.index is not None:
        top = m.index.offset + m.index.width - 1
        body.append(f"    assign m_axis_tuser = core_out[{top}:{m.index.offset}];")
    tlast = f"core_out[{m.last}]" if m.last is not None else "1'b1"
    body.append(f"    assign m_axis_tlast = {tlast};")
    if m.keep is not None:
        for i in range(len(m.lanes)):
            lo = i * m.lane_bytes
            body.append(
                f"    assign m_axis_tkeep[{lo + m.lane_bytes - 1}:{lo}] = "
                f"{{{m.lane_bytes}{{core_out[{m.keep.offset + i}]}}}};"
            )
    body += [
        "    assign s_axis_tready = core_in_ready & aresetn;",
        "    assign m_axis_tvalid = core_out_valid & aresetn;",
    ]
    if unused:
        body += [
            "    // not read by the core: bits above a value's width, tlast where the core counts",
            "    /* verilator lint_off UNUSEDSIGNAL */",
            f"    wire unused_inputs = &{{1'b0, {', '.join(unused)}}};",
            "    /* verilator lint_on UNUSEDSIGNAL */",
        ]
    conns = [
        ".clk(aclk)",
        ".rst(!aresetn)",
        f".{s.payload_port}(core_in)",
        f".{si}__valid(s_axis_tvalid & aresetn)",
    ]
    if s.kind == "stream":
        conns.append(f".{si}__ready(core_in_ready)")
    else:  # the neuron's broadcast input: done = ready, accept = a transfer
        body.append("    wire core_in_accept = s_axis_tvalid & core_in_ready & aresetn;")
        conns += [f".{si}__done(core_in_ready)", f".{si}__accept(core_in_accept)"]
    conns += [
        f".{m.payload_port}(core_out)",
        f".{mo}__valid(core_out_valid)",
        f".{mo}__ready(m_axis_tready & aresetn)",
    ]
    if lite:
        body += lite.body()
        conns += [".load__en(load_en)", ".load__addr(load_addr)", ".load__data(load_data)"]
    body.append(f"    {core} core (")
    body += [f"        {c}," for c in conns[:-1]] + [f"        {conns[-1]}", "    );"]
    text = "\n".join(
        [
            "`timescale 1ns/1ps",
            f"// AXI4-Stream top of {core}, generated by rtl_gen.export.axis ({core}.v: the core,",
            "// unchanged). aresetn: active low, synchronous to aclk. Bit fields: manifest.json,",
            '// key "axis".',
            f"module {module} (",
            *header,
            ");",
            *body,
            "endmodule",
            "",
        ]
    )
    return AxisTop(module, core, f"{module}.v", text, s, m, ports, lite)
