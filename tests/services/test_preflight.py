"""Pre-flight checks against DNS records served by the test's own loopback server (never the real DNS)."""
from __future__ import annotations

import socket
from dataclasses import replace

import pytest
from flask_babel import gettext as _

from newsletter.services.campaigns import campaigns
from newsletter.services.deliverability import dkim, preflight
from newsletter.web.i18n import localized
from tests.support.web import is_english
from tests.web.test_public import make_list

GOOD_HTML = '<p>Hello {{ subscriber.name }}</p><p><a href="https://example.com/x">Read</a> · ' \
            '<a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'


# The session sends with a VERP return path at example.org (tests/conftest.py); these checks are
# about the From domain's own SPF unless a test sets BOUNCE_ADDRESS itself.
pytestmark = pytest.mark.usefixtures("no_verp")


def make(app, **overrides) -> int:
    list_id = make_list(app, "Weekly")
    values = dict(name="June", subject="News", from_name="Acme", from_email="news@example.com", html=GOOD_HTML,
                  list_ids=[list_id])
    values.update(overrides)
    with app.app_context():
        return campaigns.create(**values).id


def publish_all(app, dns, domain: str = "example.com") -> None:
    """SPF, DMARC and an active, published DKIM key: everything a receiver wants."""
    dns.txt(domain, "v=spf1 ip4:127.0.0.0/8 -all", "google-site-verification=abc")
    dns.txt(f"_dmarc.{domain}", "v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com")
    with app.app_context():
        key = dkim.generate(domain, selector="s1")
        dkim.activate(key.id)
        dns.txt(key.record_name, key.record_value)


def run(app, campaign_id: int) -> dict[str, preflight.Check]:
    """Each check by its key, its sentence in English (the API's words; the admin page translates it)."""
    with app.app_context():
        report = preflight.run(campaign_id)
    return {check.key: replace(check, detail=str(check.detail)) for check in report.checks} | {"": report}  # type: ignore[dict-item]


def statuses(found) -> dict[str, str]:
    return {key: check.status for key, check in found.items() if key}


def test_a_well_set_up_domain_and_a_clean_campaign_pass_everything(app, dns):
    publish_all(app, dns)
    found = run(app, make(app))
    assert statuses(found) == {"spf": "pass", "dkim": "pass", "dmarc": "pass", "size": "pass", "links": "pass",
                               "unsubscribe": "pass", "text": "pass"}
    assert found[""].status == "pass" and found[""].from_domain == "example.com"
    assert "lists MAIL_SERVER's address 127.0.0.1" in found["spf"].detail
    assert found["spf"].records == ["v=spf1 ip4:127.0.0.0/8 -all"]
    assert "DKIM aligned" in found["dmarc"].detail and "SPF aligned" in found["dmarc"].detail
    assert "Generated from the HTML" in found["text"].detail


def test_nothing_published_fails_spf_dkim_and_dmarc_and_says_what_to_do(app, dns):
    found = run(app, make(app))
    assert (found["spf"].status, found["dkim"].status, found["dmarc"].status) == ("fail", "fail", "fail")
    assert "publishes no SPF record" in found["spf"].detail
    assert "No DKIM key for example.com" in found["dkim"].detail
    assert "No DMARC record at _dmarc.example.com" in found["dmarc"].detail
    assert found[""].status == "fail"
    assert ("example.com", "TXT") in dns.queries and ("_dmarc.example.com", "TXT") in dns.queries


def test_spf_that_does_not_cover_the_smtp_server_warns_and_two_records_fail(app, dns):
    campaign_id = make(app)
    dns.txt("example.com", "v=spf1 ip4:192.0.2.0/24 -all")
    found = run(app, campaign_id)
    assert found["spf"].status == "warn" and "add ip4:127.0.0.1" in found["spf"].detail
    preflight.forget_dns()
    dns.txt("example.com", "v=spf1 include:_spf.mailer.example ~all")
    assert "may be covered through include:_spf.mailer.example" in run(app, campaign_id)["spf"].detail
    preflight.forget_dns()
    dns.txt("example.com", "v=spf1 ip4:127.0.0.1 -all", "v=spf1 -all")
    assert run(app, campaign_id)["spf"].status == "fail"


def test_a_dkim_key_whose_record_is_missing_or_different_fails(app, dns):
    campaign_id = make(app)
    with app.app_context():
        pending = dkim.generate("example.com", selector="p1")
        name = pending.record_name
    assert "not yet activated" in run(app, campaign_id)["dkim"].detail
    with app.app_context():
        dkim.activate(pending.id)
    preflight.forget_dns()
    found = run(app, campaign_id)["dkim"]
    assert found.status == "fail" and "no TXT record published" in found.detail
    preflight.forget_dns()
    dns.txt(name, "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAwrong")
    found = run(app, campaign_id)["dkim"]
    assert found.status == "fail" and "holds another key" in found.detail


def test_dmarc_alignment_follows_the_bounce_address_domain(app, dns):
    publish_all(app, dns)
    dns.txt("bounces.example.net", "v=spf1 ip4:127.0.0.1 -all")
    campaign_id = make(app)
    app.config["BOUNCE_ADDRESS"] = "bounces@bounces.example.net"  # no_verp restores it
    found = run(app, campaign_id)
    assert found[""].return_path_domain == "bounces.example.net"
    assert found["spf"].status == "pass" and "SPF not aligned (return path bounces.example.net)" in \
        found["dmarc"].detail
    assert found["dmarc"].status == "pass"  # DKIM still aligns
    with app.app_context():
        [key] = dkim.all_keys()
        dkim.delete(key.id)
    preflight.forget_dns()
    found = run(app, campaign_id)
    assert found["dmarc"].status == "fail" and found["dmarc"].detail.startswith("DMARC would fail")


def test_a_subdomain_uses_its_organizational_domains_dmarc_record_and_strict_alignment(app, dns):
    publish_all(app, dns)
    dns.txt("news.example.com", "v=spf1 ip4:127.0.0.1 -all")
    campaign_id = make(app, from_email="hello@news.example.com")
    found = run(app, campaign_id)
    # The key signs as example.com only if the From domain is example.com: news.example.com has none.
    assert found["dkim"].status == "fail"
    assert found["dmarc"].status == "pass" and "at _dmarc.example.com" in found["dmarc"].detail
    preflight.forget_dns()
    dns.txt("_dmarc.example.com", "v=DMARC1; p=reject; aspf=s; adkim=s")
    dns.txt("news.example.com")  # no SPF for the subdomain now
    assert run(app, campaign_id)["dmarc"].status == "fail"


def test_gmail_clipping_links_unsubscribe_and_text_part(app, dns):
    big = make(app, html=GOOD_HTML + "<p>" + "x" * (103 * 1024) + "</p>")
    near = make(app, html=GOOD_HTML + "<p>" + "x" * (95 * 1024) + "</p>")
    assert run(app, big)["size"].status == "fail" and run(app, near)["size"].status == "warn"

    bad = make(app, html=GOOD_HTML + '<a href="javascript:alert(1)">x</a><a href="file:///etc/passwd">y</a>')
    found = run(app, bad)["links"]
    assert found.status == "fail" and "javascript:alert(1)" in found.detail and "file:///etc/passwd" in found.detail
    relative = make(app, html=GOOD_HTML + '<a href="/about">x</a><img src="logo.png"><a href="#top">t</a>')
    found = run(app, relative)["links"]
    assert found.status == "warn" and "/about" in found.detail and "logo.png" in found.detail
    assert "#top" not in found.detail

    missing = make(app, html='<p>Hello</p><a href="https://example.com">x</a>')
    assert run(app, missing)["unsubscribe"].status == "fail"
    text_only = make(app, html='<p>Hello</p>', text="Leave: {{ unsubscribe_url }}")
    assert run(app, text_only)["unsubscribe"].status == "warn"
    preferences = make(app, html='<p>Hi <a href="{{ preferences_url }}">Manage</a></p>')
    assert run(app, preferences)["unsubscribe"].status == "pass"

    image_only = make(app, html='<a href="{{ unsubscribe_url }}"><img src="https://example.com/a.png"></a>')
    assert run(app, image_only)["text"].status == "warn"
    written = make(app, html=GOOD_HTML, text="Hello, by hand")
    assert run(app, written)["text"].detail == "Written by hand."


@pytest.fixture
def silent_dns(app):
    """A resolver that never answers: every lookup times out."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    saved = app.config["DNS_RESOLVER"], app.config["DNS_TIMEOUT"]
    app.config["DNS_RESOLVER"], app.config["DNS_TIMEOUT"] = ("127.0.0.1", sock.getsockname()[1]), 0.3
    preflight.forget_dns()
    yield
    app.config["DNS_RESOLVER"], app.config["DNS_TIMEOUT"] = saved
    preflight.forget_dns()
    sock.close()


def test_a_dns_timeout_is_a_warning_never_a_pass(app, silent_dns):
    found = run(app, make(app))
    assert (found["spf"].status, found["dmarc"].status) == ("warn", "warn")
    assert "The DNS lookup of example.com failed" in found["spf"].detail


def test_answers_are_cached_briefly(app, dns):
    campaign_id = make(app)
    run(app, campaign_id)
    asked = len(dns.queries)
    run(app, campaign_id)
    assert len(dns.queries) == asked
    preflight.forget_dns()
    run(app, campaign_id)
    assert len(dns.queries) == 2 * asked


def test_the_checks_read_in_german_on_a_german_page(app, dns):
    """What the admin page shows (localized): every sentence in German, the API's English kept apart."""
    publish_all(app, dns)
    dns.txt("bounces.example.net", "v=spf1 ip4:127.0.0.1 -all")
    dns.txt("_dmarc.example.org", "v=DMARC1; p=reject")  # example.org: no key, bounces elsewhere
    app.config["BOUNCE_ADDRESS"] = "bounces@bounces.example.net"  # no_verp restores it
    reports = []
    with app.app_context():
        reports.append(preflight.run(make(app, html="<p>Hi</p><a href='/about'>x</a>")))
        for key in dkim.all_keys():
            dkim.delete(key.id)
        preflight.forget_dns()
        reports.append(preflight.run(make(app, from_email="news@example.org")))
    checks = [check for report in reports for check in report.checks]
    assert {c.status for c in checks} == {"pass", "warn", "fail"}
    assert any(str(c.detail).startswith("DMARC would fail") for c in checks)
    with app.test_request_context("/admin/", headers={"Cookie": "ui_language=de"}):
        shown = {str(c.detail): localized(c.detail) for c in checks}
        labels = {_(c.label) for c in checks}
    assert [english for english, german in shown.items() if is_english(german)] == []
    assert [english for english, german in shown.items() if english == german] == []
    assert "DMARC würde fehlschlagen" in " ".join(shown.values()) and "Nachrichtengröße" in labels
