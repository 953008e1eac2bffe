"""The Python API: :func:`compress` (a trained network and its data to a bundle) and
:func:`hardware` (a bundle to its design: golden model, RTL simulation, Vivado folder, Yosys
figures). Thin calls into the project's own code: ``compress.pipeline.run``,
``tb.golden.mlp`` / ``tb.golden.cnn_network``, ``sim.mlp.run_case``,
``rtl_gen.export.designs`` and ``rtl_gen.export.folder``, ``rtl_gen.export.yosys``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from compress import integer_ref
from compress.bundle import Bundle as _Bundle
from compress.bundle import load_bundle
from compress.data import DataError, Dataset, dataset_from_arrays, load_npz
from compress.importer import load_model_file

__all__ = ["Bundle", "Hardware", "compress", "hardware", "load_data"]

ROOT = Path(__file__).resolve().parent.parent
# compress() options that name something else than a Config field
ALIASES = {"hidden": "hidden_targets", "filters": "conv_targets", "sparsity": "layer_sparsity"}
# Config fields compress() sets itself
RESERVED = ("dataset", "model", "model_file", "arch", "data_file", "data_dir", "extra")


@dataclasses.dataclass
class Bundle(_Bundle):
    """A bundle (``docs/bundle.md``) with the run's ``summary.json`` when it was just made."""

    summary: dict | None = None

    @classmethod
    def load(cls, path, summary: dict | None = None) -> Bundle:
        b = load_bundle(path)
        return cls(b.manifest, b.arrays, Path(b.path or path), summary)

    @property
    def float_accuracy(self) -> float:
        """Test accuracy of the float network the pipeline started from."""
        return float(self.manifest["reference"]["float_accuracy"])

    @property
    def integer_accuracy(self) -> float:
        """Test accuracy of the bundle's integer network (what the hardware computes)."""
        return float(self.manifest["reference"]["integer_accuracy"])

    def quantize(self, x) -> np.ndarray:
        """The hardware's input codes of real inputs ``x`` (scaled as the training data):
        ``clip(round(x * 2**frac_bits), 0, 255)``, one row per sample."""
        return integer_ref.quantize_inputs(self.manifest, np.asarray(x)).astype(np.int64)


class UnknownOption(TypeError, ValueError):
    """An option that names no :class:`compress.pipeline.Config` field (nor an alias)."""


def config_overrides(options: Mapping, reserved, where: str) -> dict:
    """``options`` as :class:`compress.pipeline.Config` fields (``ALIASES`` resolved, lists as
    tuples); an option that names no field, or a ``reserved`` one, raises
    :class:`UnknownOption` naming it, ``where`` it was given and every option there is."""
    from compress.pipeline import Config

    fields = {f.name for f in dataclasses.fields(Config)} - set(reserved)
    overrides = {}
    for key, value in options.items():
        field = ALIASES.get(key, key)
        if field not in fields:
            raise UnknownOption(
                f"{where} got an unknown option {key!r}; options: "
                f"{', '.join(sorted({*fields, *ALIASES}))}"
            )
        overrides[field] = tuple(value) if isinstance(value, list) else value
    return overrides


def load_data(data, name: str | None = None) -> Dataset:
    """A :class:`compress.data.Dataset` from ``data``: a Dataset, a ``.npz`` path, a mapping or
    a 4-tuple ``(x_train, y_train, x_test, y_test)`` of arrays, or a pair of torch datasets
    ``(train, test)`` yielding ``(x, label)``. Validated (``DataError``, one line) and snapped
    to the 8-bit input grid as ``compress.data.dataset_from_arrays`` says."""
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (str, Path)):
        d = load_npz(data)
        return dataclasses.replace(d, name=name) if name else d
    if isinstance(data, Mapping):
        return dataset_from_arrays(data, name or "data")
    if isinstance(data, (tuple, list)) and len(data) == 4:
        keys = ("x_train", "y_train", "x_test", "y_test")
        return dataset_from_arrays(dict(zip(keys, data, strict=True)), name or "data")
    if isinstance(data, (tuple, list)) and len(data) == 2:
        arrays = {}
        for split, ds in zip(("train", "test"), data, strict=True):
            try:
                items = [ds[i] for i in range(len(ds))]
                arrays[f"x_{split}"] = np.stack([np.asarray(x, dtype=np.float32) for x, _ in items])
                arrays[f"y_{split}"] = np.array([int(y) for _, y in items], dtype=np.int64)
            except (TypeError, ValueError) as exc:
                raise DataError(
                    f"data: the {split} dataset does not yield (x, label) pairs ({exc})"
                ) from exc
        return dataset_from_arrays(arrays, name or "data")
    raise DataError(
        f"data: expected a .npz path, a mapping or tuple (x_train, y_train, x_test, y_test), a "
        f"pair of torch datasets or a compress.data.Dataset, not {type(data).__name__}"
    )


def compress(
    model,
    data,
    *,
    out=None,
    name: str | None = None,
    arch: str | None = None,
    quiet: bool = True,
    plots: bool = False,
    **options,
) -> Bundle:
    """Compress a trained network: the pipeline of ``python -m compress`` (Taylor structured
    pruning, iterative pruning, weight sharing, power-of-two weights, calibration, integer
    reference, bundle), starting from ``model``'s weights.

    Parameters
    ----------
    model : torch.nn.Module or path
        ``Linear``, ``Conv2d`` (stride 1, no padding), ``ReLU``, ``MaxPool2d(2)``,
        ``Flatten`` in a chain (``compress.importer``); or a file as ``--model-file`` takes
        (a ``state_dict`` with ``arch``), or an ONNX file (a path ending in ``.onnx``:
        ``compress.importer.load_onnx``, as ``--onnx``).
    data
        What :func:`load_data` takes.
    out : path, optional
        Output directory (default ``build/compress/<name>_imported``).
    name : str, optional
        The data set's name in the bundle and the design names (default: the data's).
    options
        Any field of :class:`compress.pipeline.Config` (``epochs``: float epochs on the
        imported weights, 0 by default; ``finetune_epochs``, ``prune_rounds``, ``clusters``,
        ``seed``, ``threads``, ...), and ``hidden`` (hidden widths after Taylor structured
        pruning; default: every width kept), ``filters`` (conv1, conv2 filters kept),
        ``sparsity`` (fraction of each layer's weights pruned).
    """
    from compress.pipeline import config_for, run

    overrides = config_overrides(options, RESERVED, "compress()")
    if isinstance(model, (str, Path)):
        model = load_model_file(model, arch)
    dataset = load_data(data, name)
    cfg = config_for(
        dataset.name,
        "imported",
        out=None if out is None else str(out),
        quiet=quiet,
        plots=plots,
        **overrides,
    )
    summary = run(cfg, model=model, data=dataset)
    return Bundle.load(Path(summary["out"]) / "bundle", summary)


def hardware(bundle, *, layout: str = "auto", line_buffers=None, **options) -> Hardware:
    """The design of ``bundle`` (a :class:`Bundle` or a bundle directory): an MLP for a
    version-1 bundle, a CNN for a version-2 one. ``layout`` (MLP): ``auto``, ``csr`` or
    ``direct`` ROMs; ``line_buffers`` (CNN): N of every conv layer (default K - 1); more
    ``options``: :class:`Hardware`'s."""
    return Hardware(bundle, layout=layout, line_buffers=line_buffers, **options)


class Hardware:
    """One generated design of a bundle, with the defaults of ``make sim`` / ``make verilog``:
    the MLP in the bundle's weight format (``build``), zero-skipping on, ROM ``layout``
    ``auto``; the CNN with ``line_buffers`` per conv layer (default K - 1, streaming)."""

    def __init__(
        self,
        bundle,
        *,
        layout: str = "auto",
        line_buffers=None,
        build: str | None = None,
        zero_skip: bool = True,
    ):
        self.bundle = bundle if isinstance(bundle, Bundle) else Bundle.load(bundle)
        if self.bundle.path is None:
            raise ValueError("hardware() needs a bundle saved to a directory (Bundle.path)")
        manifest, arrays = self.bundle.manifest, self.bundle.arrays
        self.kind = "cnn" if any(s["kind"] != "linear" for s in manifest["layers"]) else "mlp"
        self.layout, self.line_buffers, self.zero_skip = layout, line_buffers, zero_skip
        if layout not in ("auto", "csr", "direct"):
            raise ValueError(f"layout must be auto, csr or direct, not {layout!r}")
        if self.kind == "mlp":
            from rtl_gen.neuron.weights import layers_from_bundle

            self.layers = layers_from_bundle((manifest, arrays))
            self.build = build or self.layers[0].weight_format
        else:
            from rtl_gen.cnn.spec import cnn_from_bundle

            self.spec = cnn_from_bundle((manifest, arrays))
            self.build = build or "pow2"
        self.last_run: dict = {}
        self._export_design = None
        self._timing = None  # the CNN build's arguments of the cycle model

    @property
    def name(self) -> str:
        """The design's name (the export folder's)."""
        return self._design().name

    @property
    def parameters(self) -> dict:
        """The generated design's parameters, as the export's manifest lists them (the MLP:
        ``rom_bits``, ``layouts``, ...; the CNN: ``line_buffers``, ``layouts``, ...)."""
        return dict(self._design().parameters)

    def __repr__(self) -> str:
        m = self.bundle.manifest
        shape = [m["input"]["shape"], *[s["name"] for s in m["layers"]]]
        return f"Hardware({self.kind}, {shape}, build={self.build}, bundle={self.bundle.path})"

    # the golden model ---------------------------------------------------------------------

    def codes(self, x, codes: bool = False) -> np.ndarray:
        """Input codes, one row per sample: ``x`` quantised (``Bundle.quantize``), or ``x``
        itself checked when ``codes``."""
        inp = self.bundle.manifest["input"]
        features = int(np.prod(inp["shape"]))
        x = np.asarray(x)
        if x.ndim == len(inp["shape"]):  # one sample
            x = x[None]
        if codes:
            c = np.asarray(x, dtype=np.int64).reshape(len(x), -1)
            top = (1 << inp["bits"]) - 1
            if c.size and (c.min() < 0 or c.max() > top):
                raise ValueError(f"input codes must be in 0..{top}")
        else:
            c = self.bundle.quantize(x)
        if c.shape[1] != features:
            raise ValueError(
                f"inputs have {c.shape[1]} values per sample, the network takes {features} "
                f"(shape {inp['shape']})"
            )
        return c

    def predict(self, x, codes: bool = False) -> np.ndarray:
        """The integer logits of ``x`` (real inputs scaled as the training data, or input codes
        with ``codes=True``) from the golden model (NumPy), bit-exact with the RTL."""
        c = self.codes(x, codes)
        if self.kind == "mlp":
            from tb.golden.mlp import mlp_forward

            return mlp_forward(self.layers, c)[-1]
        from tb.golden.cnn_network import cnn_forward

        return cnn_forward(self.spec.stages, self.spec.fc, c)[1]

    def cycles(self, x, codes: bool = False) -> list[int]:
        """Clock cycles of each sample alone, from the cycle model (``tb.golden``)."""
        c = self.codes(x, codes)
        if self.kind == "mlp":
            from tb.golden.mlp import layer_layouts, mlp_cycles

            layouts = layer_layouts(self.layers, self.build, self.layout)
            return [
                mlp_cycles(self.layers, v, self.build, self.zero_skip, layout=layouts) for v in c
            ]
        from tb.golden.cnn_network import cnn_timing

        if self._timing is None:
            from amaranth.hdl import Fragment

            dut = self._component()
            self._timing = dut.timing_arguments
            Fragment.get(dut, None)  # elaborated: the build's latencies, and no unused warning
        args = self._timing
        return [cnn_timing(self.spec.stages, self.spec.fc, c[i : i + 1], **args).cycles
                for i in range(len(c))]  # fmt: skip

    # the RTL ------------------------------------------------------------------------------

    def _component(self):
        if self.kind == "mlp":
            from rtl_gen.mlp import Mlp

            return Mlp(self.layers, build=self.build, zero_skip=self.zero_skip, layout=self.layout)
        from rtl_gen.cnn.network import Cnn

        return Cnn(self.spec, line_buffers=self.line_buffers)

    def simulate(self, x, codes: bool = False, simulator: str | None = None, build_dir=None):
        """The integer logits of ``x`` from the generated RTL under cocotb (Icarus, else
        Verilator; ``simulator`` to choose), each sample alone at full rate. The testbench
        also compares every output with the golden model and every sample's cycles with the
        cycle model: a difference raises ``RuntimeError``. ``last_run`` keeps the testbench's
        report (``cycles``, ``model_cycles``, ``mismatches``, ...)."""
        from sim.mlp import BUILD, run_case
        from sim.tools import default_simulator

        c = self.codes(x, codes)
        simulator = simulator or default_simulator()
        dut = self._component()
        m = self.bundle.manifest
        tag = (
            f"{self.build}{'_zs' if self.zero_skip else ''}_{self.layout}"
            if self.kind == "mlp"
            else "n" + "_".join(map(str, dut.line_buffers))
        )
        build_dir = Path(build_dir or BUILD / f"api_{self.kind}_{m['dataset']}_{m['model']}_{tag}")
        case = {"images": c, "labels": None, "seed": 1}
        if self.kind == "mlp":
            result, rep = run_case(dut, case, build_dir, simulator, testcase="test_images")
        else:
            from sim.cnn import cnn_case

            result, rep = run_case(
                dut, case, build_dir, simulator, test_module="tb.cnn_tb", toplevel="cnn",
                testcase="test_images", describe=cnn_case,
            )  # fmt: skip
        self.last_run = {"simulator": simulator, **rep.get("test_images", {})}
        if not result.passed or "outputs" not in self.last_run:
            run = self.last_run
            raise RuntimeError(
                f"the RTL ({simulator}) failed: {run.get('mismatches', '?')} outputs differ "
                f"from the golden model, {run.get('cycle_errors', '?')} cycle counts from the "
                f"model; log: {result.log}"
            )
        return np.asarray(self.last_run["outputs"], dtype=np.int64)

    # Vivado folder and Yosys --------------------------------------------------------------

    def _design(self):
        """The export's design (built once: it carries the cycle model's figures)."""
        from rtl_gen.export import designs

        if self._export_design is None:
            if self.kind == "mlp":
                self._export_design = designs.mlp_design(
                    self.bundle.path, self.build, self.zero_skip, layout=self.layout
                )
            else:
                self._export_design = designs.cnn_design(self.bundle.path, self.line_buffers)
        return self._export_design

    def export(self, folder=None, *, top: str | None = None, part=None, clock_ns: float = 10.0):
        """The self-contained Vivado folder of ``python -m rtl_gen.export verilog`` (Verilog,
        AXI4-Stream top, ROM files, Tcl, XDC, manifest) written to ``folder`` (default
        ``build/verilog/<name>``); ``top`` renames every module. Returns the folder."""
        from rtl_gen.export.__main__ import renamed
        from rtl_gen.export.folder import export_design
        from rtl_gen.export.vivado import DEFAULT_PART

        design = renamed(self._design(), top)
        folder = Path(folder) if folder is not None else ROOT / "build" / "verilog" / design.name
        return export_design(design, folder, part or DEFAULT_PART, clock_ns)

    def synth(self, folder=None, **export_options) -> dict:
        """Export (:meth:`export`), then Yosys ``synth_xilinx`` (xc7, flattened) as
        ``python -m rtl_gen.export synth``: returns the resource figures (``LUT``, ``FF``,
        ``CARRY4``, ``DSP48E1``, ``RAMB18``/``RAMB36``, ``LUTRAM``, ...,
        ``multipliers_described``), also written to ``reports/yosys_utilization.json``."""
        import json

        from rtl_gen.export.yosys import synth_report

        folder = self.export(folder, **export_options)
        manifest = json.loads((folder / "manifest.json").read_text())
        return synth_report(folder, manifest["sources"], manifest["top"])
