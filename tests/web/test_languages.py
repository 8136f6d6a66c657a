"""Languages on the public side and in the admin nav: the signup form, Accept-Language, the preference
center, the confirmation email and the unsubscribe page in German. Real worker, real database."""
from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import select

from newsletter.extensions import db
from newsletter.models import OptIn, Subscriber
from newsletter.services.audience import links
from tests.support.web import csrf_token
from tests.web.test_public import address, mail_to, make_list, make_subscriber, path_of

GERMAN = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}


def language_of(app, email: str) -> str | None:
    with app.app_context():
        return db.session.scalar(select(Subscriber.language).where(Subscriber.email == email))


def set_language(app, subscriber_id: int, language: str | None) -> None:
    with app.app_context():
        db.session.get(Subscriber, subscriber_id).language = language
        db.session.commit()


def test_signup_takes_the_browser_language_and_the_confirmation_is_in_german(app, client, worker, outbox_dir):
    list_id = make_list(app, "Wochenpost")
    form = client.get(f"/subscribe/{list_id}", headers=GERMAN).get_data(as_text=True)
    assert '<html lang="de"' in form and "Anmelden" in form and "Sprache (optional)" in form
    to = address("de")
    response = client.post(f"/subscribe/{list_id}", data={"email": to, "name": "Anna"}, headers=GERMAN)
    assert response.status_code == 302
    assert language_of(app, to) == "de-DE"  # the first Accept-Language tag, as given
    thanks = client.get(response.location, headers=GERMAN).get_data(as_text=True)
    assert "Sehen Sie in Ihr Postfach" in thanks

    message = mail_to(outbox_dir, to)
    assert message.subject == "Bitte bestätigen Sie Ihr Abonnement von Wochenpost"
    html, text = message.body("html"), message.body("plain")
    assert "Hallo Anna, bitte bestätigen Sie" in html and "Ja, ich möchte mich anmelden" in html
    assert '<html lang="de">' in html
    assert text.startswith("Hallo Anna,") and "Der Link gilt 7 Tage" in text
    assert "Please confirm" not in html + text
    # The confirmation page speaks the subscriber's language even to an English browser.
    page = client.get(path_of(message, "confirm"), headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Sie sind angemeldet" in page and "Abonnements verwalten" in page


def test_an_explicit_choice_wins_over_the_browser_and_english_stays_english(app, client, worker, outbox_dir):
    list_id = make_list(app, "Digest")
    chosen = address("fr")
    client.post(f"/subscribe/{list_id}", data={"email": chosen, "language": "fr"}, headers=GERMAN)
    assert language_of(app, chosen) == "fr"
    english = address("en")
    client.post(f"/subscribe/{list_id}", data={"email": english}, headers={"Accept-Language": "en-GB"})
    assert language_of(app, english) == "en-GB"
    # fr has no catalog of ours: its system mail falls back to English, like en-GB's.
    for to in (chosen, english):
        message = mail_to(outbox_dir, to)
        assert message.subject == "Please confirm your subscription to Digest"
        assert "Yes, subscribe me" in message.body("html")


def test_signup_refuses_a_language_outside_the_select(app, client):
    list_id = make_list(app, "Offers", OptIn.SINGLE)
    to = address()
    response = client.post(f"/subscribe/{list_id}", data={"email": to, "language": "<script>"})
    assert response.status_code == 400 and "Not a valid choice" in response.get_data(as_text=True)
    assert language_of(app, to) is None  # nothing was created


def test_a_garbage_accept_language_is_ignored(app, client):
    list_id = make_list(app, "Offers", OptIn.SINGLE)
    to = address()
    response = client.post(f"/subscribe/{list_id}", data={"email": to},
                           headers={"Accept-Language": "x-klingon-with-a-very-long-tag;q=1, *;q=0.5"})
    assert response.status_code == 302
    assert language_of(app, to) is None


def test_unsubscribe_page_in_german_for_a_german_subscriber(app, client):
    list_id = make_list(app, "Wochenpost", OptIn.SINGLE)
    to = address()
    subscriber_id = make_subscriber(app, to, [list_id])
    with app.app_context():
        url = links.unsubscribe_url(subscriber_id, [list_id])
    path = urlsplit(url).path
    english = client.get(path).get_data(as_text=True)
    assert "Leave all lists" in english and "Alle Listen verlassen" not in english
    set_language(app, subscriber_id, "de")
    page = client.get(path, headers={"Accept-Language": "en"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and '<html lang="de"' in html
    assert "<h1>Abmelden</h1>" in html and "Wochenpost verlassen" in html and "Alle Listen verlassen" in html
    left = client.post(path, data={"action": "all"}).get_data(as_text=True)
    assert "Sie sind abgemeldet" in left and "Sie haben alle unsere Listen verlassen" in left


def test_preference_center_sets_the_language_and_then_speaks_it(app, client):
    list_id = make_list(app, "Weekly", OptIn.SINGLE)
    to = address()
    subscriber_id = make_subscriber(app, to, [list_id])
    with app.app_context():
        url = links.preferences_url(subscriber_id)
    path = urlsplit(url).path
    page = client.get(path, headers=GERMAN).get_data(as_text=True)
    assert "Ihre Abonnements" in page  # not known yet: the browser decides
    assert '<option selected value="de">' in page
    response = client.post(path, data={"csrf_token": csrf_token(page), "name": "", "language": "en",
                                       "lists": [str(list_id)]}, headers=GERMAN)
    assert response.status_code == 302
    assert language_of(app, to) == "en"
    after = client.get(path, headers=GERMAN).get_data(as_text=True)
    assert "Your subscriptions" in after and "Your preferences are saved." in after
    bad = client.post(path, data={"csrf_token": csrf_token(after), "language": "xx-not-listed",
                                  "lists": [str(list_id)]})
    assert bad.status_code == 400 and "Not a valid choice" in bad.get_data(as_text=True)
    assert language_of(app, to) == "en"


def test_admin_nav_follows_accept_language(admin_client):
    german = admin_client.get("/admin/", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert ">Kampagnen</a>" in german and ">Abonnenten</a>" in german and ">Abmelden</button>" in german
    english = admin_client.get("/admin/", headers={"Accept-Language": "en-US"}).get_data(as_text=True)
    assert ">Campaigns</a>" in english and ">Sign out</button>" in english
    unknown = admin_client.get("/admin/", headers={"Accept-Language": "ja"}).get_data(as_text=True)
    assert ">Campaigns</a>" in unknown


def test_web_view_shows_the_variant_of_the_subscribers_language(app, client):
    from newsletter.services.campaigns import campaigns

    list_id = make_list(app, "Weekly", OptIn.SINGLE)
    german, french = make_subscriber(app, address("de"), [list_id]), make_subscriber(app, address("fr"), [list_id])
    set_language(app, german, "de-CH")
    set_language(app, french, "fr")
    with app.app_context():
        campaign_id = campaigns.create(
            name="June", subject="June news", from_email="news@example.com", list_ids=[list_id],
            html="<p>Hello {{ subscriber.email }}</p>",
            translations={"de": {"subject": "Juni", "body": "<p>Hallo {{ subscriber.email }}</p>"}}).id
        urls = {who: links.web_view_url(campaign_id, who) for who in (german, french)}
    assert "<p>Hallo " in client.get(urlsplit(urls[german]).path).get_data(as_text=True)
    assert "<p>Hello " in client.get(urlsplit(urls[french]).path).get_data(as_text=True)


def test_admin_sets_a_subscribers_language_and_a_bad_tag_is_a_form_error(app, admin_client):
    from tests.support.web import post_form

    to = address()
    added = post_form(admin_client, "/admin/subscribers/new", "/admin/subscribers/new",
                      {"email": to, "name": "", "status": "confirmed", "language": "de_at", "attributes": "{}"})
    assert added.status_code == 302, added.get_data(as_text=True)
    assert language_of(app, to) == "de-AT"
    assert "<dt>Language</dt><dd>de-AT</dd>" in admin_client.get(added.location).get_data(as_text=True)
    edit = added.location + "/edit"
    refused = post_form(admin_client, edit, edit, {"email": to, "name": "Renamed", "status": "confirmed",
                                                   "language": "not a tag", "attributes": "{}"})
    assert refused.status_code == 200 and "is not a language tag" in refused.get_data(as_text=True)
    assert language_of(app, to) == "de-AT"
    cleared = post_form(admin_client, edit, edit, {"email": to, "name": "", "status": "confirmed", "language": "",
                                                   "attributes": "{}"})
    assert cleared.status_code == 302 and language_of(app, to) is None
