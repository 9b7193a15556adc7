"""The one place the API talks to ClickHouse: run a Query over the projects a caller may see."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pandas as pd

from access.scoped import ScopedClient
from schema.client import ClickHouseSettings
from schema.queries import Query

# Queries in flight at once across all calls: as many as clickhouse-connect keeps HTTP connections per host
# (its default pool holds 8), so none is opened and thrown away per query.
READ_THREADS = 8


class Reader:
    """Runs queries, each restricted by ClickHouse itself to a scope of projects (access.scoped, shared with
    the dashboard). Safe to share between threads: each query is an HTTP request of its own, with its own
    settings (the scope), on a connection of its own from the client's pool.

    `pool` runs independent queries of one call side by side (see server.Reads.many): bounded, shared by all
    calls, so many calls at once queue for READ_THREADS rather than start threads of their own."""

    def __init__(self, settings: ClickHouseSettings) -> None:
        self.settings = settings
        self._scoped = ScopedClient(settings)
        self.pool = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="clickhouse-read")

    def frame(self, query: Query, scope: tuple[str, ...] | None, timeout_s: float | None = None) -> pd.DataFrame:
        """The query's result over `scope`'s projects only (None: every project); stopped by ClickHouse after
        `timeout_s` (QueryTimedOut). ClickHouseUnavailable when ClickHouse does not answer or has no schema."""
        return self._scoped.frame(query.sql, query.parameters, scope, timeout_s)
