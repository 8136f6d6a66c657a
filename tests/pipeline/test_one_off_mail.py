"""One send path: confirmations, manage links, test emails and campaign tests are notifications.

Real transactional worker, real beat (the sweeper publishes retries), real SMTP server whose
answers are scripted per recipient, real database. Each message must leave a ledger row of
its kind that an admin finds in the mail log, with the SMTP server's answer.
"""
from __future__ import annotations

import email
import email.policy
import re
import uuid

from sqlalchemy import select

from newsletter.extensions import db
from newsletter.models import Notification, NotificationKind, Role, SuppressionReason, WebhookDelivery
from newsletter.services.accounts import api_keys, users
from newsletter.services.audience import gdpr, suppressions
from newsletter.services.campaigns import campaigns
from newsletter.services.campaigns import send as campaign_send
from newsletter.services.notifications import audience_mail
from newsletter.services.webhooks import webhooks
from newsletter.tasks import enqueue
from newsletter.tasks.notifications import send_notification
from tests.api.conftest import ApiClient
from tests.support.net import wait_for
from tests.support.web import login, post_form
from tests.web.test_public import make_list, make_subscriber

K = NotificationKind


def address(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.org"


def rows(app, **where) -> list[Notification]:
    with app.app_context():
        query = select(Notification).order_by(Notification.id)
        for name, value in where.items():
            query = query.where(getattr(Notification, name) == value)
        found = list(db.session.scalars(query))
        db.session.expunge_all()
        return found


def settled(app, notification_id: int, timeout: float = 30) -> Notification:
    """The row once it is sent, failed or cancelled."""
    def done():
        with app.app_context():
            row = db.session.get(Notification, notification_id)
            if row is not None and row.status.terminal:
                db.session.expunge(row)
                return row
            return None
    return wait_for(done, timeout, message=f"notification {notification_id} to settle")


def signup(client, list_id: int, to: str) -> None:
    response = client.post(f"/subscribe/{list_id}", data={"email": to, "name": "Ana"})
    assert response.status_code == 302, response.get_data(as_text=True)


def test_a_confirmation_after_a_signup_arrives_and_is_in_the_ledger_and_the_mail_log(
        app, client, admin_client, transactional_worker, smtp_server):
    list_id = make_list(app, "Weekly")
    to = address("ana")
    signup(client, list_id, to)
    wait_for(lambda: smtp_server.received.get(to), 30, message="the confirmation")
    [row] = rows(app, email=to)
    row = settled(app, row.id)
    assert (row.kind, row.status.value, row.attempts, row.smtp_code) == (K.CONFIRMATION, "sent", 1, 250)
    assert row.data["list_ids"] == [list_id] and row.worker.startswith("tx-")
    message = email.message_from_bytes(smtp_server.received[to][0], policy=email.policy.default)
    assert message["X-Newsletter-Notification"] == str(row.id) and "Weekly" in message["Subject"]

    page = admin_client.get(f"/admin/send-log/mail/?kind=confirmation&q={to}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and to in html and "Opt-in confirmation" in html and "badge-sent" in html
    assert admin_client.get("/admin/send-log/mail/?kind=api").get_data(as_text=True).count(to) == 0
    # The subscriber's page leads there.
    subscriber_page = admin_client.get(f"/admin/subscribers/{row.subscriber_id}").get_data(as_text=True)
    assert f'/admin/send-log/mail/?q={to}"' in subscriber_page


def test_a_4xx_on_a_confirmation_is_retried_and_a_5xx_fails_with_the_reply_in_the_mail_log(
        app, client, admin_client, transactional_worker, beat, smtp_server):
    list_id = make_list(app, "Weekly")
    later, refused = address("later"), address("refused")
    smtp_server.rule = lambda rcpt, attempt: (
        "451 4.3.0 Greylisted, try later" if rcpt == later and attempt == 1 else
        "550 5.1.1 No such mailbox here" if rcpt == refused else None)
    signup(client, list_id, later)
    signup(client, list_id, refused)
    [retried] = rows(app, email=later)
    [failed] = rows(app, email=refused)
    retried, failed = settled(app, retried.id), settled(app, failed.id)

    assert (retried.status.value, retried.attempts, retried.smtp_code) == ("sent", 2, 250)
    assert len(smtp_server.received[later]) == 1
    assert (failed.status.value, failed.attempts, failed.smtp_code) == ("failed", 1, 550)
    assert "No such mailbox here" in failed.smtp_message and refused not in smtp_server.received

    listed = admin_client.get(f"/admin/send-log/mail/?status=failed&q={refused}").get_data(as_text=True)
    assert refused in listed and "550" in listed and "No such mailbox here" in listed
    detail = admin_client.get(f"/admin/send-log/mail/{failed.id}").get_data(as_text=True)
    assert "550" in detail and "No such mailbox here" in detail and "Opt-in confirmation" in detail


def test_a_confirmation_for_a_suppressed_or_erased_subscriber_sends_nothing(
        app, client, transactional_worker, smtp_server):
    list_id = make_list(app, "Weekly")
    # Suppressed before the signup: nothing is queued at all (the same answer, no email).
    blocked = address("blocked")
    with app.app_context():
        suppressions.suppress(blocked, SuppressionReason.COMPLAINT)
        db.session.commit()
    signup(client, list_id, blocked)
    assert rows(app, email=blocked) == []

    # Suppressed, or erased, after the confirmation was queued: cancelled when its turn comes;
    # so is a campaign test personalised as the erased subscriber (erasure blanked it).
    late, erased, colleague = address("late"), address("erased"), address("colleague")
    with app.app_context():
        campaign_id = campaigns.create(name="June", subject="Hi {{ subscriber.name }}", from_name="Acme",
                                       from_email="news@example.org", html="<p>Hi</p>", list_ids=[list_id]).id
    queued = {}
    for to in (late, erased):
        subscriber_id = make_subscriber(app, to, [list_id], confirmed=False)
        with app.app_context():
            queued[to] = audience_mail.queue_confirmation(subscriber_id, [list_id])
            if to == late:
                suppressions.suppress(late, SuppressionReason.MANUAL)
                db.session.commit()
            else:
                [queued[colleague]] = campaign_send.queue_test(campaign_id, [colleague], subscriber_id)
                gdpr.erase_subscriber(subscriber_id)
    with app.app_context():
        for notification_id in queued.values():
            enqueue(send_notification, notification_id)
    for to, notification_id in queued.items():
        row = settled(app, notification_id)
        assert row.status.value == "cancelled" and row.smtp_message.startswith("Not sent"), (to, row.smtp_message)
    assert not {blocked, late, erased, colleague} & set(smtp_server.received)
    assert not [r for r in rows(app) if r.email.endswith("@erased.invalid") and r.status.value == "sent"]


def test_the_test_email_and_a_campaign_test_arrive_through_the_same_path(
        app, admin_client, transactional_worker, smtp_server):
    # From the dashboard and from the settings page (which first checks the SMTP login).
    for page, action in (("/admin/", "/admin/test-email"), ("/admin/settings/", "/admin/settings/test")):
        to = address("check")
        assert post_form(admin_client, page, action, {"to": to}).status_code == 302
        wait_for(lambda to=to: smtp_server.received.get(to), 30, message=f"the test email from {page}")
        [test_email] = rows(app, email=to)
        assert (test_email.kind, settled(app, test_email.id).status.value) == (K.TEST_EMAIL, "sent")

    list_id = make_list(app, "News")
    ana = address("ana")
    make_subscriber(app, ana, [list_id], name="Ana")
    with app.app_context():
        campaign_id = campaigns.create(
            name="June", subject="Hi {{ subscriber.name }}", from_name="Acme", from_email="news@example.org",
            html='<p>Hi {{ subscriber.name }} <a href="{{ unsubscribe_url }}">Unsubscribe</a></p>',
            list_ids=[list_id]).id
    colleagues = [address("c1"), address("c2")]
    detail = f"/admin/campaigns/{campaign_id}"
    response = post_form(admin_client, detail, f"{detail}/test", {"addresses": ", ".join(colleagues),
                                                                 "preview_as": ana})
    assert response.status_code == 302
    for colleague in colleagues:
        wait_for(lambda colleague=colleague: smtp_server.received.get(colleague), 30,
                 message=f"the campaign test to {colleague}")
        [row] = rows(app, email=colleague)
        assert (row.kind, settled(app, row.id).status.value, row.data["campaign_id"]) == (
            K.CAMPAIGN_TEST, "sent", campaign_id)
        message = email.message_from_bytes(smtp_server.received[colleague][0], policy=email.policy.default)
        assert message["Subject"] == "[Test] Hi Ana" and "news@example.org" in message["From"]
        one_click = re.search(r"<(http[^>]+)>", message["List-Unsubscribe"]).group(1)
        assert one_click.endswith("/unsubscribe/preview")  # inert: a colleague is not the subscriber
        assert "/unsubscribe/preview" in message.get_body(("html",)).get_content()


def test_the_old_task_names_still_send_once_through_the_ledger(app, transactional_worker, smtp_server):
    """A message published before the upgrade (even delivered twice) queues one row and one email."""
    list_id = make_list(app, "Weekly")
    to = address("old")
    subscriber_id = make_subscriber(app, to, [list_id], confirmed=False)
    task_id = uuid.uuid4().hex
    publish = lambda: app.extensions["celery"].send_task(  # noqa: E731
        "newsletter.tasks.email.send_confirmation", args=[subscriber_id, [list_id]], task_id=task_id)
    with app.app_context():
        publish()
    wait_for(lambda: smtp_server.received.get(to), 30, message="the confirmation from the old task")
    [row] = rows(app, email=to)
    assert (row.kind, settled(app, row.id).status.value) == (K.CONFIRMATION, "sent")
    with app.app_context():
        publish()  # the broker delivers the same message again
    # Both messages ran: the second found the row queued by the first, and nothing to claim.
    finished = re.compile(rf"\[{task_id}\] succeeded.*\['not-claimed'\]")
    wait_for(lambda: finished.search(transactional_worker.text), 30, message="the second message to finish")
    assert len(smtp_server.received[to]) == 1 and len(rows(app, email=to)) == 1


def test_one_off_mail_stays_out_of_the_api_and_its_webhooks_and_bodies_are_admin_only_and_redacted(
        app, client, transactional_worker, smtp_server):
    with app.app_context():
        webhooks.create("http://127.0.0.1:9/hook", events=["notification.sent", "notification.failed"])
        key = api_keys.create_api_key("reader", Role.MARKETER)[1]
        users.create_user("viewer@example.com", "correct horse battery", Role.VIEWER)
        users.create_or_reset_admin("admin@example.com", "correct horse battery")
    list_id = make_list(app, "Weekly")
    to = address("private")
    signup(client, list_id, to)
    wait_for(lambda: smtp_server.received.get(to), 30, message="the confirmation")
    [row] = rows(app, email=to)
    settled(app, row.id)
    link = re.search(r"http\S+/confirm/(\S+)", email.message_from_bytes(
        smtp_server.received[to][0], policy=email.policy.default).get_body(("plain",)).get_content())
    token = link.group(1)

    api = ApiClient(app.test_client(), key)
    assert api.get(f"/api/v1/notifications/{row.id}").status_code == 404
    mine = api.post("/api/v1/notifications", json={"to": address("api"), "subject": "Hi", "text": "Hello"})
    assert mine.status_code == 202
    listed = [n["id"] for n in api.get("/api/v1/notifications").get_json()["items"]]
    assert listed == [mine.get_json()["id"]]  # the API's own, not the confirmation
    with app.app_context():
        settled(app, mine.get_json()["id"])
        # The API notification's event, and nothing for the confirmation.
        assert list(db.session.scalars(select(WebhookDelivery.event))) == ["notification.sent"]

    viewer = app.test_client()
    assert login(viewer, "viewer@example.com", "correct horse battery").status_code == 302
    seen = viewer.get(f"/admin/send-log/mail/{row.id}").get_data(as_text=True)
    assert to in seen and "Body" not in seen and token not in seen
    admin = app.test_client()
    assert login(admin, "admin@example.com", "correct horse battery").status_code == 302
    shown = admin.get(f"/admin/send-log/mail/{row.id}").get_data(as_text=True)
    assert "/confirm/&lt;redacted&gt;" in shown and token not in shown
