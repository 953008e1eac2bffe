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
    )


def _bundle_manifest(bundle) -> dict:
    import json
    from pathlib import Path

    path = Path(bundle) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"no bundle at {bundle}: run `make compress` first")
    return json.loads(path.read_text())


def mlp_design(
    bundle,
    build: str = "pow2",
    zero_skip: bool = False,
    baseline: bool = False,
    layout: str = "csr",
):
    """The MLP of a compress bundle (or its dense baseline) as one top module ``mlp``.

    ``layout``: ROM layout of the compressed builds (``"csr"``, ``"direct"`` or ``"auto"``, see
    :class:`rtl_gen.layer.Layer`); the dense baseline always walks one word per input."""
    from rtl_gen.mlp import Mlp
    from rtl_gen.neuron.weights import layers_from_bundle

    manifest = _bundle_manifest(bundle)
    layers = layers_from_bundle(bundle, baseline=baseline)
    if baseline:
        build = "dense"
    mlp = Mlp(layers, build=build, zero_skip=zero_skip, layout="csr" if baseline else layout)
    sizes = [layers[0].in_features] + [layer.out_features for layer in layers]
    variant = "baseline" if baseline else build + ("_zs" if zero_skip else "")
    if not baseline and layout != "csr":
        variant += f"_{layout}"
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
        },
        latency={"note": "per image; see cycle_model"},
        cycle_model={
            "function": "tb.golden.mlp.mlp_cycles",
            "arguments": {"build": build, "zero_skip": zero_skip, "layout": mlp.layouts},
        },
        bundle=bundle,
    )


def neuron_design(bundle, build: str = "pow2", layout: str = "csr"):
    """Neuron 0 of the bundle's first layer, alone, as top module ``neuron``."""
    from rtl_gen.layer import Layer
    from rtl_gen.neuron.neuron import OUTPUT_LATENCY
    from rtl_gen.neuron.weights import layers_from_bundle

    manifest = _bundle_manifest(bundle)
    layer = Layer(layers_from_bundle(bundle)[0], build=build, layout=layout)
    layer._MustUse__silence = True  # only its first neuron is exported
    neuron = layer.neuron(0)
    return Design(
        name=f"neuron_{manifest['dataset']}_{manifest['model']}_{build}",
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
        },
        latency={
            "result_after_last_input_cycles": OUTPUT_LATENCY
            + (1 if layer.layout == "direct" else 0)
        },
        cycle_model={"function": "tb.golden.mlp.layer_cycles"},
        bundle=bundle,
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
        },
        bundle=bundle,
    )
