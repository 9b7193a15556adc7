"""`labelpulse alerts …`: run the evaluator, check rule files, backtest, render Prometheus rules."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from labelpulse.cli import CliError, render_table
from schema.client import connect

RULES_HELP = "directory of rule files (*.yml, *.yaml); default LABELPULSE_ALERTS_RULES_DIR or the built-in set"


def add_alerts_commands(commands: Any) -> None:
    alerts = commands.add_parser(
        "alerts",
        help="evaluate alert rules; check, backtest or render them for Prometheus",
        description="Alert rules are YAML files (see alerts/rules/default.yml and README 'Alerts'). Without an "
        "action, `labelpulse alerts` runs the evaluator: each rule group on its interval, every transition kept "
        "in the ClickHouse table alert_history, firing and resolved alerts sent to Alertmanager "
        "(LABELPULSE_ALERTMANAGER_URL) and/or a webhook (LABELPULSE_ALERTS_WEBHOOK_URL). SIGHUP reloads the rules.",
    )
    alerts.set_defaults(run=_run_evaluator, rules=None, alertmanager=None, webhook=None, once=False)
    actions = alerts.add_subparsers(title="actions", metavar="ACTION")

    run = actions.add_parser("run", help="run the evaluator until Ctrl-C (the default action)")
    run.add_argument("--rules", type=Path, help=RULES_HELP)
    run.add_argument(
        "--alertmanager", type=_url, metavar="URL", help="Alertmanager base URL, e.g. http://127.0.0.1:9093"
    )
    run.add_argument("--webhook", type=_url, metavar="URL", help="also POST Alertmanager-style webhook payloads here")
    run.add_argument("--once", action="store_true", help="evaluate every group once, print what changed, and exit")
    run.set_defaults(run=_run_evaluator)

    check = actions.add_parser(
        "check", help="validate rule files and list their rules", description="Exit status 1 if any file is broken."
    )
    check.add_argument("--rules", type=Path, help=RULES_HELP)
    check.set_defaults(run=_run_check)

    backtest = actions.add_parser(
        "backtest",
        help="replay rules over stored history and print when each would have fired",
        description="Evaluate the rules at every group interval (or --step) between --since and --until against "
        "what ClickHouse holds, with the same state machine as the evaluator, and print each firing episode. "
        "Nothing is written or sent: tune thresholds here before they page anyone.",
    )
    backtest.add_argument("--since", type=_moment, default="7d", help="how far back: a duration (7d, 12h) or ISO time")
    backtest.add_argument("--until", type=_moment, help="end of the replay: a duration ago or ISO time (default now)")
    backtest.add_argument("--step", type=_duration, help="evaluate this often (default each group's interval)")
    backtest.add_argument("--rule", action="append", default=[], metavar="NAME", help="only this rule (repeatable)")
    backtest.add_argument("--rules", type=Path, help=RULES_HELP)
    backtest.set_defaults(run=_run_backtest)

    render = actions.add_parser(
        "render-prometheus",
        help="write the rules as Prometheus recording and alerting rules",
        description="Write PromQL versions of every rule that has a metric to stand on, plus recording rules and "
        "Prometheus-only pipeline rules, for `rule_files:` in prometheus.yml. Check with `promtool check rules`.",
    )
    render.add_argument("--rules", type=Path, help=RULES_HELP)
    render.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")
    render.set_defaults(run=_run_render)


# -- argument types -------------------------------------------------------------------------


def _duration(text: str) -> dt.timedelta:
    from alerts.rules import parse_duration

    try:
        delta = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not delta:
        raise argparse.ArgumentTypeError("must be longer than 0s")
    return delta


def _moment(text: str) -> dt.datetime:
    """'7d' (that long ago) or an ISO 8601 time (UTC unless it says otherwise)."""
    if text[:1].isdigit() and text[-1:] in "smhdw" and "-" not in text:
        return dt.datetime.now(dt.UTC) - _duration(text)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a duration like 7d or an ISO 8601 time, got {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _url(text: str) -> str:
    if not text.startswith(("http://", "https://")) or len(text) <= len("https://"):
        raise argparse.ArgumentTypeError(f"expected an http:// or https:// URL, got {text!r}")
    return text.rstrip("/")


# -- actions --------------------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> Any:
    from alerts.settings import EvaluatorSettings

    settings = EvaluatorSettings.from_env()
    return replace(
        settings,
        rules_dir=args.rules or settings.rules_dir,
        alertmanager_url=getattr(args, "alertmanager", None) or settings.alertmanager_url,
        webhook_url=getattr(args, "webhook", None) or settings.webhook_url,
    )


def _run_check(args: argparse.Namespace) -> int:
    from alerts.rules import format_duration
    from alerts.service import load_rule_files

    settings = _settings(args)
    loaded = load_rule_files(settings.rules_dir)
    for rule in loaded.rules:
        keep = f", keep_firing_for {format_duration(rule.keep_firing_for)}" if rule.keep_firing_for else ""
        every, for_ = format_duration(rule.interval), format_duration(rule.for_)
        print(f"  {rule.group}/{rule.alert}: {rule.kind} every {every}, for {for_}{keep} ({rule.source})")
    verdict = "FAILED" if loaded.errors else "SUCCESS"
    print(f"{verdict}: {len(loaded.rules)} rules found, {len(loaded.errors)} problems in {settings.rules_dir}")
    return 1 if loaded.errors else 0


def _run_render(args: argparse.Namespace) -> int:
    from alerts.prometheus import render
    from alerts.service import load_rule_files

    settings = _settings(args)
    loaded = load_rule_files(settings.rules_dir)
    text, skipped = render(loaded.rules)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    for name, why in skipped.items():
        print(f"left to `labelpulse alerts`: {name}: {why}", file=sys.stderr)
    return 1 if loaded.errors else 0


def _run_backtest(args: argparse.Namespace) -> int:
    from alerts.backtest import backtest
    from alerts.service import load_rule_files

    settings = _settings(args)
    rules = load_rule_files(settings.rules_dir).rules
    if args.rule:
        unknown = sorted(set(args.rule) - {rule.alert for rule in rules})
        if unknown:
            raise CliError(f"no rule named {', '.join(unknown)} in {settings.rules_dir}")
        rules = [rule for rule in rules if rule.alert in args.rule]
    until = args.until or dt.datetime.now(dt.UTC)
    if args.since >= until:
        raise CliError(f"--since ({args.since:%Y-%m-%d %H:%M}) must be before --until ({until:%Y-%m-%d %H:%M})")
    client = connect(settings.clickhouse)
    interactive = sys.stderr.isatty()
    last_report = [0.0]

    def progress(rule: Any, done: int, total: int) -> None:
        if done == total or time.monotonic() - last_report[0] > (0.2 if interactive else 10):
            last_report[0] = time.monotonic()
            end = "\n" if done == total or not interactive else ""
            print(f"\r  {rule.alert}: {done}/{total} evaluations", end=end, file=sys.stderr, flush=True)

    print(f"replaying {len(rules)} rules from {args.since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} UTC …",
          file=sys.stderr)  # fmt: skip
    episodes = backtest(client, rules, args.since, until, args.step, progress)
    rows = [
        [
            e.rule,
            ", ".join(f"{k}={v}" for k, v in e.labels.items() if k != "severity"),
            f"{e.fired_at:%Y-%m-%d %H:%M:%S}",
            f"{e.resolved_at:%Y-%m-%d %H:%M:%S}" if e.resolved_at else "still firing",
            str(e.duration).split(".")[0] if e.duration else "",
        ]
        for e in episodes
    ]
    if rows:
        print(render_table(["rule", "labels", "fired (UTC)", "resolved (UTC)", "firing for"], rows))
    for rule in rules:
        count = sum(1 for e in episodes if e.rule == rule.alert)
        print(f"{rule.alert}: {'never fired' if not count else f'fired {count} time' + ('s' if count > 1 else '')}")
    return 0


def _run_evaluator(args: argparse.Namespace) -> int:
    from alerts import service

    return service.run_evaluator(_settings(args), once=args.once)
