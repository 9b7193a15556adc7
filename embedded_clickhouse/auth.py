"""Who is asking: the server's own (admin) user, or a user of the access file — with password
guessing slowed down per user and per client address (access.throttle).

Every request carries its credentials (clients rarely use sessions), so a worker signs in
thousands of times a minute. An attempt while its user or its address waits is answered at
once with 429 and Retry-After, unchecked. A connection that already signed in with the same
credentials is not slowed: a guesser on this machine cannot cut off the workers' and the
dashboard's open connections, only delay new ones by at most the cap.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from collections.abc import Mapping
from email.message import Message

from access.policy import User
from access.throttle import SignInThrottle
from embedded_clickhouse.errors import AUTHENTICATION_FAILED, ClickHouseError
from embedded_clickhouse.settings import ServerSettings

# What one connection has signed in with: (user, SHA-256 of the password).
SignedIn = set[tuple[str, bytes]]


class Authenticator:
    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.users = SignInThrottle(free_failures=5, first_delay_s=1.0, max_delay_s=30.0)
        # An address speaks for everyone behind it (on loopback: every local user): more free failures.
        self.clients = SignInThrottle(free_failures=20, first_delay_s=1.0, max_delay_s=30.0)

    def authenticate(
        self, headers: Message, url_params: Mapping[str, str], client: str, signed_in: SignedIn
    ) -> User | None:
        """The access-file user making the request, or None for the server's own (admin) user."""
        name, password = _credentials(headers, url_params)
        credential = (name, hashlib.sha256(password.encode()).digest())
        if credential not in signed_in:
            wait_s = max(self.users.wait_s(name), self.clients.wait_s(client))
            if wait_s > 0:
                raise ClickHouseError.ours(
                    AUTHENTICATION_FAILED,
                    f"{name}: Authentication failed: too many failed sign-ins for this user or from {client}; "
                    f"try again in {math.ceil(wait_s)} s",
                    retry_after_s=math.ceil(wait_s),
                )
        try:
            user = self._check(name, password)
        except ClickHouseError:
            self.users.failed(name)
            self.clients.failed(client)
            raise
        signed_in.add(credential)
        return user

    def _check(self, name: str, password: str) -> User | None:
        settings = self.settings
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


def _credentials(headers: Message, url_params: Mapping[str, str]) -> tuple[str, str]:
    name = headers.get("X-ClickHouse-User") or url_params.get("user")
    password = headers.get("X-ClickHouse-Key") or url_params.get("password")
    authorization = headers.get("Authorization", "")
    if authorization.startswith("Basic "):
        try:
            name, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            name, password = None, None
    return name or "default", password or ""
