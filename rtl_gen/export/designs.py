"""The designs ``make verilog`` / ``make synth`` know, built from command-line parameters."""

from __future__ import annotations

from .folder import Design


def conv_design(
    line_buffers: int = 4,
    kernel: int = 3,
    width: int = 28,
    height: int = 28,
    pixels_per_clock: int = 1,
    pipeline: int | None = None,
) -> Design:
    """The line-buffer convolution engine with its default coefficients.

    ``pipeline``: extra datapath stages; ``None`` keeps :class:`ConvParams`' default."""
    from rtl_gen.conv.engine import ConvEngine
    from rtl_gen.conv.params import default_pipeline
    from tb.golden.conv import conv_cycles, first_output_cycle

    extra = {} if pipeline is None else {"pipeline": pipeline}
    engine = ConvEngine(
        width=width,
        height=height,
        kernel=kernel,
        line_buffers=line_buffers,
        pixels_per_clock=pixels_per_clock,
        **extra,
    )
    shape = (width, height, kernel, line_buffers)
    ppc = pixels_per_clock
    timing = {"pixels_per_clock": ppc, "pipeline": engine.params.pipeline}
    formula = {
        "streaming": "H·W/P + latency",
        "serial": "(2H - K + 1)·W/P + latency",
        "overlapped": "(H + 1)·W/P + latency",
    }[engine.params.mode]
    prm = engine.params
    rounding = "+ 2**(shift-1) " if prm.rounding == "half_up" and prm.shift > 0 else ""
    low = "0" if prm.relu else f"-2**{prm.out_width - 1}"
    contract = {
        "s_axis": {
            "frac_bits": 0,
            "meaning": f"pixel, an unsigned {prm.pixel_width}-bit integer, raster order, "
            f"{width}x{height} per frame",
        },
        "m_axis": {
            "frac_bits": 0,
            "meaning": f"clamp((sum of the {kernel}x{kernel} window * coefficients + bias "
            f"{rounding}) >> shift, {low}, 2**{prm.out_width - 1} - 1), shift {prm.shift}, "
            "rounding " + prm.rounding + "; valid windows only, raster order",
        },
        "input_quantisation": {
            "code": f"the pixel itself: an unsigned {prm.pixel_width}-bit integer",
            "frac_bits": 0,
        },
    }
    name = f"conv_n{line_buffers}_k{kernel}_{width}x{height}"
    if ppc > 1:
        name += f"_p{ppc}"
    if engine.params.pipeline != default_pipeline(kernel, ppc):
        name += f"_s{engine.params.pipeline}"
    return Design(
        name=name,
        top="conv_engine",
        component=engine,
        parameters=engine.params.to_dict(),
        latency={
            "read_to_output_cycles": engine.latency,
            "first_output_cycle": first_output_cycle(*shape, **timing),
        },
        cycle_model={
            "function": "tb.golden.conv.conv_cycles",
            "mode": engine.params.mode,
            "cycles_per_frame": conv_cycles(*shape, **timing),
            "cycles_two_frames": conv_cycles(*shape, frames=2, **timing),
            "formula": formula,
        },
        contract=contract,
    )


def _bundle_manifest(bundle) -> dict:
    import json
    from pathlib import Path

    path = Path(bundle) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"no bundle at {bundle}: run `make compress` first")
    return json.loads(path.read_text())


def _input_quantisation(manifest: dict) -> dict:
    """How a real input value becomes the code the hardware reads (docs/bundle.md)."""
    inp = manifest["input"]
    bits, frac = int(inp["bits"]), int(inp["frac_bits"])
    return {
        "bits": bits,
        "frac_bits": frac,
        "signed": bool(inp.get("signed", False)),
        "shape": inp["shape"],
        "code": f"clip(round(x * 2**{frac}), 0, {2**bits - 1})",
        "real_value": f"code * 2**-{frac}",
        "dataset": manifest.get("dataset"),
        "note": "x is the real pixel the network was trained on: the data set's stored integer "
        f"pixel / 2**{frac} (digits: 0..16 with 4 fractional bits, IDX files such as "
        "Fashion-MNIST: 0..255 with 8), so the stored pixel is the code",
    }


def _value_format(frac_bits: int, meaning: str) -> dict:
    return {
        "frac_bits": int(frac_bits),
        "real_value": f"code * 2**-{int(frac_bits)}",
        "meaning": meaning,
    }


def _output_meaning(layer: dict) -> str:
    kind = "logit" if layer.get("activation") == "none" else f"{layer.get('activation')} output"
    return f"{layer['name']} {kind}: {layer['output_bits']}-bit " + (
        "signed, saturated" if layer.get("activation") == "none" else "unsigned, saturated"
    )


def _bundle_contract(manifest: dict, first: dict, last: dict, what_in: str, what_out: str) -> dict:
    return {
        "s_axis": _value_format(first["input_frac_bits"], what_in),
        "m_axis": _value_format(last["output_frac_bits"], what_out + "; " + _output_meaning(last)),
        "input_quantisation": _input_quantisation(manifest),
    }


def _mlp_cycle_figures(bundle, layers, mlp, build, zero_skip, images: int = 100) -> dict:
    """Cycles per image of the cycle model over the bundle's first reference test images."""
    import numpy as np

    from tb.golden.mlp import mlp_cycles

    path = __import__("pathlib").Path(bundle) / "arrays.npz"
    with np.load(path) as arrays:
        if "reference.test_inputs" not in arrays.files:
            return {}
        inputs = arrays["reference.test_inputs"][:images]
    cycles = [mlp_cycles(layers, x, build, zero_skip=zero_skip, layout=mlp.layouts) for x in inputs]
    return {
        "images": len(cycles),
        "of": "the bundle's reference.test_inputs, from the first",
        "cycles_per_image_min": int(min(cycles)),
        "cycles_per_image_mean": round(float(np.mean(cycles)), 2),
        "cycles_per_image_max": int(max(cycles)),
        "counted": "from the first input beat to the last output beat, both included "
        "(full-rate source, always-ready sink, one image in flight)",
    }


def _cnn_cycle_figures(bundle, cnn, images: int = 4) -> dict:
    """Cycles of the CNN's cycle model on the bundle's first reference test images: each alone
    (first pixel to last score) and all of them back to back (cycles per image)."""
    from pathlib import Path

    import numpy as np

    from tb.golden.cnn_network import cnn_timing

    with np.load(Path(bundle) / "arrays.npz") as arrays:
        if "reference.test_inputs" not in arrays.files:
            return {}
        inputs = np.asarray(arrays["reference.test_inputs"][:images], dtype=np.int64)

    def timing(x):
        return cnn_timing(cnn.spec.stages, cnn.spec.fc, x, **cnn.timing_arguments)

    alone = []
    try:
        for x in inputs:
            one = timing(x[None])
            alone.append(int(one.image_end[0] - int(one.pixel_accepts[0]) + 1))
    except NotImplementedError as error:  # a build the cycle model does not follow
        return {"figures": f"not given: {error}"}
    figures = {
        "images": len(alone),
        "of": "the bundle's reference.test_inputs, from the first",
        "latency_cycles_min": min(alone),
        "latency_cycles_max": max(alone),
        "counted": "alone: first pixel offered to last score transferred, both included "
        "(full-rate source, always-ready sink)",
    }
    if len(inputs) > 1:
        ends = timing(inputs).image_end
        figures["back_to_back_cycles_per_image"] = round((ends[-1] - ends[0]) / (len(ends) - 1), 2)
    return figures


def mlp_design(
    bundle,
    build: str = "pow2",
    zero_skip: bool = False,
    baseline: bool = False,
    layout: str = "csr",
    weights: str = "rom",
):
    """The MLP of a compress bundle (or its dense baseline) as one top module ``mlp``.

    ``layout``: ROM layout of the compressed builds (``"csr"``, ``"direct"`` or ``"auto"``, see
    :class:`rtl_gen.layer.Layer`); the dense baseline always walks one word per input.
    ``weights="ram"``: weight RAMs and bias registers loaded at run time through the AXI4-Lite
    slave of the AXI4-Stream top (:mod:`rtl_gen.neuron.ram`), every layer direct (``layout``
    is not used), initialised with the bundle's weights; the manifest's ``weights`` key gives
    the address map."""
    from rtl_gen.mlp import Mlp
    from rtl_gen.neuron.weights import layers_from_bundle

    manifest = _bundle_manifest(bundle)
    layers = layers_from_bundle(bundle, baseline=baseline)
    if baseline:
        build = "dense"
    if weights == "ram" and baseline:
        raise ValueError("WEIGHTS=ram is for the compressed network, not the dense baseline")
    mlp = Mlp(
        layers,
        build=build,
        zero_skip=zero_skip,
        layout="csr" if baseline else layout,
        weights=weights,
    )
    sizes = [layers[0].in_features] + [layer.out_features for layer in layers]
    variant = ("baseline" if baseline else build) + ("_zs" if zero_skip else "")
    if weights == "ram":
        variant += "_ram"
    elif not baseline and layout != "csr":
        variant += f"_{layout}"
    spec = manifest["baseline"]["layers"] if baseline else manifest["layers"]
    contract = _bundle_contract(
        manifest,
        spec[0],
        spec[-1],
        "input element: a pixel code (index in tuser, tlast on the last element; with "
        "zero-skipping zero elements may be left out, never the last)",
        "one beat per class in index order (index in tuser, tlast on the last); the predicted "
        "class is the argmax (first index on ties)",
    )
    return Design(
        name=f"mlp_{manifest['dataset']}_{manifest['model']}_{variant}",
        top="mlp",
        component=mlp,
        parameters={
            "layers": sizes,
            "build": build,
            "zero_skip": zero_skip,
            "baseline": baseline,
            "layouts": mlp.layouts,
            "rom_bits": mlp.rom_bits,
            "weights": weights,
        },
        latency={"note": "per image; see cycle_model"},
        cycle_model={
            "function": "tb.golden.mlp.mlp_cycles",
            "arguments": {"build": build, "zero_skip": zero_skip, "layout": mlp.layouts},
            **_mlp_cycle_figures(bundle, layers, mlp, build, zero_skip),
        },
        bundle=bundle,
        contract=contract,
        weights=None if mlp.ram_map is None else _weights_entry(mlp.ram_map, layers),
    )


def _weights_entry(amap, layers, writes: int | None = None) -> dict:
    """The manifest's ``weights`` key of a ``WEIGHTS=ram`` MLP (or neuron, ``writes`` given):
    the address map, the rule, what a bundle must share to load, the writes of a bundle."""
    from rtl_gen.neuron.ram import ram_writes

    return {
        **amap.manifest(),
        "writes": len(ram_writes(layers, amap)) if writes is None else writes,
        "initial": "the build's bundle (bundle.sha256): the design works without a load",
        "reset": "aresetn does not restore the initial weights: RAMs and bias memories keep "
        "what was loaded (a new bitstream does)",
        "compatible": "a bundle loads when it has the same layer shapes, input and output "
        "formats, activations and shifts, pow2 weights up to 2**max_exp (codebook: within the "
        "word's bits) and an accumulator range within bias_bits; else the driver's "
        "load_weights refuses it with one line naming the layer and field",
        "writes_from": "rtl_gen.neuron.ram.ram_writes(layers_from_bundle(bundle), map), the "
        "driver's load_weights(bundle)",
    }


def neuron_design(bundle, build: str = "pow2", layout: str = "csr", weights: str = "rom"):
    """Neuron 0 of the bundle's first layer, alone, as top module ``neuron``. ``weights="ram"``:
    its RAM and bias memory written through the AXI4-Lite slave (address ``4 * entry``,
    ``entry == in_features`` the bias; the manifest's ``weights`` key)."""
    import dataclasses

    from amaranth.utils import ceil_log2

    from rtl_gen.layer import Layer
    from rtl_gen.neuron.neuron import OUTPUT_LATENCY
    from rtl_gen.neuron.ram import RamMap, neuron_writes
    from rtl_gen.neuron.weights import layers_from_bundle

    manifest = _bundle_manifest(bundle)
    first = layers_from_bundle(bundle)[0]
    layer = Layer(first, build=build, layout=layout, weight_memory=weights)
    layer._MustUse__silence = True  # only its first neuron is exported
    neuron = layer.neuron(0)
    entry = None
    if weights == "ram":
        fmt = dataclasses.replace(layer.ram, out_features=1)
        neuron.ram_map = RamMap((fmt,), ceil_log2(first.in_features + 1), 0, 0)
        entry = _weights_entry(neuron.ram_map, [first], writes=len(neuron_writes(first, layer.ram)))
        entry["note"] = (
            "neuron 0 of the layer alone: layer and neuron are 0, the map's other fields as "
            "for the MLP"
        )
    spec = manifest["layers"][0]
    contract = _bundle_contract(
        manifest,
        spec,
        spec,
        "input element: a pixel code (index in tuser, tlast on the vector's last element)",
        f"neuron 0 of {spec['name']}, one beat per input vector",
    )
    return Design(
        name=f"neuron_{manifest['dataset']}_{manifest['model']}_{build}_{layer.layout}"
        + ("_ram" if weights == "ram" else ""),
        top="neuron",
        component=neuron,
        parameters={
            "layer": layer.weights.name,
            "index": 0,
            "in_features": neuron.in_features,
            "build": build,
            "layout": layer.layout,
            "activation": neuron.activation,
            "rom_words": len(neuron.rom_words),
            "rom_bits": neuron.rom_bits,
            "weights": weights,
        },
        latency={
            "result_after_last_input_cycles": OUTPUT_LATENCY
            + (1 if layer.layout == "direct" else 0)
        },
        cycle_model={"function": "tb.golden.mlp.layer_cycles"},
        bundle=bundle,
        contract=contract,
        weights=entry,
    )


def cnn_design(bundle, line_buffers: int | None = None, baseline: bool = False):
    """The CNN of a version-2 bundle (``rtl_gen.cnn.Cnn``) as one top module ``cnn``.

    ``line_buffers``: ``N`` of every conv layer (default ``K - 1``, streaming). ``baseline``:
    the bundle's dense 16-bit baseline instead (the uncompressed network: conv multipliers,
    dense fc layers, no zero-skipping)."""
    from rtl_gen.cnn.network import Cnn
    from rtl_gen.cnn.spec import cnn_from_bundle

    manifest = _bundle_manifest(bundle)
    spec = cnn_from_bundle(bundle, baseline=baseline)
    cnn = Cnn(spec, line_buffers=line_buffers, zero_skip=not baseline)
    tag = "_".join(str(n) for n in cnn.line_buffers)
    linear = [layer for layer in manifest["layers"] if layer["kind"] == "linear"]
    contract = _bundle_contract(
        manifest,
        {"input_frac_bits": manifest["input"]["frac_bits"]},
        (manifest["baseline"]["layers"] if baseline else linear)[-1],
        "a pixel: one byte-aligned field per channel (pixel codes), raster order, one image "
        "after the other",
        "one beat per class in index order (index in tuser, tlast on the last); the predicted "
        "class is the argmax (first index on ties)",
    )
    variant = "_baseline" if baseline else ""
    return Design(
        name=f"cnn_{manifest['dataset']}_{manifest['model']}{variant}_n{tag}",
        top="cnn",
        component=cnn,
        parameters={
            "input_shape": list(spec.input_shape),
            "stages": [f"{s.name} {list(s.out_shape)}" for s in spec.stages],
            "fc": [layer.out_features for layer in spec.fc],
            "baseline": baseline,
            "line_buffers": cnn.line_buffers,
            "fifo_depths": cnn.fifo_depths,
            "register_slices": cnn.slices,
            "layouts": cnn.layouts,
        },
        latency={"note": "per image; see cycle_model"},
        cycle_model={
            "function": "tb.golden.cnn_network.cnn_timing",
            "arguments": cnn.timing_arguments,
            **_cnn_cycle_figures(bundle, cnn),
        },
        bundle=bundle,
        contract=contract,
    )
