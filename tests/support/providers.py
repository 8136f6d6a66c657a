"""Stand-ins for the sending providers' side of their webhooks: keys and certificates made here,
a loopback HTTPS server playing the SNS certificate host, and each provider's signing written
independently of the code under test (from the providers' documentation)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import ssl
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def certificate(name: str, key, issuer: x509.Certificate | None = None, issuer_key=None, *, ca: bool = False,
                ip: str | None = None, days: int = 30, start: datetime | None = None) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    begin = start or datetime.now(UTC) - timedelta(days=1)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer.subject if issuer else subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(begin)
               .not_valid_after(begin + timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False),
                                        critical=True)
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                                        critical=False)
    if ip:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
                                        critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        server: CertHost = self.server.owner  # type: ignore[attr-defined]
        server.requests.append(self.path)
        body = server.files.get(self.path.split("?")[0])
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/x-pem-file")
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args) -> None:
        pass


class CertHost:
    """An HTTPS server on 127.0.0.1 with a certificate from a CA made here (`ca_file`): it serves
    `files` (path -> bytes) and records every path asked for."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        self.dir = Path(tempfile.mkdtemp(prefix="sns-"))
        ca_key, tls_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
        ca = certificate("Test SNS CA", ca_key, ca=True)
        tls = certificate("127.0.0.1", tls_key, ca, ca_key, ip="127.0.0.1")
        self.ca_file = str(self.dir / "ca.pem")
        Path(self.ca_file).write_bytes(pem(ca))
        (self.dir / "tls.pem").write_bytes(pem(tls) + tls_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.dir / "tls.pem"))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.base = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> CertHost:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --- Amazon SNS: "Name\nvalue\n" for the type's fields, in this order, RSA PKCS#1 v1.5 ---

_SNS_FIELDS = {"Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
               "SubscriptionConfirmation": ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                            "TopicArn", "Type"]}


def sns_sign(message: dict, key: rsa.RSAPrivateKey, cert_url: str, version: str = "1") -> dict:
    signed = "".join(f"{name}\n{message[name]}\n" for name in _SNS_FIELDS[message["Type"]] if name in message)
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(signed.encode(), padding.PKCS1v15(), digest)
    return {**message, "SignatureVersion": version, "Signature": base64.b64encode(signature).decode(),
            "SigningCertURL": cert_url}


def sns_notification(ses_event: dict, message_id: str = "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
                     topic: str = "arn:aws:sns:us-east-1:123456789012:ses-bounces") -> dict:
    return {"Type": "Notification", "MessageId": message_id, "TopicArn": topic,
            "Message": json.dumps(ses_event), "Timestamp": "2026-12-06T12:00:00.000Z",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"}


def ses_bounce(email: str, bounce_type: str = "Permanent", headers: list | None = None, message_id: str = "",
               status: str = "5.1.1") -> dict:
    """An SES bounce notification shaped like the documented example (notification-examples.html)."""
    return {"notificationType": "Bounce",
            "bounce": {"bounceType": bounce_type, "bounceSubType": "General", "reportingMTA": "dns; mx.example.com",
                       "bouncedRecipients": [{"emailAddress": email, "status": status, "action": "failed",
                                              "diagnosticCode": f"smtp; 550 {status} <{email}>... User unknown"}],
                       "timestamp": "2026-12-06T11:59:58.237Z", "feedbackId": "0000013811-0000"},
            "mail": {"timestamp": "2026-12-06T11:59:50.000Z", "source": "news@example.com",
                     "messageId": "00000138111222aa-33322211", "destination": [email], "headersTruncated": False,
                     "headers": headers or [],
                     "commonHeaders": {"from": ["news@example.com"], "to": [email], "messageId": message_id}}}


def ses_complaint(email: str, headers: list | None = None, feedback: str = "abuse") -> dict:
    return {"notificationType": "Complaint",
            "complaint": {"complainedRecipients": [{"emailAddress": email}], "complaintFeedbackType": feedback,
                          "timestamp": "2026-12-06T12:00:01.000Z", "feedbackId": "0000013811-0001",
                          "userAgent": "Yahoo!-Mail-Feedback/1.0"},
            "mail": {"timestamp": "2026-12-06T11:59:50.000Z", "source": "news@example.com",
                     "messageId": "00000138111222aa-33322212", "destination": [email], "headers": headers or [],
                     "commonHeaders": {"to": [email]}}}


# --- SendGrid: ECDSA P-256 / SHA-256 over timestamp + raw body, base64 DER signature ---

def sendgrid_keys() -> tuple[ec.EllipticCurvePrivateKey, str]:
    """A private key and its public half as SendGrid's settings page shows it (base64 DER)."""
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, base64.b64encode(der).decode()


def sendgrid_headers(body: bytes, key: ec.EllipticCurvePrivateKey, timestamp: int | None = None) -> dict:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp, "Content-Type": "application/json"}


# --- Mailgun: hex HMAC-SHA256 of timestamp + token with the webhook signing key ---

def mailgun_payload(key: str, event_data: dict, timestamp: int | None = None, token: str | None = None) -> dict:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    token = token or hashlib.sha256(str(time.perf_counter_ns()).encode()).hexdigest()[:50]
    signature = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return {"signature": {"timestamp": stamp, "token": token, "signature": signature}, "event-data": event_data}
