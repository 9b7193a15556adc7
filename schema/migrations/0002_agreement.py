"""Per-task agreement statistics derived by the workers, and the views that sum them."""

from schema import tables
from schema.ddl import SchemaObject, Target, create_all, drop_all

OBJECTS: tuple[SchemaObject, ...] = (
    tables.TASK_AGREEMENT,
    tables.PAIR_AGREEMENT,
    tables.AGREEMENT_SUMMARY,
    tables.PAIR_KAPPA,
)


def forwards(target: Target) -> list[str]:
    return create_all(OBJECTS, target)


def backwards(target: Target) -> list[str]:
    return drop_all(OBJECTS, target)
