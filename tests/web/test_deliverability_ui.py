"""The DKIM page (admins only, CSRF, errors next to fields) and the campaign's pre-flight panel."""
from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import select

from newsletter.extensions import db
from newsletter.models import DkimKey, DkimKeyStatus, Role
from newsletter.services.accounts import users
from newsletter.services.campaigns import campaigns
from newsletter.services.deliverability import dkim
from tests.support.web import login, post_form
from tests.web.test_public import make_list

# The session sends with a VERP return path at example.org: these pages check the From domain's own SPF.
pytestmark = pytest.mark.usefixtures("no_verp")

PAGE = "/admin/settings/dkim"


def keys(app) -> list[DkimKey]:
    with app.app_context():
        found = list(db.session.scalars(select(DkimKey).order_by(DkimKey.id)))
        db.session.expunge_all()
        return found


def test_generate_publish_check_activate_and_delete_a_key(app, admin_client, dns):
    page = admin_client.get(PAGE).get_data(as_text=True)
    assert "No keys yet" in page and 'value="localhost"' in page  # the default sender's domain, prefilled
    done = post_form(admin_client, PAGE, PAGE, {"domain": "Example.com", "key_type": "rsa-2048", "selector": ""})
    assert done.status_code == 302
    [key] = keys(app)
    assert (key.domain, key.status, key.bits) == ("example.com", DkimKeyStatus.PENDING, 2048)
    page = admin_client.get(PAGE).get_data(as_text=True)
    assert f"Publish its TXT record at {key.record_name}" in unescape(page)
    assert key.record_name in page and unescape(key.record_value) in unescape(page) and "badge-pending" in page
    assert "PRIVATE" not in page

    checked = unescape(admin_client.get(PAGE + "?check=dns").get_data(as_text=True))
    assert "no TXT record published" in checked
    dns.txt(key.record_name, key.record_value)
    checked = unescape(admin_client.get(PAGE + "?check=dns").get_data(as_text=True))
    assert "published and matching" in checked

    activated = post_form(admin_client, PAGE, f"{PAGE}/{key.id}/activate")
    assert activated.status_code == 302
    assert keys(app)[0].status == DkimKeyStatus.ACTIVE
    page = unescape(admin_client.get(PAGE).get_data(as_text=True))
    assert f"{key.record_name} now signs every message from example.com." in page
    assert "is not found yet" not in page

    # Rotation: a second key, activated, retires the first.
    post_form(admin_client, PAGE, PAGE, {"domain": "example.com", "key_type": "rsa-2048", "selector": "next"})
    new = keys(app)[1]
    post_form(admin_client, PAGE, f"{PAGE}/{new.id}/activate")
    page = unescape(admin_client.get(PAGE).get_data(as_text=True))
    assert f"Retired: {key.selector} (keep its record a few days, then delete)." in page
    assert "Its DNS record is not found yet" in page
    assert [k.status for k in keys(app)] == [DkimKeyStatus.RETIRED, DkimKeyStatus.ACTIVE]

    assert post_form(admin_client, PAGE, f"{PAGE}/{key.id}/delete").status_code == 302
    assert [k.selector for k in keys(app)] == ["next"]


def test_bad_input_is_shown_next_to_its_field_and_nothing_is_stored(app, admin_client):
    bad = post_form(admin_client, PAGE, PAGE, {"domain": "not a domain", "key_type": "rsa-2048", "selector": ""})
    assert bad.status_code == 400
    assert re.search(r'class="field-error">Enter a domain such as example.com', bad.get_data(as_text=True))
    bad = post_form(admin_client, PAGE, PAGE, {"domain": "example.com", "key_type": "rsa-2048", "selector": "a b"})
    assert bad.status_code == 400 and "Letters, digits and hyphens only" in bad.get_data(as_text=True)
    bad = post_form(admin_client, PAGE, PAGE, {"domain": "example.com", "key_type": "rsa-512", "selector": ""})
    assert bad.status_code == 400 and "Not a valid choice" in bad.get_data(as_text=True)
    assert keys(app) == []
    # No CSRF token: refused, nothing stored.
    assert admin_client.post(PAGE, data={"domain": "example.com", "key_type": "rsa-2048"}).status_code == 400
    assert admin_client.post(f"{PAGE}/1/delete").status_code in (302, 400)
    assert keys(app) == []
    assert admin_client.get(f"{PAGE}/999/activate").status_code == 405


def test_only_admins_see_or_change_keys(app, client, admin):
    with app.app_context():
        users.create_user("marketer@example.com", "a long enough passphrase", Role.MARKETER)
        key = dkim.generate("example.com")
        key_id = key.id
    assert login(client, "marketer@example.com", "a long enough passphrase").status_code == 302
    assert client.get(PAGE).status_code == 403
    assert client.post(f"{PAGE}/{key_id}/delete").status_code in (400, 403)
    assert len(keys(app)) == 1


def make_campaign(app, html: str = '<p>Hi <a href="{{ unsubscribe_url }}">Unsubscribe</a></p>') -> int:
    list_id = make_list(app, "Weekly")
    with app.app_context():
        return campaigns.create(name="June", subject="News", from_name="Acme", from_email="news@example.com",
                                html=html, list_ids=[list_id]).id


def test_the_campaign_page_offers_the_preflight_panel_which_lists_every_check(app, admin_client, dns):
    campaign_id = make_campaign(app, '<p>Hi</p><a href="javascript:void(0)">x</a>')
    dns.txt("example.com", "v=spf1 ip4:127.0.0.1 -all")
    page = admin_client.get(f"/admin/campaigns/{campaign_id}").get_data(as_text=True)
    assert f'data-url="/admin/campaigns/{campaign_id}/preflight?partial=1"' in page
    panel = unescape(admin_client.get(f"/admin/campaigns/{campaign_id}/preflight?partial=1").get_data(as_text=True))
    for key, status in [("spf", "pass"), ("dkim", "fail"), ("dmarc", "fail"), ("size", "pass"), ("links", "fail"),
                        ("unsubscribe", "fail"), ("text", "pass")]:
        assert f'<li class="pf-{status}" data-check="{key}">' in panel, key
    assert "javascript:void(0)" in panel and "<html" not in panel
    whole = admin_client.get(f"/admin/campaigns/{campaign_id}/preflight").get_data(as_text=True)
    assert "<html" in whole and "Pre-flight checks" in whole and "Check again" in whole
