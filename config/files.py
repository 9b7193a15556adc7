"""Settings files a variable names (the access file, the dashboard's users file, the API's tokens file), read once
at an entrypoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from config.env import ConfigError


def read_yaml(path: Path, what: str) -> Any:
    """A YAML settings file (access, dashboard users, API tokens), its problems named with the file."""
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
