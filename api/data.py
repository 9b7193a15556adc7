"""The one place the API talks to ClickHouse: run a Query over the projects a caller may see."""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from access.policy import table_filters
from schema.client import ClickHouseSettings, ClickHouseUnavailable, connect, unreachable_message
from schema.queries import Query

UNKNOWN_TABLE, UNKNOWN_DATABASE, TIMEOUT_EXCEEDED = 60, 81, 159
# Queries in flight at once across all calls: as many as clickhouse-connect keeps HTTP connections per host
# (its default pool holds 8), so none is opened and thrown away per query.
READ_THREADS = 8


class SchemaMissing(ClickHouseUnavailable):
    """ClickHouse answers, but the LabelPulse tables are not there: migrations were not applied."""


class QueryTimedOut(RuntimeError):
    """ClickHouse stopped the query at the caller's deadline."""


class Reader:
    """Runs queries, each restricted by ClickHouse itself to a scope of projects (the dashboard's scoping:
    `additional_table_filters` on every table read, through views too). Safe to share between threads: its one
    client opens no HTTP session (schema.client.connect), so each query is an HTTP request of its own, with
    its own settings (the scope), on a connection of its own from the client's pool.

    `pool` runs independent queries of one call side by side (see server.Reads.many): bounded, shared by all
    calls, so many calls at once queue for READ_THREADS rather than start threads of their own."""

    def __init__(self, settings: ClickHouseSettings) -> None:
        self.settings = settings
        self._client: Client | None = None
        self._lock = threading.Lock()
        self.pool = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="clickhouse-read")

    def _connected(self) -> Client:
        with self._lock:
            if self._client is None:
                self._client = connect(self.settings)
            return self._client

    def _forget(self) -> None:
        with self._lock:
            self._client = None  # reconnect next time: the server may have restarted

    def frame(self, query: Query, scope: tuple[str, ...] | None, timeout_s: float | None = None) -> pd.DataFrame:
        """The query's result over `scope`'s projects only (None: every project); stopped by ClickHouse after
        `timeout_s` (QueryTimedOut). ClickHouseUnavailable when ClickHouse does not answer or has no schema."""
        limits: dict[str, object] = {}
        if scope is not None:
            limits["additional_table_filters"] = table_filters(scope, self.settings.database)
        if timeout_s is not None:
            limits["max_execution_time"] = max(1, math.ceil(timeout_s))
        parameters = dict(query.parameters)
        try:
            client = self._connected()
            frame = client.query_df(query.sql, parameters=parameters, settings=limits)
            if frame.columns.empty:  # an empty result arrives without its columns; callers still need them
                described = client.query(f"DESCRIBE ({query.sql})", parameters=parameters, settings=limits)
                return pd.DataFrame(columns=[row[0] for row in described.result_rows])
            return frame
        except OperationalError as error:
            self._forget()
            raise ClickHouseUnavailable(unreachable_message(self.settings, error)) from error
        except DatabaseError as error:  # after OperationalError, its subclass
            code = getattr(error, "code", None)
            if code in (UNKNOWN_TABLE, UNKNOWN_DATABASE) or "UNKNOWN_DATABASE" in str(error):
                raise SchemaMissing(
                    f"database {self.settings.database} has no LabelPulse tables: run `labelpulse migrate`"
                ) from error
            if code == TIMEOUT_EXCEEDED or "TIMEOUT_EXCEEDED" in str(error):
                raise QueryTimedOut(str(error).splitlines()[0]) from error
            raise
