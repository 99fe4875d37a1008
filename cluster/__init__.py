"""The domain: snapshot model, sources (etcd, nodes), findings and the lab.

Nothing in this package imports Textual: everything here is usable from the CLI, from
tests and from the UI alike (tests/test_layering.py proves it).
"""
