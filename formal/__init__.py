"""Formal proofs of the stream tops (SymbiYosys from pip wheels): ``python -m formal``.

One module per design under proof (``skid``, ``conv``, ``layer``, ``mlp``), each with its
harness builders and a ``PROOFS`` list; :mod:`formal.sby` runs them, :mod:`formal.props` holds
the stream properties they share. docs/formal.md says what is proven.
"""
