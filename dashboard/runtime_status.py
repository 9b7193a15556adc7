"""What `labelpulse up` says about its parts, as banners for the Pipeline view.

`up`'s supervisor (labelpulse/runtime.py) keeps `<LABELPULSE_DATA_DIR>/status.json` current,
rewriting it at least every 5 s: per part its state (starting, up, waiting, stopped), restarts,
exits in the last window and whether that makes it flapping, how it last ended and its error line,
when the next try is, and its log. Reading it is pure (a document in, banners out), so a part
that is down is shown even while ClickHouse itself is the part that is down.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.env import env_str

# Older than this, the file is from an `up` that is gone (or the dashboard runs elsewhere).
STALE_AFTER_S = 30.0


@dataclass(frozen=True)
class Banner:
    level: str  # "error": a part is down; "warning": it is up but keeps failing
    text: str  # Markdown


def status_path(env: Mapping[str, str] = os.environ) -> Path:
    return Path(env_str(env, "DATA_DIR", ".labelpulse")) / "status.json"


def read_status(path: Path) -> dict[str, Any] | None:
    """The document, or None without one (no `up` here) or while it cannot be read."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def banners(document: Mapping[str, Any] | None, now: float) -> list[Banner]:
    """One banner per part that is down or flapping; none for a missing or stale document."""
    if not document or now - float(document.get("updated_at", 0)) > STALE_AFTER_S:
        return []
    minutes = float(document.get("window_s", 300)) / 60
    found = []
    for part in document.get("components", []):
        name, state = part["name"], part["state"]
        log = f" Log: `{part['log']}`." if part.get("log") else ""
        error = f" Last error: `{part['last_error']}`." if part.get("last_error") else ""
        often = (
            f"{_count(part['exits_in_window'], 'failure')} in {minutes:g} min, "
            f"{_count(part['restarts'], 'restart')} since `up` started"
        )
        if state == "waiting" and part.get("waiting_for"):
            waiting_for = part["waiting_for"]
            found.append(Banner("error", f"**{name} is stopped until {waiting_for} is back** (it depends on it)."))
        elif state in ("waiting", "starting"):
            when = (
                f"next try in {max(0, float(part['next_start_at']) - now):.0f} s"
                if part.get("next_start_at")
                else "starting again"
            )
            ended = part.get("last_exit") or "stopped"
            ago = f" ({now - float(part['last_exit_at']):.0f} s ago)" if part.get("last_exit_at") else ""
            found.append(Banner("error", f"**{name} is down**: it {ended}{ago}; {when} ({often}).{error}{log}"))
        elif state == "up" and part.get("flapping"):
            found.append(Banner("warning", f"**{name} keeps failing** ({often}); it is up again for now.{error}{log}"))
    return found


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
