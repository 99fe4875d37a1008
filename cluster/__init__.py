"""The domain: snapshot model, sources (etcd, nodes), findings, and the seams others plug into.

Nothing in this package imports Textual: everything here is usable from the CLI, from
tests and from the UI alike. Nor does it import the lab, which plugs in through
`cluster/seams.py` (tests/test_layering.py proves both).
"""
