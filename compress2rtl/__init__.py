"""compress2rtl: a trained PyTorch network and its data in, compressed bit-exact hardware out.

::

    import compress2rtl

    bundle = compress2rtl.compress(model, "data.npz")        # the pipeline, from your weights
    hw = compress2rtl.hardware(bundle, layout="auto")        # the generated design
    hw.predict(x)        # the bit-exact golden model (NumPy): integer logits
    hw.simulate(x)       # the generated RTL under Icarus or Verilator: the same logits
    hw.export("folder")  # the Vivado folder (Verilog, ROM files, Tcl, manifest)
    hw.synth()           # Yosys synth_xilinx figures (LUT, FF, DSP, ...)

A thin layer over ``compress`` (:func:`compress.pipeline.run`), ``tb.golden``, ``sim`` and
``rtl_gen.export``; docs/api.md.
"""

from .api import Bundle, Hardware, compress, hardware, load_data

__all__ = ["Bundle", "Hardware", "compress", "hardware", "load_data"]
