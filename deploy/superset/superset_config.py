"""Superset's settings for docker-compose.yml (SUPERSET_CONFIG_PATH): everything from the environment."""

import os

SECRET_KEY = os.environ["SUPERSET_SECRET_KEY"]  # signs sessions and encrypts the stored ClickHouse password
# Its own metadata (users, charts, the imported export) in the superset-data volume; a single-host setup.
SQLALCHEMY_DATABASE_URI = "sqlite:////app/superset_home/superset.db"
# Analysts explore; nobody writes through Superset (the ClickHouse user could not anyway).
FEATURE_FLAGS = {"DASHBOARD_RBAC": True}
WTF_CSRF_ENABLED = True
TALISMAN_ENABLED = False  # behind your proxy, which sets the security headers
