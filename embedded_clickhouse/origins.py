"""Which browser requests come from another site: a web page must not drive a ClickHouse on loopback.

A page on any site can make the user's browser POST `text/plain` SQL to 127.0.0.1:8123 (a "simple"
request: no preflight), and it runs — DDL included — even though the page cannot read the answer.
Browsers say where a request comes from: `Origin` (the page's scheme://host:port, on every POST)
and `Sec-Fetch-Site` (same-origin, same-site, cross-site, or none for what the user typed).
Clients that are not browsers (curl, clickhouse-connect) send neither and are not affected.
"""

from __future__ import annotations

from config.hosts import is_loopback

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def own_origins(host: str, port: int) -> frozenset[str]:
    """The origins a page of this server itself would have (every loopback name, if on loopback)."""
    names = {f"[{host}]" if ":" in host else host}
    if is_loopback(host):
        names.update(LOOPBACK_NAMES)
    return frozenset(f"{scheme}://{name}:{port}" for name in names for scheme in ("http", "https"))


def refusal(origin: str | None, fetch_site: str | None, own: frozenset[str], allowed: frozenset[str]) -> str | None:
    """Why a request with these headers is refused as cross-site, or None when it may be served."""
    if origin is not None:
        normalized = origin.strip().lower().rstrip("/")
        if normalized in allowed or normalized in own:
            return None
        return f"the page at {origin.strip() or 'an unknown origin'} is not this server's"
    site = (fetch_site or "").strip().lower()
    if site in ("cross-site", "same-site"):
        return f"Sec-Fetch-Site says it comes from another site ({site})"
    return None
