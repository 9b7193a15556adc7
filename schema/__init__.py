"""The contracts every component shares: the event contract, ClickHouse DDL and migrations,
and the ClickHouse client factory."""
