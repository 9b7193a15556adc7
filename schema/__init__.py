"""The floor every component stands on: the event contract, ClickHouse DDL and migrations, the row
shapes, the ClickHouse client factory, and the statistics the dashboard and the alert rules share."""
