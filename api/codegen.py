"""Generates the Python stubs of api/proto with grpcio-tools (a development dependency): the stubs are
committed, so a client needs only grpcio and protobuf; tests/api/test_stubs.py checks they are current.

    python -m api.codegen        # after editing a .proto
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTOS = ("api/proto/labelpulse/v1/metrics.proto",)


def generate(out_dir: Path) -> None:
    """Write the stubs of PROTOS under `out_dir`, at the same paths as the protos (imported as api.proto.…)."""
    from grpc_tools import protoc

    well_known = resources.files("grpc_tools") / "_proto"
    for proto in PROTOS:
        arguments = [
            "protoc",
            f"-I{REPO_ROOT}",
            f"-I{well_known}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            str(REPO_ROOT / proto),
        ]
        if protoc.main(arguments) != 0:
            raise RuntimeError(f"protoc failed on {proto}")


if __name__ == "__main__":
    generate(REPO_ROOT)
    sys.exit(0)
