"""The API's protobuf and the stubs grpcio-tools generates from it (tests/api/test_stubs.py keeps them current)."""
