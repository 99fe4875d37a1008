"""Regenerates etcd_rpc_pb2.py from etcd_rpc.proto (needs the `grpcio-tools` test extra).

The generated module is committed so that installing kcockpit needs no code generation.
"""

from pathlib import Path

from grpc_tools import protoc

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    raise SystemExit(
        protoc.main(
            ["protoc", f"-I{HERE}", f"--python_out={HERE}", f"--pyi_out={HERE}", "etcd_rpc.proto"]
        )
    )
