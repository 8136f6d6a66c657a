"""A/B tests in the admin: the campaign form's section (errors next to their fields), the results
table with the confidence in words, and the manual pick's button (marketers only)."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from newsletter.extensions import db
from newsletter.models import AbVariant, Campaign, Delivery, DeliveryStatus, Role
from newsletter.services.accounts import users
from newsletter.services.audience import lists, subscribers
from newsletter.services.campaigns import campaigns, recipients
from newsletter.services.engagement import flush
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.web import login, post_form
from tests.web.test_browser import CHROMIUM, VIEWPORTS, assert_fits

NEW = "/admin/campaigns/new"
AB_FORM = {"ab_enabled": "y", "ab_subject_a": "Spring is here", "ab_subject_b": "20% off this spring",
           "ab_from_name_b": "Bea", "ab_subject_c": "", "ab_subject_d": "", "ab_share": "30",
           "ab_metric": "clicks", "ab_wait_minutes": "45", "ab_mode": "manual"}


@pytest.fixture(autouse=True)
def _hold_sends(send_rate):
    """A pick publishes the rest; at this rate the workers hand the rows back unsent."""
    send_rate(0.01)


@pytest.fixture(autouse=True)
def _purge(app):
    yield
    app.extensions["celery"].control.purge()


def _list(app, n: int = 10) -> int:
    with app.app_context():
        news = lists.create("AB list")
        for i in range(n):
            subscribers.create(f"ab-{i}@example.org", f"Member {i}", list_ids=[news.id])
        return news.id


def _form(list_id: int, **overrides) -> dict:
    return {"name": "Spring", "subject": "Spring news", "from_name": "Acme", "from_email": "news@example.org",
            "reply_to": "", "layout_id": "", "html": "<p>Hi</p><a href=\"https://example.org/\">Shop</a>", "text": "",
            "list_ids": [str(list_id)], "tracking": "individual", "pool": "default", **AB_FORM, **overrides}


def test_the_form_saves_the_test_and_shows_it_again_for_editing(app, admin_client):
    list_id = _list(app, 2)
    assert "A/B test" in admin_client.get(NEW).get_data(as_text=True)
    response = post_form(admin_client, NEW, NEW, _form(list_id))
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        campaign = db.session.scalars(select(Campaign)).one()
        assert [(v.label, v.subject, v.from_name) for v in campaign.variants] == [
            ("A", "Spring is here", ""), ("B", "20% off this spring", "Bea")]
        assert (campaign.ab_share, campaign.ab_metric.value, campaign.ab_wait, campaign.ab_mode.value) == (
            30, "clicks", 45 * 60, "manual")
    edit = admin_client.get(f"/admin/campaigns/{campaign.id}/edit").get_data(as_text=True)
    assert 'value="20% off this spring"' in edit and 'id="ab-test" open' in edit
    detail = admin_client.get(f"/admin/campaigns/{campaign.id}").get_data(as_text=True)
    assert "Starts when the campaign is sent: 30% of the recipients get the variants" in detail
    confirm = admin_client.get(f"/admin/campaigns/{campaign.id}/send").get_data(as_text=True)
    assert "30% of them (about 1), picked at random" in confirm and "once you pick it" in confirm
    off = post_form(admin_client, f"/admin/campaigns/{campaign.id}/edit", f"/admin/campaigns/{campaign.id}/edit",
                    {**_form(list_id), "ab_enabled": ""})
    assert off.status_code == 302
    with app.app_context():
        assert (db.session.get(Campaign, campaign.id).ab_share, db.session.scalar(
            select(func.count()).select_from(AbVariant))) == (0, 0)


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"ab_subject_b": "", "ab_from_name_b": ""}, "ab_subject_b", "2 to 4 variants"),
    ({"ab_subject_b": ""}, "ab_subject_b", "The subject is required."),  # B has a from name: a variant
    ({"tracking": "anonymous"}, "tracking", "individual"),
    ({"ab_share": "0"}, "ab_share", "1 to 100"),
    ({"ab_share": "lots"}, "ab_share", "Not a valid integer"),
    ({"ab_subject_b": "{{ oops"}, "ab_subject_b", ""),
    ({"ab_html_b": "{% if %}"}, "ab_html_b", ""),
])
def test_a_bad_test_shows_its_error_next_to_the_field_and_saves_nothing(app, admin_client, changes, field, message):
    response = post_form(admin_client, NEW, NEW, _form(_list(app, 1), **changes))
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and f'id="{field}-error"' in page or (
        field == "tracking" and "individual" in page.split('id="tracking"', 1)[1][:2000]), page
    if message and field != "tracking":
        assert message in page.split(f'id="{field}-error"', 1)[1].split("</small>", 1)[0]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Campaign)) == 0


def _testing(app, list_id: int) -> int:
    """A manual-mode test whose test share went out (4 of 10); B's readers clicked, A's did not."""
    with app.app_context():
        campaign_id = campaigns.create(**{**{k: v for k, v in _form(list_id).items() if not k.startswith("ab_")},
                                          "list_ids": [list_id], "ab_test": {
            "variants": [{"subject": "Spring is here"}, {"subject": "20% off this spring"}], "share": 40,
            "metric": "clicks", "wait_minutes": 45, "mode": "manual"}}).id
    _test_share_out(app, campaign_id, "ab-ui")
    return campaign_id


def _test_share_out(app, campaign_id: int, batch: str) -> None:
    """The test share as sent (no worker in these tests), B's readers clicking."""
    with app.app_context():
        campaigns.send_now(campaign_id)
        recipients.snapshot(campaign_id)
        db.session.execute(update(Delivery).where(Delivery.campaign_id == campaign_id, Delivery.ab_tested.is_(True))
                           .values(status=DeliveryStatus.SENT))
        db.session.commit()
        b = db.session.scalars(select(Delivery.subscriber_id).where(Delivery.campaign_id == campaign_id,
                                                                    Delivery.variant == "B")).all()
        flush.apply(batch, [["click", campaign_id, 0, s, 0, "", 1_800_000_000] for s in b])


def test_the_results_table_states_the_confidence_and_the_marketer_picks_the_winner(app, admin_client):
    campaign_id = _testing(app, _list(app))
    detail = f"/admin/campaigns/{campaign_id}"
    page = admin_client.get(detail).get_data(as_text=True)
    section = page[page.index('<section id="ab-test"'):]
    assert "Waiting for your pick:" in section and "6</strong>" not in section
    assert "B beats A with " in section and "confidence (two-proportion z-test)." in section
    assert "Send A to the rest" in section and "Send B to the rest" in section
    report = admin_client.get(f"{detail}/report").get_data(as_text=True)
    assert "B beats A with " in report
    response = post_form(admin_client, detail, f"{detail}/ab/winner", {"variant": "B"})
    assert response.status_code == 302
    page = admin_client.get(detail).get_data(as_text=True)
    assert "Variant B won: it goes to the other 6 recipients." in page and "Send A to the rest" not in page
    with app.app_context():
        assert db.session.get(Campaign, campaign_id).ab_winner == "B"
    again = post_form(admin_client, detail, f"{detail}/ab/winner", {"variant": "A"})
    assert "already picked" in admin_client.get(again.location).get_data(as_text=True)


def test_a_viewer_sees_the_results_but_cannot_pick(app, client, admin):
    campaign_id = _testing(app, _list(app))
    with app.app_context():
        users.create_user("viewer@example.com", "long enough password", Role.VIEWER)
    login(client, "viewer@example.com", "long enough password")
    detail = f"/admin/campaigns/{campaign_id}"
    page = client.get(detail).get_data(as_text=True)
    assert "B beats A with " in page and "to the rest</button>" not in page
    assert post_form(client, detail, f"{detail}/ab/winner", {"variant": "B"}).status_code == 403
    with app.app_context():
        assert db.session.get(Campaign, campaign_id).ab_winner is None


@pytest.mark.skipif(not CHROMIUM, reason="no chromium executable (apt-get install chromium)")
@pytest.mark.parametrize("device", VIEWPORTS)
def test_set_up_a_test_and_pick_the_winner_in_a_browser(app, browser, live_server, admin, shots, device):
    list_id = _list(app)
    page = browser.new_page(viewport=VIEWPORTS[device])
    page.goto(live_server + "/login")
    page.fill("#email", ADMIN_EMAIL)
    page.fill("#password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{live_server}{NEW}")
    page.fill("#name", "Spring")
    page.fill("#subject", "Spring news")
    page.fill("#from_email", "news@example.org")
    page.check(f"input[name=list_ids][value='{list_id}']")
    page.select_option("#tracking", "individual")
    page.click("#ab-test > summary")
    page.check("#ab_enabled")
    page.fill("#ab_subject_a", "Spring is here")
    page.fill("#ab_subject_b", "20% off this spring")
    page.check("input[name=ab_mode][value=manual]")
    page.locator("#ab-test").screenshot(path=shots / f"campaign_ab_form_{device}.png")
    assert_fits(page)
    page.click("form.editor button[type=submit]")
    assert "saved as a draft" in page.locator(".flash").first.inner_text()
    campaign_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    assert "Starts when the campaign is sent" in page.locator("#ab-test").inner_text()

    _test_share_out(app, campaign_id, f"ab-browser-{device}")
    page.goto(f"{live_server}/admin/campaigns/{campaign_id}")
    section = page.locator("#ab-test")
    assert "B beats A with" in section.inner_text()
    section.scroll_into_view_if_needed()
    section.screenshot(path=shots / f"campaign_ab_results_{device}.png")
    assert page.evaluate("""[...document.querySelectorAll('#ab-test, #ab-test *')]
                            .every(e => e.getBoundingClientRect().right <= window.innerWidth + 1)""")
    section.locator("button", has_text="Send B to the rest").click()
    assert "Variant B won" in page.locator(".flash").first.inner_text()
    assert "Variant B won" in page.locator("#ab-test").inner_text()
