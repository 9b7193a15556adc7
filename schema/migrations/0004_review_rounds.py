"""Review rounds derived by the workers (first-pass acceptance, rework), their rollup and view."""

from schema import tables
from schema.ddl import SchemaObject, Target, create_all, drop_all

OBJECTS: tuple[SchemaObject, ...] = (
    tables.REVIEW_ROUNDS,
    tables.REVIEW_ROUNDS_HOUR,
    tables.REVIEW_ROUNDS_HOUR_MV,
    tables.FIRST_PASS_HOUR,
)


def forwards(target: Target) -> list[str]:
    return create_all(OBJECTS, target)


def backwards(target: Target) -> list[str]:
    return drop_all(OBJECTS, target)
