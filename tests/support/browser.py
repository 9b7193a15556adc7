"""Serve the dashboard and look at it in a real headless Chromium (Debian's `chromium`, driven by Playwright)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from labelpulse.child_processes import spawn, terminate, wait_ready
from labelpulse.net import free_port, http_ok

# url path -> what the page must show once loaded
VIEWS = {"": "Overview", "project": "Project", "annotators": "Annotators", "pipeline": "Pipeline", "alerts": "Alerts"}
CHART = ".js-plotly-plot .main-svg"
# What shows that a view has drawn: a chart, except where charts depend on what happened (alerts).
DRAWN = {"alerts": '[data-testid="stMetric"]'}


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


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


def capture_views(base_url: str, out_dir: Path, *, query: str = "", width: int = 1440) -> dict[str, Path]:
    """Load every view, wait for its charts, refuse Streamlit error elements, and save a screenshot."""
    from playwright.sync_api import sync_playwright

    executable = chromium()
    if executable is None:
        raise RuntimeError("no chromium on PATH: apt-get install chromium")
    out_dir.mkdir(parents=True, exist_ok=True)
    shots: dict[str, Path] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": width, "height": 1800})
            for path, title in VIEWS.items():
                page.goto(f"{base_url}/{path}{query}", wait_until="networkidle")
                page.get_by_role("heading", name=title).first.wait_for(timeout=30_000)
                page.locator(DRAWN.get(path, CHART)).first.wait_for(timeout=30_000)
                page.wait_for_timeout(1000)  # let the remaining charts draw
                errors = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
                if errors.count():
                    raise AssertionError(f"/{path}: Streamlit shows an error: {errors.first.inner_text()[:500]}")
                shot = out_dir / f"{title.lower()}.png"
                page.screenshot(path=str(shot), full_page=True)
                shots[title] = shot
        finally:
            browser.close()
    return shots
