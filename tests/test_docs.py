"""The README and docs/ stand on their own: every link resolves inside the repository, and the event
they show is one the workers accept."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schema.events import EventError, EventType, validate_event
from tests.support.services import REPO_ROOT

DOCUMENTS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")  # [text](target), ![alt](target)
CODE_PATH = re.compile(r"`(\.\./[^`\s]+)`")  # a path in code style that climbs out of the document's folder
EXTERNAL = ("http://", "https://", "mailto:")


def relative_links(document: Path) -> list[str]:
    text = document.read_text(encoding="utf-8")
    targets = LINK.findall(text) + CODE_PATH.findall(text)
    return [target for target in targets if not target.startswith(EXTERNAL) and not target.startswith("#")]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_every_relative_link_resolves_to_a_file_in_the_repository(document: Path) -> None:
    broken = []
    for target in relative_links(document):
        resolved = (document.parent / target.split("#", 1)[0]).resolve()
        if not resolved.is_relative_to(REPO_ROOT) or not resolved.exists():
            broken.append(target)
    assert not broken, f"{document.name} links to what a clone does not have: {broken}"


def test_the_link_check_sees_links_that_leave_the_repository(tmp_path: Path) -> None:
    document = tmp_path / "doc.md"
    document.write_text("See `../shared/PRODUCT.md`, [the brief](../x.md#top), ![a](a.png) and [web](https://x.org).")
    assert relative_links(document) == ["../x.md#top", "a.png", "../shared/PRODUCT.md"]


def test_the_example_event_in_docs_is_accepted() -> None:
    text = (REPO_ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    example = re.search(r"```json\n(.*?)```", text, re.DOTALL)
    assert example, "docs/events.md shows an event"
    event = validate_event(example.group(1).encode(), now=datetime(2026, 11, 30, 9, 20, tzinfo=UTC))
    assert not isinstance(event, EventError), event.reason


def test_docs_name_every_event_type_and_field() -> None:
    text = (REPO_ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    schema = json.loads((REPO_ROOT / "schema" / "contract" / "events.v1.schema.json").read_text())
    fields = {name for definition in schema["$defs"].values() for name in definition.get("properties", {})}
    missing = [name for name in sorted(fields | {str(t) for t in EventType}) if f"`{name}`" not in text]
    assert not missing, f"docs/events.md does not explain {missing}"
