"""Screenshots of every dashboard view for docs/: `python -m dashboard.screenshots`.

Run it beside a running system with data — `./dev up` (or `labelpulse up`), whose simulator fills every view
within a few minutes. It loads each view of that dashboard in headless Chromium (Debian's `chromium`, driven
by Playwright, as the browser tests do), waits for its charts, refuses a view showing a Streamlit error, and
saves one full-page PNG per view, 1440 px wide, in docs/screenshots/.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path

from dashboard.settings import DashboardSettings

# url path -> the view's title (its heading, and the PNG's name)
VIEWS = {"": "Overview", "project": "Project", "annotators": "Annotators", "pipeline": "Pipeline", "alerts": "Alerts"}
CHART = ".js-plotly-plot .main-svg"
# What shows that a view has drawn: a chart, except where charts depend on what happened (alerts).
DRAWN = {"alerts": '[data-testid="stMetric"]'}
DOCS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


class ScreenshotError(RuntimeError):
    """What is missing for screenshots, said so that the user can fix it."""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def capture_views(base_url: str, out_dir: Path, *, query: str = "", width: int = 1440) -> dict[str, Path]:
    """Load every view, wait for its charts, refuse Streamlit error elements, and save a screenshot of each."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        raise ScreenshotError("Playwright is not installed: .venv/bin/pip install -e '.[dev]'") from error
    executable = chromium()
    if executable is None:
        raise ScreenshotError("no chromium on PATH: sudo apt-get install chromium")
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
                page.wait_for_timeout(1500)  # let the remaining charts and tables draw
                errors = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
                if errors.count():
                    raise ScreenshotError(f"/{path} shows an error: {errors.first.inner_text()[:500]}")
                shot = out_dir / f"{title.lower()}.png"
                page.screenshot(path=str(shot), full_page=True)
                shots[title] = shot
        finally:
            browser.close()
    return shots


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dashboard.screenshots",
        description="Save a 1440 px wide screenshot of every dashboard view, from a running dashboard. Start "
        "the system with `./dev up` first and give its simulator a few minutes to fill every view.",
    )
    parser.add_argument(
        "--url",
        default=DashboardSettings.from_env().url,
        help="the running dashboard (default: where `labelpulse up` serves it, LABELPULSE_DASHBOARD_HOST/_PORT)",
    )
    parser.add_argument("--out", type=Path, default=DOCS, help="where the PNGs go (default: docs/screenshots)")
    parser.add_argument("--width", type=int, default=1440, help="browser width in px (default 1440)")
    parser.add_argument(
        "--query", default="?range=1h&refresh=0", help="filters for every view, as in a link (default: last hour)"
    )
    args = parser.parse_args(argv)
    if not _answers(f"{args.url}/_stcore/health"):
        print(
            f"screenshots: no dashboard answers at {args.url}. Start the system with `./dev up` (its simulator "
            "sends demo data), wait a few minutes, and run this again; or name another with --url.",
            file=sys.stderr,
        )
        return 1
    try:
        shots = capture_views(args.url.rstrip("/"), args.out, query=args.query, width=args.width)
    except ScreenshotError as error:
        print(f"screenshots: {error}", file=sys.stderr)
        return 1
    for title, path in shots.items():
        print(f"{title:<11} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
