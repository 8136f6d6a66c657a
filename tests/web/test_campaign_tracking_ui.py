"""Tracking on the admin pages: the campaign form's mode (default from settings), the counts on
the campaign page, and the settings page's default."""
from __future__ import annotations

from sqlalchemy import select

from newsletter.extensions import db
from newsletter.models import Campaign, Tracking
from newsletter.services.engagement import flush
from tests.support.web import post_form

from .test_campaigns_ui import NEW, _campaign, _form, _list_with_members


def test_the_form_offers_the_modes_with_the_settings_default_and_saves_the_choice(app, admin_client):
    list_id = _list_with_members(app)
    page = admin_client.get(NEW).get_data(as_text=True)
    assert '<option selected value="anonymous">' in page and 'value="individual"' in page and 'value="off"' in page
    response = post_form(admin_client, NEW, NEW, _form([list_id], tracking="individual"))
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalars(select(Campaign.tracking)).one() == Tracking.INDIVIDUAL
    edit = admin_client.get(response.location + "/edit").get_data(as_text=True)
    assert '<option selected value="individual">' in edit


def test_an_unknown_mode_is_a_form_error_next_to_the_field(app, admin_client):
    list_id = _list_with_members(app)
    response = post_form(admin_client, NEW, NEW, _form([list_id], tracking="spy"))
    assert response.status_code in (200, 400)
    assert "Choose one of: off, anonymous, individual." in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(Campaign)).all() == []


def test_the_campaign_page_shows_the_mode_and_the_counts(app, admin_client):
    list_id = _list_with_members(app)
    campaign_id = _campaign(app, [list_id], tracking="individual")
    with app.app_context():
        flush.apply("ui-1", [["open", campaign_id, 0, 0, 0, "", 1_800_000_000]] * 7
                    + [["open", campaign_id, 0, 0, 1, "apple_mpp", 1_800_000_000]] * 3)
    page = admin_client.get(f"/admin/campaigns/{campaign_id}").get_data(as_text=True)
    assert "Opens and clicks" in page and "Individual" in page
    assert '<td class="num">7</td>' in page and '<td class="num">3</td>' in page
    off = _campaign(app, [list_id], tracking="off")
    page = admin_client.get(f"/admin/campaigns/{off}").get_data(as_text=True)
    assert "Opens and clicks" not in page and "no pixel" in page


def test_the_settings_page_changes_the_default_for_new_campaigns(app, admin_client):
    list_id = _list_with_members(app)
    page = admin_client.get("/admin/settings/").get_data(as_text=True)
    assert "Tracking of new campaigns" in page
    response = post_form(admin_client, "/admin/settings/", "/admin/settings/", {"TRACKING_DEFAULT": "off"})
    assert response.status_code in (200, 302), response.get_data(as_text=True)
    try:
        assert '<option selected value="off">' in admin_client.get(NEW).get_data(as_text=True)
        with app.app_context():
            assert db.session.get(Campaign, _campaign(app, [list_id])).tracking == Tracking.OFF
    finally:
        post_form(admin_client, "/admin/settings/", "/admin/settings/reset", {"name": "TRACKING_DEFAULT"})
