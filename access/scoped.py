"""Reads restricted to a scope of projects by ClickHouse itself: the one query runner the dashboard and the
API share, so scoping and the mapping of ClickHouse's errors cannot drift apart between them."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pandas as pd
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from access.policy import table_filters
from schema.client import ClickHouseSettings, ClickHouseUnavailable, connect, unreachable_message

UNKNOWN_TABLE, UNKNOWN_DATABASE, TIMEOUT_EXCEEDED = 60, 81, 159


class SchemaMissing(ClickHouseUnavailable):
    """ClickHouse answers, but the LabelPulse tables are not there: migrations were not applied."""


class QueryTimedOut(RuntimeError):
    """ClickHouse stopped the query at the caller's deadline."""


class ScopedClient:
    """Runs queries, each restricted to a scope of projects by `additional_table_filters` on every table read,
    through views too. Safe to share between threads: its one client opens no HTTP session
    (schema.client.connect), so each query is an HTTP request of its own, with its own settings (the scope)."""

    def __init__(self, settings: ClickHouseSettings) -> None:
        self.settings = settings
        self._client: Client | None = None
        self._lock = threading.Lock()

    def _connected(self) -> Client:
        with self._lock:
            if self._client is None:
                self._client = connect(self.settings)
            return self._client

    def _forget(self) -> None:
        with self._lock:
            self._client = None  # reconnect next time: the server may have restarted

    def frame(
        self,
        sql: str,
        parameters: Mapping[str, Any],
        scope: tuple[str, ...] | None,
        timeout_s: float | None = None,
    ) -> pd.DataFrame:
        """The query's result over `scope`'s projects only (None: every project); stopped by ClickHouse after
        `timeout_s` (QueryTimedOut). ClickHouseUnavailable when ClickHouse does not answer, SchemaMissing
        (one of those) when it has no LabelPulse tables."""
        limits: dict[str, object] = {}
        if scope is not None:
            limits["additional_table_filters"] = table_filters(scope, self.settings.database)
        if timeout_s is not None:
            # ClickHouse takes fractions of a second; in whole milliseconds, never 0 (which means no limit).
            limits["max_execution_time"] = max(round(timeout_s, 3), 0.001)
        bound = dict(parameters)
        try:
            client = self._connected()
            frame = client.query_df(sql, parameters=bound, settings=limits)
            if frame.columns.empty:  # an empty result arrives without its columns; callers still need them
                described = client.query(f"DESCRIBE ({sql})", parameters=bound, settings=limits)
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
