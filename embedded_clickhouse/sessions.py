"""HTTP sessions (`session_id`): a chDB connection each, keeping its settings and temporary tables."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Session:
    connection: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    expires_at: float = 0.0


class Sessions:
    """The open sessions; one unused for longer than its timeout is closed when the next is looked up."""

    def __init__(self, connect: Callable[[], Any], timeout_s: float) -> None:
        self._connect = connect
        self._timeout_s = timeout_s
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def get(self, session_id: str, timeout_s: float | None) -> Session:
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            session = self._sessions.get(session_id)
            if session is None:
                session = self._sessions[session_id] = Session(self._connect())
            session.expires_at = now + (timeout_s or self._timeout_s)
            return session

    def _expire(self, now: float) -> None:
        for session_id, session in list(self._sessions.items()):
            if session.expires_at < now and not session.lock.locked():
                session.connection.close()
                del self._sessions[session_id]

    def close(self) -> None:
        with self._lock:
            for session in self._sessions.values():
                session.connection.close()
            self._sessions.clear()
