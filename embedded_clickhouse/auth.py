"""Who is asking: the server's own (admin) user, or a user of the access file."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from email.message import Message

from embedded_clickhouse.errors import AUTHENTICATION_FAILED, ClickHouseError
from embedded_clickhouse.settings import ServerSettings
from schema.access import User


def authenticate(headers: Message, url_params: Mapping[str, str], settings: ServerSettings) -> User | None:
    """The access-file user making the request, or None for the server's own (admin) user."""
    name = headers.get("X-ClickHouse-User") or url_params.get("user")
    password = headers.get("X-ClickHouse-Key") or url_params.get("password")
    authorization = headers.get("Authorization", "")
    if authorization.startswith("Basic "):
        try:
            name, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            name, password = None, None
    name, password = name or "default", password or ""
    if hmac.compare_digest(name.encode(), settings.user.encode()) and hmac.compare_digest(
        password.encode(), settings.password.encode()
    ):
        return None
    user = settings.access.user(name)
    if user is not None and hmac.compare_digest(password.encode(), user.password.encode()):
        return user
    raise ClickHouseError.ours(
        AUTHENTICATION_FAILED,
        f"{name}: Authentication failed: password is incorrect, or there is no user with such name",
    )
