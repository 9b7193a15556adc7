"""A real Label Studio 1.23 sends its webhooks to `labelpulse ingest`; a real worker stores them in ClickHouse;
the metrics the dashboard reads (throughput, skips, handle time, gold accuracy, agreement) equal those derived
from what Label Studio's own API reports.

Needs Label Studio in its own virtualenv (it pins many libraries): `python3 -m venv /opt/ls && /opt/ls/bin/pip
install 'label-studio==1.23.*'`, then LABELPULSE_TEST_LABEL_STUDIO=/opt/ls/bin/label-studio (or `label-studio`
on PATH). Skipped without it. Its first start migrates a fresh SQLite database: allow a few minutes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy
import pandas as pd
import pytest
from clickhouse_connect.driver.client import Client

from ingest.settings import IngestSettings
from labelpulse.broker import BrokerSettings
from labelpulse.child_processes import spawn, terminate
from labelpulse.net import free_port
from schema import queries
from tests.support.ingest import SECRET, Served
from tests.support.services import WorkerHarness, tool_missing, wait_for

pytestmark = [pytest.mark.labelstudio, pytest.mark.broker, pytest.mark.clickhouse]
TOKEN = "lpadmintoken0123456789"  # the admin's legacy API token, set at the first start
CHOICES = """<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text" choice="single">
    <Choice value="Positive"/><Choice value="Negative"/><Choice value="Neutral"/>
  </Choices>
</View>"""


@dataclass
class LabelStudio:
    url: str

    def call(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            self.url + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Token {TOKEN}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                text = response.read()
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{method} {path}: {error.code} {error.read()[:500]!r}") from None
        return json.loads(text) if text else None


@pytest.fixture
def label_studio(tmp_path: Path) -> Iterator[LabelStudio]:
    executable = os.environ.get("LABELPULSE_TEST_LABEL_STUDIO") or shutil.which("label-studio")
    if not executable:
        tool_missing("Label Studio is not installed (set LABELPULSE_TEST_LABEL_STUDIO; see this file's docstring)")
    port = free_port()
    env = {
        **os.environ,
        "LABEL_STUDIO_BASE_DATA_DIR": str(tmp_path / "label-studio"),
        "DJANGO_DB": "sqlite",
        "SSRF_PROTECTION_ENABLED": "false",  # else it refuses webhooks to loopback
        "LATEST_VERSION_CHECK": "false",
        "COLLECT_ANALYTICS": "false",
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "WEBHOOK_TIMEOUT": "10",  # it sends once and never retries: give a loaded test machine time
    }
    log = tmp_path / "label-studio.log"
    command = [executable, "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port)]
    command += ["--username", "admin@example.com", "--password", "admin-pass-123", "--user-token", TOKEN]
    process = spawn(command, log, env)
    studio = LabelStudio(f"http://127.0.0.1:{port}")

    def healthy() -> bool:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"{studio.url}/health", timeout=5) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    try:
        wait_for(healthy, 600, "Label Studio answering (a first start migrates its database)")
        yield studio
    finally:
        terminate(process, timeout_s=30)


def choice(value: str) -> list[dict[str, Any]]:
    return [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": [value]}}]


def test_what_label_studio_reports_is_what_labelpulse_counts(
    label_studio: LabelStudio, harness: WorkerHarness, migrated: Client, kafka: BrokerSettings
) -> None:
    harness.start()
    ingest = Served(
        IngestSettings(kafka=harness.kafka, port=free_port(), label_studio_secret=SECRET, idempotence=False)
    )
    try:
        studio = label_studio
        users = {
            name: studio.call("POST", "/api/users/", {"email": f"{name}@example.com", "username": name})["id"]
            for name in ("alice", "bob", "carol")
        }
        project = studio.call(
            "POST",
            "/api/projects/",
            {"title": "e2e", "label_config": CHOICES, "maximum_annotations": 3, "overlap_cohort_percentage": 100},
        )["id"]
        studio.call(
            "POST",
            "/api/webhooks/",
            {
                "project": project,
                "url": f"{ingest.url}/v1/sources/label-studio",
                "send_payload": True,
                "send_for_all_actions": True,
                "headers": {"X-LabelPulse-Secret": SECRET},
            },
        )
        studio.call("POST", f"/api/projects/{project}/import", [{"data": {"text": f"item {n}"}} for n in range(4)])
        tasks = sorted(t["id"] for t in studio.call("GET", f"/api/tasks/?project={project}&page_size=100")["tasks"])
        work = [  # (task, who, label, lead time s, skipped, ground truth)
            (tasks[0], "alice", "Positive", 12.5, False, False),
            (tasks[0], "bob", "Positive", 8.25, False, False),
            (tasks[0], "carol", "Negative", 30.0, False, False),
            (tasks[1], "alice", "Negative", 5.0, False, False),
            (tasks[1], "bob", "Negative", 2.0, True, False),
            (tasks[1], "carol", "Negative", 7.5, False, False),
            (tasks[2], "carol", "Neutral", 3.0, False, True),  # the gold answer of task 3
            (tasks[2], "alice", "Positive", 9.0, False, False),
            (tasks[2], "bob", "Neutral", 4.0, False, False),
        ]
        made = {}
        for task, who, label, lead_time, skipped, gold in work:
            body = {"result": [] if skipped else choice(label), "completed_by": users[who], "lead_time": lead_time}
            query = "?was_cancelled=1" if skipped else ""
            body |= {"was_cancelled": True} if skipped else {}
            body |= {"ground_truth": True} if gold else {}
            made[(task, who)] = studio.call("POST", f"/api/tasks/{task}/annotations/{query}", body)["id"]

        # What Label Studio reports, before anything is edited or deleted (edits and deletions never take back
        # work done): its project counters and every annotation with its author, lead time, skip and ground truth.
        reported = studio.call("GET", f"/api/tasks/?project={project}&fields=all&page_size=100")["tasks"]
        counters = studio.call("GET", f"/api/projects/{project}/")
        expected = what_label_studio_reports(
            reported, counters, {str(user_id): name for name, user_id in users.items()}
        )

        # An edit and a deletion: rework counted, work done not un-counted.
        studio.call(
            "PATCH", f"/api/annotations/{made[(tasks[0], 'carol')]}/", {"result": choice("Positive"), "lead_time": 41.0}
        )
        studio.call("DELETE", f"/api/annotations/{made[(tasks[1], 'carol')]}/")

        # The same metrics as the dashboard reads them (schema.queries), once the workers have stored everything.
        now = datetime.now(UTC)
        filters = queries.Filters(now - timedelta(days=1), now + timedelta(days=1), projects=(str(project),))
        names = {str(user_id): name for name, user_id in users.items()}

        def stored(event_type: str) -> int:
            return int(migrated.command(f"SELECT count() FROM events WHERE event_type = '{event_type}'"))

        wait_for(lambda: stored("annotation_deleted") == 1 and stored("annotation_updated") == 1, 120, "all stored")
        with contextlib.suppress(AssertionError):  # the derived tables follow the events: compare once they are in
            wait_for(lambda: what_labelpulse_counts(migrated, filters, names) == expected, 60, "the same metrics")
        assert what_labelpulse_counts(migrated, filters, names) == expected
        rework = migrated.command(
            "SELECT sum(annotations_updated), sum(annotations_deleted) FROM project_throughput_minute"
        )
        assert [int(n) for n in rework] == [1, 1]
    finally:
        ingest.stop()


def what_label_studio_reports(
    tasks: list[dict[str, Any]], counters: dict[str, Any], names: dict[str, str]
) -> dict[str, Any]:
    """The metrics from Label Studio's answers: its project counters for throughput and skips; per annotator,
    from its annotations, submissions, skips and lead times (handle time: median and 90th percentile, linear
    between ranks as metric_definitions.exact_quantile defines them), answers on the ground-truth task and how
    many equal its ground truth; agreement from each task's answers (ground truth is the answer key, not an
    answer), as the share of agreeing ordered pairs of annotators."""
    annotations = [a for task in tasks for a in task["annotations"]]
    answers = [a for a in annotations if not a["was_cancelled"] and not a["ground_truth"]]
    per_annotator: dict[str, dict[str, Any]] = {}
    for name in sorted({names[str(a["completed_by"])] for a in annotations if not a["ground_truth"]}):
        mine = [a for a in answers if names[str(a["completed_by"])] == name]
        lead_ms = [round(a["lead_time"] * 1000) for a in mine]
        per_annotator[name] = {
            "annotations": len(mine),
            "skips": sum(a["was_cancelled"] and names[str(a["completed_by"])] == name for a in annotations),
            "handle_p50_s": round(float(numpy.quantile(lead_ms, 0.5)) / 1000, 6) if lead_ms else None,
            "handle_p90_s": round(float(numpy.quantile(lead_ms, 0.9)) / 1000, 6) if lead_ms else None,
        }
    gold_answers: Counter[str] = Counter()
    gold_correct: Counter[str] = Counter()
    raters = agreeing = tasks_rated = ratings = 0
    for task in tasks:
        truth = [choice_of(a) for a in task["annotations"] if a["ground_truth"] and not a["was_cancelled"]]
        task_answers = [a for a in task["annotations"] if not a["was_cancelled"] and not a["ground_truth"]]
        for a in task_answers if truth else []:
            gold_answers[names[str(a["completed_by"])]] += 1
            gold_correct[names[str(a["completed_by"])]] += choice_of(a) == truth[0]
        labels = [choice_of(a) for a in task_answers]
        if len(labels) >= 2:
            tasks_rated, ratings = tasks_rated + 1, ratings + len(labels)
            raters += len(labels) * (len(labels) - 1)
            agreeing += sum(n * (n - 1) for n in Counter(labels).values())
    return {
        "throughput": {
            "annotations": counters["useful_annotation_number"],
            "skips": counters["skipped_annotations_number"],
        },
        "annotators": per_annotator,
        "gold": {
            name: (gold_answers[name], gold_correct[name], gold_correct[name] / gold_answers[name])
            for name in gold_answers
        },
        "agreement": {"tasks": tasks_rated, "ratings": ratings, "percent_agreement": round(agreeing / raters, 9)},
    }


def what_labelpulse_counts(client: Client, filters: queries.Filters, names: dict[str, str]) -> dict[str, Any]:
    """The same metrics through the dashboard's queries."""

    def frame(query: queries.Query) -> pd.DataFrame:
        return client.query_df(query.sql, parameters=query.parameters)

    totals = frame(queries.project_totals(filters))
    output = frame(queries.annotator_output(filters))
    gold = frame(queries.gold_totals(filters, by="annotator_id"))
    agreement = frame(queries.agreement(filters))

    def seconds(value: Any) -> float | None:
        return None if pd.isna(value) else round(float(value), 6)

    return {
        "throughput": {
            "annotations": int(totals["annotations"].sum()),
            "skips": int(totals["skips"].sum()),
        },
        "annotators": {
            names[row.annotator_id]: {
                "annotations": int(row.annotations),
                "skips": int(row.skips),
                "handle_p50_s": seconds(row.handle_p50_s),
                "handle_p90_s": seconds(row.handle_p90_s),
            }
            for row in output.itertuples()
        },
        "gold": {
            names[row.annotator_id]: (int(row.gold_answers), int(row.gold_correct), float(row.gold_accuracy))
            for row in gold.itertuples()
        },
        "agreement": {
            "tasks": int(agreement["tasks"].sum()),
            "ratings": int(agreement["ratings"].sum()),
            "percent_agreement": round(float(agreement["percent_agreement"].sum()), 9) if len(agreement) else None,
        },
    }


def choice_of(annotation: dict[str, Any]) -> str:
    return str(annotation["result"][0]["value"]["choices"][0])
