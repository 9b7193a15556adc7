"""Raw events, dead letters, alert history, the first rollups and their analyst views."""

from schema import tables
from schema.ddl import SchemaObject, Target, create_all, drop_all

# Named one by one: objects added to schema.tables later arrive through their own migrations.
OBJECTS: tuple[SchemaObject, ...] = (
    tables.EVENTS,
    tables.DEAD_LETTERS,
    tables.ALERT_HISTORY,
    tables.PROJECT_MINUTE,
    tables.PROJECT_MINUTE_MV,
    tables.ANNOTATOR_HOUR,
    tables.ANNOTATOR_HOUR_MV,
    tables.HANDLE_TIMES,
    tables.HANDLE_TIME_MV,
    tables.LABEL_HOUR,
    tables.LABEL_HOUR_MV,
    tables.REVIEW_HOUR,
    tables.REVIEW_HOUR_MV,
    tables.GOLD_HOUR,
    tables.GOLD_HOUR_MV,
    tables.PROJECT_THROUGHPUT_MINUTE,
    tables.ANNOTATOR_PRODUCTIVITY_HOUR,
    tables.LABEL_THROUGHPUT_HOUR,
    tables.REVIEW_OUTCOMES_HOUR,
    tables.GOLD_ACCURACY_HOUR,
)


def forwards(target: Target) -> list[str]:
    return create_all(OBJECTS, target)


def backwards(target: Target) -> list[str]:
    return drop_all(OBJECTS, target)
