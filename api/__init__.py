"""The gRPC API (`labelpulse api`): other dashboards read LabelPulse's metrics, scoped per client token."""
