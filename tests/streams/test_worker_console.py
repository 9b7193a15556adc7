"""What the worker writes to its output: plain log lines in a file, Faust's spinner only on a terminal."""

from __future__ import annotations

import io
from pathlib import Path

from streams.app import create_app
from streams.settings import WorkerSettings


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_worker_has_no_spinner_when_its_output_is_a_file(tmp_path: Path) -> None:
    app = create_app(WorkerSettings.from_env({"LABELPULSE_DATA_DIR": str(tmp_path)}))
    worker = app.Worker(loglevel="warn", stdout=io.StringIO())
    assert worker.spinner is None, "cursor and backspace codes would fill worker.log under `up`"


def test_the_worker_keeps_its_spinner_on_a_terminal(tmp_path: Path) -> None:
    app = create_app(WorkerSettings.from_env({"LABELPULSE_DATA_DIR": str(tmp_path)}))
    worker = app.Worker(loglevel="warn", stdout=Terminal())
    assert worker.spinner is not None
