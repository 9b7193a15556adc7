"""Every benchmark under bench/ runs to its end at a tiny size, so none can rot unnoticed (bench/dashboard.py did).

Each benchmark starts its own embedded servers on free ports and keeps its files in a temporary folder, here
the test's own. The figures a tiny run prints mean nothing; that it prints them all does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.services import REPO_ROOT

SERVICES = (pytest.mark.bench, pytest.mark.clickhouse)
BENCHMARKS = [
    pytest.param(
        "ingest.py",
        ["--events", "2000", "--freshness-seconds", "3", "--rate", "200"],
        "summary: ceiling",
        marks=(*SERVICES, pytest.mark.broker),
    ),
    pytest.param(
        "processor.py",
        ["--events", "2000", "--batch", "500", "--repeat", "1"],
        "summary: the processor takes",
        marks=pytest.mark.bench,
    ),
    pytest.param(
        "dashboard.py",
        ["--events", "3000", "--base", "3000", "--repeat", "1"],
        "views/pipeline.py",
        marks=SERVICES,
    ),
    pytest.param(
        "ingest_http.py",
        ["--events", "2000", "--batch", "500", "--singles", "50", "--webhooks", "20"],
        "summary: direct",
        marks=(pytest.mark.bench, pytest.mark.broker),
    ),
    pytest.param(
        "api.py",
        [
            "--events",
            "3000",
            "--base",
            "3000",
            "--clients",
            "1,3",
            "--calls",
            "6",
            "--watchers",
            "3",
            "--watch-seconds",
            "2",
        ],
        "summary: ",
        marks=SERVICES,
    ),
    pytest.param(
        "soak.py",
        ["--minutes", "0.25", "--every", "3", "--rate", "200"],
        "summary (second half of the run",
        marks=(*SERVICES, pytest.mark.broker),
    ),
]


@pytest.mark.parametrize(("script", "arguments", "last_part"), BENCHMARKS)
def test_the_benchmark_runs_to_its_end_at_a_tiny_size(
    script: str, arguments: list[str], last_part: str, tmp_path: Path
) -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("LABELPULSE_")}
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / script), *arguments],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        env={**environment, "TMPDIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert last_part in result.stdout, result.stdout[-2000:]
