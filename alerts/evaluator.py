"""`labelpulse alerts`: evaluates the rules on their groups' intervals, keeps every transition in
ClickHouse, and sends firing and resolved alerts to Alertmanager (and optionally a webhook).

Per evaluation of a rule: ask its kind's query what holds now (alerts.conditions), move each
instance's state (alerts.state, as Prometheus does), write the transitions to `alert_history`,
and only then keep the new state — so what is in memory is always what the history says, and a
restarted evaluator reads the history back and carries on: a firing alert stays firing with the
same start, and is not fired twice. (A `keep_firing_for` countdown running at a restart starts
over: it can only keep an alert a little longer, never drop it.) A rule whose query or history
write fails is counted and logged and keeps its state; the other rules are evaluated anyway.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from alerts import telemetry
from alerts.conditions import holding
from alerts.notify import Notice, Receiver, SendError
from alerts.rules import Rule
from alerts.state import Instance, State, Transition, step
from schema.client import ClickHouseUnavailable
from schema.tables import ALERT_HISTORY

log = logging.getLogger("labelpulse.alerts")

Clock = Callable[[], datetime]
RESTORE_SINCE = timedelta(days=30)  # older history cannot hold a pending or firing instance worth resuming


@dataclass(frozen=True)
class Group:
    name: str
    interval: timedelta
    rules: tuple[Rule, ...]


def groups_of(rules: Iterable[Rule]) -> list[Group]:
    by_name: dict[str, list[Rule]] = {}
    for rule in rules:
        by_name.setdefault(rule.group, []).append(rule)
    return [Group(name, members[0].interval, tuple(members)) for name, members in by_name.items()]


class Evaluator:
    def __init__(
        self,
        rules: Sequence[Rule],
        client_factory: Callable[[], Client],
        receivers: Sequence[Receiver] = (),
        *,
        resend_delay: timedelta = timedelta(minutes=1),
        dashboard_url: str = "http://127.0.0.1:8501",
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self._client_factory = client_factory
        self._client: Client | None = None
        self.receivers = list(receivers)
        self.resend_delay = resend_delay
        self.dashboard_url = dashboard_url.rstrip("/")
        self.clock = clock
        self.rules: dict[str, Rule] = {}
        self.groups: list[Group] = []
        self.instances: dict[str, dict[str, Instance]] = {}
        self._sent: dict[str, tuple[datetime, bool]] = {}  # fingerprint -> when last sent, and resolved then?
        self.set_rules(rules)

    # ------------------------------------------------------------------ rules and state

    def set_rules(self, rules: Sequence[Rule]) -> None:
        """Use these rules from now on (a reload): instances of rules still there are kept."""
        self.rules = {rule.alert: rule for rule in rules}
        self.groups = groups_of(rules)  # once per load, not on every turn of the loop
        self.instances = {name: self.instances.get(name, {}) for name in self.rules}
        telemetry.RULES.set(len(self.rules))
        for gauge in (telemetry.RULE_INFO, telemetry.RULE_LAST_EVALUATION, telemetry.RULE_VALUE,
                      telemetry.QUALITY_TARGET):  # fmt: skip
            gauge.clear()  # a rule removed by a reload is no longer reported
        for rule in rules:
            telemetry.RULE_INFO.labels(rule.alert, rule.group, rule.kind, rule.labels.get("severity", "")).set(1)
            if rule.kind == "quality_drop":
                telemetry.QUALITY_TARGET.labels(rule.alert, rule.params["metric"]).set(rule.params["threshold"])

    def restore(self) -> int:
        """Read the latest state of every instance back from the history; returns how many resumed."""
        try:
            rows = self._latest_history()
        except (ClickHouseError, ClickHouseUnavailable, OSError):
            self._client = None  # reconnect on the next try
            raise
        resumed = 0
        for row in rows:
            state = State(row["last_state"])
            if row["rule"] not in self.rules or state is State.INACTIVE:
                continue
            at, fired = _utc(row["last_at"]), _utc(row["fired"])
            active_at = _utc(row["last_active_since"]) if row["last_active_since"] else at
            instance = Instance(
                rule=row["rule"],
                labels=dict(row["last_labels"]),
                state=state,
                active_at=active_at,
                last_active_at=at,
                value=float(row["last_value"]),
                fired_at=fired if state is not State.PENDING else None,
                resolved_at=at if state is State.RESOLVED else None,
            )
            self.instances[row["rule"]][row["fingerprint"]] = instance
            resumed += 1
        self._publish_counts()
        return resumed

    def _latest_history(self) -> list[dict[str, Any]]:
        sql = f"""
            SELECT rule, fingerprint,
                argMax(labels, at) AS last_labels,
                argMax(state, at) AS last_state,
                argMax(value, at) AS last_value,
                argMax(active_since, at) AS last_active_since,
                maxIf(at, state = 'firing') AS fired,
                max(at) AS last_at
            FROM {ALERT_HISTORY.name}
            WHERE at >= {{since:DateTime64(3, 'UTC')}}
            GROUP BY rule, fingerprint
            """
        return list(self.client.query(sql, parameters={"since": self.clock() - RESTORE_SINCE}).named_results())

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    # ------------------------------------------------------------------ evaluation

    def evaluate_group(self, group: Group) -> list[Transition]:
        started = time.perf_counter()
        now = self.clock()
        transitions = []
        for rule in group.rules:
            transitions += self.evaluate_rule(rule, now)
        self._publish_counts()
        self.notify(now)
        telemetry.EVALUATIONS.labels(group.name).inc()
        telemetry.DURATION.labels(group.name).observe(time.perf_counter() - started)
        telemetry.LAST_EVALUATION.labels(group.name).set(now.timestamp())
        return transitions

    def evaluate_rule(self, rule: Rule, now: datetime) -> list[Transition]:
        try:
            active = holding(self.client, rule, now)
            instances, transitions = step(rule.alert, self.instances[rule.alert], active, now, rule.timing)
            self._record(rule, transitions, instances)
        except (ClickHouseError, ClickHouseUnavailable, OSError) as exc:
            telemetry.RULE_ERRORS.labels(rule.alert).inc()
            log.error("rule %s (%s) not evaluated: %s", rule.alert, rule.source, str(exc).splitlines()[0][:300])
            self._client = None  # reconnect next time: the server may have restarted
            return []
        self.instances[rule.alert] = instances  # only once the history holds the transitions
        telemetry.RULE_LAST_EVALUATION.labels(rule.alert).set(now.timestamp())
        telemetry.RULE_VALUE.labels(rule.alert).set(_most_urgent_value(instances.values()))
        for transition in transitions:
            telemetry.TRANSITIONS.labels(rule.alert, transition.after.value).inc()
            log.info("%s %s: %s -> %s (value %s)", rule.alert, transition.labels, transition.before.value,
                     transition.after.value, transition.value)  # fmt: skip
        return transitions

    def _record(self, rule: Rule, transitions: list[Transition], instances: dict[str, Instance]) -> None:
        if not transitions:
            return
        rows = []
        for t in transitions:
            episode = instances.get(t.fingerprint)
            annotations = rule.annotations_for(t.labels, t.value)
            rows.append([
                t.at, rule.alert, t.fingerprint, t.labels, t.after.value, t.before.value, t.value,
                episode.active_at if episode else None,
                annotations["summary"], annotations["description"], annotations["runbook_url"],
            ])  # fmt: skip
        self.client.insert(ALERT_HISTORY.name, rows, column_names=list(ALERT_HISTORY.column_names))

    def _publish_counts(self) -> None:
        counts: dict[tuple[str, str, str], int] = {}
        for name, instances in self.instances.items():
            severity = self.rules[name].labels.get("severity", "")
            for state in (State.PENDING, State.FIRING):
                counts[(name, severity, state.value)] = 0
            for instance in instances.values():
                if instance.state in (State.PENDING, State.FIRING):
                    counts[(name, severity, instance.state.value)] += 1
        for labels, count in counts.items():
            telemetry.ALERTS.labels(*labels).set(count)

    # ------------------------------------------------------------------ notification

    def notify(self, now: datetime) -> None:
        """Send firing and recently resolved alerts that changed or are due for a resend."""
        notices = self.notices(now)
        self._sent = {n.fingerprint: self._sent[n.fingerprint] for n in notices if n.fingerprint in self._sent}
        due = [notice for notice in notices if self._due(notice, now)]
        if not due or not self.receivers:
            return
        delivered = True
        for receiver in self.receivers:
            try:
                receiver.send(due)
                telemetry.NOTIFICATIONS.labels(receiver.name).inc(len(due))
            except SendError as exc:
                delivered = False
                telemetry.NOTIFICATIONS_FAILED.labels(receiver.name).inc()
                log.warning("%d alerts not delivered to %s: %s", len(due), receiver.name, exc)
        if delivered:  # otherwise every receiver gets them again at the next evaluation
            self._sent.update({notice.fingerprint: (now, notice.resolved) for notice in due})

    def _due(self, notice: Notice, now: datetime) -> bool:
        if notice.fingerprint not in self._sent:
            return True
        sent_at, sent_resolved = self._sent[notice.fingerprint]
        return sent_resolved != notice.resolved or now - sent_at >= self.resend_delay

    def notices(self, now: datetime) -> list[Notice]:
        result = []
        for name, instances in self.instances.items():
            rule = self.rules[name]
            valid_for = 4 * max(self.resend_delay, rule.interval)  # as Prometheus: survives 3 missed sends
            for key, instance in instances.items():
                if instance.state not in (State.FIRING, State.RESOLVED) or instance.fired_at is None:
                    continue
                resolved = instance.state is State.RESOLVED
                result.append(
                    Notice(
                        fingerprint=key,
                        labels={"alertname": name, **instance.labels},
                        annotations=rule.annotations_for(instance.labels, instance.value),
                        starts_at=instance.fired_at,
                        ends_at=instance.resolved_at if resolved and instance.resolved_at else now + valid_for,
                        generator_url=f"{self.dashboard_url}/alerts?rule={quote(name)}",
                        resolved=resolved,
                    )
                )
        return result

    # ------------------------------------------------------------------ the loop

    def run(self, stop: threading.Event, reload: Callable[[], Sequence[Rule] | None] = lambda: None) -> None:
        """Evaluate each group on its interval until `stop` is set. `reload` is asked before each
        round and returns new rules when they changed (SIGHUP), else None."""
        next_due: dict[str, datetime] = {}
        while not stop.is_set():
            new_rules = reload()
            if new_rules is not None:
                self.set_rules(new_rules)
            now = self.clock()
            for group in self.groups:
                if next_due.get(group.name, now) <= now:
                    self.evaluate_group(group)
                    next_due[group.name] = now + group.interval
            wait = min((next_due[g.name] for g in self.groups), default=now + timedelta(seconds=1)) - self.clock()
            stop.wait(max(0.05, min(wait.total_seconds(), 1.0)))


def _most_urgent_value(instances: Iterable[Instance]) -> float:
    """The value of the instance most worth a look: firing before pending, the longest active first; NaN
    when none is pending or firing."""
    urgency = {State.FIRING: 0, State.PENDING: 1}
    urgent = sorted((urgency[i.state], i.active_at, i.value) for i in instances if i.state in urgency)
    return urgent[0][2] if urgent else math.nan


def _utc(moment: datetime) -> datetime:
    """clickhouse-connect returns UTC times without a zone."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
