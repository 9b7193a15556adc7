"""Task and annotator state goes to the changelog as Faust keys it and as recovery reads it back."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.app import create_app
from streams.changelog import END_MARKER, encode_key, encode_state
from streams.settings import WorkerSettings


@pytest.mark.parametrize(
    ("key", "state"),
    [
        ("task-1", {"started": {"ann-1": "2026-11-23T11:00:00+00:00"}, "waiting": {}, "reviews": ["r1"]}),
        ("zürich-ø", {"labels": {"ann-é": "crème brûlée", "ann-2": '{"box":[1,2,3]}'}, "gold": "ñ"}),
        (END_MARKER, {}),
    ],
)
def test_changelog_keys_are_fausts_bytes_and_states_read_back_as_written(tmp_path: Path, key: str, state: dict) -> None:
    app = create_app(WorkerSettings.from_env({"LABELPULSE_DATA_DIR": str(tmp_path)}))
    assert app.tables, "the worker declares its tables"
    for table in app.tables.values():
        topic = table.changelog_topic
        assert encode_key(key) == topic.prepare_key(key, table.key_serializer)[0]  # the same bytes: compaction
        # The state as recovery reads it back (the store's own decoding).
        assert table.data._decode_value(encode_state(state)) == state
