"""Per-task agreement statistics derived by the workers, and the views that sum them."""

from schema import tables
from schema.ddl import SchemaObject, Target, render_create, render_drop

OBJECTS: tuple[SchemaObject, ...] = (
    tables.TASK_AGREEMENT,
    tables.PAIR_AGREEMENT,
    tables.AGREEMENT_SUMMARY,
    tables.PAIR_KAPPA,
)


def forwards(target: Target) -> list[str]:
    return [statement for obj in OBJECTS for statement in render_create(obj, target)]


def backwards(target: Target) -> list[str]:
    return [statement for obj in reversed(OBJECTS) for statement in render_drop(obj, target)]
