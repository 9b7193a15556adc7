"""Annotators' active time derived by the workers, its hourly rollup and analyst view."""

from schema import tables
from schema.ddl import SchemaObject, Target, create_all, drop_all

OBJECTS: tuple[SchemaObject, ...] = (
    tables.ACTIVE_TIME,
    tables.ACTIVE_HOUR,
    tables.ACTIVE_HOUR_MV,
    tables.ANNOTATOR_ACTIVE_HOUR,
)


def forwards(target: Target) -> list[str]:
    return create_all(OBJECTS, target)


def backwards(target: Target) -> list[str]:
    return drop_all(OBJECTS, target)
