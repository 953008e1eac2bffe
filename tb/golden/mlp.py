"""Golden model of the neuron, layer and MLP hardware: integer outputs and exact cycle counts.

The arithmetic follows ``docs/bundle.md`` (exact integer accumulation, round-half-up requantisation
shift, saturating ReLU / hard saturation) and the tables of ``docs/mlp.md`` for sigmoid and tanh.
It works on the integer weights (``weight_int``) and decodes the CSR rows itself for the cycle
model; it shares no code with the hardware generator, only the cost rule of the ``auto``
layout (``rom_cost``: block RAMs, then LUT-ROM bits) from the bundle reader
(:mod:`rtl_gen.neuron.weights`, plain NumPy, which both halves import); the ROM sizes it costs
are its own, from the CSR arrays.
"""

from __future__ import annotations

import numpy as np

from rtl_gen.neuron.weights import rom_cost

__all__ = [
    "DIRECT_LATENCY",
    "GATHER_LATENCY",
    "PRODUCT_LATENCY",
    "PUSH_LATENCY",
    "QUEUE_DEPTH",
    "QUEUE_LATENCY",
    "RESULT_LATENCY",
    "ROOM_LATENCY",
    "activate",
    "entry_columns",
    "layer_cycles",
    "layer_forward",
    "layer_layouts",
    "layer_timing",
    "mlp_cycles",
    "mlp_forward",
    "predict",
    "requantise",
    "synthetic_layer",
    "synthetic_mlp",
]

#: Cycles from the cycle the neurons take the ``last`` input element (all in the same cycle) to
#: the first result offered on a layer's output: the result register, the activation's output
#: register (a circuit's register or a table's synchronous read), the serializer's search
#: registers (one mask per group of neurons) and its one-hot register, the slice between its
#: two-step pick (within groups of neurons, then among the groups) and the
#: layer's output register slice. The same for every activation. The direct layout adds
#: :data:`DIRECT_LATENCY`, the CSR layout and the dense build :data:`PRODUCT_LATENCY` and
#: :data:`GATHER_LATENCY`.
RESULT_LATENCY = 6

#: Extra cycles of the direct ROM layout: the layer's broadcast register (one per group of
#: neurons), each neuron's registered copy of the element's index, its ROM word, the decoded
#: word and the product registers before the accumulate stage.
DIRECT_LATENCY = 5

#: Input queue of each neuron of a CSR (or dense) layer: entries; cycles from the layer's
#: accept to the write into the queues (the element and the write enables are registered),
#: and to the neuron's first look at the element.
QUEUE_DEPTH = 17
PUSH_LATENCY = 1
QUEUE_LATENCY = 3

#: Cycles from the queue levels to the layer's accept decision: the layer accepts in cycle ``t``
#: only if every queue held at most ``depth - 1 - ROOM_LATENCY - PUSH_LATENCY`` elements in
#: cycle ``t - ROOM_LATENCY`` (a register per queue, then a registered AND).
ROOM_LATENCY = 2

#: CSR (and dense) layers: the neurons take the ``last`` element in different cycles, and the
#: serializer starts one cycle after all results are valid (a registered AND).
GATHER_LATENCY = 1

#: CSR (and dense) layers: the product register before the accumulator.
PRODUCT_LATENCY = 1


def requantise(acc, shift: int) -> np.ndarray:
    acc = np.asarray(acc, dtype=np.int64)
    if shift > 0:
        return (acc + (1 << (shift - 1))) >> shift
    if shift < 0:
        return acc << -shift
    return acc


def _clip_bits(y, bits: int, signed: bool) -> np.ndarray:
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return np.clip(y, lo, hi)


def activate(q, activation: str, output_bits: int, frac_bits: int = 4, lut_bits: int = 8):
    """Activation of requantised values ``q`` (integer codes with ``frac_bits`` fraction bits)."""
    q = np.asarray(q, dtype=np.int64)
    if activation == "relu":
        return _clip_bits(q, output_bits, False)
    if activation == "none":
        return _clip_bits(q, output_bits, True)
    qs = _clip_bits(q, lut_bits, True).astype(np.float64) / (1 << frac_bits)
    if activation == "sigmoid":
        f, signed = 1.0 / (1.0 + np.exp(-qs)), False
    elif activation == "tanh":
        f, signed = np.tanh(qs), True
    else:
        raise ValueError(f"unknown activation {activation!r}")
    y = np.floor(f * (1 << frac_bits) + 0.5).astype(np.int64)
    return _clip_bits(y, output_bits, signed)


def layer_forward(layer, x, lut_bits: int = 8) -> np.ndarray:
    """Outputs of one layer for codes ``x`` of shape ``(in,)`` or ``(n, in)``."""
    x = np.asarray(x, dtype=np.int64)
    acc = x @ layer.weight_int.T.astype(np.int64) + layer.bias_int.astype(np.int64)
    q = requantise(acc, layer.shift)
    return activate(q, layer.activation, layer.output_bits, layer.output_frac_bits, lut_bits)


def mlp_forward(layers, x, lut_bits: int = 8) -> list[np.ndarray]:
    """Outputs of every layer (the last one is the network's output)."""
    outs = []
    for layer in layers:
        x = layer_forward(layer, x, lut_bits)
        outs.append(x)
    return outs


def predict(layers, x) -> np.ndarray:
    """Class = argmax of the last layer (first index on ties)."""
    return np.argmax(mlp_forward(layers, x)[-1], axis=-1)


# ---------------------------------------------------------------------------------------------
# cycle model


def entry_columns(layer, build: str) -> list[np.ndarray]:
    """Per neuron, the input column of each ROM word, decoded from the CSR relative indices:
    an entry's column is the previous one's plus ``rel + 1``, starting from -1 in each row."""
    if build == "dense":
        return [np.arange(layer.weight_int.shape[1])] * layer.weight_int.shape[0]
    rowptr = np.asarray(layer.csr_rowptr, np.int64)
    steps = np.cumsum(np.asarray(layer.csr_rel, np.int64) + 1)
    cols = []
    for a, b in zip(rowptr[:-1], rowptr[1:], strict=True):
        before = steps[a - 1] if a > 0 else 0
        cols.append(steps[a:b] - before - 1)
    return cols


def _rom_costs(layer) -> tuple[tuple[int, int], tuple[int, int]]:
    """``(block RAMs, LUT-ROM bits)`` of a compressed layer's neuron ROMs in the CSR and the
    direct layout, from the CSR arrays: per neuron its entries × (index + code bits), or one
    code per input for a row with a nonzero code (else no ROM), costed by the shared rule
    (``rom_cost``: from ``BLOCK_ROM_BITS`` bits up in block RAMs, a smaller ROM in LUTs)."""
    rowptr = np.asarray(layer.csr_rowptr, np.int64)
    code = np.asarray(layer.csr_code, np.int64)
    rows = range(len(rowptr) - 1)
    csr = [int(rowptr[j + 1] - rowptr[j]) * (layer.index_bits + layer.code_bits) for j in rows]
    in_features = layer.weight_int.shape[1]
    direct = [
        in_features * layer.code_bits if code[rowptr[j] : rowptr[j + 1]].any() else 0 for j in rows
    ]
    return rom_cost(csr), rom_cost(direct)


def layer_layouts(layers, build: str, layout="csr") -> list[str]:
    """Per layer, ``"csr"`` or ``"direct"``: ``layout`` is one of ``"csr"``, ``"direct"``,
    ``"auto"`` (direct when its ROMs take no more block RAMs and, with as many, no more LUT-ROM
    bits than CSR's) or a list of them per layer.
    The dense build walks its ROM like a CSR row (``"csr"``)."""
    if isinstance(layout, str):
        layout = [layout] * len(layers)
    out = []
    for layer, lay in zip(layers, layout, strict=True):
        if build == "dense":
            lay = "csr"
        elif lay == "auto":
            csr, direct = _rom_costs(layer)
            lay = "direct" if direct <= csr else "csr"
        if lay not in ("csr", "direct"):
            raise ValueError(f"unknown layout {lay!r}")
        out.append(lay)
    return out


def _elements(vector, drop_zero: bool):
    """``(index, value, last)`` of a vector, zero non-last elements left out when asked."""
    n = len(vector)
    return [
        (i, int(v), i == n - 1)
        for i, v in enumerate(vector)
        if not (drop_zero and v == 0) or i == n - 1
    ]


def layer_timing(
    cols,
    elements,
    first_valid: int = 0,
    drop_filter: bool = False,
    queue_depth: int | None = None,
):
    """``(accepts, finish)`` of one vector at a layer input: the accept cycle of each element,
    for a source that offers the next element the cycle after the previous one was accepted
    (first one in ``first_valid``), and the cycle in which the slowest neuron takes the last
    element.

    ``cols=None``: the direct layout. Every element is accepted in its first valid cycle, by
    every neuron at once (``finish`` = the last accept).

    ``cols`` (CSR layout, dense build) holds, per neuron, the columns of its ROM words. The
    layer pushes each broadcast element into every neuron's input queue (``queue_depth``
    entries, default :data:`QUEUE_DEPTH`) in cycle ``a + 1`` (:data:`PUSH_LATENCY`) after its
    accept in cycle ``a``; a neuron sees it from ``a + 3`` (:data:`QUEUE_LATENCY`, the queue's
    registered head), after the element before it, and takes it after one cycle per ROM word
    of column ``< j`` still ahead (``take = max(a + 3, previous take + 1) + skipped``; a neuron
    that took the vector's previous broadcast element ``j'`` has consumed its words of column
    ``<= j'``). The layer accepts in cycle ``t`` only if every queue held at most
    ``queue_depth - 1 - R - P`` elements during cycle ``t - R``, ``R`` = :data:`ROOM_LATENCY`,
    ``P`` = :data:`PUSH_LATENCY` (a register per queue, then a registered AND, so
    ``R + P + 1`` pushes may be under way).
    With ``drop_filter``, zero-valued elements without ``last`` are taken in their first cycle
    and not broadcast. A ``last`` element ends a vector: the next one starts from column 0.
    """
    n = len(elements)
    if cols is None:
        accepts = [first_valid + k for k in range(n)]
        return accepts, accepts[-1]
    depth = QUEUE_DEPTH if queue_depth is None else queue_depth
    if depth < 1 + ROOM_LATENCY + PUSH_LATENCY:
        raise ValueError(
            f"queue_depth must be at least {1 + ROOM_LATENCY + PUSH_LATENCY}, not {depth}"
        )
    index = np.fromiter((e[0] for e in elements), dtype=np.int64, count=n)
    value = np.fromiter((e[1] for e in elements), dtype=np.int64, count=n)
    last = np.fromiter((bool(e[2]) for e in elements), dtype=bool, count=n)
    sent = ~(drop_filter & (value == 0) & ~last) if drop_filter else np.ones(n, dtype=bool)
    vector = np.concatenate(([0], np.cumsum(last[:-1])))
    j = index[sent]
    prev = np.concatenate(([-1], j[:-1]))
    prev[np.concatenate(([True], vector[sent][1:] != vector[sent][:-1]))] = -1
    # ROM words each neuron skips before taking each broadcast element: (elements, neurons)
    skipped = np.stack(
        [np.searchsorted(c, j, side="left") - np.searchsorted(c, prev, side="right") for c in cols],
        axis=1,
    )
    count = len(cols)
    takes = np.empty((len(j), count), dtype=np.int64)
    pushes = np.empty(len(j), dtype=np.int64)
    previous = np.full(count, -(1 << 40), dtype=np.int64)
    window = depth + 4  # a queue never holds more than `depth`: older takes are all past
    t, e, accepts, finish = first_valid, 0, [], None
    for k in range(n):
        if not sent[k]:
            accepts.append(t)
            t += 1
            continue
        while e:  # room(t): the levels in cycle t - ROOM_LATENCY
            before = t - ROOM_LATENCY
            pushed = int(np.searchsorted(pushes[:e], before - PUSH_LATENCY, side="left"))
            lo = max(0, e - window)
            recent = takes[lo:e]
            if lo and np.any(recent[0] >= before):
                taken = (takes[:e] < before).sum(axis=0)
            else:
                taken = lo + (recent < before).sum(axis=0)
            if int((pushed - taken).max()) <= depth - 1 - ROOM_LATENCY - PUSH_LATENCY:
                break
            t += 1
        take = np.maximum(t + QUEUE_LATENCY, previous + 1) + skipped[e]
        pushes[e], takes[e] = t, take
        previous = take
        e += 1
        accepts.append(t)
        t += 1
        if last[k]:
            finish = int(take.max())
    return accepts, finish


def layer_cycles(cols, elements, first_valid: int = 0, drop_filter: bool = False):
    """Accept cycle of each element at a layer input (see :func:`layer_timing`)."""
    return layer_timing(cols, elements, first_valid, drop_filter)[0]


def mlp_cycles(
    layers,
    x_codes,
    build: str,
    zero_skip: bool = False,
    sparse_source: bool | None = None,
    detail: bool = False,
    layout="csr",
    queue_depth: int | None = None,
):
    """Cycles for one image: from the cycle the first input element is valid to the cycle the
    last output element is transferred, both counted (full-rate source, always-ready sink, one
    image in flight, the DUT idle and past its first cycle after reset).

    ``sparse_source`` (default: ``zero_skip``): the source leaves zero pixels out of the stream
    (the ``last`` pixel is always sent). Without it and with ``zero_skip``, the first layer's
    input filter takes each zero pixel in one cycle.

    ``layout``: ROM layout of the compressed builds, ``"csr"``, ``"direct"``, ``"auto"`` or one
    per layer (:func:`layer_layouts`). A direct layer takes every broadcast element in one cycle
    and its results come :data:`DIRECT_LATENCY` cycles later.
    """
    layouts = layer_layouts(layers, build, layout)
    if sparse_source is None:
        sparse_source = zero_skip
    vector = np.asarray(x_codes, dtype=np.int64)
    elements = _elements(vector, sparse_source)
    outs = mlp_forward(layers, vector)
    first_valid = 0
    per_layer = []
    for i, layer in enumerate(layers):
        direct = layouts[i] == "direct"
        _, finish = layer_timing(
            None if direct else entry_columns(layer, build),
            elements,
            first_valid,
            drop_filter=zero_skip and i == 0,
            queue_depth=queue_depth,
        )
        per_layer.append(finish - (first_valid if i == 0 else per_layer[-1]))
        first_valid = finish + RESULT_LATENCY
        first_valid += DIRECT_LATENCY if direct else PRODUCT_LATENCY + GATHER_LATENCY
        hidden = i != len(layers) - 1
        elements = _elements(outs[i], zero_skip and hidden)
    cycles = first_valid + layers[-1].weight_int.shape[0] - 1 + 1
    if detail:
        return cycles, per_layer
    return cycles


# ---------------------------------------------------------------------------------------------
# synthetic layers in the bundle's formats (for tests while no real bundle exists)


def _csr(codes: np.ndarray, index_bits: int):
    rel, code, rowptr = [], [], [0]
    limit = (1 << index_bits) - 1
    for row in codes:
        prev = -1
        for col in np.flatnonzero(row):
            gap = col - prev - 1
            while gap > limit:
                rel.append(limit)
                code.append(0)
                gap -= limit + 1
            rel.append(gap)
            code.append(int(row[col]))
            prev = col
        rowptr.append(len(rel))
    return np.array(rel, np.uint8), np.array(code, np.uint8), np.array(rowptr, np.int32)


def synthetic_layer(
    rng,
    in_features: int,
    out_features: int,
    *,
    weight_format: str = "pow2",
    density: float = 0.5,
    activation: str = "relu",
    in_bits: int = 8,
    in_signed: bool = False,
    shift: int = 7,
    output_bits: int = 8,
    index_bits: int = 4,
    code_bits: int = 4,
    max_exp: int = 6,
    bias_scale: int = 256,
):
    """A random layer in the bundle's formats, as ``rtl_gen.neuron.LayerWeights``."""
    from rtl_gen.neuron import LayerWeights

    size = 1 << code_bits
    if weight_format == "pow2":
        mags = [1 << e for e in range(max_exp + 1)]
        book = [0, *mags, *(-m for m in mags)]
        book += [0] * (size - len(book))
    else:
        book = [0, *rng.integers(-200, 200, size - 1).tolist()]
    book = np.array(book[:size], dtype=np.int64)
    live = np.flatnonzero(book)
    codes = np.where(
        rng.random((out_features, in_features)) < density,
        rng.choice(live, (out_features, in_features)),
        0,
    )
    weight_int = book[codes]
    bias = rng.integers(-bias_scale, bias_scale, out_features)
    kw = {}
    if weight_format != "dense":
        rel, code, rowptr = _csr(codes, index_bits)
        kw = dict(codebook=book, csr_rel=rel, csr_code=code, csr_rowptr=rowptr)
    return LayerWeights(
        name="fc",
        weight_int=weight_int,
        bias_int=bias,
        shift=shift,
        activation=activation,
        in_bits=in_bits,
        in_signed=in_signed,
        output_bits=output_bits,
        output_frac_bits=4,
        weight_format=weight_format,
        index_bits=index_bits,
        code_bits=code_bits,
        **kw,
    )


def synthetic_mlp(rng, sizes=(64, 24, 12, 10), density=0.5, weight_format="pow2"):
    """A random MLP (ReLU hidden layers, plain saturating last layer)."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)):
        last = i == len(sizes) - 2
        layer = synthetic_layer(
            rng,
            a,
            b,
            weight_format=weight_format,
            density=density,
            activation="none" if last else "relu",
        )
        layer.name = f"fc{i + 1}"
        layers.append(layer)
    return layers


def random_images(rng, count: int, features: int = 64, zero_fraction: float = 0.5):
    """Unsigned 8-bit codes in 0..255 (digits-like: about half zeros)."""
    x = rng.integers(0, 256, (count, features))
    x[rng.random((count, features)) < zero_fraction] = 0
    return x


def synthetic_bundle(rng, sizes=(64, 48, 24, 10), baseline_sizes=(64, 300, 100, 10), images=360):
    """``(manifest, arrays)`` of a random bundle in the format of ``docs/bundle.md``: pow2 CSR
    layers, a dense 16-bit baseline and a reference forward pass over digits-like inputs."""
    layers = synthetic_mlp(rng, sizes, density=0.6)
    for layer in layers:
        layer.shift = 9
    manifest = {
        "format": "compress2rtl-bundle",
        "version": 1,
        "dataset": "synthetic",
        "model": "mlp",
        "created_by": "tb.golden.mlp.synthetic_bundle",
        "input": {"shape": [sizes[0]], "bits": 8, "frac_bits": 4, "signed": False},
        "layers": [],
        "reference": {},
        "baseline": {"layers": []},
    }
    arrays = {}
    for layer in layers:
        manifest["layers"].append(
            {
                "name": layer.name,
                "kind": "linear",
                "in_features": layer.in_features,
                "out_features": layer.out_features,
                "weight_format": "pow2",
                "weight_frac_bits": 9,
                "exp_bits": 3,
                "pow2_max_exp": 6,
                "codebook_bits": layer.code_bits,
                "index_bits": layer.index_bits,
                "input_frac_bits": 4,
                "output_frac_bits": 4,
                "output_bits": layer.output_bits,
                "acc_bits": layer.acc_bits(),
                "activation": layer.activation,
            }
        )
        arrays[f"{layer.name}.weight_int"] = layer.weight_int.astype(np.int32)
        arrays[f"{layer.name}.bias_int"] = layer.bias_int.astype(np.int32)
        arrays[f"{layer.name}.codebook"] = layer.codebook.astype(np.int32)
        arrays[f"{layer.name}.csr_rel"] = layer.csr_rel.astype(np.uint8)
        arrays[f"{layer.name}.csr_code"] = layer.csr_code.astype(np.uint8)
        arrays[f"{layer.name}.csr_rowptr"] = layer.csr_rowptr.astype(np.int32)
        arrays[f"{layer.name}.mask"] = layer.weight_int != 0
    for i, (a, b) in enumerate(zip(baseline_sizes, baseline_sizes[1:], strict=False)):
        name = f"fc{i + 1}"
        last = i == len(baseline_sizes) - 2
        w = rng.integers(-600, 600, (b, a))
        arrays[f"baseline.{name}.weight_int"] = w.astype(np.int32)
        arrays[f"baseline.{name}.bias_int"] = rng.integers(-4000, 4000, b).astype(np.int32)
        manifest["baseline"]["layers"].append(
            {
                "name": name,
                "kind": "linear",
                "in_features": a,
                "out_features": b,
                "weight_format": "dense",
                "weight_bits": 16,
                "weight_frac_bits": 12,
                "input_frac_bits": 4,
                "output_frac_bits": 4,
                "output_bits": 8,
                "acc_bits": 40,
                "activation": "none" if last else "relu",
            }
        )
    x = random_images(rng, images, sizes[0])
    out = mlp_forward(layers, x)[-1]
    arrays["reference.test_inputs"] = x.astype(np.uint8)
    arrays["reference.test_labels"] = rng.integers(0, sizes[-1], images)
    arrays["reference.test_outputs"] = out.astype(np.int32)
    arrays["reference.test_pred"] = np.argmax(out, axis=1)
    manifest["reference"] = {
        "test_images": images,
        "integer_accuracy": float(
            np.mean(arrays["reference.test_pred"] == arrays["reference.test_labels"])
        ),
        "float_accuracy": None,
    }
    return manifest, arrays


def write_synthetic_bundle(path, manifest, arrays):
    """Write a synthetic bundle directory (``manifest.json`` + ``arrays.npz``)."""
    import json
    from pathlib import Path

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / "manifest.json").write_text(json.dumps(manifest, indent=1))
    np.savez(path / "arrays.npz", **arrays)
    return path


def redrawn_layers(layers, rng):
    """Layers of the same shape and formats as ``layers`` with other weights and biases (a
    "retrained" network for the ``WEIGHTS=ram`` tests) whose accumulators stay within the
    original's range: the codebook's codes relabelled (nonzero codes permuted), the weights of
    every row shuffled over the columns, the rows permuted with their biases, and every other
    row negated with its bias where the negated row's accumulator range still fits."""
    from rtl_gen.neuron import LayerWeights

    out = []
    for layer in layers:
        live = np.flatnonzero(layer.codebook)
        relabel = np.arange(len(layer.codebook))
        relabel[live] = rng.permutation(live)  # old code -> new code
        book = layer.codebook.copy()
        book[relabel] = layer.codebook
        codes = np.stack([layer.row_code_vector(j) for j in range(layer.out_features)])
        rows = rng.permutation(layer.out_features)
        codes = relabel[np.stack([rng.permutation(row) for row in codes])[rows]]
        bias = layer.bias_int[rows].copy()
        bits = layer.acc_bits()
        negated = {c: int(np.flatnonzero(book == -book[c])[0]) for c in range(len(book))
                   if np.any(book == -book[c])}  # fmt: skip
        xmax = (1 << layer.in_bits) - 1  # unsigned inputs (signed ones: no row negated)
        for j in range(0, layer.out_features if not layer.in_signed else 0, 2):
            w = -book[codes[j]]
            if not all(int(c) in negated for c in codes[j]):
                continue
            row_hi = int(np.maximum(w * xmax, 0).sum()) - int(bias[j])
            row_lo = int(np.minimum(w * xmax, 0).sum()) - int(bias[j])
            top = row_hi + (1 << max(layer.shift - 1, 0))
            if -(1 << (bits - 1)) <= min(row_lo, -int(bias[j])) and top < 1 << (bits - 1):
                codes[j] = [negated[int(c)] for c in codes[j]]
                bias[j] = -bias[j]
        rel, code, rowptr = _csr(codes, layer.index_bits)
        out.append(
            LayerWeights(
                name=layer.name,
                weight_int=book[codes],
                bias_int=bias,
                shift=layer.shift,
                activation=layer.activation,
                in_bits=layer.in_bits,
                in_signed=layer.in_signed,
                output_bits=layer.output_bits,
                output_frac_bits=layer.output_frac_bits,
                weight_format=layer.weight_format,
                codebook=book,
                csr_rel=rel,
                csr_code=code,
                csr_rowptr=rowptr,
                index_bits=layer.index_bits,
                code_bits=layer.code_bits,
                max_exp=layer.max_exp,
            )
        )
    return out
