"""Where firing and resolved alerts go: Alertmanager's v2 API, and optionally a plain webhook.

The evaluator sends what Prometheus sends: every firing alert again each resend interval with
`endsAt` a few intervals ahead (so Alertmanager resolves it by itself if the evaluator dies),
and a resolved alert with `endsAt` = when it resolved. Grouping, silences, inhibition and
routing are Alertmanager's job. The webhook gets Alertmanager's own webhook payload, so anything
that already reads Alertmanager webhooks reads ours.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


class SendError(Exception):
    """A receiver did not take the alerts; the message says which and why."""


@dataclass(frozen=True)
class Notice:
    """One alert as a receiver sees it."""

    fingerprint: str
    labels: dict[str, str]  # alertname included
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime
    generator_url: str
    resolved: bool

    def to_alertmanager(self) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "annotations": self.annotations,
            "startsAt": _iso(self.starts_at),
            "endsAt": _iso(self.ends_at),
            "generatorURL": self.generator_url,
        }


class Receiver(Protocol):
    name: str

    def send(self, notices: list[Notice]) -> None: ...


class Alertmanager:
    name = "alertmanager"

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = f"{url.rstrip('/')}/api/v2/alerts"
        self.timeout_s = timeout_s

    def send(self, notices: list[Notice]) -> None:
        _post(self.url, [notice.to_alertmanager() for notice in notices], self.timeout_s)


class Webhook:
    name = "webhook"

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url
        self.timeout_s = timeout_s

    def send(self, notices: list[Notice]) -> None:
        alerts = [
            {"status": "resolved" if n.resolved else "firing", "fingerprint": n.fingerprint, **n.to_alertmanager()}
            for n in notices
        ]
        payload = {
            "version": "4",
            "receiver": "labelpulse",
            "status": "firing" if any(not n.resolved for n in notices) else "resolved",
            "alerts": alerts,
        }
        _post(self.url, payload, self.timeout_s)


def _post(url: str, payload: Any, timeout_s: float) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")[:300]
        raise SendError(f"{url} answered {exc.code} {exc.reason}: {body}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SendError(f"cannot reach {url}: {reason}") from exc


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
