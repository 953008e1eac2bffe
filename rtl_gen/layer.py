"""A fully connected layer: M neurons on one broadcast input stream, results out in order."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from .bits import at_most_one, lowest, one_hot_select, or_tree, without_lowest
from .neuron import BUILDS, LayerWeights, Neuron, element_layout, output_shape
from .neuron.neuron import ROM_STYLES
from .neuron.ram import ram_format, ram_words
from .neuron.weights import LAYOUTS
from .skid import SkidBuffer

__all__ = [
    "BROADCAST_GROUP",
    "BROADCAST_LATENCY",
    "GATHER_GROUP",
    "GATHER_LATENCY",
    "LOAD_LATENCY",
    "QUEUE_DEPTH",
    "LayerLoadSignature",
    "PUSH_LATENCY",
    "RESULT_LATENCY",
    "ROOM_LATENCY",
    "Layer",
]

#: Cycles from the neurons' ``accept`` of a vector's last element (all in the same cycle) to the
#: first result on ``out`` in the CSR layout and the dense build: the neurons' output latency,
#: the serializer's search registers and one-hot register, the gather slice
#: (:data:`GATHER_GROUP`) and the output register slice. The direct layout adds two
#: (its index and ROM-read stages) and counts from the layer's accept, :data:`BROADCAST_LATENCY`
#: earlier, and in the CSR layout and the dense build the serializer waits
#: :data:`GATHER_LATENCY` more for the slowest neuron.
RESULT_LATENCY = 7

#: Neurons per group of the serializer's search (the lowest group with a result left, then the
#: lowest result in it) and of its two-step pick (within a group, then among groups, with a
#: register slice between them).
GATHER_GROUP = 8

#: Default entries of each neuron's input queue (CSR layout and dense build).
QUEUE_DEPTH = 17

#: CSR layout and dense build: cycles from the layer's accept of an element to its write into
#: the queues (the element and each queue's write enable are registered).
PUSH_LATENCY = 1

#: CSR layout and dense build: cycles from the queue levels to the layer's ``inp.ready`` (each
#: queue's "fits" register, then the registered AND of all of them). A queue may receive
#: ``ROOM_LATENCY + PUSH_LATENCY + 1`` elements between the level the AND saw and the write of
#: the push it allows, so the AND asks for
#: ``level <= queue_depth - 1 - ROOM_LATENCY - PUSH_LATENCY``.
ROOM_LATENCY = 2

#: CSR layout and dense build: the serializer starts one cycle after every result is valid.
GATHER_LATENCY = 1

#: Direct layout: cycles from the layer's accept of an element to the neurons' (a register per
#: group of neurons, which takes the element on its way to them).
BROADCAST_LATENCY = 1

#: Neurons per copy of the element register: the direct layout's broadcast register, the CSR
#: layout's and the dense build's register before the queues' write data.
BROADCAST_GROUP = 8


#: ``WEIGHTS=ram``: cycles from a write on a layer's ``load`` port to the write done (the
#: layer's load register, then the RAM or bias register, then the accumulator's reload).
LOAD_LATENCY = 3


class LayerLoadSignature(wiring.Signature):
    """A write into a ``WEIGHTS=ram`` layer (seen from the writer): word ``entry`` of neuron
    ``neuron`` (``entry == in_features``: its bias)."""

    def __init__(self, neuron_bits: int, entry_bits: int, data_bits: int):
        super().__init__(
            {
                "en": Out(1),
                "neuron": Out(neuron_bits),
                "entry": Out(entry_bits),
                "data": Out(data_bits),
            }
        )


class Layer(wiring.Component):
    """``M`` neurons that see the same input element, and an in-order output serializer.

    Input: a stream of vector elements ``{index, value, last}`` with increasing ``index`` and
    ``last`` on the final element (index ``in_features - 1``); elements may be missing (zeros
    that were not sent). Every neuron sees every element.

    CSR layout and dense build: the layer pushes each element it accepts into an input queue of
    every neuron (``queue_depth`` entries, ``amaranth.lib.fifo.SyncFIFOBuffered``: the head is a
    register), and each neuron walks its ROM row at its own pace, taking the head of its queue
    when it is done with it (see
    :class:`~rtl_gen.neuron.Neuron`; one cycle per element plus one per ROM entry it must skip).
    ``inp.ready`` is a register: high in cycle ``t`` when every queue held at most
    ``queue_depth - 4`` elements in cycle ``t - 2`` (:data:`ROOM_LATENCY`: each queue registers
    its own "fits" next to it, and a registered AND of those makes ``inp.ready``; room for the
    four pushes that the AND cannot see), so no path runs from one neuron through the
    layer-wide AND into another neuron, and the AND's inputs are registers. An accepted
    element is registered and written into the queues in the next cycle
    (:data:`PUSH_LATENCY`), each queue's write enable a register of its own, so the accept does
    not fan out to every queue's write logic in one cycle. An element accepted in cycle ``t``
    is at the head of the queues in cycle ``t + 3``. Without skipped entries the queues hold
    three elements and the layer takes one element per cycle.

    Direct layout (``layout="direct"``): a broadcast in lockstep. ``inp.ready`` is high for every
    element but a ``last`` one, which waits while the previous vector's results are in the
    neurons or the serializer (a register per group of neurons, equal to the AND of their
    ``done`` one cycle later), and every element takes exactly one cycle. The element reaches
    the neurons one cycle after the layer accepts it (:data:`BROADCAST_LATENCY`: a register per
    :data:`BROADCAST_GROUP` neurons), all in the same cycle; each neuron's ROM is addressed by
    its registered copy of the element's index, so the results come three cycles later than a
    CSR neuron's (index, ROM-word and decode stages).

    Output: when the neurons take a vector's last element in cycle ``t`` (the direct layout: all
    of them, one cycle after the layer's ``accept``), their results are valid in cycle ``t + 3``
    (:data:`~rtl_gen.neuron.neuron.OUTPUT_LATENCY`; ``t + 6`` in the direct layout). In the
    direct layout the serializer takes them in that cycle; in the CSR layout and the dense build
    the neurons may finish in different cycles, ``t`` is the slowest one's, and the serializer
    takes them one cycle later (a registered AND of their ``out.valid``,
    :data:`GATHER_LATENCY`) into its search registers, a mask per group of
    :data:`GATHER_GROUP` neurons. It offers them in index order from the cycle after next (a
    one-hot register), one result picked within each group into a
    :class:`~rtl_gen.skid.SkidBuffer`, then among the groups into a second one, so the first
    result is on ``out`` four cycles after the serializer took them (``t + 8``; ``t + 9`` in
    the direct layout) and the others follow one per cycle while ``out.ready`` is high,
    ``last`` on neuron ``M - 1``.
    ``out.valid``, ``out.payload`` and the serializer's view of ``out.ready`` are registers: no
    combinational path crosses from one layer into the next. A neuron does not take a ``last``
    element while its previous result has not left.

    Parameters
    ----------
    weights : LayerWeights
    build : str
        ``"dense"``, ``"codebook"`` or ``"pow2"`` (``"codebook"`` and ``"pow2"`` need a compressed
        layer; ``"dense"`` uses ``weight_int`` of any layer).
    layout : str
        ROM layout of the compressed builds: ``"csr"`` (default, the CSR row walked one entry per
        cycle), ``"direct"`` (one code per input, addressed by the element index) or ``"auto"``
        (the cheaper ROMs for this layer: fewer block RAMs, then fewer LUT-ROM bits, see
        :meth:`LayerWeights.auto_layout`). The dense build
        ignores ``"auto"`` and rejects ``"direct"``. :attr:`layout` is the resolved one.
    drop_zeros : bool
        Input filter: take zero-valued elements without ``last`` at once and do not broadcast them
        (one cycle each, the neurons skip their entries later). The direct layout broadcasts
        them anyway: one cycle either way and a zero product, so the same results and cycles.
    skip_zero_outputs : bool
        The serializer does not send zero results (the ``last`` one is always sent): they are left
        out of its mask, so zeros cost no cycle.
    acc_bits : int or None
        Accumulator width; ``None`` derives the exact bound from the weights
        (:meth:`LayerWeights.acc_bits`).
    lut_bits : int
        Activation table address width (sigmoid/tanh).
    queue_depth : int
        Entries of each neuron's input queue (CSR layout and dense build), at least 4; with
        less slack (``queue_depth - 1 - ROOM_LATENCY - PUSH_LATENCY``) a neuron that skips
        entries stalls the layer sooner.
    weight_memory : str
        ``"rom"`` (default) or ``"ram"``: each neuron's weights in a RAM of decoded words in
        the direct layout and its bias in a one-word memory (:mod:`rtl_gen.neuron.ram`),
        written through the ``load`` port (:class:`LayerLoadSignature`, registered here, done
        :data:`LOAD_LATENCY` cycles later); ``layout`` is then ignored.
    load_bits : tuple or None
        ``(neuron_bits, entry_bits, data_bits)`` of the ``load`` port (the MLP's map);
        ``None``: this layer's own.
    rom_style : str
        ``"auto"`` (default), ``"block"`` or ``"logic"``: where each neuron's ROM goes
        (:class:`~rtl_gen.neuron.Neuron`).
    """

    def __init__(
        self,
        weights: LayerWeights,
        *,
        build: str,
        layout: str = "csr",
        drop_zeros: bool = False,
        skip_zero_outputs: bool = False,
        acc_bits: int | None = None,
        lut_bits: int = 8,
        queue_depth: int = QUEUE_DEPTH,
        weight_memory: str = "rom",
        load_bits: tuple[int, int, int] | None = None,
        rom_style: str = "auto",
    ):
        if weight_memory not in ("rom", "ram"):
            raise ValueError(f"weight_memory must be 'rom' or 'ram', not {weight_memory!r}")
        if rom_style not in ROM_STYLES:
            raise ValueError(f"rom_style must be one of {ROM_STYLES}, not {rom_style!r}")
        self.rom_style = rom_style
        if not isinstance(weights, LayerWeights):
            raise TypeError(f"weights must be a LayerWeights, not {type(weights).__name__}")
        if build not in BUILDS:
            raise ValueError(f"build must be one of {BUILDS}, not {build!r}")
        if build != "dense" and not weights.compressed:
            raise ValueError(f"build {build!r} needs a compressed layer, {weights.name} is dense")
        if build == "pow2" and weights.weight_format != "pow2":
            raise ValueError(f"build 'pow2' needs pow2 weights, {weights.name} has a codebook")
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}")
        if not isinstance(queue_depth, int) or queue_depth < 4:
            raise ValueError(f"queue_depth must be an integer >= 4, not {queue_depth!r}")
        self.weights = weights
        self.queue_depth = queue_depth
        self.build = build
        self.weight_memory = weight_memory
        self.ram = None
        if weight_memory == "ram":
            # every bundle of the same shape fits a RAM of one word per input: the direct layout
            self.ram = ram_format(weights, build)
            self.layout = "direct"
        else:
            self.layout = weights.resolve_layout(build, layout)
        self.drop_zeros = bool(drop_zeros)
        self.skip_zero_outputs = bool(skip_zero_outputs)
        self.acc_bits = weights.acc_bits() if acc_bits is None else int(acc_bits)
        if self.ram is not None:
            self.acc_bits = max(self.acc_bits, self.ram.acc_bits)
        self.lut_bits = lut_bits
        x_shape = output_shape("none" if weights.in_signed else "relu", weights.in_bits)
        self.x_shape = x_shape
        self.y_shape = output_shape(weights.activation, weights.output_bits)
        members = {
            "inp": In(stream.Signature(element_layout(weights.in_features, x_shape))),
            "out": Out(stream.Signature(element_layout(weights.out_features, self.y_shape))),
        }
        if self.ram is not None:
            # (neuron, entry, data) widths of the load port; by default this layer's own
            neuron_bits = max(ceil_log2(weights.out_features), 1)
            entry_bits = ceil_log2(weights.in_features + 1)
            data_bits = max(self.ram.word_bits, self.acc_bits)
            if load_bits is not None:
                neuron_bits, entry_bits, data_bits = load_bits
            self.load_bits = (neuron_bits, entry_bits, data_bits)
            members["load"] = In(LayerLoadSignature(neuron_bits, entry_bits, data_bits))
        super().__init__(members)

    @property
    def rom_bits(self) -> int:
        return self.weights.rom_bits(self.build, self.layout)

    def neuron(self, j: int) -> Neuron:
        w = self.weights
        if self.ram is not None:
            extra = dict(
                weights="ram",
                ram_word_bits=self.ram.word_bits,
                load_data_bits=self.load_bits[2],
            )
            words = ram_words(w, self.ram, j)
        else:
            extra, words = {}, w.rom_words(j, self.build, self.layout)
        return Neuron(
            rom_words=words,
            in_features=w.in_features,
            x_shape=self.x_shape,
            bias=int(w.bias_int[j]),
            acc_bits=self.acc_bits,
            shift=w.shift,
            activation=w.activation,
            output_bits=w.output_bits,
            output_frac_bits=w.output_frac_bits,
            build=self.build,
            codebook=None if self.build == "dense" else list(w.codebook),
            index_bits=w.index_bits,
            code_bits=w.code_bits,
            weight_bits=w.weight_bits,
            lut_bits=self.lut_bits,
            layout=self.layout,
            rom_style=self.rom_style,
            **extra,
        )

    def elaborate(self, platform):
        m = Module()
        count = self.weights.out_features
        neurons = []
        for j in range(count):
            neuron = self.neuron(j)
            m.submodules[f"neuron{j}"] = neuron
            neurons.append(neuron)

        if self.ram is not None:
            self._load(m, neurons)

        # input: a lockstep broadcast, or an optional zero filter and queues
        sent = self._serializer(m, neurons)
        if self.layout == "direct":
            self._broadcast(m, neurons, sent)
        else:
            drop = Signal()
            if self.drop_zeros:
                element = self.inp.payload
                m.d.comb += drop.eq(self.inp.valid & (element.value == 0) & ~element.last)
            self._queues(m, neurons, drop)
        return m

    def _load(self, m, neurons):
        """``WEIGHTS=ram``: the load port registered in this layer (its own copy next to its
        neurons), then each neuron's write enable is its index compared with the register."""
        load = self.load
        en = Signal(name="load_en")
        neuron = Signal.like(load.neuron, name="load_neuron")
        entry = Signal.like(load.entry, name="load_entry")
        payload = Signal.like(load.data, name="load_data")
        m.d.sync += [en.eq(load.en), neuron.eq(load.neuron), entry.eq(load.entry)]
        m.d.sync += payload.eq(load.data)
        for j, n in enumerate(neurons):
            m.d.comb += [
                n.load.en.eq(en & (neuron == j)),
                n.load.addr.eq(entry),
                n.load.data.eq(payload),
            ]

    def _broadcast(self, m, neurons, sent):
        """Lockstep: every neuron takes the element in the same cycle, one cycle after the
        layer (:data:`BROADCAST_LATENCY`), from a register of its group of
        :data:`BROADCAST_GROUP` neurons.

        Zero elements are broadcast too (``drop_zeros`` changes nothing here): dropped, a zero
        would cost the same one cycle, and its product is zero, so the results and the cycles
        are those of a filter, without a compare of the value on the path from the input
        register to every neuron's enables.

        Every neuron is done with an element in every cycle, except with a ``last`` element
        while its previous result is in its pipeline or waits on ``out``. In lockstep that is
        the same for all of them, from the accept of a ``last`` element to the cycle the
        serializer sends the last result (``sent``): a register, ``busy``, so that no path
        runs from the neurons' pipelines through a layer-wide AND into ``inp.ready``. A
        ``last`` element accepted after ``sent`` reaches the neurons a cycle later still, so
        they are done with every element their group register offers and take it at once.

        The group registers split the route from the layer's input to neurons spread across
        the device in two. Each group keeps its own ``busy`` (a register that feeds back into
        itself) and loads its element register only on its own accept, so synthesis cannot
        merge the groups' identical copies back into one register.
        """
        size = BROADCAST_GROUP
        for g, start in enumerate(range(0, len(neurons), size)):
            busy = Signal(name=f"busy{g}")
            take = Signal(name=f"take{g}")
            valid = Signal(name=f"element{g}_valid")
            element = Signal.like(self.inp.payload, name=f"element{g}")
            m.d.comb += take.eq(self.inp.valid & (~self.inp.payload.last | ~busy))
            if g == 0:
                m.d.comb += self.inp.ready.eq(take)
            m.d.sync += valid.eq(take)
            with m.If(take):
                m.d.sync += element.eq(self.inp.payload)
            with m.If(take & self.inp.payload.last):
                m.d.sync += busy.eq(1)
            with m.Elif(sent):
                m.d.sync += busy.eq(0)
            for neuron in neurons[start : start + size]:
                m.d.comb += [
                    neuron.inp.data.eq(element),
                    neuron.inp.valid.eq(valid),
                    neuron.inp.accept.eq(valid),
                ]

    def _queues(self, m, neurons, drop):
        """An input queue per neuron; the layer accepts while a registered AND of registered
        per-queue "fits" says every queue has room for the pushes under way. An accepted
        element is registered (a copy per :data:`BROADCAST_GROUP` queues) and written into the
        queues the next cycle, each queue's write enable a register of its own."""
        count = len(neurons)
        room = Signal(init=1)
        push = Signal()
        # fits[i]: queue i held at most ``depth - 1 - ROOM_LATENCY - PUSH_LATENCY`` elements
        # last cycle; a register per queue, so the AND's inputs are registers and no level
        # comparison sits on the routing across the layer. ``seen[i]`` is the ``fits[i]``
        # that ``room`` was made from, so ``push`` implies it.
        fits = Signal(count, init=(1 << count) - 1)
        seen = Signal(count, init=(1 << count) - 1)
        # Each queue's write enable is ``push & seen[i]`` registered: equal to ``push`` one
        # cycle later, but not to synthesis (``push`` implies ``seen[i]`` only through the
        # registered AND), so it keeps one register per queue next to the queue instead of
        # merging them into one that fans out to every queue's level and write logic.
        write = Signal(count)
        m.d.comb += [
            push.eq(self.inp.valid & ~drop & room),
            self.inp.ready.eq(drop | room),
        ]
        m.d.sync += [
            write.eq(Mux(push, seen, 0)),
            seen.eq(fits),
            room.eq(fits.all()),
        ]
        # One element register per group of queues, loaded on ``push & seen[first]`` (a push,
        # but not to synthesis, which would merge equal copies into one register that drives
        # every queue's write data across the layer).
        elements = []
        for g in range(0, count, BROADCAST_GROUP):
            element = Signal.like(self.inp.payload, name=f"element{g // BROADCAST_GROUP}")
            with m.If(push & seen[g]):
                m.d.sync += element.eq(self.inp.payload)
            elements.append(element)
        threshold = self.queue_depth - 1 - ROOM_LATENCY - PUSH_LATENCY
        for i, neuron in enumerate(neurons):
            element = elements[i // BROADCAST_GROUP]
            queue = SyncFIFOBuffered(width=len(self.inp.payload.as_value()), depth=self.queue_depth)
            m.submodules[f"queue{i}"] = queue
            m.d.comb += [
                queue.w_data.eq(element),
                queue.w_en.eq(write[i]),
                neuron.inp.data.eq(queue.r_data),
                neuron.inp.valid.eq(queue.r_rdy),
                neuron.inp.accept.eq(neuron.inp.done),
                queue.r_en.eq(neuron.inp.done),
            ]
            m.d.sync += fits[i].eq(queue.level <= threshold)

    def _serializer(self, m, neurons):
        """In-order output of the neurons' results, optionally without the zero ones.

        Once every neuron's result is valid (the direct layout: in the cycle they all become
        valid; otherwise one cycle later, a registered AND) the serializer loads the mask of
        the results to send (all, or the nonzero ones and the last: each neuron's registered
        ``nonzero``) into one register per group of :data:`GATHER_GROUP` neurons, with a
        register per group that says whether it still holds one, and releases the other
        results. The first group to send is the lowest with a result; with the registered AND,
        whether each group has one is itself registered the cycle before, so the load's search
        over the groups starts from registers; in the direct layout it is registered from each
        neuron's ``result_nonzero`` in the cycle before the results become valid. From the
        next cycle on, each cycle
        the offer register is free it takes the lowest result left: the lowest group that
        holds one (``turn``, a one-hot register that moves on when its group takes its last
        result, to the lowest other group that holds one: a carry chain as long as the number
        of groups, ending in that register), then the lowest result of that group (one as long
        as a group). No carry chain spans the layer, no path runs from a neuron's result into
        the search, and none from one group's registers through the search into another's.
        """
        count = len(neurons)
        groups = [range(g, min(g + GATHER_GROUP, count)) for g in range(0, count, GATHER_GROUP)]
        ready = Signal()  # every neuron's result is valid
        kept = Signal(count)
        kept_next = Signal(count)  # ``kept`` of the results being activated (direct layout)
        for i, neuron in enumerate(neurons):
            bit = bit_next = Const(1, 1)
            if self.skip_zero_outputs and i != count - 1:
                bit, bit_next = neuron.nonzero, neuron.result_nonzero
            m.d.comb += [kept[i].eq(bit), kept_next[i].eq(bit_next)]
        current = Signal(count)  # one-hot: the result offered now
        rest = [Signal(len(members), name=f"rest{g}") for g, members in enumerate(groups)]
        holds = Signal(len(groups))  # group g has results left in rest[g]
        offering = Signal()
        sending = Signal()  # from the load until the last result has been offered
        m.submodules.out_slice = out_slice = SkidBuffer(self.out.payload.shape())
        wiring.connect(m, out_slice.o, wiring.flipped(self.out))
        # The offered result is picked in two registered halves: within each group into the
        # group's own register slice, then among the groups, so no route runs from every
        # neuron of the layer to one register in a cycle. The slices move in lockstep, but
        # each has its own handshake registers (feeding back into themselves, so synthesis
        # keeps them apart), and each group's search and release follow its own slice's
        # ``ready``: no net reaches every group.
        word_width = len(self.out.payload.index) + len(self.out.payload.value)
        gathers = []
        for g in range(len(groups)):
            gather = SkidBuffer(data.StructLayout({"word": word_width, "last": 1}))
            m.submodules[f"gather_slice{g}"] = gather
            gathers.append(gather)
        load = Signal()
        emits = [Signal(name=f"emit{g}") for g in range(len(groups))]
        sent = Signal()  # the last result of a vector leaves
        m.d.comb += [
            load.eq(ready & ~sending),
            sent.eq(emits[-1] & current[count - 1]),
        ]
        for gather, emit in zip(gathers, emits, strict=True):
            m.d.comb += emit.eq(offering & gather.i.ready)

        # whether each group has a result to send, for the load: with the registered AND the
        # results are valid a cycle before it, so this is a register too
        masks = Signal(len(groups))
        if self.layout == "direct":
            # lockstep: the results are valid in the same cycle, and were in the result
            # registers the cycle before, where ``kept_next`` already says which are kept; the
            # layer holds them until the last one has left, so the register is right at the load
            m.d.comb += ready.eq(neurons[-1].out.valid)
            m.d.sync += masks.eq(
                Cat(kept_next[members.start : members.stop].any() for members in groups)
            )
        else:  # registered AND, clear while the previous results are leaving
            valid_bits = Signal(count)
            m.d.comb += [valid_bits[i].eq(n.out.valid) for i, n in enumerate(neurons)]
            group_kept = Cat(kept[members.start : members.stop].any() for members in groups)
            m.d.sync += [ready.eq(valid_bits.all() & ~sending & ~load), masks.eq(group_kept)]

        # ``turn`` (one-hot, a register) is the lowest group with a result left, lowest(holds):
        # each group's pick and release follow its own bit of it, and it moves on when that
        # group takes its last result, to the lowest other group that holds one. So the search
        # over the groups ends in this register, and no path runs from one group's ``holds``
        # through the search into another group's logic in a cycle.
        # ``single[g]``: rest[g] holds at most one result, a register loaded with rest[g], so
        # whether the turn moves on depends on registers only
        turn = Signal(len(groups))
        single = Signal(len(groups))
        group_done = Signal(len(groups))  # the turn's group takes its last result

        # ``after[g]``: rest[g] without its lowest result, a register, so a pick is
        # ``rest & ~after`` and taking it one search (the next ``after``), not two in a row
        after = [Signal(len(members), name=f"after{g}") for g, members in enumerate(groups)]
        # ``loads[g]``: the load as group g's registers and neurons see it. In the direct
        # layout every neuron's result becomes valid in the same cycle (lockstep), so each group
        # takes it from its own last neuron's ``out.valid`` and a ``sending`` copy of its own
        # (loaded with that, so synthesis keeps the copies apart): no load net reaches every
        # neuron's release and every group's registers. The queued layers' registered AND is
        # one register: there they are the layer's load.
        loads = [load] * len(groups)
        if self.layout == "direct":
            loads = [Signal(name=f"load{g}") for g in range(len(groups))]
            for g, members in enumerate(groups):
                group_sending = Signal(name=f"sending{g}")
                m.d.comb += loads[g].eq(neurons[members.stop - 1].out.valid & ~group_sending)
                with m.If(loads[g]):
                    m.d.sync += group_sending.eq(1)
                with m.If(sent):
                    m.d.sync += group_sending.eq(0)
        with m.If(load):
            m.d.sync += sending.eq(1)
            m.d.sync += turn.eq(lowest(masks))
        with m.Elif(~offering | gathers[0].i.ready):  # the offer register is free next cycle
            m.d.sync += offering.eq(holds.any())
            with m.If(group_done.any()):
                m.d.sync += turn.eq(lowest(holds & ~turn))
        for g, members in enumerate(groups):
            with m.If(loads[g]):
                mask = kept[members.start : members.stop]
                m.d.sync += [
                    rest[g].eq(mask),
                    after[g].eq(without_lowest(mask)),
                    holds[g].eq(masks[g]),
                    single[g].eq(at_most_one(mask)),
                ]
        for g, members in enumerate(groups):
            left = after[g]
            pick = rest[g] & ~left
            m.d.comb += group_done[g].eq(turn[g] & single[g])
            with m.If(~loads[g] & (~offering | gathers[g].i.ready)):
                m.d.sync += current[members.start : members.stop].eq(Mux(turn[g], pick, 0))
                with m.If(turn[g]):
                    m.d.sync += [
                        rest[g].eq(left),
                        after[g].eq(without_lowest(left)),
                        holds[g].eq(left.any()),
                        single[g].eq(at_most_one(left)),
                    ]
        with m.If(sent):
            m.d.sync += sending.eq(0)

        value_width = len(self.out.payload.value)
        words = [Cat(n.out.payload.as_unsigned()[:value_width], Const(i, word_width - value_width))
                 for i, n in enumerate(neurons)]  # fmt: skip
        for members, gather in zip(groups, gathers, strict=True):
            m.d.comb += [
                gather.i.valid.eq(offering),
                gather.i.payload.word.eq(
                    one_hot_select([current[i] for i in members], [words[i] for i in members])
                ),
                gather.i.payload.last.eq(current[count - 1] if count - 1 in members else 0),
                gather.o.ready.eq(out_slice.i.ready),
            ]
        word = or_tree(gather.o.payload.word for gather in gathers)
        m.d.comb += [
            out_slice.i.valid.eq(gathers[0].o.valid),
            out_slice.i.payload.value.eq(word[:value_width]),
            out_slice.i.payload.index.eq(word[value_width:]),
            out_slice.i.payload.last.eq(gathers[-1].o.payload.last),
        ]
        for i, neuron in enumerate(neurons):
            emit = emits[i // GATHER_GROUP]
            group_load = loads[i // GATHER_GROUP]
            m.d.comb += neuron.out.ready.eq((emit & current[i]) | (group_load & ~kept[i]))
        return sent
