"""HTTP as the tests speak it: raw requests to the embedded ClickHouse, real Prometheus servers and their JSON."""

from __future__ import annotations

import http.client
import json
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from labelpulse.child_processes import spawn, terminate, wait_ready
from labelpulse.net import free_port, http_ok
from schema.client import ClickHouseSettings
from tests.support.services import system_tool


def http_request(
    settings: ClickHouseSettings,
    method: str = "GET",
    params: dict[str, str] | None = None,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection(settings.host, settings.port, timeout=30)
    path = "/?" + urllib.parse.urlencode({"database": settings.database, **(params or {})})
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


@contextmanager
def serving(binary: str, flags: list[str], log: Path) -> Iterator[str]:
    """A Prometheus-family server (same flags, same /-/ready) on a free loopback port; yields its URL."""
    port = free_port()
    process = spawn([binary, *flags, f"--web.listen-address=127.0.0.1:{port}"], log, {})
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_ready(process, lambda: http_ok(f"{url}/-/ready"), 60), log.read_text()[-2000:]
        yield url
    finally:
        terminate(process, timeout_s=15)


@contextmanager
def prometheus(tmp_path: Path, targets: dict[str, str]) -> Iterator[str]:
    """A real Prometheus scraping `targets` (job -> host:port) every second, with the rendered rules."""
    binary = system_tool("prometheus", "prometheus")
    rules = tmp_path / "rendered.yml"
    rendered = spawn([sys.executable, "-m", "labelpulse", "alerts", "render-prometheus", "-o", str(rules)],
                     tmp_path / "render.log", {})  # fmt: skip
    assert rendered.wait(60) == 0
    scrape = "".join(
        f"  - job_name: {job}\n    static_configs: [{{targets: ['{target}']}}]\n" for job, target in targets.items()
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(
        f"global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: ['{rules}']\nscrape_configs:\n{scrape}"
    )
    flags = [f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'prometheus'}"]
    with serving(binary, flags, tmp_path / "prometheus.log") as url:
        yield url


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)
