"""The committed gRPC stubs are what grpcio-tools makes of the committed protobuf."""

from pathlib import Path

from api import codegen


def test_the_committed_stubs_are_generated_from_the_committed_proto(tmp_path: Path) -> None:
    codegen.generate(tmp_path)
    for proto in codegen.PROTOS:
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
            generated = Path(proto.removesuffix(".proto") + suffix)
            committed = codegen.REPO_ROOT / generated
            assert committed.read_text() == (tmp_path / generated).read_text(), (
                f"{generated} is out of date: run `python -m api.codegen` and commit the result"
            )
