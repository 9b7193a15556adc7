"""Superset's settings for docker-compose.yml (SUPERSET_CONFIG_PATH): the secret from the environment."""

import os

SECRET_KEY = os.environ["SUPERSET_SECRET_KEY"]  # signs sessions and encrypts the stored ClickHouse password
# Superset's own metadata (users, charts, the imported export) in the superset-data volume: one host, one
# Superset; point this at PostgreSQL to run several.
SQLALCHEMY_DATABASE_URI = "sqlite:////app/superset_home/superset.db"
