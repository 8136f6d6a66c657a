"""BOUNCE_MAILBOX_URL and BOUNCE_POLL_INTERVAL: checked at start-up, scheduled on beat, parsed
(percent-encoded credentials) by the IMAP side."""
import pytest

from newsletter.config import ConfigError, build_config
from newsletter.services.deliverability.imap import MailboxUrl, MailboxUrlError, parse_url


def test_the_mailbox_is_polled_on_beat_every_interval(tmp_path):
    config = build_config({"INSTANCE_PATH": str(tmp_path), "BOUNCE_MAILBOX_URL": "imaps://b:p@mail.example.org/INBOX",
                           "BOUNCE_POLL_INTERVAL": "30"})
    schedule = config["CELERY"]["beat_schedule"]
    entries = [schedule[f"poll-bounce-mailbox-{part}"] for part in (0, 1)]  # BOUNCE_POLL_PARALLEL=2
    assert [(e["task"], e["args"], e["schedule"]) for e in entries] == [
        ("newsletter.tasks.bounces.poll_mailbox", [0, 2], 30.0),
        ("newsletter.tasks.bounces.poll_mailbox", [1, 2], 30.0)]
    assert entries[0]["options"]["expires"] == 30.0  # a tick that waited a whole period is dropped
    single = build_config({"INSTANCE_PATH": str(tmp_path), "BOUNCE_POLL_PARALLEL": "1"})["CELERY"]["beat_schedule"]
    assert single["poll-bounce-mailbox-0"]["args"] == [0, 1] and "poll-bounce-mailbox-1" not in single
    assert config["BOUNCE_MAILBOX_URL"] == "imaps://b:p@mail.example.org/INBOX"
    defaults = build_config({"INSTANCE_PATH": str(tmp_path)})
    assert (defaults["BOUNCE_MAILBOX_URL"], defaults["BOUNCE_POLL_INTERVAL"]) == ("", 60.0)


@pytest.mark.parametrize("url", ["http://b:p@host/INBOX", "imap://host/INBOX", "imap://b:p@/INBOX",
                                 "imap://b:p@host:port/INBOX", "mail.example.org"])
def test_a_malformed_mailbox_url_stops_the_start(tmp_path, url):
    with pytest.raises(ConfigError, match="BOUNCE_MAILBOX_URL") as error:
        build_config({"INSTANCE_PATH": str(tmp_path), "BOUNCE_MAILBOX_URL": url})
    assert ":p@" not in str(error.value)  # never the password in the message


def test_parse_url_decodes_the_credentials_and_defaults_port_and_folder():
    assert parse_url("imap://bounces%40example.org:p%2Fw%3A%40d@127.0.0.1") == MailboxUrl(
        "imap", "127.0.0.1", 143, "bounces@example.org", "p/w:@d", "INBOX")
    assert parse_url("imaps://u:p@mail.example.org:1993/Bounces%20In") == MailboxUrl(
        "imaps", "mail.example.org", 1993, "u", "p", "Bounces In")
    with pytest.raises(MailboxUrlError):
        parse_url("pop3://u:p@host/")
