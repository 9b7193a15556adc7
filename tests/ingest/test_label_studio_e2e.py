"""A real Label Studio 1.23 sends its webhooks to `labelpulse ingest`; a real worker stores them in ClickHouse;
what LabelPulse then counts equals what Label Studio's own API reports.

Needs Label Studio in its own virtualenv (it pins many libraries): `python3 -m venv /opt/ls && /opt/ls/bin/pip
install 'label-studio==1.23.*'`, then LABELPULSE_TEST_LABEL_STUDIO=/opt/ls/bin/label-studio (or `label-studio`
on PATH). Skipped without it. Its first start migrates a fresh SQLite database: allow a few minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from ingest.settings import IngestSettings
from labelpulse.broker import BrokerSettings
from labelpulse.child_processes import spawn, terminate
from labelpulse.net import free_port
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

        # What Label Studio reports, before anything is edited or deleted.
        reported = studio.call("GET", f"/api/tasks/?project={project}&fields=all&page_size=100")["tasks"]
        annotations = [a for task in reported for a in task["annotations"]]
        by_id = {user_id: name for name, user_id in users.items()}
        submitted = Counter(
            by_id[a["completed_by"]] for a in annotations if not a["was_cancelled"] and not a["ground_truth"]
        )
        skipped = Counter(by_id[a["completed_by"]] for a in annotations if a["was_cancelled"])
        handle_ms = Counter()
        for a in annotations:
            if not a["was_cancelled"] and not a["ground_truth"]:
                handle_ms[by_id[a["completed_by"]]] += round(a["lead_time"] * 1000)
        counters = studio.call("GET", f"/api/projects/{project}/")
        assert counters["skipped_annotations_number"] == sum(skipped.values())

        # An edit and a deletion: rework counted, work done not un-counted.
        studio.call(
            "PATCH", f"/api/annotations/{made[(tasks[0], 'carol')]}/", {"result": choice("Positive"), "lead_time": 41.0}
        )
        studio.call("DELETE", f"/api/annotations/{made[(tasks[1], 'carol')]}/")

        def stored(event_type: str) -> int:
            return int(migrated.command(f"SELECT count() FROM events WHERE event_type = '{event_type}'"))

        wait_for(lambda: stored("annotation_deleted") == 1 and stored("annotation_updated") == 1, 120, "all stored")
        name_of = {str(user_id): name for name, user_id in users.items()}

        def per_annotator(sql: str) -> Counter[str]:
            return Counter({name_of[annotator]: int(n) for annotator, n in migrated.query(sql).result_rows})

        events = "SELECT annotator_id, count() FROM events WHERE event_type = '{}' GROUP BY annotator_id"
        assert per_annotator(events.format("annotation_submitted")) == submitted
        assert per_annotator(events.format("annotation_skipped")) == skipped
        handle_times = "SELECT annotator_id, sum(handle_time_ms) FROM handle_times GROUP BY annotator_id"
        assert per_annotator(handle_times) == handle_ms
        assert stored("task_created") == counters["task_number"] + counters["ground_truth_number"]

        # Agreement on each task from the first answers, as the test computes it from Label Studio's annotations.
        first_answers: dict[str, Counter[str]] = {}
        for task in reported:
            labels = [
                a["result"][0]["value"]["choices"][0]
                for a in task["annotations"]
                if not a["was_cancelled"] and not a["ground_truth"]
            ]
            if len(labels) >= 2:
                first_answers[str(task["id"])] = Counter(labels)
        got = {
            task_id: Counter(dict(label_counts))
            for task_id, label_counts in migrated.query("SELECT task_id, label_counts FROM task_agreement").result_rows
        }
        assert got == first_answers
        gold = migrated.query("SELECT annotator_id, label, correct FROM gold_answers ORDER BY annotator_id").result_rows
        assert sorted((name_of[a], label, bool(c)) for a, label, c in gold) == [
            ("alice", "Positive", False),
            ("bob", "Neutral", True),
        ]
        rework = migrated.command(
            "SELECT sum(annotations_updated), sum(annotations_deleted) FROM project_throughput_minute"
        )
        assert [int(n) for n in rework] == [1, 1]
    finally:
        ingest.stop()
