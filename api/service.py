"""The gRPC API as a service: `labelpulse api` runs it (and `labelpulse up`, through that command)."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from api.settings import ApiSettings
from config.env import ConfigError
from config.hosts import metrics_port_taken


def run_api(settings: ApiSettings) -> int:
    """Serve the Metrics service, standard health checking and reflection on settings.address until
    SIGINT or SIGTERM, and request metrics on /metrics; ConfigError when a port is taken."""
    from prometheus_client import start_http_server

    logging.getLogger("labelpulse").setLevel(logging.INFO)
    if settings.metrics_port:
        try:
            start_http_server(settings.metrics_port, addr=settings.metrics_host)
        except OSError as exc:
            where = settings.metrics_host, settings.metrics_port
            raise metrics_port_taken("API metrics", *where, "LABELPULSE_API_METRICS_PORT", exc) from exc
    asyncio.run(_serve(settings))
    return 0


async def _serve(settings: ApiSettings) -> None:
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection

    from api.data import Reader
    from api.proto.labelpulse.v1 import metrics_pb2_grpc
    from api.server import SERVICE_NAME, MetricsService

    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])  # a taken port is an error, not shared
    health_servicer = health.aio.HealthServicer()
    service = MetricsService(Reader(settings.clickhouse), settings.clients, health_servicer)
    metrics_pb2_grpc.add_MetricsServicer_to_server(service, server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    try:
        if settings.tls_cert_file:
            key, cert = Path(settings.tls_key_file).read_bytes(), Path(settings.tls_cert_file).read_bytes()
            server.add_secure_port(settings.address, grpc.ssl_server_credentials([(key, cert)]))
        else:
            server.add_insecure_port(settings.address)
    except RuntimeError as exc:  # grpc's way of saying it could not bind
        raise ConfigError(
            f"cannot serve the API on {settings.address} ({exc}); set LABELPULSE_API_PORT to a free port"
        ) from exc
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    await server.start()
    scheme = "TLS" if settings.tls_cert_file else "plaintext"
    who = f"{len(settings.clients)} client tokens" if settings.clients else "no tokens: every caller sees every project"
    log = logging.getLogger("labelpulse.api")
    log.info("serving gRPC on %s (%s, %s)", settings.address, scheme, who)
    if settings.tokens_in_clear_text:
        log.warning(
            "client tokens travel unencrypted to %s: set LABELPULSE_API_TLS_CERT_FILE and LABELPULSE_API_TLS_KEY_FILE, "
            "or keep the API behind a proxy that terminates TLS",
            settings.address,
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await health_servicer.enter_graceful_shutdown()
    await server.stop(grace=5)
