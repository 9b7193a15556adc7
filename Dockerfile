# One image for every LabelPulse service (worker, dashboard, alert evaluator, the init job):
# the command line picks the part, e.g. `labelpulse worker`. See docker-compose.yml.
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
COPY labelpulse/__init__.py labelpulse/
COPY config/__init__.py config/
COPY kafka_admin/__init__.py kafka_admin/
COPY access/__init__.py access/
COPY schema/__init__.py schema/
COPY streams/__init__.py streams/
COPY dashboard/__init__.py dashboard/
COPY alerts/__init__.py alerts/
COPY embedded_clickhouse/__init__.py embedded_clickhouse/
COPY ingest/__init__.py ingest/
COPY api/__init__.py api/
RUN pip install . && pip uninstall -y labelpulse
COPY labelpulse labelpulse
COPY config config
COPY kafka_admin kafka_admin
COPY access access
COPY schema schema
COPY streams streams
COPY dashboard dashboard
COPY alerts alerts
COPY embedded_clickhouse embedded_clickhouse
COPY ingest ingest
COPY api api
RUN pip install --no-deps . && python -c "import labelpulse, config, kafka_admin, access, schema, streams, dashboard, alerts, embedded_clickhouse, ingest, api"
# The worker's per-event code compiled to C (streams/compiled.py), with a compiler for this step only.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && labelpulse compile \
    && apt-get purge -y gcc libc6-dev && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*

# Never root; state (Faust's table directory) lives in a volume mounted at /data.
# /prometheus-rules: where the init job renders Prometheus rules (a named volume takes this owner).
RUN useradd --system --uid 10001 --home-dir /data labelpulse \
    && mkdir -p /data /prometheus-rules && chown labelpulse /data /prometheus-rules
USER labelpulse
WORKDIR /data
ENV LABELPULSE_DATA_DIR=/data
ENTRYPOINT ["labelpulse"]
CMD ["--help"]
