"""Argument types of the command line: each refuses a bad value saying what it expects and what it got."""

from __future__ import annotations

import argparse
import datetime as dt


def port(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a port is a number from 1 to 65535, got {text!r}") from None
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 1 to 65535, got {number}")
    return number


def migration_number(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"a migration number is a whole number like 1 or 0001, got {text!r}")
    return int(text)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number ≥ 0, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number ≥ 0, got {text!r}")
    return value


def share(text: str) -> float:
    value = non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a share from 0 to 1, got {text!r}")
    return value


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return int(text)


def timestamp(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time like 2026-11-23T08:00:00Z, got {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def param(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE with NAME an identifier, got {text!r}")
    return name, value


def duration(text: str) -> dt.timedelta:
    from alerts.rules import parse_duration

    try:
        delta = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not delta:
        raise argparse.ArgumentTypeError("must be longer than 0s")
    return delta


def moment(text: str) -> dt.datetime:
    """'7d' (that long ago) or an ISO 8601 time (UTC unless it says otherwise)."""
    if text[:1].isdigit() and text[-1:] in "smhdw" and "-" not in text:
        return dt.datetime.now(dt.UTC) - duration(text)
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a duration like 7d or an ISO 8601 time, got {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def url(text: str) -> str:
    if not text.startswith(("http://", "https://")) or len(text) <= len("https://"):
        raise argparse.ArgumentTypeError(f"expected an http:// or https:// URL, got {text!r}")
    return text.rstrip("/")
