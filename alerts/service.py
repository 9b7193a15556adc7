"""The alert evaluator as a service: `labelpulse alerts` runs it (and `labelpulse up`, through that command)."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from alerts import telemetry as metrics
from alerts.evaluator import Evaluator
from alerts.rules import Rule, RuleSet, load_rules
from alerts.settings import EvaluatorSettings
from config.env import ConfigError
from config.hosts import metrics_port_taken
from schema.client import ClickHouseUnavailable, connect


def load_rule_files(rules_dir: Path) -> RuleSet:
    """The rules of `rules_dir`: each problem in a file said on stderr (file, line, field) and counted
    in labelpulse_evaluator_rule_file_errors; the good files still load. ConfigError without the directory."""
    if not rules_dir.is_dir():
        raise ConfigError(f"no rules directory at {rules_dir}; set --rules or LABELPULSE_ALERTS_RULES_DIR")
    loaded = load_rules(rules_dir)
    for error in loaded.errors:
        print(f"labelpulse: rules: {error}", file=sys.stderr, flush=True)
    metrics.RULE_FILE_ERRORS.set(len(loaded.errors))
    return loaded


def run_evaluator(settings: EvaluatorSettings, once: bool = False) -> int:
    """Evaluate every rule group on its interval until SIGINT or SIGTERM (SIGHUP reloads the rules),
    serving metrics; `once`: evaluate every group once, print what changed, and return.

    It resumes from alert_history first, waiting up to `settings.restore_wait_s` for ClickHouse
    (ClickHouseUnavailable after that); ConfigError when the metrics port is taken."""
    from prometheus_client import REGISTRY, start_http_server

    from alerts.collector import BusinessCollector
    from alerts.notify import Alertmanager, Receiver, Webhook

    logging.getLogger("labelpulse").setLevel(logging.INFO)
    loaded = load_rule_files(settings.rules_dir)
    receivers: list[Receiver] = []
    if settings.alertmanager_url:
        receivers.append(Alertmanager(settings.alertmanager_url))
    if settings.webhook_url:
        receivers.append(Webhook(settings.webhook_url))
    evaluator = Evaluator(
        loaded.rules,
        lambda: connect(settings.clickhouse),
        receivers,
        resend_delay=dt.timedelta(seconds=settings.resend_delay_s),
        dashboard_url=settings.dashboard_url,
    )
    _restore(evaluator, settings.clickhouse.url, settings.restore_wait_s)
    if once:
        for group in evaluator.groups:
            for t in evaluator.evaluate_group(group):
                print(f"{t.rule} {t.labels}: {t.before.value} -> {t.after.value} (value {t.value})")
        return 0

    if settings.metrics_port:
        REGISTRY.register(BusinessCollector(lambda: connect(settings.clickhouse)))
        try:
            start_http_server(settings.metrics_port, addr=settings.metrics_host)
        except OSError as exc:
            where = settings.metrics_host, settings.metrics_port
            raise metrics_port_taken("metrics", *where, "LABELPULSE_ALERTS_METRICS_PORT", exc) from exc
    stop, reload_requested = threading.Event(), threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: reload_requested.set())

    def reload() -> Sequence[Rule] | None:
        if not reload_requested.is_set():
            return None
        reload_requested.clear()
        rules = load_rule_files(settings.rules_dir).rules
        print(f"reloaded {len(rules)} rules from {settings.rules_dir}", flush=True)
        return rules

    targets = [r.url for r in receivers if hasattr(r, "url")] or ["nowhere (no Alertmanager or webhook set)"]
    metrics_at = f"http://{settings.metrics_host}:{settings.metrics_port}/metrics" if settings.metrics_port else "off"
    print(
        f"evaluating {len(loaded.rules)} rules in {len(evaluator.groups)} groups from {settings.rules_dir}\n"
        f"  alerts to  {', '.join(targets)}\n  metrics    {metrics_at}\n  history    table alert_history in "
        f"{settings.clickhouse.url} (database {settings.clickhouse.database})\nCtrl-C stops it; SIGHUP reloads rules.",
        flush=True,
    )
    evaluator.run(stop, reload)
    return 0


def _restore(evaluator: Evaluator, where: str, wait_s: float) -> None:
    """Resume from the history, waiting a while for ClickHouse to come up (it may be starting too)."""
    from clickhouse_connect.driver.exceptions import ClickHouseError

    deadline = time.monotonic() + wait_s
    while True:
        try:
            resumed = evaluator.restore()
            if resumed:
                print(f"resumed {resumed} pending, firing or recently resolved alerts from alert_history", flush=True)
            return
        except (ClickHouseUnavailable, ClickHouseError, OSError) as exc:
            if time.monotonic() > deadline:
                raise ClickHouseUnavailable(
                    f"cannot read alert_history at {where}: {str(exc).splitlines()[0][:200]} "
                    "(is ClickHouse up, and the schema migrated with `labelpulse migrate`?)"
                ) from exc
            time.sleep(1)
