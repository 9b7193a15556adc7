"""Compressed bodies: requests in any encoding ClickHouse accepts, responses in those clients ask for."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import lz4.frame
import zstandard

from embedded_clickhouse.errors import CANNOT_DECOMPRESS, UNKNOWN_COMPRESSION_METHOD, ClickHouseError


class Compressor:
    """Incremental response compression for the encodings clickhouse-connect accepts."""

    SUPPORTED = ("lz4", "zstd", "gzip", "deflate")

    def __init__(self, encoding: str | None) -> None:
        self._header = b""  # lz4 frames begin with a header of their own
        engine: Any
        if encoding == "lz4":
            engine = lz4.frame.LZ4FrameCompressor()
            self._header = engine.begin()
        elif encoding == "zstd":
            engine = zstandard.ZstdCompressor().compressobj()
        elif encoding in ("gzip", "deflate"):
            engine = zlib.compressobj(wbits=31 if encoding == "gzip" else 15)
        else:
            engine = None
        self._engine = engine

    def compress(self, data: bytes) -> bytes:
        if self._engine is None:
            return data
        return self._take_header() + self._engine.compress(data)

    def flush(self) -> bytes:
        if self._engine is None:
            return b""
        return self._take_header() + self._engine.flush()

    def _take_header(self) -> bytes:
        header, self._header = self._header, b""
        return header


def decompress(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if not body or encoding in ("", "identity", "none"):
        return body
    try:
        if encoding == "lz4":
            return bytes(lz4.frame.decompress(body))
        if encoding == "zstd":
            return zstandard.ZstdDecompressor().decompressobj().decompress(body)
        if encoding == "gzip":
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
        if encoding == "br":
            import brotli

            return bytes(brotli.decompress(body))
    except ImportError:
        pass
    except Exception as exc:
        raise ClickHouseError.ours(CANNOT_DECOMPRESS, f"Cannot decompress request body ({encoding}): {exc}") from exc
    raise ClickHouseError.ours(UNKNOWN_COMPRESSION_METHOD, f"Unknown HTTP compression method: {encoding!r}")
