"""Exports from the embedded ClickHouse, differential against chDB itself: for every output format the
engine lists, the bytes served over HTTP (with and without compression) are the one document chDB
in-process produces for the whole result — for no rows, one row, just under and just over a block,
and a million rows in representative formats.

Formats with parts that differ from run to run (elapsed time in `statistics`, `progress` lines) are
compared parsed, without those parts; formats that cannot take the result refuse it with the same code.
"""

from __future__ import annotations

import functools
import gzip
import http.client
import json
import re
import urllib.parse
import zlib
from collections.abc import Callable
from typing import Any

import chdb
import lz4.frame
import pyarrow as pa
import pytest
import zstandard
from clickhouse_connect.driver.client import Client

from schema.client import ClickHouseSettings

pytestmark = pytest.mark.clickhouse

ROWS = (
    "SELECT number AS id, toString(number) AS name, toDateTime64(number, 3, 'UTC') AS at, "
    "if(number % 7 = 0, NULL, number / 3) AS score FROM numbers({rows})"
)
# Formats that take only one shape of result: given one they can write.
SHAPED = {
    "Npy": "SELECT number AS id FROM numbers({rows})",
    "Prometheus": "SELECT 'labelpulse_rows' AS name, number AS value FROM numbers({rows})",
}
# Whole-result documents carrying the time the query took.
WITH_STATISTICS = {"JSON", "JSONCompact", "JSONStrings", "JSONCompactStrings", "JSONColumnsWithMetadata"}
ENCODINGS: dict[str, Callable[[bytes], bytes]] = {
    "lz4": lambda body: bytes(lz4.frame.decompress(body)),
    "zstd": lambda body: zstandard.ZstdDecompressor().decompressobj().decompress(body),
    "gzip": gzip.decompress,
    "deflate": zlib.decompress,
}


class InProcess:
    """chDB in this process: the reference for what each format's whole document is."""

    def __init__(self) -> None:
        self.connection = chdb.connect(":memory:")

    def query(self, sql: str, fmt: str) -> bytes:
        try:
            return bytes(self.connection.query(sql, fmt).bytes())
        except Exception:
            # chDB keeps what a failed query wrote and puts it before the next result of this
            # connection: start afresh.
            self.connection.close()
            self.connection = chdb.connect(":memory:")
            raise


in_process = functools.cache(InProcess)


def scalar(sql: str) -> str:
    return in_process().query(sql, "TSVRaw").decode().strip()


OUTPUT_FORMATS = scalar("SELECT name FROM system.formats WHERE is_output ORDER BY name").split()
BLOCK_ROWS = int(scalar("SELECT getSetting('max_block_size')"))
CONTENT_TYPES = dict(
    line.split("\t", 1) for line in scalar("SELECT name, content_type FROM system.formats WHERE is_output").splitlines()
)


class Refused:
    """An error instead of a document, compared by its ClickHouse error code."""

    def __init__(self, code: int) -> None:
        self.code = code

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Refused) and other.code == self.code

    def __repr__(self) -> str:
        return f"Refused(code {self.code})"


def expected(sql: str, fmt: str) -> bytes | Refused:
    try:
        return in_process().query(sql, fmt)
    except Exception as exc:
        code = re.search(r"Code: (\d+)\.", str(exc))
        assert code, f"chDB failed without a ClickHouse error code: {exc}"
        return Refused(int(code.group(1)))


def served(settings: ClickHouseSettings, sql: str, fmt: str, encoding: str | None) -> bytes | Refused:
    params = {"query": f"{sql} FORMAT {fmt}"}
    headers = {}
    if encoding:
        params["enable_http_compression"] = "1"
        headers["Accept-Encoding"] = encoding
    connection = http.client.HTTPConnection(settings.host, settings.port, timeout=300)
    try:
        connection.request("POST", "/?" + urllib.parse.urlencode(params), headers=headers)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 200:
        return Refused(int(response.getheader("X-ClickHouse-Exception-Code") or 0))
    assert response.getheader("Content-Type") == CONTENT_TYPES[fmt]
    if encoding:
        assert response.getheader("Content-Encoding") == encoding
        body = ENCODINGS[encoding](body)
    assert b"__exception__" not in body[-4096:], f"the server failed mid-stream: {body[-500:]!r}"
    return body


def comparable(fmt: str, document: bytes | Refused) -> Any:
    """The document without the parts that differ between two runs of the same query."""
    if isinstance(document, Refused):
        return document
    if fmt == "Avro":  # a random sync marker ends the header and every block: the file's last 16 bytes
        return document.replace(document[-16:], b"\0" * 16)
    if fmt == "XML":
        return re.sub(rb"\s*<statistics>.*?</statistics>", b"", document, flags=re.DOTALL)
    if fmt.endswith("WithProgress"):
        lines = [json.loads(line) for line in document.splitlines() if line.strip()]
        return [line for line in lines if "progress" not in line]
    if fmt in WITH_STATISTICS:
        parsed = json.loads(document)
        parsed.pop("statistics", None)
        return parsed
    return document


def assert_same(settings: ClickHouseSettings, fmt: str, rows: int, encoding: str | None) -> None:
    sql = SHAPED.get(fmt, ROWS).format(rows=rows)
    want, got = expected(sql, fmt), served(settings, sql, fmt, encoding)
    where = f"{fmt}, {rows:,} rows, {encoding or 'uncompressed'}"
    if isinstance(want, bytes) and isinstance(got, bytes) and comparable(fmt, want) is want:
        assert len(got) == len(want), f"{where}: {len(got):,} bytes served, chDB makes {len(want):,}"
    assert comparable(fmt, got) == comparable(fmt, want), where


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
def test_every_output_format_serves_the_engines_whole_document(clickhouse: ClickHouseSettings, fmt: str) -> None:
    encodings = iter(ENCODINGS)  # each size once uncompressed and once in one of the encodings, in turn
    for rows in (0, 1, BLOCK_ROWS - 1, BLOCK_ROWS + 1):
        for encoding in (None, next(encodings)):
            assert_same(clickhouse, fmt, rows, encoding)


# A million rows in every format and encoding takes minutes: the row formats that stream and the
# documents analysts export (with a header, a footer or a file layout) stand for the rest.
@pytest.mark.parametrize("fmt", ["TSV", "JSONEachRow", "Native", "CSVWithNames", "JSON", "Parquet", "ArrowStream"])
def test_a_million_rows_export_whole(clickhouse: ClickHouseSettings, fmt: str) -> None:
    assert_same(clickhouse, fmt, 1_000_000, None)
    assert_same(clickhouse, fmt, 1_000_000, "lz4")


def test_clickhouse_connect_reads_results_of_many_blocks(ch_client: Client) -> None:
    sql = ROWS.format(rows=200_000)
    table = ch_client.query_arrow(sql)
    assert table.num_rows == 200_000
    assert table.column("id").to_pylist() == list(range(200_000))
    stream = ch_client.query_arrow_stream(sql)
    with stream:
        batches = [batch for batch in stream]
    assert sum(len(batch) for batch in batches) == 200_000
    frame = ch_client.query_df(sql)
    assert len(frame) == 200_000 and frame["id"].tolist() == list(range(200_000))
    raw = b"".join(ch_client.raw_stream(sql, fmt="CSVWithNames"))
    assert raw == expected(sql, "CSVWithNames")
    assert pa.ipc.open_file(ch_client.raw_query(sql, fmt="Arrow")).read_all().num_rows == 200_000


def test_row_formats_stream_before_the_query_ends(clickhouse: ClickHouseSettings) -> None:
    connection = http.client.HTTPConnection(clickhouse.host, clickhouse.port, timeout=30)
    query = "SELECT number FROM numbers(20000000) FORMAT JSONEachRow"
    connection.request("GET", "/?" + urllib.parse.urlencode({"query": query}))
    response = connection.getresponse()
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert response.read1(65536).startswith(b'{"number":0}\n{"number":1}\n')
    connection.close()
