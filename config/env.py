"""Reading settings from the environment, once, at an entrypoint.

Every component builds one frozen settings object from `LABELPULSE_*` variables and passes it
down; nothing deeper reads `os.environ`. Bad values fail at start-up naming the variable.
"""

from __future__ import annotations

from collections.abc import Mapping

PREFIX = "LABELPULSE_"


class ConfigError(ValueError):
    """A setting has a value we cannot use; the message names the variable and the fix."""


def env_str(env: Mapping[str, str], name: str, default: str) -> str:
    return env.get(PREFIX + name, default)


def env_int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    raw = env.get(PREFIX + name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{PREFIX}{name} must be a whole number, got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and ≤ {maximum}" if maximum is not None else ""
        raise ConfigError(f"{PREFIX}{name} must be ≥ {minimum}{upper}, got {value}")
    return value


def env_port(env: Mapping[str, str], name: str, default: int) -> int:
    return env_int(env, name, default, minimum=1, maximum=65535)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(PREFIX + name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{PREFIX}{name} must be one of true/false/1/0/yes/no/on/off, got {raw!r}")


def env_url(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    """An http(s) URL without a trailing slash, or the default when unset or empty."""
    raw = env.get(PREFIX + name, "").strip()
    if not raw:
        return default
    if not raw.startswith(("http://", "https://")) or len(raw.split("://", 1)[1]) == 0:
        raise ConfigError(f"{PREFIX}{name} must be an http:// or https:// URL, got {raw!r}")
    return raw.rstrip("/")
