"""The dashboard in a real headless Chromium: every view loads with its charts and no error element."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser import capture_views, chromium, served_dashboard
from tests.conftest import ClickHouseService
from tests.test_dashboard import create_database

pytestmark = [
    pytest.mark.clickhouse,
    pytest.mark.skipif(chromium() is None and not os.environ.get("CI"), reason="chromium is not installed"),
]


def test_every_view_loads_with_charts_in_headless_chromium(
    clickhouse_service: ClickHouseService, tmp_path: Path
) -> None:
    settings, _ = create_database(clickhouse_service, seed_events=3000)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LABELPULSE_")},
        **settings.to_env(),
    }
    with served_dashboard(env, tmp_path / "dashboard.log") as url:
        shots = capture_views(url, tmp_path / "shots")
    assert set(shots) == {"Overview", "Project", "Annotators", "Pipeline", "Alerts"}
    for shot in shots.values():
        assert shot.stat().st_size > 20_000, f"{shot} looks blank"
