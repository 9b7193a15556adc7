"""The dashboard in a real headless Chromium: every view loads with its charts and no error element."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.alert_rules import DEFAULT_RULES
from tests.support.browser import capture_views, chromium, served_dashboard
from tests.support.dashboard import create_database, evaluator_metrics
from tests.support.services import ClickHouseService

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

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

    from tests.support.dashboard import HOSTILE_LINK_VALUE

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


def _overflowing_tables(page: Page) -> list[list[int]]:
    """[scrollWidth, clientWidth] of every table whose columns do not fit its width (a horizontal scrollbar)."""
    return page.evaluate(
        """() => [...document.querySelectorAll('[data-testid="stDataFrame"] .dvn-scroller')]
            .map(s => [s.scrollWidth, s.clientWidth]).filter(([scroll, client]) => scroll > client)"""
    )


def _cells(table: Locator, columns: int) -> list[list[str]]:
    """The table's rows as the grid's accessible cells hold them (raw values; '' where missing)."""
    texts = table.locator("td").all_inner_texts()
    return [texts[i : i + columns] for i in range(0, len(texts), columns)]


def _colours(png: bytes) -> dict[str, int]:
    """How many clearly green, red and blue pixels an image holds."""
    import io

    from PIL import Image

    counts = {"green": 0, "red": 0, "blue": 0}
    for r, g, b in Image.open(io.BytesIO(png)).convert("RGB").get_flattened_data():
        if g > r + 50 and g > b + 20:
            counts["green"] += 1
        elif r > g + 80 and r > b + 80:
            counts["red"] += 1
        elif b > r + 80 and b > g + 30:
            counts["blue"] += 1
    return counts


def test_tiles_tables_bars_link_warnings_and_rules_in_chromium_at_1440_px(
    clickhouse_service: ClickHouseService, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    settings, _ = create_database(clickhouse_service, seed_events=3000)
    with evaluator_metrics(settings) as metrics_url:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("LABELPULSE_")},
            **settings.to_env(),
            "LABELPULSE_ALERTS_METRICS_URL": metrics_url,
            "LABELPULSE_DASHBOARD_REFRESH_S": "0",  # a table mid-refresh is redrawn: measure still pages
        }
        with served_dashboard(env, tmp_path / "dashboard.log") as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1440, "height": 1800})
                tables = page.locator('[data-testid="stDataFrame"]')
                for path, count in {"": 1, "annotators": 1, "project": 1, "pipeline": 1, "alerts": 3}.items():
                    page.goto(f"{url}/{path}", wait_until="networkidle")
                    tables.nth(count - 1).locator("td").first.wait_for(state="attached", timeout=30_000)
                    assert _overflowing_tables(page) == [], f"/{path}: a table is wider than the page"
                    if path == "annotators":  # missing values are empty cells drawn as "–", never the text None
                        assert "None" not in tables.first.locator("td").all_inner_texts()
                    if path == "alerts":
                        page.get_by_role("heading", name="Rules").wait_for()
                        loaded = f"{DEFAULT_RULES} rules loaded, {DEFAULT_RULES} evaluated so far."
                        assert page.get_by_text(loaded).is_visible()

                page.goto(f"{url}/?project=nope&project=retail-products", wait_until="networkidle")
                warning = page.locator('[data-testid="stSidebar"] [data-testid="stAlert"]').filter(has_text="nope")
                assert "No data for project nope from the link" in warning.inner_text()
                page.locator('[data-testid="stMetricLabel"]').filter(has_text="range average").wait_for(timeout=30_000)
                labels = page.locator('[data-testid="stMetricLabel"]').all_inner_texts()
                assert {"Annotations/h · last hour", "Annotations/h · range average"} <= set(labels)

                page.goto(f"{url}/", wait_until="networkidle")
                overview = tables.first
                overview.locator("td").first.wait_for(state="attached", timeout=30_000)
                rows = _cells(overview, 10)
                first_pass, gold = [float(row[5]) for row in rows], [float(row[7]) for row in rows if row[7]]
                colours = _colours(overview.screenshot())
                assert colours["blue"] > 0  # acceptance and agreement: no target
                missed = any(v < 0.5 for v in first_pass) or any(v < 0.7 for v in gold)
                met = any(v >= 0.5 for v in first_pass) or any(v >= 0.7 for v in gold)
                assert (colours["red"] > 0, colours["green"] > 0) == (missed, met), (colours, first_pass, gold)
            finally:
                browser.close()
