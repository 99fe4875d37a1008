"""The lab: a real miniature control plane on this machine (Linux nodes in namespaces on a
bridge, OpenSSH and sudo on each, etcd over TLS, real PKI).

`kcockpit lab` runs the cockpit against it, and the tests use it as their test bed.
"""
