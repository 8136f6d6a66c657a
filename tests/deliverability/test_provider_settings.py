"""The provider webhook settings are checked at start-up: a wrong key would refuse every event."""
from __future__ import annotations

import pytest

from newsletter.config import ConfigError, build_config
from tests.support.providers import sendgrid_keys


def test_defaults_leave_the_signed_endpoints_off_and_trust_only_sns_hosts():
    config = build_config({"NEWSLETTER_ENV": "testing", "SECRET_KEY": "x" * 40})
    assert (config["SENDGRID_WEBHOOK_PUBLIC_KEY"], config["MAILGUN_WEBHOOK_SIGNING_KEY"],
            config["POSTMARK_WEBHOOK_USER"], config["SES_SNS_TOPIC_ARNS"]) == ("", "", "", [])
    assert config["SES_SNS_CERT_URL_PATTERN"].startswith("https://sns")
    assert config["PROVIDER_WEBHOOK_MAX_AGE"] == 300


def test_values_are_read_and_checked():
    _, public = sendgrid_keys()
    config = build_config({"NEWSLETTER_ENV": "testing", "SECRET_KEY": "x" * 40, "SENDGRID_WEBHOOK_PUBLIC_KEY": public,
                           "SES_SNS_TOPIC_ARNS": "arn:aws:sns:eu-west-1:1:a, arn:aws:sns:eu-west-1:1:b",
                           "POSTMARK_WEBHOOK_IPS": "50.31.156.6, 10.0.0.0/8"})
    assert config["SENDGRID_WEBHOOK_PUBLIC_KEY"] == public
    assert config["SES_SNS_TOPIC_ARNS"] == ["arn:aws:sns:eu-west-1:1:a", "arn:aws:sns:eu-west-1:1:b"]
    assert config["POSTMARK_WEBHOOK_IPS"] == ["50.31.156.6/32", "10.0.0.0/8"]


@pytest.mark.parametrize("env, name", [
    ({"SENDGRID_WEBHOOK_PUBLIC_KEY": "not-a-key"}, "SENDGRID_WEBHOOK_PUBLIC_KEY"),
    ({"SENDGRID_WEBHOOK_PUBLIC_KEY": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"}, "SENDGRID_WEBHOOK_PUBLIC_KEY"),
    ({"SES_SNS_CERT_URL_PATTERN": "https://(unclosed"}, "SES_SNS_CERT_URL_PATTERN"),
    ({"POSTMARK_WEBHOOK_IPS": "postmark.example"}, "POSTMARK_WEBHOOK_IPS"),
    ({"PROVIDER_WEBHOOK_MAX_AGE": "soon"}, "PROVIDER_WEBHOOK_MAX_AGE"),
])
def test_a_malformed_setting_fails_at_start_up_naming_it(env, name):
    with pytest.raises(ConfigError, match=name):
        build_config({"NEWSLETTER_ENV": "testing", "SECRET_KEY": "x" * 40, **env})
