"""etcd access: a thin async gRPC client (see client.py) and the snapshot source built on it."""
