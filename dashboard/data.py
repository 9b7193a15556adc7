"""The one place the dashboard talks to ClickHouse: run a Query, get a DataFrame, cached with a TTL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from access.scoped import ScopedClient
from dashboard.auth import Viewer
from dashboard.settings import DashboardSettings
from schema.queries import Query


@st.cache_resource
def settings() -> DashboardSettings:
    return DashboardSettings.from_env()


@st.cache_resource  # reconnects by itself when a query finds ClickHouse gone
def _client() -> ScopedClient:
    return ScopedClient(settings().clickhouse)


QueryKey = tuple[str, tuple[tuple[str, Any], ...]]
VIEWER_KEY = "labelpulse_viewer"  # set by app.py on every run, before any view reads data


def viewer() -> Viewer:
    signed_in: Viewer = st.session_state[VIEWER_KEY]  # a KeyError, never all projects, when unset
    return signed_in


def fetch(query: Query) -> pd.DataFrame:
    """The query's result, only ever over the viewer's projects; ClickHouseUnavailable when
    ClickHouse does not answer (the views show a banner and the next refresh tries again)."""
    ttl_s = settings().cache_ttl_s
    scope = viewer().projects  # part of the cache key: viewers never share results across scopes
    return (_cached_run(ttl_s)(query.key(), scope) if ttl_s else _run(query.key(), scope)).copy()


@st.cache_resource
def _cached_run(ttl_s: int) -> Callable[[QueryKey, tuple[str, ...] | None], pd.DataFrame]:
    # Built on first use: the TTL is a setting, and cache_data fixes it when it wraps.
    return st.cache_data(ttl=ttl_s, show_spinner=False, max_entries=512)(_run)


def _run(key: QueryKey, scope: tuple[str, ...] | None) -> pd.DataFrame:
    sql, parameters = key
    bound = {k: list(v) if isinstance(v, tuple) else v for k, v in parameters}
    return _client().frame(sql, bound, scope)
