"""LabelPulse command line and the local runtime (embedded broker, embedded ClickHouse)."""
