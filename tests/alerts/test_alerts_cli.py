"""`labelpulse alerts …` as users run it: checking rule files, backtesting, one evaluation, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from alerts.settings import EvaluatorSettings
from config.env import ConfigError
from schema.client import ClickHouseSettings
from tests.support.alert_rules import DEFAULT_RULES
from tests.support.services import run_cli
from tests.support.stored_events import event, store


@pytest.mark.parametrize("action", ["run", "check", "backtest", "render-prometheus"])
def test_every_action_has_help(action: str) -> None:
    result = run_cli("alerts", action, "--help")
    assert result.returncode == 0
    assert len(result.stdout) > 200


def test_check_lists_the_default_rules() -> None:
    result = run_cli("alerts", "check")
    assert result.returncode == 0, result.stderr
    assert "pipeline/DeadLetterRateHigh: pipeline_dead_letter_rate every 30s, for 5m" in result.stdout
    assert f"SUCCESS: {DEFAULT_RULES} rules found, 0 problems" in result.stdout


def test_check_names_file_line_and_field_and_fails(tmp_path: Path) -> None:
    (tmp_path / "ok.yml").write_text((Path("alerts/rules/default.yml")).read_text())
    (tmp_path / "bad.yml").write_text("groups:\n  - name: g\n    rules:\n      - alert: X\n        kind: nope\n")
    result = run_cli("alerts", "check", "--rules", str(tmp_path))
    assert result.returncode == 1
    assert f"{tmp_path / 'bad.yml'}:5: groups.0.rules.0.kind: unknown kind 'nope'" in result.stderr
    assert f"FAILED: {DEFAULT_RULES} rules found, 1 problems" in result.stdout  # the good file still loads


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["backtest", "--since", "yesterday"], "expected a duration like 7d or an ISO 8601 time"),
        (["backtest", "--step", "0s"], "longer than 0s"),
        (["backtest", "--step", "5 minutes"], "expected a duration like"),
        (["backtest", "--since", "1h", "--until", "2h"], "must be before --until"),
        (["backtest", "--rule", "NoSuchRule"], "no rule named NoSuchRule"),
        (["run", "--alertmanager", "localhost:9093"], "expected an http:// or https:// URL"),
        (["check", "--rules", "/no/such/dir"], "no rules directory at /no/such/dir"),
        (["explode"], "invalid choice"),
    ],
)
def test_bad_arguments_get_a_specific_error(args: list[str], message: str) -> None:
    result = run_cli("alerts", *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("LABELPULSE_ALERTMANAGER_URL", "ftp://am:9093", "must be an http:// or https:// URL"),
        ("LABELPULSE_ALERTS_WEBHOOK_URL", "hooks.example.com", "must be an http:// or https:// URL"),
        ("LABELPULSE_ALERTS_RESEND_DELAY_S", "0", "must be ≥ 1"),
        ("LABELPULSE_ALERTS_METRICS_PORT", "http", "must be a whole number"),
    ],
)
def test_evaluator_settings_refuse_malformed_values(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        EvaluatorSettings.from_env({variable: value})


def test_evaluator_settings_defaults_and_overrides() -> None:
    assert EvaluatorSettings.from_env({}).alertmanager_url is None
    settings = EvaluatorSettings.from_env(
        {"LABELPULSE_ALERTMANAGER_URL": "http://am:9093/", "LABELPULSE_ALERTS_RULES_DIR": "/etc/labelpulse/rules"}
    )
    assert settings.alertmanager_url == "http://am:9093" and settings.rules_dir == Path("/etc/labelpulse/rules")


@pytest.fixture
def refused_an_hour_ago(clickhouse: ClickHouseSettings, migrated: Client) -> dict[str, str]:
    received = datetime.now(UTC) - timedelta(hours=1)
    good = [event("task_created", received) for _ in range(10)]
    store(migrated, good + [b"not json"] * 30, received_at=received)
    return clickhouse.to_env()


@pytest.mark.clickhouse
def test_backtest_prints_when_a_rule_would_have_fired_and_resolved(refused_an_hour_ago: dict[str, str]) -> None:
    result = run_cli(
        "alerts", "backtest", "--since", "2h", "--step", "1m", "--rule", "DeadLetterRateHigh", "--rule", "DataStale",
        env=refused_an_hour_ago,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # Refusals an hour ago: pending at once, firing 5 minutes on, resolved once out of the 10-minute window.
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("DeadLetterRateHigh ")]
    assert "0:05:00" in line
    assert "DeadLetterRateHigh: fired 1 time" in result.stdout
    assert "DataStale: fired 1 time" in result.stdout  # nothing received since: still firing
    assert "still firing" in result.stdout
    assert "DeadLetterRateHigh: 121/121 evaluations" in result.stderr


@pytest.mark.clickhouse
def test_run_once_evaluates_every_group_and_keeps_the_history(
    refused_an_hour_ago: dict[str, str], migrated: Client
) -> None:
    result = run_cli("alerts", "run", "--once", env=refused_an_hour_ago)
    assert result.returncode == 0, result.stderr
    assert "DataStale {'severity': 'page'}: inactive -> pending" in result.stdout
    (count,) = migrated.query("SELECT count() FROM alert_history WHERE rule = 'DataStale'").result_rows[0]
    assert count == 1


def test_run_without_clickhouse_says_where_it_looked() -> None:
    env = ClickHouseSettings(port=1).to_env()
    result = run_cli("alerts", "run", "--once", env={**env, "LABELPULSE_ALERTS_RESTORE_WAIT_S": "0"}, timeout=120)
    assert result.returncode == 2 and "cannot read alert_history at http://127.0.0.1:1" in result.stderr


@pytest.mark.clickhouse
def test_run_refuses_a_metrics_port_in_use_naming_the_variable(refused_an_hour_ago: dict[str, str]) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("alerts", "run", env={**refused_an_hour_ago, "LABELPULSE_ALERTS_METRICS_PORT": str(port)})
    assert result.returncode == 2
    assert f"labelpulse: cannot serve metrics on 127.0.0.1:{port}" in result.stderr
    assert "LABELPULSE_ALERTS_METRICS_PORT" in result.stderr
