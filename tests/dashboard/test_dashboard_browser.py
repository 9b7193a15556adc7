"""The dashboard in a real headless Chromium: every view loads with its charts and no error element."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.dashboard.test_dashboard import create_database
from tests.support.browser import capture_views, chromium, served_dashboard
from tests.support.services import ClickHouseService

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


def test_values_from_a_link_render_as_text_in_chromium(clickhouse_service: ClickHouseService, tmp_path: Path) -> None:
    """What Streamlit's own Markdown renderer makes of them: text, and no link, image or bold to click or load."""
    from urllib.parse import urlencode

    from playwright.sync_api import sync_playwright

    from tests.dashboard.test_dashboard import HOSTILE_LINK_VALUE

    settings, _ = create_database(clickhouse_service, seed_events=300)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LABELPULSE_")}, **settings.to_env()}
    query = urlencode({"range": HOSTILE_LINK_VALUE, "project": HOSTILE_LINK_VALUE})
    with served_dashboard(env, tmp_path / "dashboard.log") as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(f"{url}/project?{query}", wait_until="networkidle")
            page.get_by_text("Link ignored in part").first.wait_for(timeout=30_000)
            page.get_by_role("heading", name="Project:").first.wait_for(timeout=30_000)
            for where in ('[data-testid="stSidebar"] [data-testid="stAlert"]', "h1, h2"):
                shown = page.locator(where).filter(has_text="click me").first
                assert "[click me](http://evil.example/x) ![pixel](http://evil.example/p.png)" in shown.inner_text()
                assert "<b>bold</b> $x^2$ :red[red] **strong** www.evil.example" in shown.inner_text()
                # (a header's own anchor link is Streamlit's: href="#…")
                for element in ("a:not([href^='#'])", "img", "b", "strong", ".katex", "span[style]"):
                    assert shown.locator(element).count() == 0, (where, element, shown.inner_html())
            outward = page.locator("a[href*='evil']:not([href^='#']), img[src*='evil']")
            assert outward.count() == 0, [outward.nth(i).evaluate("e => e.outerHTML") for i in range(outward.count())]
        finally:
            browser.close()
