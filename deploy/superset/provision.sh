#!/bin/sh
# Provisions Superset (docker-compose.yml runs it before every start; tests/test_superset.py runs it too):
# migrates Superset's own database, makes the admin, and imports deploy/superset/export (overwriting what an
# earlier start imported, so a changed export reaches Superset on restart) with its ClickHouse connection as
# LabelPulse's read-only analyst. The password never enters the export: bundle.py puts the URI from the
# environment into the ZIP it imports, which is deleted right after.
# Needs SUPERSET_CONFIG_PATH (a superset_config.py), SUPERSET_ADMIN_PASSWORD and LABELPULSE_CLICKHOUSE_USER,
# _PASSWORD and _DATABASE; LABELPULSE_CLICKHOUSE_HOST (clickhouse), _PORT (8123) and LABELPULSE_SUPERSET_EXPORT
# (/etc/superset/export) have defaults.
set -eu
superset db upgrade
if ! superset fab list-users | grep -q "username:admin "; then
    superset fab create-admin --username admin --firstname LabelPulse --lastname Admin \
        --email admin@localhost --password "$SUPERSET_ADMIN_PASSWORD"
fi
superset init
bundle=$(mktemp -d)
trap 'rm -rf "$bundle"' EXIT
python "$(dirname "$0")/bundle.py" "${LABELPULSE_SUPERSET_EXPORT:-/etc/superset/export}" "$bundle/labelpulse.zip"
superset import-dashboards --path "$bundle/labelpulse.zip" --username admin
