from kafka_admin.dead_letters import dead_letter_copy


def test_a_copy_that_fits_is_whole_and_says_why_and_whence() -> None:
    value, headers = dead_letter_copy(b"{}", rule="not_json", reason="x" * 5000, source="ingest:api", room=10)
    assert value == b"{}"
    assert dict(headers) == {
        "labelpulse-rule": b"not_json",
        "labelpulse-reason": b"x" * 4096,
        "labelpulse-source": b"ingest:api",
    }


def test_a_copy_too_large_is_cut_and_says_where_the_whole_is() -> None:
    value, headers = dead_letter_copy(
        b"0123456789", rule="r", reason="", source="events/0/7", room=4, whole_at="events/0/7"
    )
    assert value == b"0123"
    assert dict(headers)["labelpulse-truncated"] == b"10 bytes cut to 4; whole at events/0/7"
    _, headers = dead_letter_copy(b"0123456789", rule="r", reason="", source="ingest:api", room=4)
    assert dict(headers)["labelpulse-truncated"] == b"10 bytes cut to 4"
