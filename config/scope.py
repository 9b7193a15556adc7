"""The projects a client or a viewer may see, as the API's tokens file and the dashboard's users file both
write them: `projects: all`, or a non-empty list of project ids."""

from __future__ import annotations

from typing import Any

from config.env import ConfigError


def parse_projects(value: Any, where: str) -> tuple[str, ...] | None:
    """`value` (a file's `projects:`) as the project ids it names; None for `all` (every project).
    ConfigError naming `where` for anything else."""
    if value == "all":
        return None
    if isinstance(value, list) and value and all(isinstance(p, str) and p for p in value):
        return tuple(value)
    raise ConfigError(f"{where}: `all` or a non-empty list of project ids, got {value!r}")
