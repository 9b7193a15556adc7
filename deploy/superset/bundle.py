"""Zips deploy/superset/export as `superset import-dashboards` reads it, with the ClickHouse connection's URI
from the environment (provision.sh runs it). The export itself names no password (Superset's mask stands in
its place); Superset stores the one given here encrypted, and this ZIP lives only until the import is done.

    python bundle.py EXPORT_DIR ZIP_PATH
"""

import os
import sys
import zipfile
from pathlib import Path
from urllib.parse import quote

DATABASE = Path("databases/LabelPulse_ClickHouse.yaml")
MASKED_URI = "sqlalchemy_uri: clickhousedb://analyst:XXXXXXXXXX@clickhouse:8123/labelpulse\n"


def uri(env: dict[str, str]) -> str:
    user, password = (
        quote(env["LABELPULSE_CLICKHOUSE_USER"], safe=""),
        quote(env["LABELPULSE_CLICKHOUSE_PASSWORD"], safe=""),
    )
    where = f"{env.get('LABELPULSE_CLICKHOUSE_HOST', 'clickhouse')}:{env.get('LABELPULSE_CLICKHOUSE_PORT', '8123')}"
    return f"clickhousedb://{user}:{password}@{where}/{quote(env['LABELPULSE_CLICKHOUSE_DATABASE'], safe='')}"


def main(export: Path, bundle: Path) -> None:
    with zipfile.ZipFile(bundle, "w") as archive:
        for path in sorted(export.rglob("*.yaml")):
            text = path.read_text()
            if path.relative_to(export) == DATABASE:
                assert MASKED_URI in text, f"{path}: expected the line {MASKED_URI!r}"
                text = text.replace(MASKED_URI, f"sqlalchemy_uri: '{uri(dict(os.environ))}'\n")
            archive.writestr(f"labelpulse/{path.relative_to(export)}", text)  # one top folder, as exports have


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
