"""Dashboard sign-in and project scoping, with Streamlit's AppTest against the embedded ClickHouse:
a project lead signs in and every view holds only their projects' numbers — also when a link
asks for another project, since the scope is applied to every query, not to the filters."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from config.env import ConfigError
from dashboard.auth import hash_password, password_matches
from dashboard.settings import DashboardSettings
from schema.client import ClickHouseSettings, connect
from tests.support.dashboard import APP, count_of, create_database, metric
from tests.support.references import expected_from
from tests.support.services import ClickHouseService

pytestmark = pytest.mark.clickhouse
PAGES = ("views/overview.py", "views/project.py", "views/annotators.py", "views/pipeline.py", "views/alerts.py")
LEAD_PROJECT = "street-scenes"


@pytest.fixture(scope="module")
def seeded(clickhouse_service: ClickHouseService) -> Iterator[tuple[ClickHouseSettings, pd.DataFrame]]:
    settings, values = create_database(clickhouse_service, seed_events=2000)
    events, _ = expected_from(values)
    assert events["project_id"].nunique() > 1
    yield settings, events
    connect(clickhouse_service.settings, database="default").command(f"DROP DATABASE {settings.database} SYNC")


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    path = tmp_path / "users.yml"
    path.write_text(
        "users:\n"
        f"  - {{name: lead, projects: [{LEAD_PROJECT}], password_hash: '{hash_password('lead-password')}'}}\n"
        f"  - {{name: ops, projects: all, password_hash: '{hash_password('ops-password')}'}}\n"
    )
    return path


def signed_in_app(
    settings: ClickHouseSettings,
    users_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    user: str,
    password: str,
    **params: str,
) -> AppTest:
    for key, value in settings.to_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LABELPULSE_DASHBOARD_CACHE_TTL_S", "5")  # cached results must not cross scopes either
    monkeypatch.setenv("LABELPULSE_DASHBOARD_AUTH", "password")
    monkeypatch.setenv("LABELPULSE_DASHBOARD_USERS_FILE", str(users_file))
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.metric, "nothing is shown before signing in"
    at.text_input[0].input(user)
    at.text_input[1].input(password)
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def projects_on_screen(at: AppTest) -> set[str]:
    seen: set[str] = set()
    for frame in at.dataframe:
        value = frame.value
        for column in ("project_id", "project"):
            if column in value.columns:
                seen |= {str(v) for v in value[column] if str(v)}
    return seen


def test_a_wrong_password_shows_nothing(seeded: tuple[ClickHouseSettings, pd.DataFrame], users_file: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    at = signed_in_app(seeded[0], users_file, monkeypatch, "lead", "wrong-password")
    assert not at.metric and any("Unknown user or wrong password" in e.value for e in at.error)
    at = signed_in_app(seeded[0], users_file, monkeypatch, "nobody", "lead-password")
    assert not at.metric and at.error


def test_a_project_lead_sees_only_their_projects_in_every_view(
    seeded: tuple[ClickHouseSettings, pd.DataFrame], users_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, events = seeded
    at = signed_in_app(settings, users_file, monkeypatch, "lead", "lead-password")
    assert metric(at, "Tasks completed") == f"{count_of(events, 'task_completed', LEAD_PROJECT):,}"
    assert at.sidebar.multiselect[0].options == [LEAD_PROJECT], "the project filter offers only theirs"
    assert any("Signed in as **lead**" in caption.value for caption in at.sidebar.caption)
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert projects_on_screen(at) <= {LEAD_PROJECT}, page
    others = set(events["project_id"]) - {LEAD_PROJECT}
    at.switch_page("views/annotators.py").run()
    shown = at.dataframe[0].value
    mine = events[events["project_id"] == LEAD_PROJECT]
    assert set(shown["annotator_id"]) <= set(mine["annotator_id"]), "annotators with work in their projects only"
    assert others, "the seed has other projects to hide"


def test_a_link_to_another_project_shows_none_of_its_numbers(
    seeded: tuple[ClickHouseSettings, pd.DataFrame], users_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, events = seeded
    other = sorted(set(events["project_id"]) - {LEAD_PROJECT})[0]
    assert count_of(events, "task_completed", other) > 0
    at = signed_in_app(settings, users_file, monkeypatch, "lead", "lead-password", project=other)
    assert metric(at, "Tasks completed") == "0"
    assert projects_on_screen(at) <= {LEAD_PROJECT}


def test_everyone_with_all_projects_sees_them_all(
    seeded: tuple[ClickHouseSettings, pd.DataFrame], users_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, events = seeded
    at = signed_in_app(settings, users_file, monkeypatch, "ops", "ops-password")
    assert metric(at, "Tasks completed") == f"{count_of(events, 'task_completed'):,}"
    assert set(at.dataframe[0].value["project_id"]) == set(events["project_id"])
    at.sidebar.button[0].click().run()  # sign out
    assert not at.metric and at.text_input, "signed out: the sign-in form again"


def test_passwords_are_kept_as_salted_scrypt_hashes() -> None:
    stored = hash_password("lead-password")
    assert stored.startswith("scrypt$") and "lead-password" not in stored
    assert stored != hash_password("lead-password"), "salted"
    assert password_matches("lead-password", stored)
    assert not password_matches("lead-passwore", stored)
    assert not password_matches("lead-password", "scrypt$zz$00") and not password_matches("x", "plain")


@pytest.mark.parametrize(
    ("env", "file", "message"),
    [
        ({"LABELPULSE_DASHBOARD_AUTH": "ldap"}, None, "LABELPULSE_DASHBOARD_AUTH must be one of none, password"),
        ({"LABELPULSE_DASHBOARD_AUTH": "password"}, None, "needs LABELPULSE_DASHBOARD_USERS_FILE"),
        ({}, "users: []\n", "LABELPULSE_DASHBOARD_AUTH is none: set it to password or oidc"),
        ({"LABELPULSE_DASHBOARD_AUTH": "oidc"}, "users: [oops\n", "not valid YAML"),
        ({"LABELPULSE_DASHBOARD_AUTH": "oidc"}, "people: []\n", "expected `users:`"),
        ({"LABELPULSE_DASHBOARD_AUTH": "oidc"}, "users:\n  - {name: a}\n", r"users\[0\]\.projects: `all` or"),
        ({"LABELPULSE_DASHBOARD_AUTH": "oidc"}, "users:\n  - {name: a, projects: []}\n", "non-empty list"),
        ({"LABELPULSE_DASHBOARD_AUTH": "oidc"}, "users:\n  - {projects: all}\n", r"users\[0\]\.name"),
        ({"LABELPULSE_DASHBOARD_AUTH": "oidc"}, "users:\n  - {name: a, projects: all, role: x}\n", "unknown field"),
        ({"LABELPULSE_DASHBOARD_AUTH": "password"}, "users:\n  - {name: a, projects: all}\n", "password_hash: a hash"),
        (
            {"LABELPULSE_DASHBOARD_AUTH": "password"},
            "users:\n  - {name: a, projects: all, password_hash: secret}\n",
            "labelpulse hash-password",
        ),
        (
            {"LABELPULSE_DASHBOARD_AUTH": "oidc"},
            "users:\n  - {name: a, projects: all}\n  - {name: a, projects: all}\n",
            "listed twice",
        ),
    ],
)
def test_sign_in_settings_that_cannot_work_are_refused(
    tmp_path: Path, env: dict[str, str], file: str | None, message: str
) -> None:
    if file is not None:
        (tmp_path / "users.yml").write_text(file)
        env = {**env, "LABELPULSE_DASHBOARD_USERS_FILE": str(tmp_path / "users.yml")}
    with pytest.raises(ConfigError, match=message):
        DashboardSettings.from_env(env)


def test_password_guessing_is_slowed_down_before_any_hash_is_computed(
    seeded: tuple[ClickHouseSettings, pd.DataFrame], users_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dashboard.auth

    hashed: list[str] = []
    real = dashboard.auth.password_matches
    monkeypatch.setattr(dashboard.auth, "password_matches", lambda p, s: hashed.append(p) or real(p, s))
    at = signed_in_app(seeded[0], users_file, monkeypatch, "lead", "guess-0")
    for number in range(1, 6):  # five free failures, the sixth starts the wait
        at.text_input[0].input("lead")
        at.text_input[1].input(f"guess-{number}")
        at.button[0].click().run()
        assert any("Unknown user or wrong password" in e.value for e in at.error)
    assert len(hashed) == 6
    at.text_input[0].input("lead")
    at.text_input[1].input("lead-password")
    at.button[0].click().run()
    assert not at.metric and any("Too many failed sign-ins" in e.value for e in at.error)
    assert len(hashed) == 6, "refused before scrypt ran"
    time.sleep(1.1)  # the first wait is one second
    at.button[0].click().run()
    assert not at.exception and at.metric, "the wait runs out"
