"""Formal proofs of the stream tops (SymbiYosys from pip wheels): ``python -m formal``.

One module per design family under proof (``skid``, ``conv``, ``layer`` with the MLP,
``neuron``, ``cnn`` with the CNN blocks, ``axis`` for the AXI4-Stream tops), each with its
harness builders, a ``PROOFS`` list and its ``MUTANT_PROOFS``; :mod:`formal.sby` runs them,
:mod:`formal.props` holds the stream properties they share. docs/formal.md says what is proven.
"""
