"""The embedded ClickHouse, driven only as clients drive a real server: clickhouse-connect and raw HTTP."""

from __future__ import annotations

import datetime as dt
import gzip
import http.client
import json
import os
import threading
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import lz4.frame
import pandas as pd
import pytest
import zstandard
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, StreamFailureError
from prometheus_client.parser import text_string_to_metric_families

from labelpulse.net import free_port, port_in_use
from labelpulse.runtime import EmbeddedClickHouseProcess
from schema.client import ClickHouseSettings, ClickHouseUnavailable, connect
from tests.support.http import http_request
from tests.support.services import ClickHouseService

pytestmark = pytest.mark.clickhouse


@pytest.fixture
def table(ch_client: Client) -> str:
    ch_client.command(
        "CREATE TABLE t (id UInt64, name String, at DateTime64(3, 'UTC'), score Nullable(Float64)) "
        "ENGINE = MergeTree ORDER BY id"
    )
    return "t"


# -- the basics clickhouse-connect needs ------------------------------------------------------


def test_curl_style_get_with_query_in_url(clickhouse: ClickHouseSettings) -> None:
    status, headers, body = http_request(clickhouse, params={"query": "SELECT 1"})
    assert (status, body) == (200, b"1\n")
    assert headers["x-clickhouse-format"] == "TabSeparated"


def test_ping_and_root_answer_ok(clickhouse: ClickHouseSettings) -> None:
    assert urllib.request.urlopen(f"{clickhouse.url}/ping").read() == b"Ok.\n"
    assert urllib.request.urlopen(f"{clickhouse.url}/").read() == b"Ok.\n"


def test_query_in_post_body(clickhouse: ClickHouseSettings) -> None:
    status, _, body = http_request(clickhouse, "POST", body=b"SELECT 40 + 2")
    assert (status, body) == (200, b"42\n")


def test_query_begun_in_url_and_continued_in_body(clickhouse: ClickHouseSettings) -> None:
    status, _, body = http_request(clickhouse, "POST", params={"query": "SELECT"}, body=b"7 * 6")
    assert (status, body) == (200, b"42\n")


def test_command_and_query(ch_client: Client, table: str) -> None:
    ch_client.command(f"INSERT INTO {table} (id, name, at) VALUES (1, 'a', '2026-11-23 08:00:00')")
    assert ch_client.command(f"SELECT count() FROM {table}") == 1
    result = ch_client.query(f"SELECT id, name FROM {table}")
    assert result.result_rows == [(1, "a")]
    assert result.column_names == ("id", "name")


def test_insert_and_read_back_every_type(ch_client: Client, table: str) -> None:
    at = dt.datetime(2026, 11, 23, 8, 30, 15, 123000, tzinfo=dt.UTC)
    rows = [[1, "tab\there 'quoted' \\ back", at, 0.5], [2, "ünïcödé ✓", at, None]]
    summary = ch_client.insert(table, rows, column_names=["id", "name", "at", "score"])
    assert summary.written_rows == 2
    back = ch_client.query(f"SELECT id, name, at, score FROM {table} ORDER BY id").result_rows
    assert [(r[0], r[1], r[2].replace(tzinfo=dt.UTC), r[3]) for r in back] == [tuple(row) for row in rows]


def test_insert_df_and_query_df(ch_client: Client, table: str) -> None:
    frame = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "name": ["x", "y", "z"],
            "at": pd.to_datetime(["2026-11-23 08:00", "2026-11-23 09:00", "2026-11-23 10:00"], utc=True),
            "score": [1.0, None, 3.0],
        }
    )
    ch_client.insert_df(table, frame)
    back = ch_client.query_df(f"SELECT * FROM {table} ORDER BY id")
    assert back["id"].tolist() == [1, 2, 3]
    assert back["name"].tolist() == ["x", "y", "z"]
    assert back["score"].isna().tolist() == [False, True, False]


def test_query_arrow(ch_client: Client, table: str) -> None:
    ch_client.insert(table, [[5, "five", dt.datetime(2026, 1, 1), 5.5]])
    arrow = ch_client.query_arrow(f"SELECT id, name, score FROM {table}")
    assert arrow.to_pydict() == {"id": [5], "name": ["five"], "score": [5.5]}


def test_server_side_parameters(ch_client: Client) -> None:
    result = ch_client.query(
        "SELECT {s:String} AS s, {n:UInt32} AS n, {a:Array(String)} AS a, {d:DateTime} AS d, {z:Nullable(Int8)} AS z",
        parameters={
            "s": "it's a\ttab\\and\nnewline",
            "n": 7,
            "a": ["x", "y'z"],
            "d": dt.datetime(2026, 1, 2, 3, 4, 5),
            "z": None,
        },
    )
    assert result.result_rows == [
        ("it's a\ttab\\and\nnewline", 7, ["x", "y'z"], dt.datetime(2026, 1, 2, 3, 4, 5), None)
    ]


def test_parameters_are_never_spliced_into_sql(ch_client: Client, table: str) -> None:
    ch_client.insert(table, [[1, "a", dt.datetime(2026, 1, 1), None]])
    hostile = "a' OR 1 = 1 --"
    count = ch_client.command(f"SELECT count() FROM {table} WHERE name = {{n:String}}", parameters={"n": hostile})
    assert count == 0


def test_settings_as_url_parameters_apply_to_that_query_only(ch_client: Client) -> None:
    assert ch_client.command("SELECT getSetting('max_threads')", settings={"max_threads": 3}) == 3
    assert ch_client.command("SELECT getSetting('max_threads')") != 3


def test_unknown_setting_is_a_clickhouse_error(clickhouse: ClickHouseSettings) -> None:
    status, headers, body = http_request(clickhouse, params={"query": "SELECT 1", "no_such_setting": "1"})
    assert status == 404
    assert headers["x-clickhouse-exception-code"] == "115"
    assert b"UNKNOWN_SETTING" in body


def test_session_keeps_set_and_temporary_tables(clickhouse: ClickHouseSettings) -> None:
    session = {"session_id": "lp-test-session"}
    assert http_request(clickhouse, "POST", session, b"SET max_threads = 5")[0] == 200
    assert http_request(clickhouse, "POST", session, b"CREATE TEMPORARY TABLE tmp (x UInt8)")[0] == 200
    assert http_request(clickhouse, "POST", session, b"INSERT INTO tmp VALUES (9)")[0] == 200
    assert http_request(clickhouse, "POST", session, b"SELECT x FROM tmp")[2] == b"9\n"
    assert http_request(clickhouse, "POST", session, b"SELECT getSetting('max_threads')")[2] == b"5\n"
    # a URL setting for one query does not stick to the session
    assert (
        http_request(clickhouse, "POST", {**session, "max_threads": "2"}, b"SELECT getSetting('max_threads')")[2]
        == b"2\n"
    )
    assert http_request(clickhouse, "POST", session, b"SELECT getSetting('max_threads')")[2] == b"5\n"


def test_a_failed_query_leaves_nothing_in_the_sessions_next_result(clickhouse: ClickHouseSettings) -> None:
    session = {"session_id": "lp-test-failed-output", "database": ""}  # nothing to restore between queries
    failing = b"SELECT toString(number) AS s FROM numbers(3) FORMAT ProtobufSingle"  # one row at most
    assert http_request(clickhouse, "POST", session, failing)[0] != 200
    assert http_request(clickhouse, "POST", session, b"SELECT 1 WHERE 0 FORMAT Values")[2] == b""


def test_insert_deduplication_token_of_one_insert_does_not_leak_to_the_next(ch_client: Client) -> None:
    ch_client.command(
        "CREATE TABLE d (x UInt8) ENGINE = MergeTree ORDER BY x SETTINGS non_replicated_deduplication_window = 100"
    )
    ch_client.insert("d", [[1]], settings={"insert_deduplication_token": "batch-1"})
    ch_client.insert("d", [[1]], settings={"insert_deduplication_token": "batch-1"})  # a replay: dropped
    ch_client.insert("d", [[2]])
    assert ch_client.command("SELECT count() FROM d") == 2


def test_get_requests_are_read_only(clickhouse: ClickHouseSettings) -> None:
    status, headers, body = http_request(clickhouse, params={"query": "CREATE TABLE nope (x UInt8) ENGINE = Memory"})
    assert status == 500  # READONLY has no HTTP mapping in ClickHouse
    assert headers["x-clickhouse-exception-code"] == "164"
    assert b"READONLY" in body


# -- compression ----------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["lz4", "zstd", "gzip", "deflate"])
def test_compressed_request_bodies(clickhouse: ClickHouseSettings, ch_client: Client, encoding: str) -> None:
    ch_client.command("CREATE TABLE c (x UInt32) ENGINE = MergeTree ORDER BY x")
    data = b"".join(b"%d\n" % i for i in range(1000))
    compress = {
        "lz4": lz4.frame.compress,
        "zstd": zstandard.ZstdCompressor().compress,
        "gzip": gzip.compress,
        "deflate": zlib.compress,
    }[encoding]
    status, _, body = http_request(
        clickhouse,
        "POST",
        {"query": "INSERT INTO c FORMAT TSV"},
        compress(data),
        {"Content-Encoding": encoding},
    )
    assert status == 200, body
    assert ch_client.query("SELECT count(), sum(x) FROM c").result_rows == [(1000, sum(range(1000)))]


@pytest.mark.parametrize("encoding", ["lz4", "zstd", "gzip", "deflate"])
def test_compressed_responses_when_asked(clickhouse: ClickHouseSettings, encoding: str) -> None:
    status, headers, body = http_request(
        clickhouse,
        params={"query": "SELECT number FROM numbers(100000)", "enable_http_compression": "1"},
        headers={"Accept-Encoding": encoding},
    )
    assert status == 200
    assert headers["content-encoding"] == encoding
    decompress = {
        "lz4": lz4.frame.decompress,
        "zstd": lambda b: zstandard.ZstdDecompressor().decompressobj().decompress(b),
        "gzip": gzip.decompress,
        "deflate": zlib.decompress,
    }[encoding]
    assert decompress(body) == b"".join(b"%d\n" % i for i in range(100000))


def test_no_compression_unless_enabled(clickhouse: ClickHouseSettings) -> None:
    _, headers, body = http_request(clickhouse, params={"query": "SELECT 1"}, headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in headers and body == b"1\n"


@pytest.mark.parametrize("compress", [True, False, "lz4", "zstd", "gzip"])
def test_clickhouse_connect_with_each_compression(clickhouse: ClickHouseSettings, compress: bool | str) -> None:
    client = connect(clickhouse, compress=compress)
    client.command("CREATE TABLE IF NOT EXISTS cc (x UInt64, s String) ENGINE = MergeTree ORDER BY x")
    client.command("TRUNCATE TABLE cc")
    client.insert("cc", [[i, f"row {i}"] for i in range(20000)])
    assert client.query("SELECT count(), sum(x) FROM cc").result_rows == [(20000, sum(range(20000)))]
    assert len(client.query_df("SELECT * FROM cc")) == 20000


# -- streaming ------------------------------------------------------------------------------


def test_large_results_stream(ch_client: Client) -> None:
    total = rows = 0
    with ch_client.query_row_block_stream("SELECT number FROM numbers(3000000)") as stream:
        for block in stream:
            rows += len(block)
            total += sum(row[0] for row in block)
    assert rows == 3_000_000
    assert total == sum(range(3_000_000))


def test_result_is_sent_in_chunks_before_the_query_ends(clickhouse: ClickHouseSettings) -> None:
    connection = http.client.HTTPConnection(clickhouse.host, clickhouse.port, timeout=30)
    connection.request("GET", "/?" + urllib.parse.urlencode({"query": "SELECT number FROM numbers(5000000)"}))
    response = connection.getresponse()
    assert response.getheader("Transfer-Encoding") == "chunked"
    first = response.read1(65536)
    assert first.startswith(b"0\n1\n2\n")
    connection.close()


def test_error_in_the_middle_of_a_stream_reaches_the_client(ch_client: Client) -> None:
    stream = ch_client.query_row_block_stream(
        "SELECT throwIf(number = 900000) FROM numbers(2000000) SETTINGS max_block_size = 10000"
    )
    blocks = 0
    with pytest.raises(StreamFailureError, match=r"Code: 395\. DB::Exception: Value passed to 'throwIf'"), stream:
        for _ in stream:
            blocks += 1
    assert blocks > 0, "the error should come after some rows were already streamed"


# -- errors as ClickHouse sends them ----------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "status", "code", "name"),
    [
        ("SELECT * FROM no_such_table", 404, 60, "UNKNOWN_TABLE"),
        ("SELEKT 1", 400, 62, "SYNTAX_ERROR"),
        ("SELECT no_such_function(1)", 404, 46, "UNKNOWN_FUNCTION"),
        ("SELECT throwIf(1)", 500, 395, "FUNCTION_THROW_IF_VALUE_IS_NON_ZERO"),
        ("", 400, 62, "SYNTAX_ERROR"),
    ],
)
def test_errors_carry_status_code_header_and_clickhouse_text(
    clickhouse: ClickHouseSettings, sql: str, status: int, code: int, name: str
) -> None:
    got_status, headers, body = http_request(clickhouse, "POST", body=sql.encode())
    assert got_status == status
    assert headers["x-clickhouse-exception-code"] == str(code)
    text = body.decode()
    assert text.startswith(f"Code: {code}. DB::Exception: ")
    assert f"({name}) (version " in text


def test_clickhouse_connect_raises_database_error_with_the_code(ch_client: Client) -> None:
    with pytest.raises(DatabaseError) as raised:
        ch_client.query("SELECT * FROM no_such_table")
    assert raised.value.code == 60
    assert "UNKNOWN_TABLE" in str(raised.value)


def test_bad_insert_data_is_refused_and_nothing_is_written(ch_client: Client, clickhouse: ClickHouseSettings) -> None:
    ch_client.command("CREATE TABLE n (x UInt8) ENGINE = MergeTree ORDER BY x")
    status, headers, body = http_request(
        clickhouse, "POST", {"query": "INSERT INTO n FORMAT TSV"}, b"1\nnot-a-number\n"
    )
    assert status == 400
    assert headers["x-clickhouse-exception-code"] in ("27", "72")
    assert b"not-a-number" in body
    assert ch_client.command("SELECT count() FROM n") == 0


def test_unknown_content_encoding_is_refused(clickhouse: ClickHouseSettings) -> None:
    status, headers, _ = http_request(clickhouse, "POST", body=b"SELECT 1", headers={"Content-Encoding": "snappy"})
    assert headers["x-clickhouse-exception-code"] == "146"
    assert status == 500


def test_unknown_path_is_404(clickhouse: ClickHouseSettings) -> None:
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(f"{clickhouse.url}/nowhere")
    assert raised.value.code == 404


# -- many clients -----------------------------------------------------------------------------


def test_many_concurrent_clients_get_their_own_answers(clickhouse: ClickHouseSettings, ch_client: Client) -> None:
    ch_client.command("CREATE TABLE m (client UInt8, x UInt32) ENGINE = MergeTree ORDER BY (client, x)")
    errors: list[BaseException] = []
    results: dict[int, list[tuple[int, int]]] = {}

    def work(client_number: int) -> None:
        try:
            client = connect(clickhouse)
            for batch in range(5):
                client.insert("m", [[client_number, batch * 100 + i] for i in range(100)])
                answer = client.query(
                    "SELECT count(), sum(x) FROM m WHERE client = {c:UInt8}", parameters={"c": client_number}
                ).result_rows
                results.setdefault(client_number, []).append(answer[0])
            client.close()
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors[0]
    for client_number in range(12):
        expected = [((b + 1) * 100, sum(range((b + 1) * 100))) for b in range(5)]
        assert results[client_number] == expected


# -- lifecycle, persistence, security (own server instances) -----------------------------------


ServerFactory = Callable[..., EmbeddedClickHouseProcess]


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """Separate embedded ClickHouse processes sharing one data directory, for restart and auth tests."""
    processes: list[EmbeddedClickHouseProcess] = []

    def make(password: str = "") -> EmbeddedClickHouseProcess:
        settings = ClickHouseSettings(port=free_port(), database="default", password=password)
        process = EmbeddedClickHouseProcess(settings, tmp_path / "data", log_path=tmp_path / "ch.log")
        processes.append(process)
        return process

    yield make
    for process in processes:
        process.stop()


def test_data_survives_a_restart(make_server: ServerFactory) -> None:
    first = make_server()
    first.start()
    client = connect(first.clickhouse)
    client.command("CREATE TABLE kept (x UInt32) ENGINE = MergeTree ORDER BY x")
    client.insert("kept", [[1], [2], [3]])
    first.stop()
    second = make_server()
    second.start()
    assert connect(second.clickhouse).command("SELECT sum(x) FROM kept") == 6


def test_password_is_enforced(make_server: ServerFactory) -> None:
    server = make_server(password="s3cret")
    server.start()
    assert connect(server.clickhouse).command("SELECT 1") == 1
    wrong = ClickHouseSettings(port=server.clickhouse.port, database="default", password="nope")
    with pytest.raises(DatabaseError) as raised:
        connect(wrong)
    assert raised.value.code == 516
    status, headers, body = http_request(
        ClickHouseSettings(port=server.clickhouse.port, database="default"), params={"query": "SELECT 1"}
    )
    assert status == 403
    assert headers["x-clickhouse-exception-code"] == "516"
    assert b"AUTHENTICATION_FAILED" in body


def test_refuses_to_bind_a_non_loopback_address(tmp_path: Path) -> None:
    from tests.support.services import run_cli

    result = run_cli("clickhouse", "--host", "0.0.0.0", "--port", str(free_port()), "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert "refusing to serve ClickHouse on non-loopback address 0.0.0.0" in result.stderr
    assert "--allow-remote" in result.stderr


def test_connect_to_nothing_says_how_to_start_clickhouse() -> None:
    with pytest.raises(ClickHouseUnavailable, match="labelpulse clickhouse"):
        connect(ClickHouseSettings(port=free_port()))


def test_session_service_process_is_running(clickhouse_service: ClickHouseService) -> None:
    assert clickhouse_service.process is not None and clickhouse_service.process.poll() is None
    assert json.loads(
        http_request(clickhouse_service.settings, params={"query": "SELECT 1 AS x FORMAT JSONEachRow"})[2]
    ) == {"x": 1}


@pytest.mark.parametrize("prefix", ["", "  -- copy\n", "/* copy */ ", "insert"])
def test_insert_select_writes_its_rows(ch_client: Client, prefix: str) -> None:
    ch_client.command("CREATE TABLE copied (n UInt64) ENGINE = MergeTree ORDER BY n")
    statement = "INSERT INTO copied SELECT number FROM numbers(10)"
    ch_client.command(prefix + statement if prefix != "insert" else statement.lower())
    assert ch_client.command("SELECT count() FROM copied") == 10


def test_metrics_count_queries_inserts_and_errors_by_code(clickhouse: ClickHouseSettings, ch_client: Client) -> None:
    def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        with urllib.request.urlopen(f"{clickhouse.url}/metrics", timeout=5) as response:
            assert response.headers["Content-Type"].startswith("text/plain; version=")  # the exposition format
            text = response.read().decode()
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    before = scrape()
    ch_client.command("CREATE TABLE counted (n UInt8) ENGINE = MergeTree ORDER BY n")
    ch_client.insert("counted", [[1], [2]], column_names=["n"])
    with pytest.raises(DatabaseError):
        ch_client.query("SELECT * FROM no_such_table")
    after = scrape()

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert grew("labelpulse_clickhouse_queries_total", kind="insert") == 1
    assert grew("labelpulse_clickhouse_queries_total", kind="query") >= 2
    assert grew("labelpulse_clickhouse_query_errors_total", code="60") == 1
    assert grew("labelpulse_clickhouse_query_duration_seconds_count", kind="insert") == 1


@pytest.mark.parametrize(
    ("args", "env", "why"),
    [
        ((), {"LABELPULSE_ACCESS_FILE": "{access}", "LP_ANA_PW": "a-pw"}, "with an access file"),
        (("--allow-remote",), {}, "with --allow-remote"),
    ],
)
def test_refuses_to_start_with_users_or_remote_access_while_the_admin_has_no_password(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], why: str
) -> None:
    from tests.support.services import run_cli

    (tmp_path / "access.yml").write_text("users:\n  - {name: ana, role: analyst, password_env: LP_ANA_PW}\n")
    env = {name: value.format(access=tmp_path / "access.yml") for name, value in env.items()}
    port = free_port()
    result = run_cli("clickhouse", "--port", str(port), "--data-dir", str(tmp_path / "data"), *args, env=env)
    assert result.returncode == 2, result.stderr
    assert f"refusing to serve ClickHouse {why} while its admin user 'default' has no password" in result.stderr
    assert "LABELPULSE_CLICKHOUSE_PASSWORD" in result.stderr
    assert not port_in_use("127.0.0.1", port)


def test_serves_remote_access_once_the_admin_has_a_password(tmp_path: Path) -> None:
    import sys

    from labelpulse.child_processes import spawn, terminate, wait_ready
    from labelpulse.net import http_ok

    port = free_port()
    command = [sys.executable, "-m", "labelpulse", "clickhouse", "--port", str(port), "--allow-remote"]
    command += ["--data-dir", str(tmp_path / "data")]
    env = {name: value for name, value in os.environ.items() if not name.startswith("LABELPULSE_")}
    process = spawn(command, tmp_path / "ch.log", {**env, "LABELPULSE_CLICKHOUSE_PASSWORD": "s3cret"})
    try:
        ready = wait_ready(process, lambda: http_ok(f"http://127.0.0.1:{port}/ping"), 60)
        assert ready, (tmp_path / "ch.log").read_text()
        settings = ClickHouseSettings(port=port, database="default", password="s3cret")
        assert connect(settings).command("SELECT 1") == 1
    finally:
        terminate(process, timeout_s=15)
