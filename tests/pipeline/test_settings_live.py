"""Settings saved on the page reach the session's running workers, with no restart."""
from __future__ import annotations

import time
import uuid

import pytest

from newsletter.extensions import db
from newsletter.sending.limiter import KEY, RateLimiter
from newsletter.services import settings, versioned
from tests.pipeline.conftest import make_audience, make_campaign, start, wait_until_status
from tests.support.net import wait_for
from tests.support.smtp import RecordingSmtpServer
from tests.support.web import post_form

PAGE = "/admin/settings/"


@pytest.fixture(autouse=True)
def defaults(app):
    """Back to the environment's values through the service (a new version token), then wait out
    the workers' check interval so the next test's sends use the session's SMTP server again."""
    yield
    with app.app_context():
        db.session.rollback()
        settings.save(dict.fromkeys(settings.NAMES), None)
    # The workers' settings cache cannot be observed from here: its documented bound is the wait.
    time.sleep(versioned.CHECK_EVERY + 0.2)


@pytest.fixture
def second_smtp(tmp_path):
    server = RecordingSmtpServer(str(tmp_path / "second")).start()
    yield server
    server.stop()


def _save(client, **changes) -> None:
    """Post the page's form with `changes`, the other fields as shown (what a browser sends)."""
    from tests.web.test_settings_ui import _form

    response = client.post(PAGE, data=_form(client, **changes))
    assert response.status_code == 302, response.get_data(as_text=True)


def test_test_email_goes_to_the_server_just_saved(app, admin_client, transactional_worker, smtp_server,
                                                 second_smtp):
    _save(admin_client, MAIL_PORT=str(second_smtp.port))
    to = f"check-{uuid.uuid4().hex[:8]}@example.org"
    response = post_form(admin_client, PAGE, "/admin/settings/test", {"to": to})
    assert response.status_code == 302
    assert "Connected and logged in" in admin_client.get(PAGE).get_data(as_text=True)
    wait_for(lambda: second_smtp.handler.received.get(to), 30, message="the test email on the second server")
    assert to not in smtp_server.received


def test_campaign_follows_the_smtp_port_change_and_back(app, admin_client, worker, beat, smtp_server,
                                                        second_smtp):
    with app.app_context():
        _save(admin_client, MAIL_PORT=str(second_smtp.port))
        time.sleep(versioned.CHECK_EVERY + 0.2)  # the documented propagation delay
        list_id, emails = make_audience(30, prefix="moved")
        campaign_id = make_campaign([list_id])
        start(app, campaign_id)
        wait_until_status(campaign_id, "sent")
        assert sorted(second_smtp.handler.received) == sorted(emails)
        assert not set(emails) & set(smtp_server.received)

        # Reset to the environment's server: the same running worker goes back to it.
        assert post_form(admin_client, PAGE, "/admin/settings/reset", {"section": "smtp"}).status_code == 302
        time.sleep(versioned.CHECK_EVERY + 0.2)  # the documented propagation delay, again
        list_id, emails = make_audience(30, prefix="back")
        campaign_id = make_campaign([list_id])
        start(app, campaign_id)
        wait_until_status(campaign_id, "sent")
        assert sorted(e for e in smtp_server.received if e.startswith("back")) == sorted(emails)
        assert not set(emails) & set(second_smtp.handler.received)


def test_send_rate_saved_on_the_page_is_the_cluster_override(app, admin_client, worker):
    with app.app_context():
        bucket = RateLimiter(settings._copy.client, 1, prefix=KEY)
        _save(admin_client, SEND_RATE="123")
        assert bucket.effective_rate() == 123
        post_form(admin_client, PAGE, "/admin/settings/reset", {"name": "SEND_RATE"})
        assert bucket.effective_rate() == 1  # no override left: each worker's own SEND_RATE applies
