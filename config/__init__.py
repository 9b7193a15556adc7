"""Settings from the environment: every component builds its one frozen settings object with these
readers at its entrypoint (`env` for LABELPULSE_* variables, `files` for the YAML files they name,
`hosts` for the addresses servers listen on, `scope` for the projects a client or viewer may see)."""
