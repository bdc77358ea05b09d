"""TLS both ways (issue 15): the agent's own HTTPS listener, and its client certificate
presented to a VES collector, A&AI and Keystone that ask for one.

Certificates are made in the test with ``cryptography``: a CA, a server certificate for
127.0.0.1 and a client certificate, all signed by that CA. The servers are real TLS servers on
loopback that refuse a client without a certificate.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from vesagent.aai_client import AaiClient
from vesagent.agent import collector_session
from vesagent.api import ApiServer
from vesagent.errors import TemporaryError
from vesagent.pollers.openstack import SessionPool, VimCredentials
from vesagent.settings import Settings


@dataclass
class Pki:
    """Paths of the PEM files one test needs."""

    ca: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str


def _write(path: Path, *pems: bytes) -> str:
    path.write_bytes(b"".join(pems))
    return str(path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vesagent test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )

    def issue(name: str, server: bool) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
        )
        if server:
            san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
            builder = builder.add_extension(san, critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)

    server_cert, server_key = issue("127.0.0.1", True)
    client_cert, client_key = issue("vesagent-client", False)
    return Pki(
        ca=_write(folder / "ca.pem", ca.public_bytes(serialization.Encoding.PEM)),
        server_cert=_write(folder / "server.pem", server_cert),
        server_key=_write(folder / "server.key", server_key),
        client_cert=_write(folder / "client.pem", client_cert),
        client_key=_write(folder / "client.key", client_key),
    )


@pytest.fixture
def mtls_server(pki: Pki) -> Iterator[tuple[str, list[str]]]:
    """An HTTPS server that requires a client certificate; records each client's CN."""
    app = Flask("mtls")
    seen: list[str] = []

    @app.route("/<path:_path>", methods=["GET", "POST"])
    def anything(_path: str) -> object:
        cert = request.environ["werkzeug.socket"].getpeercert()
        seen.append(dict(x[0] for x in cert["subject"])["commonName"])
        return jsonify({"cloud-region": []})

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=pki.ca)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    context.verify_mode = ssl.CERT_REQUIRED
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=context)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_listener_serves_https_with_the_given_certificate(pki: Pki) -> None:
    """VESAGENT_TLS_CERT/KEY: the API answers over HTTPS; plain HTTP gets no API answer."""
    app = Flask("tls")

    @app.get("/healthz")
    def healthz() -> object:
        return jsonify({"status": "ok"})

    server = ApiServer(app, "127.0.0.1", 0, tls_cert=pki.server_cert, tls_key=pki.server_key)
    server.start()
    try:
        assert server.scheme == "https"
        url = f"https://{server.effective_listen}/healthz"
        assert requests.get(url, verify=pki.ca, timeout=10).json() == {"status": "ok"}
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(url, timeout=10)  # an unknown CA is refused by the client
        plain = f"http://{server.effective_listen}/healthz"
        try:
            answered = requests.get(plain, timeout=10).status_code
        except requests.RequestException:
            answered = None
        assert answered != 200
    finally:
        server.close()


def _settings(pki: Pki, **extra: str) -> Settings:
    return Settings(aai_url="https://127.0.0.1:1", **extra)


def test_collector_sessions_present_the_client_certificate(pki: Pki, mtls_server) -> None:
    """VESAGENT_VES_CLIENT_CERT/KEY and VESAGENT_VES_CA_FILE reach the collector."""
    url, seen = mtls_server
    settings = _settings(
        pki,
        ves_client_cert=pki.client_cert,
        ves_client_key=pki.client_key,
        ves_ca_file=pki.ca,
    )
    session = collector_session(settings)()
    # verify=True per request is what the sender passes for a subscription without ca_file.
    assert session.post(url + "/eventListener/v7", data=b"{}", verify=True, timeout=10).ok
    assert seen == ["vesagent-client"]
    bare = collector_session(_settings(pki, ves_ca_file=pki.ca))()
    with pytest.raises(requests.exceptions.RequestException):
        bare.post(url + "/eventListener/v7", data=b"{}", verify=True, timeout=10)


def test_aai_and_keystone_present_the_client_certificate(pki: Pki, mtls_server) -> None:
    """VESAGENT_AAI_CLIENT_CERT/KEY and VESAGENT_KEYSTONE_CLIENT_CERT/KEY reach the server."""
    url, seen = mtls_server
    pair = (pki.client_cert, pki.client_key)
    aai = AaiClient(url, "AAI", "AAI", verify=pki.ca, cert=pair, retry_attempts=1)
    assert aai.list_regions() == []
    with pytest.raises(TemporaryError):
        AaiClient(url, "AAI", "AAI", verify=pki.ca, retry_attempts=1).list_regions()
    creds = VimCredentials(url + "/identity", "u", "p", "admin", verify=pki.ca)
    pool = SessionPool(cert=pair)
    _auth, session = pool.acquire(creds, on_authenticate=lambda: None)
    response = session.get(url + "/identity/v3", authenticated=False, raise_exc=False)
    assert response.status_code == 200
    assert seen.count("vesagent-client") == 2
    pool.release(creds)
