"""The dashboard as a service: Streamlit serving dashboard/app.py (`labelpulse dashboard`, `labelpulse up`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

from dashboard.settings import DashboardSettings

APP = Path(__file__).parent / "app.py"


def dashboard_command(settings: DashboardSettings) -> list[str]:
    """The Streamlit command serving the dashboard: headless, no usage statistics, no file watching."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", settings.host, "--server.port", str(settings.port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
        "--client.toolbarMode", "minimal",
    ]  # fmt: skip


def run_dashboard(settings: DashboardSettings) -> NoReturn:
    """Become the Streamlit server (exec): Ctrl-C and SIGTERM then reach Streamlit itself."""
    print(
        f"dashboard on {settings.url} (reading ClickHouse at {settings.clickhouse.url}) — Ctrl-C stops it", flush=True
    )
    os.execv(sys.executable, dashboard_command(settings))
