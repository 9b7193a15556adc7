"""Where servers listen: a non-loopback host is refused unless remote clients are allowed, and a
port that is taken is refused naming the setting to change."""

from __future__ import annotations

import ipaddress

from config.env import ConfigError

# Where the alert evaluator serves its /metrics by default, and so where the dashboard looks for it (the
# dashboard may not import alerts).
EVALUATOR_METRICS_PORT = 9811


def is_loopback(host: str) -> bool:
    """Whether `host` keeps a server to this machine (localhost, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def metrics_port_taken(what: str, host: str, port: int, variable: str, error: OSError) -> ConfigError:
    """The refusal of a /metrics server that cannot listen on host:port, naming the variable to change."""
    return ConfigError(
        f"cannot serve {what} on {host}:{port} ({error.strerror}); set {variable} to a free port, or 0 to turn them off"
    )
