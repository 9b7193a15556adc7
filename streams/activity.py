"""Active time per annotator: state keyed by annotator, fed by a repartition of the events.

Events are keyed by task, so one annotator's events are spread over every partition and
worker. The events processor therefore republishes each annotation event's time to the
activity topic keyed by annotator_id (`encode_activity`, one message per annotator per batch),
and `ActivityTracker` keeps, per annotator, the recent events in time order.

Active time is the sum of the gaps between consecutive events of an annotator that are shorter
than the idle threshold; a longer gap, or the first event, starts a session. Each gap is
credited to the project and hour of its later event. An event arriving out of order replaces
the gap it falls into by two, so the tracker emits *changes* (possibly negative) and ClickHouse
sums them: whatever the arrival order, the sums equal the answer for the events sorted by time.

Which events are too late is decided upstream, once, by event time: the events processor forwards
only events within the lateness bound of their partition's watermark (streams.processor), and says
in each message how old an event from its partitions can still be (`floors`: the watermark minus
the bound). The tracker keeps each annotator's events down to the lowest floor of all the events
topic's partitions, so whatever order partitions are read in — live, or hours of backlog caught up
unevenly after an outage — every forwarded event finds its neighbours: a backlog gives exactly what
live delivery gave. Floors count per activity partition: only messages of one partition arrive in
the order they were sent (an annotator's always share one), and a partition read ahead of another
must not prune what the other still brings. Until every events partition has reported on an
activity partition (after a restart), nothing there is pruned by time.

History read from the backfill topic (streams.processor, lanes) comes with floors of its own, far
behind the live ones: its activity messages say their lane, and each annotator's backfilled events
are kept apart from the live ones (state under another key, floors per lane), so live floors never
prune history. The price: history that overlaps an annotator's live events in time counts as
separate sessions, its gaps to the live events left out.

Replays are harmless: an event already in the annotator's state is skipped, and the sink drops
rows of replayed messages by their offsets (see streams.sink).
"""

from __future__ import annotations

import bisect
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec

from schema.rows import active_time_row
from streams.processor import ActivityEntry as Entry
from streams.processor import ProcessedBatch, Record, StateStore

log = logging.getLogger("labelpulse.activity")

HOUR_MS = 3_600_000


class ActivityMessage(msgspec.Struct):
    annotator_id: str
    events: list[Entry]  # decoded straight into (ts_ms, event_id, project_id) tuples
    # Per events-topic partition the sender read: no event older than this (epoch ms) comes from it any more.
    floors: dict[int, int] = {}
    partitions: int = 0  # partitions of the events topic
    lane: str = ""  # "" for live events; the backfill lane for history (see streams.processor)


_ACTIVITY_MESSAGE = msgspec.json.Decoder(ActivityMessage)


def encode_activity(
    annotator_id: str, entries: Iterable[Entry], floors: dict[int, int], partitions: int, lane: str = ""
) -> bytes:
    return msgspec.json.encode(ActivityMessage(annotator_id, list(entries), floors, partitions, lane))


def decode_activity(value: bytes | None) -> ActivityMessage:
    """One activity message; ValueError when it is not one."""
    try:
        return _ACTIVITY_MESSAGE.decode(value or b"")
    except msgspec.DecodeError as error:
        raise ValueError(f"not an activity message: {error}") from error


@dataclass(frozen=True)
class Gap:
    """What the time between two consecutive events adds: active time, or the start of a session."""

    active_ms: int
    sessions: int


class ActivityTracker:
    def __init__(
        self,
        *,
        annotators: StateStore,
        idle_threshold_ms: int = 100_000,
        max_entries: int = 20_000,
    ) -> None:
        self.annotators = annotators
        self.idle_threshold_ms = idle_threshold_ms
        self.max_entries = max_entries  # bounds state when an annotator is implausibly busy
        self.too_late = 0  # events that fell before what was kept (only past max_entries)
        # Per activity partition and lane: the highest floor reported per events-topic partition.
        self.floors: defaultdict[tuple[int, str], dict[int, int]] = defaultdict(dict)
        self.partitions = 0

    def floor(self, activity_partition: int, lane: str = "") -> int | None:
        """No event of the lane still to come on the activity partition is older than this (epoch ms); None
        until every events partition has reported there."""
        floors = self.floors[(activity_partition, lane)]
        if not self.partitions or len(floors) < self.partitions:
            return None
        return min(floors.values())

    def gap(self, earlier: Entry | None, later: Entry) -> Gap:
        if earlier is None:
            return Gap(0, 1)
        elapsed = later[0] - earlier[0]
        return Gap(elapsed, 0) if elapsed < self.idle_threshold_ms else Gap(0, 1)

    def process(self, messages: Sequence[Record], *, topic_id: str = "") -> ProcessedBatch:
        """`topic_id`: the incarnation of the activity topic the messages come from (streams.incarnations)."""
        batch = ProcessedBatch()
        for message in messages:
            try:
                activity = decode_activity(message.value)
            except ValueError as error:  # only workers write this topic: a bug, not user input
                log.error("skipping %s/%d/%d: %s", message.topic, message.partition, message.offset, error)
                continue
            floors = self.floors[(message.partition, activity.lane)]
            for partition, floor in activity.floors.items():
                floors[partition] = max(floor, floors.get(partition, floor))
            self.partitions = max(self.partitions, activity.partitions)
            annotator_id = activity.annotator_id
            changes = self._add(annotator_id, activity.events, message.partition, activity.lane)
            for (project_id, hour_ms), (active_ms, sessions) in changes.items():
                if active_ms or sessions:
                    hour = datetime.fromtimestamp(hour_ms / 1000, UTC)
                    position = (message.topic, topic_id, message.partition, message.offset)
                    row = active_time_row(project_id, annotator_id, hour, active_ms, sessions, position=position)
                    batch.tables["active_time"].append(row)
        return batch

    def _add(
        self, annotator_id: str, new: Iterable[Entry], partition: int, lane: str = ""
    ) -> Mapping[tuple[str, int], list[int]]:
        """Insert an annotator's events of a lane into its state; the changes per (project, hour)."""
        key = f"\x00{lane}:{annotator_id}" if lane else annotator_id  # NUL: no annotator id starts with it
        state = self.annotators.get(key) or {"entries": [], "pruned": False}
        # A new list, never the stored one: the state put for an earlier batch may still be
        # waiting to be published (after that batch is durable), and must not take in this one.
        stored: list[Entry] = state["entries"]
        if stored and not isinstance(stored[0], tuple):  # recovered from the JSON changelog: lists compare apart
            kept = [(ts, event_id, project) for ts, event_id, project in stored]
        else:
            kept = list(stored)
        pruned: bool = state["pruned"]
        changes: defaultdict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])

        def credit(gap: Gap, sign: int, later: Entry) -> None:
            change = changes[(later[2], later[0] - later[0] % HOUR_MS)]
            change[0] += sign * gap.active_ms
            change[1] += sign * gap.sessions

        changed = False
        for entry in sorted(new):
            at = bisect.bisect(kept, entry)
            if at > 0 and kept[at - 1] == entry:
                continue  # a replay: the same event, already in place
            if pruned and at == 0:  # its earlier neighbour may have been forgotten
                self.too_late += 1
                continue
            earlier = kept[at - 1] if at > 0 else None
            later = kept[at] if at < len(kept) else None
            if later is not None:  # the gap earlier -> later is replaced by two
                credit(self.gap(earlier, later), -1, later)
                credit(self.gap(entry, later), +1, later)
            credit(self.gap(earlier, entry), +1, entry)
            kept.insert(at, entry)
            changed = True
        if not changed:
            return changes
        # Forget what no event still to come can fall next to: all before the floor but the last one. That
        # one stays, also for an annotator long idle: an event read again after a restart (a replay) that
        # falls before it is known as too old, where an empty state would count it as a new session.
        floor = self.floor(partition, lane)
        below_floor = bisect.bisect_left(kept, (floor,)) - 1 if floor is not None else 0
        first_kept = max(below_floor, len(kept) - self.max_entries)
        if first_kept > 0:
            kept = kept[first_kept:]
            pruned = True
        self.annotators.put(key, {"entries": kept, "pruned": pruned}, partition)
        return changes
