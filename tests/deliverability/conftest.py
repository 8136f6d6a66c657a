"""Fixtures for the provider webhooks: settings changed for one test, the SNS certificate host."""
from __future__ import annotations

import re

import pytest

from tests.support.providers import CertHost, certificate, pem, rsa_key

PROVIDER_SETTINGS = ("SES_SNS_CERT_URL_PATTERN", "SES_SNS_TOPIC_ARNS", "SES_SNS_CA_FILE",
                     "SENDGRID_WEBHOOK_PUBLIC_KEY", "MAILGUN_WEBHOOK_SIGNING_KEY", "POSTMARK_WEBHOOK_USER",
                     "POSTMARK_WEBHOOK_PASSWORD", "POSTMARK_WEBHOOK_IPS", "PROVIDER_WEBHOOK_MAX_AGE",
                     "PROVIDER_WEBHOOK_REFUSED_LIMIT")


@pytest.fixture(autouse=True)
def _fresh_refusal_counts(app):
    """Each test starts with no refusals counted against 127.0.0.1 (the limit has its own test)."""
    from newsletter.extensions import limiter

    with app.app_context():
        limiter.reset()


@pytest.fixture
def settings(app):
    """settings(NAME=value, ...) for this test only."""
    saved = {name: app.config.get(name) for name in PROVIDER_SETTINGS}
    yield app.config.update
    app.config.update(saved)


@pytest.fixture(scope="session")
def sns_host():
    """A loopback HTTPS server (own CA) playing sns.<region>.amazonaws.com, with two signing
    certificates: /cert.pem (its key: `sns_host.key`) and /other.pem (another key)."""
    with CertHost() as host:
        host.key, other = rsa_key(), rsa_key()
        host.files["/cert.pem"] = pem(certificate("sns.amazonaws.com", host.key))
        host.files["/other.pem"] = pem(certificate("sns.amazonaws.com", other))
        host.files["/cached.pem"] = host.files["/cert.pem"]
        host.files["/confirm"] = b"<ConfirmSubscriptionResponse/>"
        yield host


@pytest.fixture
def sns(settings, sns_host):
    """The SES endpoint pointed at `sns_host`: its address is the only allowed certificate host."""
    settings(SES_SNS_CERT_URL_PATTERN=re.escape(sns_host.base) + "/", SES_SNS_CA_FILE=sns_host.ca_file,
             SES_SNS_TOPIC_ARNS=[])
    sns_host.requests.clear()
    return sns_host


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app
