"""The embedded ClickHouse as a service: `labelpulse clickhouse` runs it (and `labelpulse up`, through that command)."""

from __future__ import annotations

import signal

from config.env import ConfigError
from embedded_clickhouse.server import ClickHouseHTTPServer, serve
from embedded_clickhouse.settings import ServerSettings


def run_server(settings: ServerSettings) -> int:
    """Serve until Ctrl-C or SIGTERM, then close the engine cleanly (0).

    ConfigError, before serving anything, when the server refuses the settings (a non-loopback
    host without --allow-remote, users without an admin password) or cannot listen on the port."""

    def ready(server: ClickHouseHTTPServer) -> None:
        print(
            f"ClickHouse {server.engine.version} (chDB) serving {settings.data_dir} on "
            f"http://{settings.host}:{settings.port}  — Ctrl-C to stop",
            flush=True,
        )

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop as on Ctrl-C
    try:
        serve(settings, ready=ready)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}") from exc
    except KeyboardInterrupt:
        pass
    return 0
