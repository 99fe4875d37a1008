"""The lab: a real miniature control plane on loopback (etcd over TLS, SSH per node, real PKI).

`kcockpit lab` runs the cockpit against it, and the tests use it as their test bed.
"""
