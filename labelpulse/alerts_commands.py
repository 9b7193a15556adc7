"""`labelpulse alerts …` handlers: run the evaluator (alerts.service), check rule files, backtest, render
them for Prometheus."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from dataclasses import replace

from alerts.rules import Rule
from alerts.settings import EvaluatorSettings
from labelpulse.commands import CliError
from labelpulse.terminal import render_table
from schema.client import connect


def _settings(args: argparse.Namespace) -> EvaluatorSettings:
    settings = EvaluatorSettings.from_env()
    return replace(
        settings,
        rules_dir=args.rules or settings.rules_dir,
        alertmanager_url=getattr(args, "alertmanager", None) or settings.alertmanager_url,
        webhook_url=getattr(args, "webhook", None) or settings.webhook_url,
    )


def run_evaluator(args: argparse.Namespace) -> int:
    from alerts import service

    return service.run_evaluator(_settings(args), once=args.once)


def run_check(args: argparse.Namespace) -> int:
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


def run_render(args: argparse.Namespace) -> int:
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


def run_backtest(args: argparse.Namespace) -> int:
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

    def progress(rule: Rule, done: int, total: int) -> None:
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
