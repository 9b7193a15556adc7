"""The Pipeline view's banners from `labelpulse up`'s status file: a part down or flapping is
shown with why and what comes next, read from exactly what the supervisor writes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.runtime_status import Banner, banners, read_status
from labelpulse.net import free_port
from schema.client import ClickHouseSettings
from tests.support.fleet import Fleet

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
WALL = 1_800_000_000


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    fleet = Fleet(tmp_path)
    fleet.launch(
        fleet.service("ClickHouse"),
        fleet.service("broker", ready=True),
        fleet.service("worker", restart_after=("broker",)),
        fleet.service("dashboard"),
    )
    return fleet


def shown(fleet: Fleet) -> list[Banner]:
    return banners(read_status(fleet.status_path), now=WALL + fleet.clock.now)


def test_nothing_is_shown_while_every_part_is_up(fleet: Fleet) -> None:
    fleet.run_for(1)
    assert shown(fleet) == []


def test_a_part_that_is_down_says_how_it_ended_when_it_is_tried_again_and_where_its_log_is(fleet: Fleet) -> None:
    with (fleet.tmp_path / "worker.log").open("a") as log:
        log.write("KafkaTimeoutError: no answer\n")
    fleet.current("worker").die(1)
    fleet.run_for(0.5)
    assert shown(fleet) == [
        Banner(
            "error",
            "**worker is down**: it exited with code 1 (0 s ago); next try in 1 s (1 failure in 5 min, 0 restarts "
            "since `up` started). Last error: `KafkaTimeoutError: no answer`. "
            f"Log: `{fleet.tmp_path}/worker.log`.",
        )
    ]


def test_the_parts_waiting_for_the_broker_say_so(fleet: Fleet) -> None:
    fleet.current("broker").die(-9)
    fleet.ready["broker"] = False
    fleet.run_for(0.5)
    texts = [banner.text for banner in shown(fleet)]
    assert texts[0].startswith("**broker is down**: it was killed by SIGKILL")
    assert texts[1] == "**worker is stopped until broker is back** (it depends on it)."


def test_a_part_that_keeps_failing_is_a_warning_once_it_is_up_again(fleet: Fleet) -> None:
    for _ in range(3):
        fleet.current("dashboard").die(1)
        fleet.run_for(10)
    (banner,) = shown(fleet)
    assert banner.level == "warning"
    assert banner.text.startswith(
        "**dashboard keeps failing** (3 failures in 5 min, 3 restarts since `up` started); it is up again for now."
    )


def test_a_stale_or_missing_or_broken_file_shows_nothing(fleet: Fleet, tmp_path: Path) -> None:
    fleet.current("worker").die(1)
    fleet.run_for(0.5)
    assert banners(read_status(fleet.status_path), now=WALL + fleet.clock.now + 60) == []
    assert read_status(tmp_path / "absent.json") is None
    (tmp_path / "broken.json").write_text('{"components": [')
    assert read_status(tmp_path / "broken.json") is None


def test_the_pipeline_view_shows_a_part_down_even_while_clickhouse_is_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    status = {
        "updated_at": time.time(),
        "window_s": 300,
        "components": [
            {"name": "ClickHouse", "state": "waiting", "restarts": 2, "exits_in_window": 3, "flapping": True,
             "last_exit": "was killed by SIGKILL", "last_exit_code": -9, "last_exit_at": time.time() - 4,
             "last_error": None,
             "next_start_at": time.time() + 8, "waiting_for": None, "log": "/tmp/x/clickhouse.log"},
        ],
    }  # fmt: skip
    (tmp_path / "status.json").write_text(json.dumps(status))
    for key, value in ClickHouseSettings(port=free_port()).to_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LABELPULSE_DATA_DIR", str(tmp_path))
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/pipeline.py").run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [error.value for error in at.error]
    assert errors[0].startswith("**ClickHouse is down**: it was killed by SIGKILL ")
    assert "; next try in " in errors[0] and "(3 failures in 5 min, 2 restarts since `up` started)" in errors[0]
    assert any("ClickHouse is not answering" in error for error in errors[1:])
