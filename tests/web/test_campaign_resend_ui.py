"""Resend to non-openers on the campaign page: the form with how many it reaches, the disabled
button with the reason where the campaign cannot know who opened, and the draft it makes."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from newsletter.extensions import db
from newsletter.models import Campaign, ResendTo
from newsletter.services.audience import lists, subscribers
from newsletter.services.engagement import flush
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.engagement.conftest import sent_campaign
from tests.support.web import post_form
from tests.web.test_browser import CHROMIUM, VIEWPORTS


def _sent(app, mode: str) -> int:
    """Sent to four people; in individual mode one opened it and one clicked."""
    with app.app_context():
        news = lists.create(f"Resend {mode}", "single")
        ids = [subscribers.create(f"{mode}{i}@example.com", list_ids=[news.id]).id for i in range(4)]
        campaign_id = sent_campaign(news.id, mode)
        flush.apply(f"ui-{mode}", [["open", campaign_id, 0, ids[0], 0, "", 1_800_000_000],
                                   ["click", campaign_id, 0, ids[1], 0, "", 1_800_000_000]])
        return campaign_id


def test_a_sent_individual_campaign_offers_the_resend_with_its_reach(app, admin_client):
    campaign_id = _sent(app, "individual")
    page = admin_client.get(f"/admin/campaigns/{campaign_id}").get_data(as_text=True)
    section = page[page.index('<section id="resend"'):]
    assert f'action="/admin/campaigns/{campaign_id}/resend"' in section and "disabled" not in section[:600]
    assert 'data-reach="non_openers"' in section and 'data-reach="non_clickers"' in section
    reach = admin_client.get(f"/admin/campaigns/{campaign_id}/resend-reach.json")
    assert reach.get_json() == {"non_openers": 2, "non_clickers": 3}

    response = post_form(admin_client, f"/admin/campaigns/{campaign_id}", f"/admin/campaigns/{campaign_id}/resend",
                         {"to": "non_openers", "subject": "A second look"})
    assert response.status_code == 302
    with app.app_context():
        draft = db.session.scalars(select(Campaign).where(Campaign.resend_of_id == campaign_id)).one()
        assert (draft.resend_to, draft.subject) == (ResendTo.NON_OPENERS, "A second look")
    assert response.location.endswith(f"/admin/campaigns/{draft.id}")
    page = admin_client.get(response.location).get_data(as_text=True)
    assert "non-openers" in page and 'would reach <strong data-reach="now">' in page
    assert admin_client.get(f"/admin/campaigns/{draft.id}/resend-reach.json").get_json() == {"now": 2}
    confirm = admin_client.get(f"/admin/campaigns/{draft.id}/send").get_data(as_text=True)
    assert "<strong data-estimate-value>2</strong>" in confirm and re.search(r"have\s+not opened it", confirm)


def test_an_anonymous_campaign_shows_a_disabled_button_with_the_reason(app, admin_client):
    campaign_id = _sent(app, "anonymous")
    page = admin_client.get(f"/admin/campaigns/{campaign_id}").get_data(as_text=True)
    section = page[page.index('<section id="resend"'):]
    assert "tracked anonymously" in section and re.search(r"<button[^>]*disabled[^>]*>Resend to non-openers", section)
    assert "/resend" not in section.split("</section>")[0]
    reach = admin_client.get(f"/admin/campaigns/{campaign_id}/resend-reach.json")
    assert reach.status_code == 409 and "tracked anonymously" in reach.get_json()["error"]
    response = post_form(admin_client, f"/admin/campaigns/{campaign_id}", f"/admin/campaigns/{campaign_id}/resend",
                         {"to": "non_openers", "subject": "Again"})
    assert response.status_code == 400 and "tracked anonymously" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Campaign.id).where(Campaign.resend_of_id == campaign_id)) is None


def test_a_bad_subject_is_a_form_error_and_a_draft_has_no_resend_section(app, admin_client):
    campaign_id = _sent(app, "individual")
    response = post_form(admin_client, f"/admin/campaigns/{campaign_id}", f"/admin/campaigns/{campaign_id}/resend",
                         {"to": "non_openers", "subject": ""})
    assert response.status_code == 400 and 'id="subject-error"' in response.get_data(as_text=True)
    response = post_form(admin_client, f"/admin/campaigns/{campaign_id}", f"/admin/campaigns/{campaign_id}/resend",
                         {"to": "someone", "subject": "x"})
    assert response.status_code == 400
    assert "Choose one of: non_openers, non_clickers." in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Campaign.id).where(Campaign.resend_of_id == campaign_id)) is None
        draft = Campaign(name="d", subject="s", from_email="n@example.com", html="<p>x</p>")
        db.session.add(draft)
        db.session.commit()
        draft_id = draft.id
    assert 'id="resend"' not in admin_client.get(f"/admin/campaigns/{draft_id}").get_data(as_text=True)


@pytest.mark.skipif(not CHROMIUM, reason="no chromium executable (apt-get install chromium)")
@pytest.mark.parametrize("device", VIEWPORTS)
def test_resend_from_the_campaign_page_in_a_browser(app, browser, live_server, admin, shots, device):
    campaign_id = _sent(app, "individual")
    page = browser.new_page(viewport=VIEWPORTS[device])
    page.goto(live_server + "/login")
    page.fill("#email", ADMIN_EMAIL)
    page.fill("#password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{live_server}/admin/campaigns/{campaign_id}")
    section = page.locator("#resend")
    section.locator("text=(3 now)").wait_for(timeout=10_000)  # fetched after the page loaded
    assert "(2 now)" in section.inner_text()
    section.scroll_into_view_if_needed()
    page.screenshot(path=shots / f"campaign_resend_{device}.png", full_page=True)
    # The section itself fits a phone (the page as a whole: the opens table's business, not this one's).
    assert page.evaluate("""[...document.querySelectorAll('#resend, #resend *')]
                            .every(e => e.getBoundingClientRect().right <= window.innerWidth)""")
    section.locator("input[value=non_clickers]").check()
    section.locator("#subject").fill("Still interested?")
    section.locator("button[type=submit]").click()
    assert "Created the draft" in page.locator(".flash").first.inner_text()
    assert "non-clickers" in page.locator("#resend").inner_text()
    with app.app_context():
        draft = db.session.scalars(select(Campaign).where(Campaign.resend_of_id == campaign_id)).one()
        assert (draft.resend_to, draft.subject) == (ResendTo.NON_CLICKERS, "Still interested?")
