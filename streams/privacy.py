"""Pseudonymous people at ingest: annotator and reviewer ids replaced by a keyed hash.

With LABELPULSE_PSEUDONYMIZE_KEY set, the worker replaces every annotator_id, reviewer_id and
session_id right after validation, before anything is kept or written: ClickHouse, the activity topic and
the workers' state only ever see the pseudonym. The same id always gets the same pseudonym
under one key (so per-annotator metrics, agreement and alerts work unchanged), and without the
key nobody can compute it from a name (HMAC-SHA-256, unlike a plain hash of a guessable name).

Dead letters cannot be pseudonymized (they did not parse), so their ClickHouse rows keep only
where they came from and which rule refused them; the message itself stays in the Kafka
dead-letter topic, whose access Kafka controls.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from schema.events import Event, with_changes

# Session ids are here too: tools often build them from the person's id.
PEOPLE = ("annotator_id", "reviewer_id", "session_id")
WITHHELD = "withheld: ids are pseudonymized (LABELPULSE_PSEUDONYMIZE_KEY); the message is in the dead-letter topic"


class Pseudonymizer:
    MIN_KEY_LENGTH = 16

    def __init__(self, key: str) -> None:
        if len(key) < self.MIN_KEY_LENGTH:
            raise ValueError(f"a pseudonymization key needs at least {self.MIN_KEY_LENGTH} characters")
        self._key = key.encode()
        # Few people, many events each: remember the pseudonyms instead of hashing every event.
        self.of = lru_cache(maxsize=65_536)(self._pseudonym)

    def _pseudonym(self, person_id: str) -> str:
        digest = hmac.new(self._key, person_id.encode(), hashlib.sha256).hexdigest()
        return f"p-{digest[:24]}"  # 96 bits: no collisions among any realistic number of people

    def event(self, event: Event) -> Event:
        """The event with its people replaced by their pseudonyms."""
        people = {name: self.of(value) for name in PEOPLE if (value := getattr(event, name, None))}
        return with_changes(event, **people) if people else event
