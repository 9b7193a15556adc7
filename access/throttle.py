"""Slowing down password guessing, for the embedded ClickHouse and the dashboard's sign-in. Pure.

Per key — a user name, a client address — the first few failed sign-ins are free; after that,
each one makes the key wait before its next attempt is even checked: `first_delay_s`, doubling
with every further failure up to `max_delay_s`. Attempts refused while a key waits are answered at
once (no thread sleeps, no password hash is computed) and do not count as failures, so the wait
never grows past the cap: whoever knows the password gets in at the latest `max_delay_s` after
the last wrong guess that was checked. A key without failures for `forget_after_s` is forgotten,
and at most `max_keys` are kept (the stalest go first). A success clears nothing: the owner of a
busy account (a worker signs in with every request) would hand a guesser fresh free attempts.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Failures:
    count: int
    last_at: float
    blocked_until: float


class SignInThrottle:
    def __init__(
        self,
        *,
        free_failures: int = 5,
        first_delay_s: float = 1.0,
        max_delay_s: float = 30.0,
        forget_after_s: float = 600.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free_failures = free_failures
        self.first_delay_s = first_delay_s
        self.max_delay_s = max_delay_s
        self.forget_after_s = forget_after_s
        self.max_keys = max_keys
        self._clock = clock
        self._keys: OrderedDict[str, _Failures] = OrderedDict()  # least recently failed first
        self._lock = threading.Lock()

    def wait_s(self, key: str) -> float:
        """Seconds before an attempt for `key` may be checked; 0.0 when it may be checked now."""
        now = self._clock()
        with self._lock:
            failures = self._current(key, now)
            return max(0.0, failures.blocked_until - now) if failures else 0.0

    def failed(self, key: str) -> None:
        """A checked attempt for `key` had a wrong password (or an unknown user)."""
        now = self._clock()
        with self._lock:
            failures = self._current(key, now) or _Failures(0, now, now)
            failures.count += 1
            failures.last_at = now
            beyond = failures.count - self.free_failures
            if beyond > 0:
                delay = min(self.max_delay_s, self.first_delay_s * 2 ** min(beyond - 1, 32))
                failures.blocked_until = now + delay
            self._keys[key] = failures
            self._keys.move_to_end(key)
            while len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)

    def _current(self, key: str, now: float) -> _Failures | None:
        failures = self._keys.get(key)
        if failures is not None and now - failures.last_at > self.forget_after_s and now >= failures.blocked_until:
            del self._keys[key]
            return None
        return failures
