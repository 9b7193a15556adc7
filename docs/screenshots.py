"""Screenshots of every dashboard view for docs/, from a seeded simulator run.

    .venv/bin/python docs/screenshots.py

Starts a throwaway embedded ClickHouse, loads a fixed simulated event set (seed 5) through the
worker's own path, serves the dashboard and saves one PNG per view in docs/screenshots/ using
the same headless-Chromium helper as the browser test.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.dashboard.test_dashboard import create_database  # noqa: E402
from tests.support.browser import capture_views, served_dashboard  # noqa: E402
from tests.support.services import ClickHouseService  # noqa: E402


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="labelpulse-screenshots-"))
    service = ClickHouseService(workdir / "clickhouse", workdir / "clickhouse.log")
    service.start()
    try:
        settings, _ = create_database(service, seed_events=6000)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("LABELPULSE_")}, **settings.to_env()}
        with served_dashboard(env, workdir / "dashboard.log") as url:
            for title, path in capture_views(url, REPO / "docs" / "screenshots").items():
                print(f"{title:<11} {path.relative_to(REPO)}")
    finally:
        service.stop()


if __name__ == "__main__":
    main()
