"""Each component's service entry: it is given its settings, built once per process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams.settings import WorkerSettings
from tests.conftest import REPO_ROOT


def test_importing_the_worker_app_builds_nothing_yet_faust_still_finds_the_app(tmp_path: Path) -> None:
    check = """
import os, streams.settings
built = []
from_env = streams.settings.WorkerSettings.from_env
streams.settings.WorkerSettings.from_env = lambda env=os.environ: built.append(1) or from_env(env)
import streams.app
assert built == [] and "app" not in vars(streams.app), "importing streams.app built settings or an app"
from faust.cli.base import find_app
app = find_app("streams.app")
assert built == [1] and find_app("streams.app") is app, "faust -A streams.app builds one app, once"
"""
    env = {**os.environ, "LABELPULSE_DATA_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr


def test_labelpulse_worker_builds_its_settings_once_and_the_app_from_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from labelpulse.cli import main
    from streams import service

    built: list[WorkerSettings] = []
    from_env = WorkerSettings.from_env
    monkeypatch.setattr(WorkerSettings, "from_env", lambda env=os.environ: built.append(from_env(env)) or built[-1])
    monkeypatch.setenv("LABELPULSE_WORKER_METRICS_PORT", "0")
    monkeypatch.setenv("LABELPULSE_DATA_DIR", str(tmp_path))
    apps: list[WorkerSettings] = []

    class App:
        def main(self) -> None:
            raise SystemExit(0)

    async def create_topics(kafka: object) -> dict[str, int]:
        return {}

    monkeypatch.setattr(service, "create_topics", create_topics)
    monkeypatch.setattr(service, "create_app", lambda settings: apps.append(settings) or App())
    monkeypatch.setattr(sys, "argv", sys.argv[:])  # Faust's command line reads the worker's arguments there
    with pytest.raises(SystemExit):
        main(["worker"])
    assert len(built) == 1 and apps == built
