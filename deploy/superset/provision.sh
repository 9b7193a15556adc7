#!/bin/sh
# Provisions Superset (docker-compose.yml runs it before every start; tests/test_superset.py runs it too):
# migrate Superset's own database, make the admin, import the export in deploy/superset/export (overwriting
# what an earlier start imported, so a changed export reaches Superset on restart), and point its ClickHouse
# connection at LabelPulse's read-only analyst user. The password never enters the export: it comes from the
# environment here. Needs SUPERSET_CONFIG_PATH (a superset_config.py), SUPERSET_ADMIN_PASSWORD and
# LABELPULSE_CLICKHOUSE_USER, _PASSWORD and _DATABASE; _HOST (clickhouse), _PORT (8123) and
# LABELPULSE_SUPERSET_EXPORT (/etc/superset/export) have defaults.
set -eu
superset db upgrade
if ! superset fab list-users | grep -q "username:admin "; then
    superset fab create-admin --username admin --firstname LabelPulse --lastname Admin \
        --email admin@localhost --password "$SUPERSET_ADMIN_PASSWORD"
fi
superset init
bundle=$(mktemp -d)
python -m zipfile -c "$bundle/labelpulse.zip" "${LABELPULSE_SUPERSET_EXPORT:-/etc/superset/export}"
superset import-dashboards --path "$bundle/labelpulse.zip" --username admin
rm -r "$bundle"
uri=$(python -c 'import os; from urllib.parse import quote as q; e = os.environ; print("clickhousedb://%s:%s@%s:%s/%s" % (
    q(e["LABELPULSE_CLICKHOUSE_USER"]), q(e["LABELPULSE_CLICKHOUSE_PASSWORD"], safe=""),
    e.get("LABELPULSE_CLICKHOUSE_HOST", "clickhouse"), e.get("LABELPULSE_CLICKHOUSE_PORT", "8123"),
    q(e["LABELPULSE_CLICKHOUSE_DATABASE"])))')
superset set-database-uri --database_name "LabelPulse ClickHouse" --uri "$uri"
