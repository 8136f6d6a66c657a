"""Public pages end to end: real worker, real SMTP server, real database, no mocks."""
import re
import time
import uuid
from urllib.parse import urlsplit

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import func, select

from newsletter.extensions import db
from newsletter.models import (
    ConsentAction,
    ConsentRecord,
    ConsentSource,
    OptIn,
    Subscriber,
    SubscriberStatus,
    SubscriptionStatus,
)
from newsletter.services import outbox
from newsletter.services.audience import links, lists, subscriptions, suppressions, tokens
from newsletter.tasks import email as email_tasks
from newsletter.tasks import enqueue
from tests.support.net import wait_for
from tests.support.web import csrf_token

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def address(tag: str = "p") -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.org"


def make_list(app, name: str = "Weekly", opt_in: OptIn = OptIn.DOUBLE, public: bool = True) -> int:
    with app.app_context():
        return lists.create(name, opt_in, public=public).id


def make_subscriber(app, email: str, list_ids: list[int], confirmed: bool = True, **extra) -> int:
    with app.app_context():
        return subscriptions.subscribe(email, list_ids, source=ConsentSource.ADMIN, confirmed=confirmed,
                                       **extra).subscriber_id


def state(app, subscriber_id: int) -> dict:
    """Everything a public page could change about a subscriber, for before/after checks."""
    with app.app_context():
        subscriber = db.session.get(Subscriber, subscriber_id)
        return {
            "email": subscriber.email, "name": subscriber.name, "attributes": subscriber.attributes,
            "status": subscriber.status,
            "lists": {s.list_id: s.status for s in subscriber.subscriptions},
            "consent": db.session.scalar(select(func.count()).select_from(ConsentRecord)
                                         .where(ConsentRecord.subscriber_id == subscriber_id)),
            "suppressed": suppressions.is_suppressed(subscriber.email),
        }


def mail_to(outbox_dir: str, to: str):
    return wait_for(lambda: next((m for m in outbox.list_messages(outbox_dir) if to in m.recipients), None),
                    timeout=30, message=f"an email to {to}")


def mails_to(outbox_dir: str, to: str) -> list:
    return [m for m in outbox.list_messages(outbox_dir) if to in m.recipients]


def drain(app, outbox_dir: str, worker_log) -> None:
    """Wait until the worker has sent a marker email enqueued now, so earlier tasks ran too.

    `worker_log` is the transactional worker's: it runs two tasks at once, so a sibling of the
    marker may still be running when the marker's email arrives; wait until it logged its end too."""
    marker = address("marker")
    with app.app_context():
        enqueue(email_tasks.send_test_email, marker)
    mail_to(outbox_dir, marker)
    wait_for(lambda: not worker_log.tasks_in_progress(), 30, message="the transactional worker to be idle")


def path_of(message, route: str) -> str:
    """The path of the first `route` link in the plain body (the same link is in the HTML)."""
    url = re.search(rf"http\S+/{route}/\S+", message.body("plain")).group(0)
    assert url in message.body("html")
    return urlsplit(url).path


def old_token(app, purpose: str, payload: dict, age: int) -> str:
    """A genuine token signed `age` seconds ago."""
    class Past(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - age

    serializer = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=f"newsletter.{purpose}", signer=Past)
    return serializer.dumps(payload)


def tamper(token: str) -> str:
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1:]


def with_token(app, make, *args) -> str:
    with app.app_context():
        return make(*args)


# --- links ------------------------------------------------------------------------------------

def test_links_are_absolute_on_base_url_outside_any_request(app):
    saved = app.config["BASE_URL"]
    app.config["BASE_URL"] = "https://news.example.com/nl"
    try:
        with app.app_context():
            url = links.unsubscribe_url(7, [3, 1], campaign_id=9)
            manage = links.manage_url(7)
    finally:
        app.config["BASE_URL"] = saved
    assert url.startswith("https://news.example.com/nl/unsubscribe/")
    assert manage.startswith("https://news.example.com/nl/manage/")
    with app.app_context():
        assert tokens.load("unsubscribe", url.rsplit("/", 1)[1]) == {"s": 7, "l": [1, 3], "c": 9}


# --- subscribe and confirm --------------------------------------------------------------------

def test_double_opt_in_end_to_end(app, client, worker, outbox_dir):
    list_id = make_list(app, "Weekly digest")
    page = client.get(f"/subscribe/{list_id}")
    assert page.status_code == 200 and "Weekly digest" in page.get_data(as_text=True)
    to = address("ana")
    response = client.post(f"/subscribe/{list_id}", data={"email": to.upper(), "name": "Ana"},
                           headers={"User-Agent": "test-browser"})
    assert response.status_code == 302
    thanks = client.get(response.location).get_data(as_text=True)
    assert "Check your inbox" in thanks
    with app.app_context():
        subscriber_id = db.session.scalar(select(Subscriber.id).where(Subscriber.email == to))
    assert state(app, subscriber_id)["lists"] == {list_id: SubscriptionStatus.UNCONFIRMED}

    message = mail_to(outbox_dir, to)
    assert "Weekly digest" in message.subject and "Weekly digest" in message.body("html")
    confirmed = client.get(path_of(message, "confirm"), headers={"User-Agent": "mail-app"})
    assert confirmed.status_code == 200 and "You're subscribed" in confirmed.get_data(as_text=True)
    after = state(app, subscriber_id)
    assert after["lists"] == {list_id: SubscriptionStatus.CONFIRMED} and after["status"] == SubscriberStatus.CONFIRMED
    with app.app_context():
        records = db.session.scalars(select(ConsentRecord).where(ConsentRecord.subscriber_id == subscriber_id)
                                     .order_by(ConsentRecord.id)).all()
        assert [(r.action, r.list_id, r.ip, r.user_agent) for r in records] == [
            (ConsentAction.SUBSCRIBED, list_id, "127.0.0.1", "test-browser"),
            (ConsentAction.CONFIRMED, list_id, "127.0.0.1", "mail-app"),
        ]
    # Following the link again is harmless.
    assert client.get(path_of(message, "confirm")).status_code == 200
    assert state(app, subscriber_id)["consent"] == 2


def test_single_opt_in_subscribes_at_once(app, client):
    list_id = make_list(app, "Offers", OptIn.SINGLE)
    to = address()
    response = client.post(f"/subscribe/{list_id}", data={"email": to})
    assert "You're subscribed" in client.get(response.location).get_data(as_text=True)
    with app.app_context():
        subscriber_id = db.session.scalar(select(Subscriber.id).where(Subscriber.email == to))
    assert state(app, subscriber_id)["lists"] == {list_id: SubscriptionStatus.CONFIRMED}


def test_subscribe_needs_no_csrf_token_and_sets_no_cookie(app, client):
    list_id = make_list(app)
    fresh = app.test_client()
    response = fresh.post(f"/subscribe/{list_id}", data={"email": address()})
    assert response.status_code == 302 and "Set-Cookie" not in response.headers


@pytest.mark.parametrize("email, error", [("not an address", "must have an @-sign"), ("", "Please enter your email")])
def test_invalid_address_shows_the_form_again_with_the_error(app, client, email, error):
    list_id = make_list(app)
    response = client.post(f"/subscribe/{list_id}", data={"email": email, "name": "X"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert re.search(rf'class="field-error">[^<]*{error}', html)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Subscriber)) == 0


def test_honeypot_gets_the_success_page_and_changes_nothing(app, client):
    list_id = make_list(app)
    response = client.post(f"/subscribe/{list_id}", data={"email": address(), "website": "http://spam.example"})
    assert response.status_code == 302
    assert "Check your inbox" in client.get(response.location).get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Subscriber)) == 0


def test_private_and_unknown_lists_are_404(app, client):
    private = make_list(app, "Staff", public=False)
    for url in (f"/subscribe/{private}", f"/subscribe/{private + 1000}"):
        assert client.get(url).status_code == 404
        assert client.post(url, data={"email": address()}).status_code == 404
    assert client.get(f"/subscribe/{private}/thanks").status_code == 404
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Subscriber)) == 0
    assert "Staff" not in client.get("/subscribe").get_data(as_text=True)


def test_subscribe_is_rate_limited_per_ip(app, client):
    list_id = make_list(app)
    for _ in range(5):
        assert client.post(f"/subscribe/{list_id}", data={"email": address()}).status_code == 302
    response = client.post(f"/subscribe/{list_id}", data={"email": address()})
    assert response.status_code == 429 and "Too many attempts" in response.get_data(as_text=True)
    assert client.get(f"/subscribe/{list_id}").status_code == 200  # reading the form is not limited


def test_subscribe_is_rate_limited_per_address_across_ips(app, client):
    list_id = make_list(app)
    to = address()
    for n in range(5):
        response = client.post(f"/subscribe/{list_id}", data={"email": to},
                               environ_base={"REMOTE_ADDR": f"198.51.100.{n}"})
        assert response.status_code == 302
    response = client.post(f"/subscribe/{list_id}", data={"email": to.upper()},
                           environ_base={"REMOTE_ADDR": "198.51.100.99"})
    assert response.status_code == 429


def test_per_address_limit_counts_every_spelling_of_one_inbox(app, client):
    # Full-width letters, case and +tags reach one inbox: they must share its 5 a hour.
    list_id = make_list(app)
    spellings = ["bomb@ｅxample.com", "BOMB@example.com", "bomb+1@example.com", "ｂomb@example.com",
                 "Bomb+news@EXAMPLE.com", "bomb@example.com"]
    codes = [client.post(f"/subscribe/{list_id}", data={"email": spelling},
                         environ_base={"REMOTE_ADDR": f"198.51.100.{n}"}).status_code
             for n, spelling in enumerate(spellings)]
    assert codes == [302] * 5 + [429]


@pytest.mark.parametrize("name", ["Eve\r\nBcc: x@example.org", "Eve\x07", "Eve\x1b[31m", "Eve\u202egnp.exe",
                                  "Eve\u2028Line"])
def test_names_with_control_characters_are_refused_on_the_form(app, client, name):
    list_id = make_list(app, opt_in=OptIn.SINGLE)
    response = client.post(f"/subscribe/{list_id}", data={"email": address(), "name": name})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert re.search(r'class="field-error">[^<]*(Control characters|Line breaks) are not allowed', html)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Subscriber)) == 0


def test_preference_center_refuses_a_name_with_control_characters(app, client):
    list_id = make_list(app)
    subscriber_id = make_subscriber(app, address(), [list_id], name="Ann")
    with app.app_context():
        url = links.preferences_url(subscriber_id)
    path = urlsplit(url).path
    before = state(app, subscriber_id)
    page = client.get(path).get_data(as_text=True)
    response = client.post(path, data={"csrf_token": csrf_token(page), "name": "Ann\rX-Evil: 1",
                                       "lists": [str(list_id)]})
    assert response.status_code == 400 and "Line breaks are not allowed" in response.get_data(as_text=True)
    assert state(app, subscriber_id) == before


def test_expired_and_altered_confirm_links_change_nothing(app, client):
    list_id = make_list(app)
    subscriber_id = make_subscriber(app, address(), [list_id], confirmed=False)
    before = state(app, subscriber_id)
    payload = {"s": subscriber_id, "l": [list_id]}

    expired = client.get("/confirm/" + old_token(app, "confirm", payload, tokens.CONFIRM_MAX_AGE + 60))
    html = expired.get_data(as_text=True)
    assert expired.status_code == 400 and "has expired" in html and "Subscribe again" in html
    # Just inside the limit it still works: the test above is about age, not about the signer.
    fresh_enough = old_token(app, "confirm", payload, tokens.CONFIRM_MAX_AGE - 60)

    altered = tamper(with_token(app, tokens.confirm_token, subscriber_id, [list_id]))
    foreign = with_token(app, tokens.unsubscribe_token, subscriber_id, [list_id])  # right key, wrong purpose
    for token in (altered, foreign, "garbage"):
        response = client.get("/confirm/" + token)
        assert response.status_code == 400 and "is not valid" in response.get_data(as_text=True)
    assert state(app, subscriber_id) == before

    assert client.get("/confirm/" + fresh_enough).status_code == 200
    assert state(app, subscriber_id)["lists"] == {list_id: SubscriptionStatus.CONFIRMED}


# --- unsubscribe --------------------------------------------------------------------------------

def test_one_click_unsubscribe_without_cookie_or_csrf(app, client):
    news, offers = make_list(app, "News"), make_list(app, "Offers")
    subscriber_id = make_subscriber(app, address(), [news, offers])
    token = with_token(app, tokens.unsubscribe_token, subscriber_id, [news], 42)

    mailbox_provider = app.test_client()  # no cookie jar content, no session, no CSRF token
    response = mailbox_provider.post(f"/unsubscribe/{token}", data=ONE_CLICK)
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert "Set-Cookie" not in response.headers
    after = state(app, subscriber_id)
    assert after["lists"] == {news: SubscriptionStatus.UNSUBSCRIBED, offers: SubscriptionStatus.CONFIRMED}
    assert not after["suppressed"]
    assert mailbox_provider.post(f"/unsubscribe/{token}", data=ONE_CLICK).status_code == 200  # idempotent


def test_one_click_with_a_token_for_no_list_leaves_everything(app, client):
    news, offers = make_list(app, "News"), make_list(app, "Offers")
    subscriber_id = make_subscriber(app, address(), [news, offers])
    token = with_token(app, tokens.unsubscribe_token, subscriber_id)
    assert app.test_client().post(f"/unsubscribe/{token}", data=ONE_CLICK).status_code == 200
    after = state(app, subscriber_id)
    assert set(after["lists"].values()) == {SubscriptionStatus.UNSUBSCRIBED} and after["suppressed"]


def test_bad_unsubscribe_tokens_change_nothing(app, client):
    news = make_list(app, "News")
    subscriber_id = make_subscriber(app, address(), [news])
    before = state(app, subscriber_id)
    good = with_token(app, tokens.unsubscribe_token, subscriber_id)
    foreign = with_token(app, tokens.preferences_token, subscriber_id)
    for token in (tamper(good), foreign, "x"):
        url = f"/unsubscribe/{token}"
        for response in (client.get(url), client.post(url, data=ONE_CLICK), client.post(url, data={"action": "all"})):
            assert response.status_code == 400
            assert "unsubscribe link is not valid" in response.get_data(as_text=True)
    assert state(app, subscriber_id) == before


def test_unsubscribe_page_asks_first_then_leaves_the_lists(app, client):
    news, offers = make_list(app, "News"), make_list(app, "Offers")
    subscriber_id = make_subscriber(app, address(), [news, offers])
    before = state(app, subscriber_id)
    url = "/unsubscribe/" + with_token(app, tokens.unsubscribe_token, subscriber_id, [news])

    page = client.get(url)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Leave News" in html and "Leave all lists" in html
    assert 'href="/preferences/' in html
    assert state(app, subscriber_id) == before  # looking (or a link scanner) changes nothing

    done = client.post(url, data={"action": "lists"})
    assert done.status_code == 200 and "You have left <strong>News</strong>" in done.get_data(as_text=True)
    assert state(app, subscriber_id)["lists"] == {news: SubscriptionStatus.UNSUBSCRIBED,
                                                  offers: SubscriptionStatus.CONFIRMED}
    assert client.post(url, data={"action": "bogus"}).status_code == 400


def test_leave_all_suppresses_and_a_later_signup_sends_nothing(app, client, worker, transactional_worker,
                                                               outbox_dir):
    news, weekly = make_list(app, "News"), make_list(app, "Weekly")
    to = address("leaver")
    subscriber_id = make_subscriber(app, to, [news])
    url = "/unsubscribe/" + with_token(app, tokens.unsubscribe_token, subscriber_id, [news])
    done = client.post(url, data={"action": "all"})
    assert done.status_code == 200 and "left all our lists" in done.get_data(as_text=True)
    after = state(app, subscriber_id)
    assert after["suppressed"] and after["status"] == SubscriberStatus.UNSUBSCRIBED

    response = client.post(f"/subscribe/{weekly}", data={"email": to.upper()})
    assert response.status_code == 302
    assert "Check your inbox" in client.get(response.location).get_data(as_text=True)  # same page as anyone
    assert state(app, subscriber_id)["lists"] == {news: SubscriptionStatus.UNSUBSCRIBED}
    drain(app, outbox_dir, transactional_worker)
    assert mails_to(outbox_dir, to) == []
