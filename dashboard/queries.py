"""What each view asks ClickHouse: the queries live in schema.queries, shared with the gRPC API."""

from schema.queries import *  # noqa: F403
