"""An embedded ClickHouse enforcing deploy/access.yml (each user of the file with a password of its own),
migrated and holding simulated events its `worker` wrote: what the Grafana and Superset tests read as the
users those tools sign in as."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import yaml

from labelpulse.net import free_port
from labelpulse.runtime import EmbeddedClickHouseProcess
from labelpulse.simulator import Plan, generate
from schema import migrations
from schema.client import ClickHouseSettings, connect
from streams.offline import load
from tests.support.services import REPO_ROOT

ACCESS_FILE = REPO_ROOT / "deploy" / "access.yml"
SEED_EVENTS = 3000


@dataclass(frozen=True)
class AccessClickHouse:
    admin: ClickHouseSettings
    passwords: dict[str, str]  # by user name
    start: datetime  # when the simulated events begin (2 hours before the load, one event a second)

    def as_user(self, name: str) -> ClickHouseSettings:
        """Settings that sign in as `name`, a user of deploy/access.yml."""
        return ClickHouseSettings(
            port=self.admin.port, database=self.admin.database, username=name, password=self.passwords[name]
        )


@contextmanager
def access_clickhouse(base: Path, more_users: tuple[dict[str, Any], ...] = ()) -> Iterator[AccessClickHouse]:
    """Started under `base` (data and log), seeded, stopped on leaving; `more_users` as a deployment would
    add them to the file (e.g. the ones it shows commented out)."""
    document = yaml.safe_load(ACCESS_FILE.read_text())
    users = document["users"] = [*document["users"], *more_users]
    (base / "access.yml").write_text(yaml.safe_dump(document))
    env = {user["password_env"]: f"{user['name']}-password" for user in users}
    admin = ClickHouseSettings(port=free_port(), database="labelpulse", password="admin-password")
    env["LABELPULSE_ACCESS_FILE"] = str(base / "access.yml")
    server = EmbeddedClickHouseProcess(admin, base / "data", log_path=base / "clickhouse.log", env=env)
    server.start()
    try:
        migrations.migrate(migrations.open_database(admin))
        clickhouse = AccessClickHouse(
            admin,
            {user["name"]: env[user["password_env"]] for user in users},
            datetime.now(UTC) - timedelta(hours=2),
        )
        plan = Plan(seed=5, start=clickhouse.start, rate=1, anomalies=("garbage",))
        writer = clickhouse.as_user("worker")
        load([message.value for message in islice(generate(plan), SEED_EVENTS)], lambda: connect(writer))
        yield clickhouse
    finally:
        server.stop()
