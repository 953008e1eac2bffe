"""One neuron: weight ROM walked as inputs arrive, MAC with bias, activation unit."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from .activation import CircuitActivation, LutActivation, output_shape
from .mac import MulProduct, ShiftProduct
from .weights import BLOCK_ROM_BITS, BUILDS

__all__ = [
    "BLOCK_ROM_BITS",
    "OUTPUT_LATENCY",
    "ROM_STYLES",
    "BroadcastSignature",
    "LoadSignature",
    "Neuron",
    "element_layout",
    "index_bits",
]

#: Entries of the prefetch queue between a block-RAM ROM and the CSR walk: a read takes three
#: cycles to land (the read, the read data register, the queue), and at one advance per cycle
#: the queue must still hold one. A power of two: the queue's indices wrap by overflowing.
PREFETCH_DEPTH = 4

#: Where a neuron's ROM goes: ``"auto"`` (by size), ``"block"`` (block RAM), ``"logic"`` (LUTs).
ROM_STYLES = ("auto", "block", "logic")

#: Cycles from the ``accept`` of a vector's last element to ``out.valid`` (CSR layout and dense
#: build; the direct layout adds three): the product register, the result register, then the
#: activation's output register.
OUTPUT_LATENCY = 3


def index_bits(count: int) -> int:
    """Width of an element index for vectors of ``count`` elements (at least 1)."""
    return max(1, ceil_log2(count))


def element_layout(count: int, value_shape) -> data.StructLayout:
    """Payload of the inter-layer streams: ``{index, value, last}``, one vector element."""
    return data.StructLayout(
        {"index": unsigned(index_bits(count)), "value": Shape.cast(value_shape), "last": 1}
    )


def _table(values, bits: int, index):
    """Entry ``index`` of a constant table of ``bits``-bit ``values`` (``2**len(index)`` of
    them): a word select of one constant, which Yosys writes as a continuous assignment (a
    shift). ``Array(...)[index]`` would become an ``always @*`` case block, which Icarus 11
    runs only when an input changes: it initialises variables before any process waits, so
    Yosys's time-0 trigger (a dummy ``reg ... = 0``) is lost, and a block whose inputs are
    registers that keep their initial values through reset stays X until one changes."""
    packed = 0
    for i, v in enumerate(values):
        packed |= (int(v) & ((1 << bits) - 1)) << (i * bits)
    return Const(packed, bits * len(values)).word_select(index, bits)


class BroadcastSignature(wiring.Signature):
    """One element offered to many neurons at once (seen from the layer, the driving side).

    Members
    -------
    data : ``Out(element_layout)`` the element.
    valid : ``Out(1)`` ``data`` holds an element.
    done : ``In(1)`` the neuron has finished with ``data`` (it changes no state that depends on
        this element until ``accept``); may depend on ``valid`` and ``data``.
    accept : ``Out(1)`` the element is taken; the next cycle brings the next element or nothing.
        A direct-layout layer accepts when every neuron is ``done`` (lockstep); a CSR or dense
        layer gives each neuron its own input queue and ``accept`` = this neuron's ``done``.
    """

    def __init__(self, layout):
        super().__init__({"data": Out(layout), "valid": Out(1), "done": In(1), "accept": Out(1)})


class LoadSignature(wiring.Signature):
    """A write into a ``WEIGHTS=ram`` neuron (seen from the writer): in one cycle with ``en``,
    ``data`` goes to RAM word ``addr`` (``addr < in_features``) or to the bias register
    (``addr == in_features``, the low ``acc_bits`` bits)."""

    def __init__(self, addr_bits: int, data_bits: int):
        super().__init__({"en": Out(1), "addr": Out(addr_bits), "data": Out(data_bits)})


class Neuron(wiring.Component):
    """A neuron of a fully connected layer.

    The weight ROM (``amaranth.lib.memory.Memory``, synchronous read, ``init`` from the bundle)
    holds the neuron's row only: in the compressed builds (``"pow2"``, ``"codebook"``) the CSR
    entries ``{rel, code}`` (``rel`` in the low ``index_bits`` bits), fillers included; in the
    ``"dense"`` build one signed weight per input. With ``layout="direct"`` (compressed builds)
    the ROM holds one code per input instead (``code_bits`` bits, code 0 = pruned weight),
    addressed by the element's index. The codebook is a constant table of the layer
    decoded next to the ROM: ``pow2`` turns a code into (zero, sign, exponent) and multiplies by
    shifting and negating; ``codebook`` and ``dense`` use a multiplier.

    Timing (``layout="csr"`` and dense)
    -----------------------------------
    The ROM word of the current entry, its decoded weight and its column are registers, loaded
    on an advance from the next entry's word and decoded weight, which are registers too, loaded
    from the ROM's read data, which holds the entry after those (a LUT ROM: a combinational
    read whose address is a register; a block RAM: the head of a prefetch queue of registers
    that a read pointer fills ahead of the walk, the block RAM's read data registered on its
    way in); walking the row costs one cycle per entry and no bubble, also across vectors and
    from the first cycle after a reset, the column compare starts from registers and so does
    the product stage. For a broadcast element
    ``(j, x)``, in each cycle where ``inp.valid``:

    - an entry with column ``< j`` is skipped (``done`` low): this only happens when zero inputs
      were not broadcast (zero-skipping), each skipped entry costs one cycle;
    - an entry with column ``== j`` is consumed and ``done`` is high: ``w * x`` is registered
      and added to ``acc`` the next cycle;
    - otherwise (column ``> j`` or row exhausted) ``done`` is high and nothing changes.

    On ``accept`` of the element with ``last`` set the ROM walk restarts at entry 0; the next
    cycle ``acc`` plus the last product goes to the result register and ``acc`` returns to the
    bias. ``done`` stays low for a ``last`` element while the previous result has not left on
    ``out``. ``out.valid`` rises 3 cycles after that ``accept`` (:data:`OUTPUT_LATENCY`: the
    product register, the result register, then the activation's registered output, a circuit's
    register or a table's synchronous read); it holds until ``out.ready``. ``done`` drives
    register enables, the queue's read and (a block RAM) the choice between two registered
    addresses.

    Timing (``layout="direct"``)
    ----------------------------
    ``done`` is high in every cycle where ``inp.valid`` (except, for a ``last`` element, while the
    previous result has not left or is still in the MAC stage): every broadcast element costs one
    cycle, whatever was skipped before it. On ``accept`` the element's value and index are
    registered (the neuron's own copy) and the next cycle that index addresses a LUT ROM or a
    RAM (a combinational read); a block RAM is addressed by the element's index itself (a
    synchronous read enabled by ``done``): either way the word is registered next to the value
    in the cycle after the accept, and its decoded weight the cycle after that; the next the
    product ``w * x`` of those is registered, and the cycle after the accumulate stage does
    ``acc += w * x``. For the ``last`` element that stage captures ``acc + w * x`` in the result
    register and returns ``acc`` to the bias, so ``out.valid`` rises 6 cycles after the
    ``accept``: three cycles more than the CSR walk. No cycle is needed after reset.

    Parameters
    ----------
    rom_words : list of int
        ROM contents of the row (see :meth:`LayerWeights.rom_words`); may be empty.
    in_features : int
        Number of inputs (length of a vector).
    x_shape : shape-like
        Shape of the input values.
    bias : int
        Integer bias (accumulator format).
    acc_bits : int
        Signed accumulator width.
    shift : int
        Requantisation shift.
    activation : str
        ``"relu"``, ``"none"`` (circuits) or ``"sigmoid"``, ``"tanh"`` (tables).
    output_bits, output_frac_bits : int
        Output format (``output_frac_bits`` is used by the tables).
    build : str
        ``"dense"``, ``"codebook"`` or ``"pow2"``.
    codebook : list of int
        Layer codebook (compressed builds).
    index_bits, code_bits : int
        ROM word fields (compressed builds).
    layout : str
        ``"csr"`` (walk the row) or ``"direct"`` (one code per input, compressed builds only).
    weight_bits : int
        Dense ROM word width.
    lut_bits : int
        Activation table address width.
    weights : str
        ``"rom"`` (default) or ``"ram"`` (``WEIGHTS=ram``, :mod:`rtl_gen.neuron.ram`; direct
        layout only): ``rom_words`` are then the initial *decoded* words of a RAM
        (``ram_word_bits`` wide: pow2 ``{exp, negative, zero}``, codebook the value) with a
        write port, and the bias a one-word memory; both written through ``load``. The read
        path and the cycles are the direct layout's.
    ram_word_bits, load_data_bits : int
        ``weights="ram"``: RAM word width; width of ``load.data`` (at least the word and
        ``acc_bits``).
    rom_style : str
        ``"auto"`` (default: block RAM for a ROM of at least :data:`BLOCK_ROM_BITS` bits),
        ``"block"`` or ``"logic"`` (LUTs): the ``rom_style`` attribute of the ROM, which Yosys
        follows (Vivado follows ``"block"``; it builds a small ROM from LUTs anyway). A block
        RAM is read synchronously, a LUT ROM combinationally from registers; the cycles are
        the same.

    Members
    -------
    inp : ``In(BroadcastSignature(element_layout(in_features, x_shape)))``
    out : ``Out(stream.Signature(output_shape(activation, output_bits)))``
    load : ``In(LoadSignature(ceil_log2(in_features + 1), load_data_bits))``, ``weights="ram"``
        only: ``addr < in_features`` writes that RAM word, ``addr == in_features`` the bias.

    Attributes
    ----------
    nonzero : Signal(1)
        ``out.payload != 0``, valid with ``out.valid``: a register next to the circuit
        activation's (loaded from the accumulator's bits), so a layer's zero-skip mask starts
        from registers. Not a port: a layer reads it; a neuron on its own leaves it unused.
    result_nonzero : Signal(1)
        What ``nonzero`` will be for the result being activated: combinational from the result
        register (the activation's ``nonzero``; a table's is read from a one-bit table of the
        same address), right from the cycle after the result register loads (the cycle before
        ``out.valid`` rises) until it loads again. A lockstep layer registers its zero-skip
        masks from it a cycle ahead. Not a port either.
    """

    def __init__(
        self,
        *,
        rom_words,
        in_features: int,
        x_shape,
        bias: int,
        acc_bits: int,
        shift: int,
        activation: str,
        output_bits: int,
        build: str,
        output_frac_bits: int = 4,
        codebook=None,
        index_bits: int = 4,
        code_bits: int = 4,
        weight_bits: int = 16,
        lut_bits: int = 8,
        layout: str = "csr",
        weights: str = "rom",
        ram_word_bits: int | None = None,
        load_data_bits: int | None = None,
        rom_style: str = "auto",
    ):
        if rom_style not in ROM_STYLES:
            raise ValueError(f"rom_style must be one of {ROM_STYLES}, not {rom_style!r}")
        self.rom_style = rom_style
        if weights not in ("rom", "ram"):
            raise ValueError(f"weights must be 'rom' or 'ram', not {weights!r}")
        self.weights = weights
        if not isinstance(in_features, int) or in_features < 1:
            raise TypeError(f"in_features must be a positive integer, not {in_features!r}")
        if build not in BUILDS:
            raise ValueError(f"build must be one of {BUILDS}, not {build!r}")
        if not isinstance(acc_bits, int) or acc_bits < 2:
            raise TypeError(f"acc_bits must be an integer >= 2, not {acc_bits!r}")
        bias = int(bias)
        if not -(1 << (acc_bits - 1)) <= bias < 1 << (acc_bits - 1):
            raise ValueError(f"bias {bias} does not fit in acc_bits={acc_bits}")
        if layout not in ("csr", "direct"):
            raise ValueError(f"layout must be 'csr' or 'direct', not {layout!r}")
        if layout == "direct" and build == "dense":
            raise ValueError("layout 'direct' is for the compressed builds (pow2, codebook)")
        self.layout = layout
        self.rom_words = [int(w) for w in rom_words]
        if weights == "ram":
            if build == "dense" or layout != "direct":
                raise ValueError("weights 'ram' needs a compressed build in the direct layout")
            if len(self.rom_words) != in_features:
                raise ValueError(
                    f"a RAM has one word per input ({in_features}), not {len(self.rom_words)}"
                )
            if build == "pow2" and ram_word_bits < 3:
                raise ValueError("a pow2 RAM word has zero, negative and at least 1 exp bit")
            self.word_bits = int(ram_word_bits)
            self.load_data_bits = max(int(load_data_bits or 0), self.word_bits, acc_bits)
        elif build == "dense":
            if len(self.rom_words) != in_features:
                raise ValueError(
                    f"a dense ROM has one word per input ({in_features}), not {len(self.rom_words)}"
                )
            self.word_bits = weight_bits
        else:
            if codebook is None or len(codebook) != 1 << code_bits:
                raise ValueError(f"codebook must have 2**code_bits = {1 << code_bits} entries")
            if int(codebook[0]) != 0:
                raise ValueError("codebook[0] must be 0")
            if layout == "direct":
                if self.rom_words and len(self.rom_words) != in_features:
                    raise ValueError(
                        f"a direct ROM has one word per input ({in_features}) or none, "
                        f"not {len(self.rom_words)}"
                    )
                self.word_bits = code_bits
            else:
                self.word_bits = index_bits + code_bits
        if any(not 0 <= w < 1 << self.word_bits for w in self.rom_words):
            raise ValueError(f"ROM words must fit in {self.word_bits} bits")
        self.in_features = in_features
        self.x_shape = Shape.cast(x_shape)
        self.bias = bias
        self.acc_bits = acc_bits
        self.shift = int(shift)
        self.activation = activation
        self.output_bits = output_bits
        self.output_frac_bits = output_frac_bits
        self.build = build
        self.codebook = None if codebook is None else [int(c) for c in codebook]
        self.index_bits = index_bits
        self.code_bits = code_bits
        self.weight_bits = weight_bits
        self.lut_bits = lut_bits
        self.lut = activation in ("sigmoid", "tanh")
        if activation not in ("relu", "none", "sigmoid", "tanh"):
            raise ValueError(f"unknown activation {activation!r}")
        members = {
            "inp": In(BroadcastSignature(element_layout(in_features, self.x_shape))),
            "out": Out(stream.Signature(output_shape(activation, output_bits))),
        }
        if weights == "ram":
            members["load"] = In(LoadSignature(ceil_log2(in_features + 1), self.load_data_bits))
        super().__init__(members)
        self.nonzero = Signal(name="nonzero")
        self.result_nonzero = Signal(name="result_nonzero")

    @property
    def rom_bits(self) -> int:
        return len(self.rom_words) * self.word_bits

    @property
    def block_rom(self) -> bool:
        """The ROM goes into block RAM (``rom_style``; ``"auto"``: at least
        :data:`BLOCK_ROM_BITS`)."""
        if self.weights == "ram" or not self.rom_words:
            return False
        if self.rom_style == "auto":
            return self.rom_bits >= BLOCK_ROM_BITS
        return self.rom_style == "block"

    def _rom_attrs(self) -> dict:
        # ``rom_style`` is read by Yosys (memory_libmap) and by Vivado; without it both build
        # a small ROM from logic
        if self.block_rom:
            return {"rom_style": "block"}
        return {"rom_style": "logic"} if self.rom_style == "logic" else {}

    def _activation(self):
        if self.lut:
            return LutActivation(
                acc_bits=self.acc_bits,
                shift=self.shift,
                function=self.activation,
                output_bits=self.output_bits,
                frac_bits=self.output_frac_bits,
                lut_bits=self.lut_bits,
            )
        return CircuitActivation(
            acc_bits=self.acc_bits,
            shift=self.shift,
            activation=self.activation,
            output_bits=self.output_bits,
        )

    def _prefetch(self, m, rom, pop):
        """A block-RAM ROM read ahead into :data:`PREFETCH_DEPTH` registers (CSR walk).

        The walk reads its row in order and wraps, so the reads need no address from it: a
        read pointer (a register, the block RAM's address) reads the next entry whenever the
        queue has room for it, counting the reads still under way (``total``, a register), and
        the read data goes straight into a register (``q``, which 7-series block RAMs take as
        their output register), decoded from there into the queue, with a flag that says the
        entry is the row's last. The queue is a ring: a landing read goes to the slot of the
        write index, ``pop`` (an advance) moves only the read index, so the walk's advance
        reaches two index registers and the count, not the slots. Returns the head's word, its
        decoded fields and its last-entry flag, which hold ROM[ahead]. The queue starts full
        with entries 2, 3, ... (its reset values), so no cycle after a reset waits for a read;
        at one pop per cycle it holds one entry, as a read takes three cycles to land (the
        read, ``q``, the queue).
        """
        n = len(self.rom_words)
        depth = PREFETCH_DEPTH
        port = rom.read_port()
        shapes = {name: Shape.cast(shape) for name, (_, shape, _) in self._fields(
            Const(0, self.word_bits), 0).items()}  # fmt: skip
        width = self.word_bits + sum(shape.width for shape in shapes.values()) + 1

        def packed_init(entry: int) -> int:
            word = self.rom_words[entry % n]
            value, offset = word, self.word_bits
            for name, init in self._decode_inits(word).items():
                value |= (init & ((1 << shapes[name].width) - 1)) << offset
                offset += shapes[name].width
            return value | int(entry % n == n - 1) << offset

        pointer = Signal(range(n), name="read_pointer", init=(2 + depth) % n)
        total = Signal(range(depth + 1), name="prefetch_total", init=depth)  # held + under way
        issue = Signal()
        issued = Signal()  # a read was issued in the previous cycle: its data is on the port
        issued_last = Signal()  # ... of the row's last entry
        q = Signal(self.word_bits, name="read_data")
        q_valid = Signal()
        q_last = Signal()
        m.d.comb += [issue.eq(total < depth), port.addr.eq(pointer)]
        with m.If(issue):
            m.d.sync += pointer.eq(Mux(pointer == n - 1, 0, pointer + 1))
        m.d.sync += [
            issued.eq(issue),
            issued_last.eq(pointer == n - 1),
            q.eq(port.data),
            q_valid.eq(issued),
            q_last.eq(issued_last),
            total.eq(total + issue - pop),
        ]
        fields = self._fields(q, 0)
        incoming = Cat(q, *(fields[name][0] for name in shapes), q_last)
        slots = [Signal(width, name=f"prefetch{i}", init=packed_init(2 + i)) for i in range(depth)]
        read_index = Signal(range(depth), name="prefetch_read")
        write_index = Signal(range(depth), name="prefetch_write")  # the queue starts full
        with m.If(pop):
            m.d.sync += read_index.eq(read_index + 1)
        with m.If(q_valid):
            m.d.sync += write_index.eq(write_index + 1)
        for i, slot in enumerate(slots):
            with m.If(q_valid & (write_index == i)):
                m.d.sync += slot.eq(incoming)
        # a shift (a continuous assignment), not ``Array(slots)[read_index]`` (an ``always @*``
        # case block, see :func:`_table`): the slots and the index keep their reset values
        # until the first pop, which would then load X from the head in Icarus
        head = Cat(*slots).word_select(read_index, width)
        decoded, offset = {}, self.word_bits
        for name, shape in shapes.items():
            field = head[offset : offset + shape.width]
            decoded[name] = field.as_signed() if shape.signed else field
            offset += shape.width
        return head[: self.word_bits], decoded, head[offset]

    def _decode(self, m, word, enable=None, init_word=0, prefix="w"):
        """The weight of ROM word ``word``, decoded from its code and registered (loaded when
        ``enable``, every cycle when ``None``; after reset the decode of ``init_word``): the ROM
        is read combinationally and its decode sits before the register, so the product stage
        starts from registers (the codebook lookup, or the power-of-two decode, is not on the
        path into the shifter or the multiplier). Returns the registered fields: ``{"weight"}``
        (dense, codebook) or ``{"zero", "negative", "exp"}`` (pow2)."""
        return self._register_fields(m, self._fields(word, init_word), enable, prefix)

    @staticmethod
    def _register_fields(m, fields, enable, prefix):
        """``{name: (value, shape, init)}`` registered (loaded when ``enable``, every cycle
        when ``None``); returns ``{name: register}``."""
        decoded = {}
        for name, (value, shape, init) in fields.items():
            reg = Signal(shape, name=f"{prefix}_{name}", init=init)
            if enable is None:
                m.d.sync += reg.eq(value)
            else:
                with m.If(enable):
                    m.d.sync += reg.eq(value)
            decoded[name] = reg
        return decoded

    def _fields(self, word, init_word):
        """``{name: (decoded value of word, shape, decode of init_word)}`` for :meth:`_decode`."""
        fields = {}
        if self.weights == "ram":  # the RAM word is the decoded weight (rtl_gen.neuron.ram)
            if self.build == "pow2":
                fields["zero"] = (word[0], unsigned(1), 1)
                fields["negative"] = (word[1], unsigned(1), 0)
                fields["exp"] = (word[2:], unsigned(self.word_bits - 2), 0)
            else:
                fields["weight"] = (word.as_signed(), signed(self.word_bits), 0)
        elif self.build == "dense":
            init = init_word - (init_word >> (self.weight_bits - 1) << self.weight_bits)
            fields["weight"] = (word.as_signed(), signed(self.weight_bits), init)
        else:
            code = word if self.layout == "direct" else word[self.index_bits :]
            direct = self.layout == "direct"
            init = self.codebook[init_word if direct else init_word >> self.index_bits]
            if self.build == "codebook":
                wbits = max(abs(c) for c in self.codebook).bit_length() + 1
                table = _table(self.codebook, wbits, code).as_signed()
                fields["weight"] = (table, signed(wbits), init)
            else:
                exps = [max(abs(c), 1).bit_length() - 1 for c in self.codebook]
                exp_bits = max(max(exps).bit_length(), 1)
                zero = _table([int(c == 0) for c in self.codebook], 1, code)
                negative = _table([int(c < 0) for c in self.codebook], 1, code)
                exponent = _table(exps, exp_bits, code)
                fields["zero"] = (zero, unsigned(1), int(init == 0))
                fields["negative"] = (negative, unsigned(1), int(init < 0))
                init_exp = max(abs(init), 1).bit_length() - 1
                fields["exp"] = (exponent, unsigned(exp_bits), init_exp)
        return fields

    def _decode_inits(self, word: int) -> dict:
        """The reset values :meth:`_decode` gives its registers for ROM word ``word``."""
        fields = self._fields(Const(0, self.word_bits), word)
        return {name: init for name, (_, _, init) in fields.items()}

    def _product(self, m, decoded, x):
        """Product of the decoded (registered) weight with ``x``."""
        if "weight" in decoded:
            w = decoded["weight"]
            m.submodules.mac = mac = MulProduct(x_shape=self.x_shape, weight_bits=len(w))
            m.d.comb += [mac.x.eq(x), mac.w.eq(w)]
            return mac.p
        exp = decoded["exp"]
        m.submodules.mac = mac = ShiftProduct(x_shape=self.x_shape, exp_bits=len(exp))
        m.d.comb += [
            mac.x.eq(x),
            mac.zero.eq(decoded["zero"]),
            mac.negative.eq(decoded["negative"]),
            mac.exp.eq(exp),
        ]
        return mac.p

    def _output_stage(self, m, result, restart, act_wait):
        """Activation of ``result`` into a register and ``out.valid``: set two cycles after
        ``restart`` (``act_wait`` in between), cleared by the transfer. A table reads its ROM
        synchronously; a circuit's output is registered, so that neither puts the requantisation
        and saturation on the path to the layer's serializer."""
        m.submodules.activation = act = self._activation()
        m.d.comb += act.acc.eq(result)
        if self.lut:
            m.d.comb += [
                self.out.payload.eq(act.y),
                self.nonzero.eq(act.nonzero),
                self.result_nonzero.eq(act.nonzero_next),
            ]
        else:
            m.d.comb += self.result_nonzero.eq(act.nonzero)
            y = Signal.like(self.out.payload, name="y")
            nonzero = Signal(name="y_nonzero")
            with m.If(act_wait):
                m.d.sync += [y.eq(act.y), nonzero.eq(act.nonzero)]
            m.d.comb += [self.out.payload.eq(y), self.nonzero.eq(nonzero)]
        with m.If(self.out.valid & self.out.ready):
            m.d.sync += self.out.valid.eq(0)
        m.d.sync += act_wait.eq(restart)
        with m.If(act_wait):
            m.d.sync += self.out.valid.eq(1)

    def elaborate(self, platform):
        if self.layout == "direct":
            return self._elaborate_direct()
        m = Module()
        n = len(self.rom_words)
        element = self.inp.data

        exhausted = Signal(init=int(n == 0))  # every entry of the row has been passed
        col_width = (self.in_features + (1 << self.index_bits) + 1).bit_length()
        # column of the current entry; after reset entry 0's (its relative index)
        first_rel = self.rom_words[0] & ((1 << self.index_bits) - 1) if n else 0
        col = Signal(col_width, init=0 if self.build == "dense" else first_rel)
        acc = Signal(signed(self.acc_bits), init=self.bias)
        result = Signal(signed(self.acc_bits))
        act_wait = Signal()
        valid = Signal()
        behind = Signal()
        match = Signal()
        advance = Signal()

        # The current entry's ROM word and its decoded weight are registers, and so is the
        # next entry's word (``raw``, read one entry ahead): an advance loads the current ones
        # from it and it from a combinational read of the entry after, so the ROM read ends
        # in a register and the column adder and the decode start from registers. Their reset
        # values are entries 0 and 1, so no cycle after reset reads them and no "primed" flag
        # gates the walk (synthesis would merge the neurons' identical flags into one
        # register that fans out to every neuron's handshake across the device).
        if n:
            m.submodules.rom = rom = memory.Memory(
                shape=self.word_bits, depth=n, init=self.rom_words, attrs=self._rom_attrs()
            )
            # ``read`` is ROM[ahead] and ``read_fields`` its decoded weight: a LUT ROM is read
            # combinationally from the register and decoded; a block RAM through a prefetch
            # queue of registers (:meth:`_prefetch`)
            # ``read_last``, ``raw_last`` and ``word_last``: the entry is the row's last, so the
            # walk needs no entry counters (a block RAM's reads have their own pointer). The
            # walk wraps to entry 0 after the last entry, so the word registers already hold
            # ROM[0] when the ``last`` element (column ``in_features - 1``, the row's last
            # possible column) restarts it. A LUT ROM's address is a register and ``advance``
            # only enables it and the word registers: no path from ``done`` through the
            # address into the ROM.
            if self.block_rom:
                read, read_fields, read_last = self._prefetch(m, rom, advance)
            else:
                ahead = Signal(range(n), init=2 % n)  # the entry after the next one
                port = rom.read_port(domain="comb")
                m.d.comb += port.addr.eq(ahead)
                read, read_fields, read_last = port.data, None, ahead == n - 1
                with m.If(advance):
                    m.d.sync += ahead.eq(Mux(ahead == n - 1, 0, ahead + 1))
            raw = Signal(self.word_bits, name="next_word", init=self.rom_words[1 % n])
            word = Signal(self.word_bits, name="word", init=self.rom_words[0])
            raw_last = Signal(name="next_last", init=int(1 % n == n - 1))
            word_last = Signal(name="word_last", init=int(n == 1))
            with m.If(advance):
                m.d.sync += [
                    word.eq(raw),
                    raw.eq(read),
                    word_last.eq(raw_last),
                    raw_last.eq(read_last),
                ]
            # the next entry's decoded weight, registered next to its word (decoded from the
            # ROM read, not from ``raw``: Icarus leaves a decode table of a register that
            # keeps its reset value at X)
            if read_fields is None:
                following_weight = self._decode(m, read, advance, self.rom_words[1 % n], "next")
            else:
                inits = self._decode_inits(self.rom_words[1 % n])
                fields = {k: (v, v.shape(), inits[k]) for k, v in read_fields.items()}
                following_weight = self._register_fields(m, fields, advance, "next")
        else:
            raw = word = Const(0, self.word_bits)
            word_last = Const(1)
        if self.build == "dense":  # one entry per input: the column is the entry
            with m.If(advance):
                m.d.sync += col.eq(Mux(word_last, 0, col + 1))

        out_free = Signal()
        closing = Signal()  # the last element was taken in the previous cycle
        m.d.comb += [
            valid.eq(self.inp.valid),
            behind.eq(~exhausted & (col < element.index)),
            match.eq(~exhausted & (col == element.index)),
            advance.eq(valid & (behind | match)),
            out_free.eq(~self.out.valid & ~act_wait & ~closing),
            self.inp.done.eq(valid & ~behind & (~element.last | out_free)),
        ]
        first = self.rom_words[0] if n else 0
        if n:
            weight = {}
            current = self._decode_inits(first)
            for name, reg in following_weight.items():
                weight[name] = Signal.like(reg, name=f"w_{name}", init=current[name])
                with m.If(advance):
                    m.d.sync += weight[name].eq(reg)
        else:
            weight = self._decode(m, raw, advance, first)
        product = self._product(m, weight, element.value)
        # Product stage: ``w * x`` of a matched entry is registered and added the next cycle,
        # so the queue head, the shifter (or multiplier) and the accumulator's adder are apart.
        product_reg = Signal.like(product, name="product_reg")
        product_valid = Signal()
        restart = self.inp.accept & element.last
        m.d.sync += [
            product_reg.eq(product),
            product_valid.eq(valid & match),
            closing.eq(restart),
        ]
        addend = Mux(product_valid, product_reg, 0)
        # ``acc`` is read by sync assignments only: Icarus never evaluates a combinational
        # "next" signal of registers that keep their initial value, which then stays X.
        with m.If(closing):
            m.d.sync += [result.eq(acc + addend), acc.eq(self.bias)]
        with m.Elif(product_valid):
            m.d.sync += acc.eq(acc + product_reg)
        with m.If(restart):  # accepted, so valid
            m.d.sync += exhausted.eq(int(n == 0))
        with m.Elif(advance):
            with m.If(word_last):
                m.d.sync += exhausted.eq(1)
        if self.build != "dense":
            # The current entry's column is a register, and so is the next entry's
            # (``col_next``): an advance loads ``col`` from it, so the advance only selects and
            # enables, and no adder sits after the compare of ``col`` with the element's index.
            # ``col_next`` itself is loaded with its own value plus ``step_in`` (the relative
            # index + 1 of the entry after the next one, from the ROM read), a sum of
            # registers. A restart loads constants: the walk has wrapped (``word`` holds ROM[0],
            # or ``raw`` if the restart advances), so the columns are entries 0 and 1's, as
            # after reset. (Each choice is between a sum and a constant: no two sums under a
            # mux, which synthesis would share into one adder behind the choice.)
            mask = (1 << self.index_bits) - 1
            step_init = (self.rom_words[1 % n] & mask) + 1 if n else 1
            col_next = Signal(col_width, name="col_next", init=first_rel + step_init)
            step_in = read[: self.index_bits] + 1 if n else Const(1)
            with m.If(restart):
                m.d.sync += [col.eq(first_rel), col_next.eq(first_rel + step_init)]
            with m.Elif(advance):
                m.d.sync += [col.eq(col_next), col_next.eq(col_next + step_in)]
        self._output_stage(m, result, closing, act_wait)
        return m

    def _elaborate_direct(self):
        m = Module()
        element = self.inp.data

        # Index stage: the element accepted in the previous cycle (index and value, this
        # neuron's own copy); word stage: its ROM word in a register, next to the value; read
        # stage: that word decoded into registers. The ROM read and its decode are apart: a
        # LUT ROM of a few hundred words is a tree of several logic levels on its own.
        stage_valid = Signal()
        stage_last = Signal()
        stage_index = Signal.like(element.index, name="stage_index")
        stage_x = Signal(self.x_shape)
        word_valid = Signal()
        word_last = Signal()
        word_x = Signal(self.x_shape)
        read_valid = Signal()
        read_last = Signal()
        read_x = Signal(self.x_shape)
        acc = Signal(signed(self.acc_bits), init=self.bias)
        result = Signal(signed(self.acc_bits))
        act_wait = Signal()

        # A LUT ROM or a RAM is addressed by this neuron's registered copy of the element's
        # index (a combinational read), so the layer's element register drives only register
        # inputs and not the address logic of every neuron's ROM across the device; a block
        # RAM by the element's index itself (a synchronous read: its address pins).
        bias = self.bias
        reload = None
        if self.weights == "ram":
            # The RAM: the same combinational read, and a write port of its own (its address
            # and data are the layer's load registers), so the read path is the ROM's.
            m.submodules.ram = ram = memory.Memory(
                shape=self.word_bits, depth=self.in_features, init=self.rom_words
            )
            port = ram.read_port(domain="comb")
            m.d.comb += port.addr.eq(stage_index)
            word = port.data
            wport = ram.write_port()
            load = self.load
            m.d.comb += [
                wport.addr.eq(load.addr),
                wport.data.eq(load.data),
                wport.en.eq(load.en & (load.addr < self.in_features)),
            ]
            # The bias: a register, written at entry in_features; the accumulator (which holds
            # the bias between vectors) takes the new one the next cycle.
            # Like the weights, the bias keeps what was loaded through a reset: a one-word
            # memory (a register without reset; a memory so that simulators start it from its
            # initial value and not from an unevaluated "next" value); the accumulator takes it
            # in the first cycle after a reset (``reload`` resets to 1) and after a write.
            m.submodules.bias = bias_mem = memory.Memory(
                shape=signed(self.acc_bits), depth=1, init=[self.bias]
            )
            bias = bias_mem.read_port(domain="comb").data
            bias_write = bias_mem.write_port()
            written = load.en & (load.addr == self.in_features)
            m.d.comb += [
                bias_write.data.eq(load.data[: self.acc_bits]),
                bias_write.en.eq(written),
            ]
            reload = Signal(init=1)
            m.d.sync += reload.eq(written)
        elif self.rom_words:
            m.submodules.rom = rom = memory.Memory(
                shape=self.word_bits,
                depth=self.in_features,
                init=self.rom_words,
                attrs=self._rom_attrs(),
            )
            if self.block_rom:
                # a synchronous read of the element's index when this neuron is done with it:
                # the data is the word of ``stage_index`` in the next cycle, as the
                # combinational read of that register would be
                port = rom.read_port()
                m.d.comb += [port.addr.eq(element.index), port.en.eq(self.inp.done)]
            else:
                port = rom.read_port(domain="comb")
                m.d.comb += port.addr.eq(stage_index)
            word = port.data
        else:
            word = Const(0, self.word_bits)

        restart = Signal()  # the accumulate stage holds a last element: the result is ready
        # ``out_busy``: a last element has been taken and its result has not left on ``out``
        # (in the stages, the activation or ``out``), a register: set the cycle after that
        # accept, cleared the cycle after the transfer, so it is high exactly while one of the
        # stages' last flags, ``act_wait`` or ``out.valid`` is (one last element at a time: a
        # last element waits while it is high). ``done`` is then one gate from registers.
        out_busy = Signal()
        product_valid = Signal()
        product_last = Signal()
        m.d.comb += [
            restart.eq(product_valid & product_last),
            self.inp.done.eq(self.inp.valid & (~element.last | ~out_busy)),
        ]
        with m.If(self.inp.accept & self.inp.done & element.last):
            m.d.sync += out_busy.eq(1)
        with m.Elif(self.out.valid & self.out.ready):
            m.d.sync += out_busy.eq(0)
        # ``accept & done`` is ``accept`` (a layer accepts only when its neurons are done), and
        # the stage registers load whenever this neuron is done (every accept among them): the
        # per-neuron term keeps synthesis from merging the lockstep layer's identical copies
        # of the pipeline state and of the element into one register each, which would drive
        # every neuron's ROM, accumulator and result register across the device.
        m.d.sync += [
            stage_valid.eq(self.inp.accept & self.inp.done),
            word_valid.eq(stage_valid),
            word_last.eq(stage_last),  # used only with word_valid
            word_x.eq(stage_x),
            read_valid.eq(word_valid),
            read_last.eq(word_last),  # used only with read_valid
            read_x.eq(word_x),
        ]
        with m.If(self.inp.done):
            m.d.sync += [
                stage_index.eq(element.index),
                stage_x.eq(element.value),
                stage_last.eq(element.last),
            ]
        # Product stage: the shift (or multiply) of the decoded word, registered, so that the
        # accumulate adder starts from a register.
        word_reg = Signal(self.word_bits, name="word_reg")
        m.d.sync += word_reg.eq(word)
        product = self._product(m, self._decode(m, word_reg), read_x)
        product_reg = Signal.like(product, name="product_reg")
        m.d.sync += [
            product_valid.eq(read_valid),
            product_last.eq(read_valid & read_last),
            product_reg.eq(product),
        ]
        with m.If(restart):
            m.d.sync += [result.eq(acc + product_reg), acc.eq(bias)]
        if reload is not None:
            with m.Elif(reload):
                m.d.sync += acc.eq(bias)
        with m.Elif(product_valid):
            m.d.sync += acc.eq(acc + product_reg)

        self._output_stage(m, result, restart, act_wait)
        return m
