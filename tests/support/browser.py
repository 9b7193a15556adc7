"""Serve the dashboard and look at it in a real headless Chromium (Debian's `chromium`, driven by Playwright)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from dashboard.screenshots import VIEWS, capture_views, chromium  # noqa: F401 (the browser tests' helpers)
from labelpulse.child_processes import spawn, terminate, wait_ready
from labelpulse.net import free_port, http_ok


@contextmanager
def served_dashboard(env: Mapping[str, str], log_path: Path) -> Iterator[str]:
    """The dashboard on a free loopback port; yields its base URL, stops it afterwards."""
    port = free_port()
    command = [sys.executable, "-m", "labelpulse", "dashboard", "--port", str(port)]
    process: subprocess.Popen[bytes] = spawn(command, log_path, env)
    try:
        url = f"http://127.0.0.1:{port}"
        if not wait_ready(process, lambda: http_ok(f"{url}/_stcore/health"), 60):
            raise RuntimeError(f"the dashboard did not come up:\n{log_path.read_text(errors='replace')[-3000:]}")
        yield url
    finally:
        terminate(process, timeout_s=10)
