"""The webhook POST over TLS: pinned to the vetted address, verified against the host name."""
from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from newsletter.services.webhooks import net_policy, webhook_http

LOOPBACK = ipaddress.ip_address("127.0.0.1")


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.hosts.append(self.headers["Host"])  # type: ignore[attr-defined]
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"tls ok")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def tls_receiver(tmp_path_factory):
    """An HTTPS receiver on 127.0.0.1 whose self-signed certificate names `hooks.test` only."""
    folder: Path = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hooks.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("hooks.test")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.hosts, server.sni = [], []  # type: ignore[attr-defined]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    context.sni_callback = lambda sock, sni, ctx: server.sni.append(sni)  # type: ignore[attr-defined]
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, folder / "cert.pem"
    server.shutdown()
    server.server_close()


def _post(host: str, port: int, ca: Path) -> int:
    target = net_policy.Target("https", host, port, "/in", None)
    connection = webhook_http.PinnedHTTPS(target, [LOOPBACK], timeout=5)
    connection.tls.load_verify_locations(ca)
    try:
        connection.request("POST", target.path, body=b"{}")
        return connection.getresponse().status
    finally:
        connection.close()


def test_tls_goes_to_the_vetted_address_and_checks_the_certificate_against_the_name(tls_receiver):
    server, ca = tls_receiver
    # `hooks.test` resolves nowhere: the connection goes to the vetted address it was given.
    assert _post("hooks.test", server.server_port, ca) == 200
    assert server.sni[-1] == "hooks.test" and server.hosts[-1] == f"hooks.test:{server.server_port}"
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        _post("other.test", server.server_port, ca)


def test_an_untrusted_certificate_fails_the_attempt(tls_receiver):
    server, _ = tls_receiver
    reply = webhook_http.post(f"https://127.0.0.1:{server.server_port}/in", "{}", {}, 5,
                              net_policy.networks(["127.0.0.1/32"]))
    assert reply.code is None and not reply.refused and "CERTIFICATE_VERIFY_FAILED" in reply.error
