"""Who is looking, and which projects they may see.

LABELPULSE_DASHBOARD_AUTH picks how people sign in:
- `none` (default): nobody signs in and everyone sees every project — for the embedded default
  on loopback, or behind a proxy that already decides who gets in;
- `password`: a local sign-in form checked against the users file (scrypt hashes made with
  `labelpulse hash-password`), for small teams;
- `oidc`: Streamlit's `st.login` against the team's identity provider (configured in
  `.streamlit/secrets.toml`, `[auth]`); the user's e-mail is looked up in the users file.

The users file (LABELPULSE_DASHBOARD_USERS_FILE) gives each user their projects (`all`, or a
list). The scope is enforced where the data is read (dashboard.data): every query runs with
ClickHouse's `additional_table_filters` for the viewer's projects, so no view, filter or
hand-edited link can show another project's numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from access.throttle import SignInThrottle
from config.env import ConfigError
from config.files import read_yaml
from config.scope import parse_projects

AUTH_MODES = ("none", "password", "oidc")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_HASH = re.compile(r"scrypt\$[0-9a-f]{32}\$[0-9a-f]{128}")


@dataclass(frozen=True)
class Viewer:
    name: str
    projects: tuple[str, ...] | None  # None: every project


EVERYONE = Viewer("anonymous", None)


@dataclass(frozen=True)
class DashboardUser:
    name: str
    projects: tuple[str, ...] | None
    password_hash: str = ""


def hash_password(password: str, salt: bytes | None = None) -> str:
    """`scrypt$<salt>$<hash>` (hex): what the users file keeps instead of a password."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def password_matches(password: str, stored: str) -> bool:
    kind, _, rest = stored.partition("$")
    salt, _, _ = rest.partition("$")
    try:
        expected = hash_password(password, bytes.fromhex(salt))
    except ValueError:
        return False
    return kind == "scrypt" and hmac.compare_digest(expected, stored)


def load_users(path: Path, auth: str) -> dict[str, DashboardUser]:
    """Read the users file; every mistake names the file and the field."""
    where = str(path)
    document = read_yaml(path, "dashboard users file")
    if not isinstance(document, dict) or not isinstance(document.get("users"), list) or set(document) != {"users"}:
        raise ConfigError(f"{where}: expected `users:`, a list of {{name, projects, password_hash}}")
    users: dict[str, DashboardUser] = {}
    for index, entry in enumerate(document["users"]):
        user = _user(entry, f"{where}: users[{index}]", auth)
        if user.name in users:
            raise ConfigError(f"{where}: user {user.name!r} is listed twice")
        users[user.name] = user
    return users


def _user(entry: Any, where: str, auth: str) -> DashboardUser:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a mapping with name and projects")
    if unknown := set(entry) - {"name", "projects", "password_hash"}:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    name, projects, password_hash = entry.get("name"), entry.get("projects"), entry.get("password_hash", "")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}.name: the user's name (their e-mail with oidc), got {name!r}")
    scope = parse_projects(projects, f"{where}.projects")
    if auth == "password" and not (isinstance(password_hash, str) and _HASH.fullmatch(password_hash)):
        raise ConfigError(f"{where}.password_hash: a hash from `labelpulse hash-password`, got {password_hash!r}")
    return DashboardUser(name.strip(), scope, password_hash)


def check_password(users: Mapping[str, DashboardUser], name: str, password: str) -> Viewer | None:
    user = users.get(name.strip())
    # Hash even for unknown names, so the time taken does not tell which names exist.
    stored = user.password_hash if user else hash_password("-")
    if password_matches(password, stored) and user is not None:
        return Viewer(user.name, user.projects)
    return None


@dataclass(frozen=True)
class SlowDown:
    """A sign-in refused unchecked: too many failed ones for that user or from that address."""

    wait_s: int


class SignInGuard:
    """Password sign-in with guessing slowed down per user name and per client address
    (access.throttle). Each checked attempt costs an scrypt hash, deliberately slow: while a user or
    an address waits, attempts are refused before hashing. One per dashboard process."""

    def __init__(self, users: Mapping[str, DashboardUser]) -> None:
        self.users = users
        self.by_user = SignInThrottle(free_failures=5, first_delay_s=1.0, max_delay_s=60.0)
        # Behind a proxy, or on loopback, one address speaks for many people: more free failures.
        self.by_client = SignInThrottle(free_failures=20, first_delay_s=1.0, max_delay_s=60.0)

    def sign_in(self, name: str, password: str, client: str) -> Viewer | SlowDown | None:
        """The viewer, SlowDown while this user or address must wait, or None for a wrong password."""
        name = name.strip()
        wait_s = max(self.by_user.wait_s(name), self.by_client.wait_s(client))
        if wait_s > 0:
            return SlowDown(math.ceil(wait_s))
        viewer = check_password(self.users, name, password)
        if viewer is None:
            self.by_user.failed(name)
            self.by_client.failed(client)
        return viewer
