"""What the embedded ClickHouse is told at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from schema.access import Access


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8123
    data_dir: Path = Path(".labelpulse/clickhouse")
    user: str = "default"
    password: str = ""
    # Binding anything but loopback exposes every table to the network: opt in explicitly.
    allow_remote: bool = False
    session_timeout_s: float = 60.0
    # More users than the one above, with roles (schema.access); `database` is what their project
    # restrictions name.
    access: Access = field(default_factory=Access)
    database: str = "labelpulse"
