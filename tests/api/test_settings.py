"""The API's settings and client tokens: every mistake refused at start-up, naming where and what."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.settings import ApiClient, ApiSettings, load_clients, token_sha256
from config.env import ConfigError

DIGEST = token_sha256("secret")


def tokens(*clients: dict) -> dict[str, str]:
    return {"LABELPULSE_API_TOKENS": json.dumps({"clients": list(clients)})}


def test_defaults_serve_every_project_on_loopback() -> None:
    settings = ApiSettings.from_env({})
    assert settings.address == "127.0.0.1:50051" and not settings.clients and settings.metrics_port == 9812


def test_a_client_is_found_by_the_hash_of_its_token_with_its_projects(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yml"
    path.write_text(f"clients:\n  - name: grafana\n    token_sha256: {DIGEST}\n    projects: [a, b]\n")
    settings = ApiSettings.from_env({"LABELPULSE_API_TOKENS_FILE": str(path)})
    assert settings.clients == {DIGEST: ApiClient("grafana", ("a", "b"))}
    assert "secret" not in path.read_text()


def test_all_means_every_project() -> None:
    settings = ApiSettings.from_env(tokens({"name": "ops", "token_sha256": DIGEST, "projects": "all"}))
    assert settings.clients[DIGEST].projects is None


def test_a_network_address_without_tokens_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"LABELPULSE_API_HOST=0\.0\.0\.0 without client tokens"):
        ApiSettings.from_env({"LABELPULSE_API_HOST": "0.0.0.0"})


def test_a_network_address_with_tokens_is_allowed_and_warned_about_without_tls(tmp_path: Path) -> None:
    env = {"LABELPULSE_API_HOST": "0.0.0.0", **tokens({"name": "x", "token_sha256": DIGEST, "projects": "all"})}
    plaintext = ApiSettings.from_env(env)
    assert plaintext.host == "0.0.0.0" and plaintext.tokens_in_clear_text
    for pem in ("cert.pem", "key.pem"):
        (tmp_path / pem).write_text("-")
    tls = {
        "LABELPULSE_API_TLS_CERT_FILE": str(tmp_path / "cert.pem"),
        "LABELPULSE_API_TLS_KEY_FILE": str(tmp_path / "key.pem"),
    }
    assert not ApiSettings.from_env({**env, **tls}).tokens_in_clear_text
    assert not ApiSettings.from_env({**env, "LABELPULSE_API_HOST": "127.0.0.1"}).tokens_in_clear_text


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"users": []}, r"expected `clients:`"),
        ({"clients": ["x"]}, r"clients\[0\]: expected a mapping"),
        (
            {"clients": [{"name": "x", "token_sha256": DIGEST, "projects": "all", "role": "a"}]},
            r"unknown field\(s\) role",
        ),
        ({"clients": [{"name": "", "token_sha256": DIGEST, "projects": "all"}]}, r"clients\[0\]\.name"),
        ({"clients": [{"name": "x", "token_sha256": "secret", "projects": "all"}]}, r"clients\[0\]\.token_sha256"),
        ({"clients": [{"name": "x", "token_sha256": DIGEST, "projects": []}]}, r"clients\[0\]\.projects"),
        (
            {"clients": [{"name": "x", "token_sha256": DIGEST, "projects": "all"}] * 2},
            r"clients\[1\]: client 'x' or its token is listed twice",
        ),
    ],
)
def test_each_mistake_in_the_tokens_names_the_field(document: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_clients(document, "tokens.yml")


def test_tls_needs_both_the_certificate_and_the_key(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("-")
    with pytest.raises(ConfigError, match="both LABELPULSE_API_TLS_CERT_FILE and LABELPULSE_API_TLS_KEY_FILE"):
        ApiSettings.from_env({"LABELPULSE_API_TLS_CERT_FILE": str(cert)})
    with pytest.raises(ConfigError, match="LABELPULSE_API_TLS_KEY_FILE names"):
        ApiSettings.from_env(
            {"LABELPULSE_API_TLS_CERT_FILE": str(cert), "LABELPULSE_API_TLS_KEY_FILE": str(tmp_path / "none")}
        )
