"""DKIM keys and signatures, checked by verifiers that share no code with ours (tests/support/dkim.py)."""
from __future__ import annotations

import email
import email.policy

import pytest
from cryptography.hazmat.primitives import serialization

from newsletter.extensions import db
from newsletter.models import DkimAlgorithm, DkimKey, DkimKeyStatus
from newsletter.sending import message as mime
from newsletter.services import settings
from newsletter.services.deliverability import dkim
from newsletter.services.errors import ValidationError
from tests.support.dkim import dkimpy, mail_dkim


def build(**overrides) -> mime.Envelope:
    values = dict(from_name="Zoë’s News", from_email="news@example.com", to="ana@example.org",
                  subject="Hello   there, ünïcode", html="<p>Hi   there</p>  \n\n\n", text="Hi  there \t\n\n\n",
                  message_id="<1.2@example.com>", reply_to="reply@example.com",
                  extra_headers=[("List-Id", "Weekly <campaign-1.example.com>"), ("Precedence", "bulk"),
                                 ("Feedback-ID", "c1:all:newsletter:examplecom")])
    values.update(overrides)
    return mime.build(**values)


def publish(dns, key: DkimKey) -> None:
    dns.txt(key.record_name, key.record_value)


def test_an_active_rsa_key_signs_and_mail_dkim_verifies_it_and_sees_any_change(app, dns):
    with app.app_context():
        key = dkim.generate("Example.COM", algorithm=DkimAlgorithm.RSA, bits=2048)
        assert (key.domain, key.bits, key.status) == ("example.com", 2048, DkimKeyStatus.PENDING)
        assert not dkim.sign(build(), "news@example.com").data.startswith(b"DKIM-Signature")  # pending: unsigned
        publish(dns, key)
        dkim.activate(key.id)
        signed, selector = dkim.sign(build(), "news@example.com").data, key.selector
    assert signed.startswith(b"DKIM-Signature:")
    result, lines = mail_dkim(signed, dns.port)
    assert result == "pass", lines
    assert lines == [f"pass d=example.com s={selector} a=rsa-sha256 pass"]
    header = email.message_from_bytes(signed, policy=email.policy.compat32)["DKIM-Signature"]
    assert "h=from:to:subject:date:message-id:reply-to:mime-version:content-type:list-id:feedback-id;" in header

    for original, changed in [(b"To: ana@example.org", b"To: eve@example.org"),
                              (b"Feedback-ID: c1:all", b"Feedback-ID: c2:all"),
                              (b"List-Id: Weekly", b"List-Id: Monthly")]:
        assert original in signed
        assert mail_dkim(signed.replace(original, changed), dns.port)[0] == "fail", changed
    body_changed = signed[:-10] + b"A" + signed[-9:]
    assert mail_dkim(body_changed, dns.port)[0] == "fail"


def test_relaxed_canonicalisation_survives_what_relays_do_to_whitespace(app, dns):
    with app.app_context():
        key = dkim.generate("example.com", selector="ws")
        publish(dns, key)
        dkim.activate(key.id)
        signed = dkim.sign(build(), "news@example.com").data
    head, _, body = signed.partition(b"\r\n\r\n")
    # A relay that re-folds a header and pads line ends: relaxed/relaxed still verifies.
    rewritten = head.replace(b"To: ana@example.org", b"To:   ana@example.org  ") + b"\r\n\r\n" + \
        body.replace(b"\r\n", b"  \r\n") + b"\r\n\r\n"
    assert mail_dkim(rewritten, dns.port)[0] == "pass"


def test_the_published_record_must_match_the_key(app, dns):
    with app.app_context():
        key, other = dkim.generate("example.com", selector="a"), dkim.generate("example.com", selector="b")
        dkim.activate(key.id)
        signed = dkim.sign(build(), "news@example.com").data
        name, right, wrong = key.record_name, key.record_value, other.record_value
    result, lines = mail_dkim(signed, dns.port)
    assert (result, lines) == ("invalid", ["invalid d=example.com s=a a=rsa-sha256 invalid (public key: not available)"
                                           ])  # nothing published yet
    dns.txt(name, wrong)  # another key at the selector
    assert mail_dkim(signed, dns.port)[0] == "fail"
    dns.txt(name, right)
    assert mail_dkim(signed, dns.port)[0] == "pass"


def test_rsa_and_ed25519_side_by_side_sign_twice_and_each_verifies(app, dns):
    with app.app_context():
        rsa_key = dkim.generate("example.com", selector="r1")
        ed_key = dkim.generate("example.com", selector="e1", algorithm=DkimAlgorithm.ED25519)
        for key in (rsa_key, ed_key):
            publish(dns, key)
            dkim.activate(key.id)
        signed = dkim.sign(build(), "news@example.com").data
        assert ed_key.record_value.startswith("v=DKIM1; k=ed25519; p=") and len(ed_key.public_key) == 44
    assert signed.count(b"DKIM-Signature:") == 2
    assert "pass d=example.com s=r1 a=rsa-sha256 pass" in mail_dkim(signed, dns.port)[1]
    assert dkimpy(signed, dns.port, 0) and dkimpy(signed, dns.port, 1)  # dkimpy checks Ed25519 too
    assert not dkimpy(signed.replace(b"To: ana@", b"To: eve@"), dns.port, 0)


def test_activating_a_new_key_retires_the_old_one_and_workers_sign_with_the_new_one(app, dns):
    with app.app_context():
        old = dkim.generate("example.com", selector="old")
        dkim.activate(old.id)
        new = dkim.generate("example.com", selector="new")
        publish(dns, old)
        publish(dns, new)
        assert b"s=old;" in dkim.sign(build(), "news@example.com").data
        retired = dkim.activate(new.id)
        assert [k.selector for k in retired] == ["old"]
        db.session.expire_all()
        assert db.session.get(DkimKey, old.id).status == DkimKeyStatus.RETIRED
        signed = dkim.sign(build(), "news@example.com").data
        assert signed.count(b"DKIM-Signature:") == 1 and b"s=new;" in signed
        dkim.delete(new.id)
        assert not dkim.sign(build(), "news@example.com").data.startswith(b"DKIM-Signature")
    assert mail_dkim(signed, dns.port)[0] == "pass"


def test_other_domains_and_unsigned_mail_are_left_alone(app, dns):
    with app.app_context():
        key = dkim.generate("example.com")
        dkim.activate(key.id)
        envelope = build(from_email="news@other.example")
        assert dkim.sign(envelope, "news@other.example") == envelope


def test_the_private_key_is_stored_encrypted_with_a_key_from_secret_key(app):
    with app.app_context():
        key = dkim.generate("example.com")
        stored = db.session.get(DkimKey, key.id).private_key
        pem = settings.decrypt(stored, app.config["SECRET_KEY"])
        # Not a fixed marker like "MII": three base64 letters turn up in ~1 % of ciphertexts by chance.
        body_lines = [line for line in pem.splitlines() if line and not line.startswith("-----")]
        assert "PRIVATE KEY" not in stored and not any(line in stored for line in body_lines)
        private = serialization.load_pem_private_key(pem.encode(), password=None)
        assert private.key_size == 2048
        assert dkim.undecryptable() == []
        db.session.get(DkimKey, key.id).private_key = settings.encrypt(pem, "another secret key entirely")
        db.session.commit()
        assert dkim.undecryptable() == [key.id]


@pytest.mark.parametrize("kwargs, field", [
    ({"domain": "not a domain"}, "domain"), ({"domain": "localhost"}, "domain"), ({"domain": "-x.example"}, "domain"),
    ({"domain": "example.com", "selector": "bad selector"}, "selector"),
    ({"domain": "example.com", "selector": "x" * 64}, "selector"),
    ({"domain": "example.com", "bits": 1024}, "bits"),
])
def test_bad_input_is_refused_with_its_field(app, kwargs, field):
    with app.app_context():
        with pytest.raises(ValidationError) as refused:
            dkim.generate(**kwargs)
        assert refused.value.field == field
        assert db.session.query(DkimKey).count() == 0


def test_a_selector_is_unique_per_domain_and_idn_domains_are_stored_as_a_labels(app):
    with app.app_context():
        dkim.generate("example.com", selector="s1")
        with pytest.raises(ValidationError) as refused:
            dkim.generate("EXAMPLE.com.", selector="s1")
        assert refused.value.field == "selector"
        assert dkim.generate("example.org", selector="s1").domain == "example.org"
        idn = dkim.generate("bücher.example")
        assert idn.domain == "xn--bcher-kva.example"
        dkim.activate(idn.id)
        signed = dkim.sign(build(from_name="", from_email="news@bücher.example"), "news@bücher.example").data
        assert b"d=xn--bcher-kva.example;" in signed
