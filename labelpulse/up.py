"""`labelpulse up`: the whole system on one machine, as a list of services a supervisor keeps running.

First the backing services every other part needs (ClickHouse; the embedded broker, unless
LABELPULSE_KAFKA_BOOTSTRAP_SERVERS names a Kafka), then the schema, then the app services that
work through them (worker, alert evaluator, dashboard, ingest, gRPC API, simulator). Each is a runtime.Service:
how it starts, when it serves, which part it must not outlive; the supervisor restarts any that
dies with the back-off of its RestartPolicy, until Ctrl-C or SIGTERM stops them all.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
import shutil
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from alerts.rules import load_rules
from alerts.settings import EvaluatorSettings
from api.settings import ApiSettings
from dashboard.service import dashboard_command
from dashboard.settings import DashboardSettings
from ingest.settings import IngestSettings
from kafka_admin.settings import KafkaSettings
from kafka_admin.topics import create_topics
from labelpulse.broker import IN_MEMORY_WARNING, BrokerSettings, EmbeddedBroker, kafka_reachable
from labelpulse.net import port_in_use
from labelpulse.runtime import (
    EmbeddedClickHouseProcess,
    RuntimeSettings,
    Service,
    ServiceError,
    Supervisor,
    cli_command,
    command_service,
    running_up,
)
from schema import migrations
from schema.client import ClickHouseSettings
from streams.settings import WorkerSettings


@dataclass(frozen=True)
class UpSettings:
    """The settings of every part `up` starts or describes, built once from the environment."""

    runtime: RuntimeSettings
    clickhouse: ClickHouseSettings
    kafka: KafkaSettings
    broker: BrokerSettings
    worker: WorkerSettings
    dashboard: DashboardSettings
    evaluator: EvaluatorSettings
    ingest: IngestSettings
    api: ApiSettings
    demo_rate: float | None = 20.0  # the simulator's events per second; None: no simulator (--no-demo)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] = os.environ, *, data_dir: Path | None = None, demo_rate: float | None = 20.0
    ) -> UpSettings:
        runtime = RuntimeSettings.from_env(env)
        return cls(
            runtime=replace(runtime, data_dir=data_dir) if data_dir else runtime,
            clickhouse=ClickHouseSettings.from_env(env),
            kafka=KafkaSettings.from_env(env),
            broker=BrokerSettings.from_env(env),
            worker=WorkerSettings.from_env(env),
            dashboard=DashboardSettings.from_env(env),
            evaluator=EvaluatorSettings.from_env(env),
            ingest=IngestSettings.from_env(env),
            api=ApiSettings.from_env(env),
            demo_rate=demo_rate,
        )

    def child_env(self, env: Mapping[str, str]) -> dict[str, str]:
        """`env` pointing a child at this ClickHouse, data dir and Kafka (the embedded broker unless external)."""
        child = {**env, **self.clickhouse.to_env(), "LABELPULSE_DATA_DIR": str(self.runtime.data_dir)}
        if not self.kafka.external:
            child["LABELPULSE_KAFKA_BOOTSTRAP_SERVERS"] = self.broker.bootstrap_servers
        return child


def backing_services(settings: UpSettings) -> list[Service]:
    """ClickHouse, and the embedded broker unless Kafka is external: what every other part needs."""
    logs = settings.runtime.log_dir
    clickhouse = EmbeddedClickHouseProcess(
        settings.clickhouse, settings.runtime.clickhouse_dir, log_path=logs / "clickhouse.log"
    )
    services = [clickhouse.service(starting=f"starting ClickHouse (chDB) with data in {clickhouse.data_dir} …")]
    if not settings.kafka.external:
        broker = EmbeddedBroker(settings.broker, log_path=logs / "broker.log")
        services.append(
            broker.service(
                starting=f"starting the broker on {settings.broker.bootstrap_servers} …\n  note: {IN_MEMORY_WARNING}",
                # Topics made before any client can auto-create them (see Service.restart_after).
                when_ready=lambda: asyncio.run(create_topics(settings.kafka)),
                exit_note="it keeps topics in memory: events it held that no worker had stored are lost",
            )
        )
    return services


def app_services(settings: UpSettings, env: Mapping[str, str]) -> list[Service]:
    """The parts working through ClickHouse and Kafka, each run by a command with `env`.

    The worker and the simulator hold state about the broker (consumer group, topics, producer);
    an embedded broker comes back empty, so they start afresh after it."""
    logs = settings.runtime.log_dir
    services = [
        command_service(
            "worker", lambda: cli_command("worker", "--loglevel", "warn"), logs / "worker.log", env,
            restart_after=("broker",), starting="starting a stream worker …",
        ),
        command_service(
            "alert evaluator", lambda: cli_command("alerts", "run"), logs / "alerts.log", env,
            starting="starting the alert evaluator …",
        ),
        command_service(
            "dashboard", lambda: dashboard_command(settings.dashboard), logs / "dashboard.log", env,
            starting=f"starting the dashboard on {settings.dashboard.url} …",
        ),
        command_service(
            "ingest", lambda: cli_command("ingest", "--loglevel", "warning"), logs / "ingest.log",
            ingest_env(settings, env), restart_after=("broker",),
            starting=f"starting ingest on {settings.ingest.url} …",
        ),
        command_service(
            "api", lambda: cli_command("api"), logs / "api.log", env,
            starting=f"starting the gRPC API on {settings.api.address} …",
        ),
    ]  # fmt: skip
    if settings.demo_rate is not None:
        rate = settings.demo_rate
        services.append(
            command_service(
                "simulator",
                lambda: simulator_command(rate),
                logs / "simulator.log",
                env,
                restart_after=("broker",),
                starting=f"starting the simulator at {rate:g} events/s …",
            )
        )
    return services


def ingest_env(settings: UpSettings, env: Mapping[str, str]) -> dict[str, str]:
    """The embedded broker cannot serve Kafka's idempotent producer: ingest goes without it there (a message
    its retries write twice is dropped by the workers as a repeated event_id)."""
    if settings.kafka.external or "LABELPULSE_INGEST_IDEMPOTENCE" in env:
        return dict(env)
    return {**env, "LABELPULSE_INGEST_IDEMPOTENCE": "false"}


def simulator_command(rate: float) -> list[str]:
    """`generate` at `rate` with a fresh seed: the seed fixes the event ids, and a restarted
    simulator repeating its predecessor's ids would have its events dropped as duplicates."""
    seed = secrets.randbelow(2**31)
    return cli_command("generate", "--quiet", "--rate", f"{rate:g}", "--seed", str(seed))


def run(settings: UpSettings, say: Callable[[str], None]) -> int:
    """Start every part in order and supervise them until Ctrl-C or SIGTERM; returns 0 once all stopped.

    ServiceError (or MigrationError) when a part cannot start: what had started is stopped again."""
    runtime, dashboard = settings.runtime, settings.dashboard
    if (pid := running_up(runtime.status_path)) is not None:
        raise ServiceError(
            f"LabelPulse is already running (pid {pid}, data dir {runtime.data_dir.resolve()}); "
            f"use that one, or stop it first (Ctrl-C in its terminal, or kill {pid})"
        )
    # The ports `up` serves people on: a taken one would make its part restart forever.
    api = settings.api
    for part, host, port, variable in (
        ("dashboard", dashboard.host, dashboard.port, "LABELPULSE_DASHBOARD_PORT"),
        ("ingest", settings.ingest.host, settings.ingest.port, "LABELPULSE_INGEST_PORT"),
        ("gRPC API", api.host, api.port, "LABELPULSE_API_PORT"),
        ("gRPC API's /metrics", api.metrics_host, api.metrics_port, "LABELPULSE_API_METRICS_PORT"),
    ):
        if port and port_in_use(host, port):
            raise ServiceError(f"port {port} is taken (another {part}?); stop it or set {variable}")
    runtime.log_dir.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(_reporter(say, runtime.log_dir / "up.log"), status_path=runtime.status_path)

    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM while starting: stop what started, as Ctrl-C does

    signal.signal(signal.SIGTERM, interrupted)

    def start(services: list[Service]) -> None:
        for service in services:
            say(service.starting)
            supervisor.launch(service)

    try:
        start(backing_services(settings))
        if settings.kafka.external:
            _check_external_kafka(settings.kafka, say)
        say("applying migrations …")
        client = migrations.open_database(settings.clickhouse)
        migrations.migrate(client, progress=lambda line: say(f"  {line}"))
        migrations.apply_retention(client, runtime.raw_events_ttl_days)
        start(app_services(settings, settings.child_env(os.environ)))
    except BaseException:
        supervisor.stop_all()
        raise
    say(summary(settings))
    return supervisor.run()


def _reporter(say: Callable[[str], None], log: Path) -> Callable[[str], None]:
    def report(line: str) -> None:
        """The terminal, and logs/up.log with the time: what died, how often, what comes next."""
        say(line)
        with log.open("a", encoding="utf-8") as file:
            file.write(f"{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')} {line}\n")

    return report


def _check_external_kafka(kafka: KafkaSettings, say: Callable[[str], None]) -> None:
    say(f"using the Kafka at {kafka.bootstrap_servers} (LABELPULSE_KAFKA_BOOTSTRAP_SERVERS) …")
    if not kafka_reachable(kafka, timeout_s=5):
        raise ServiceError(
            f"no Kafka answers at {kafka.bootstrap_servers}; start it, or unset "
            "LABELPULSE_KAFKA_BOOTSTRAP_SERVERS to use the embedded broker"
        )


def summary(settings: UpSettings) -> str:
    """What `up` says once everything runs: where each part is, and a first command to try."""
    clickhouse, kafka, worker, evaluator = settings.clickhouse, settings.kafka, settings.worker, settings.evaluator
    worker_metrics = (
        f", metrics http://{worker.metrics_host}:{worker.metrics_port}/metrics" if worker.metrics_port else ""
    )
    alerts_to = evaluator.alertmanager_url or "the Alerts view only (set LABELPULSE_ALERTMANAGER_URL)"
    alerts_metrics = (
        f", metrics http://{evaluator.metrics_host}:{evaluator.metrics_port}/metrics" if evaluator.metrics_port else ""
    )
    simulator = "off (--no-demo)" if settings.demo_rate is None else f"{settings.demo_rate:g} events/s"
    return (
        "\nLabelPulse is up (embedded default):\n"
        f"  ClickHouse  {clickhouse.url}  (database {clickhouse.database})\n"
        f"  Kafka       {kafka.bootstrap_servers}"
        f"  (topic {kafka.events_topic}{'' if kafka.external else '; embedded, in memory'})\n"
        f"  worker      consumer group {worker.consumer_group}{worker_metrics}\n"
        f"  simulator   {simulator}\n"
        f"  ingest      {settings.ingest.url}  (POST /v1/events, /v1/sources/{{label-studio,labelbox,cvat}};"
        " API /openapi.json)\n"
        f"  dashboard   {settings.dashboard.url}\n"
        f"  gRPC API    {settings.api.address}  (labelpulse.v1.Metrics; reflection on)\n"
        f"  alerts      {len(load_rules(evaluator.rules_dir).rules)} rules, to {alerts_to}{alerts_metrics}\n"
        f"  logs        {settings.runtime.log_dir}  (status of every part: {settings.runtime.status_path})\n"
        f'  try         {own_command()} sql "SELECT * FROM project_throughput_minute ORDER BY minute DESC LIMIT 10"\n'
        "A part that dies is started again (said here, in logs/up.log and on the Pipeline view). "
        "Ctrl-C stops everything."
    )


def own_command() -> str:
    """How to run `labelpulse` from here: plain when on PATH, else the path of this installation's script."""
    script = Path(sys.executable).parent / "labelpulse"
    if shutil.which("labelpulse") == str(script) or not script.exists():
        return "labelpulse"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)
