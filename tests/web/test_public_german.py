"""The subscriber's pages nobody reaches on a first visit, in German: a revisited unsubscribe link
("you already left"), its Rejoin answers (confirm again, welcome back, the do-not-mail list) and the
public pages' 404/400 texts. Each in the subscriber's language (German here) and with no English left
(`english` from test_admin_german: common UI words or an English sentence)."""
from __future__ import annotations

import re

from babel.dates import get_month_names

from newsletter.models import OptIn
from newsletter.services.audience import tokens
from newsletter.services.numbers import MAX_ID
from tests.web.test_admin_german import english
from tests.web.test_public import ONE_CLICK, address, make_list, make_subscriber, with_token

GERMAN = {"Accept-Language": "de-DE,de;q=0.9"}
GERMAN_MONTHS = set(get_month_names("wide", locale="de").values())


def _german(html: str) -> None:
    assert '<html lang="de"' in html, html
    assert english(html) == [], english(html)


def _left(app, client, opt_in: OptIn) -> tuple[int, str]:
    """A German subscriber who left "Neuigkeiten" (and stays on "Angebote"), and their unsubscribe link."""
    news, offers = make_list(app, "Neuigkeiten", opt_in=opt_in), make_list(app, "Angebote")
    subscriber_id = make_subscriber(app, address("de"), [news, offers], language="de")
    token = with_token(app, tokens.unsubscribe_token, subscriber_id, [news])
    assert client.post(f"/unsubscribe/{token}", data={"action": "lists"}).status_code == 200
    return subscriber_id, token


def test_a_revisited_link_and_rejoining_a_double_opt_in_list_are_german(app, client):
    _subscriber_id, token = _left(app, client, OptIn.DOUBLE)
    # An English browser: the page follows the subscriber's language.
    again = client.get(f"/unsubscribe/{token}", headers={"Accept-Language": "en"}).get_data(as_text=True)
    _german(again)
    assert "Sie haben Neuigkeiten bereits verlassen" in again and "Neuigkeiten wieder beitreten" in again
    assert "Wir senden Ihnen keine E-Mails mehr von ihr." in again and "Abonnements verwalten" in again
    date = re.search(r"Sie haben sich am \d{1,2}\. (\w+) \d{4} abgemeldet\.", again)
    assert date and date.group(1) in GERMAN_MONTHS, again

    back = client.post(f"/unsubscribe/{token}", data={"action": "rejoin"}).get_data(as_text=True)
    _german(back)
    assert "Sehen Sie in Ihr Postfach" in back
    assert "Wir haben Ihnen einen Link geschickt, um Neuigkeiten zu bestätigen." in back


def test_rejoining_a_single_opt_in_list_welcomes_back_in_german(app, client):
    _subscriber_id, token = _left(app, client, OptIn.SINGLE)
    back = client.post(f"/unsubscribe/{token}", data={"action": "rejoin"}).get_data(as_text=True)
    _german(back)
    assert "Willkommen zurück" in back and "Sie haben Neuigkeiten wieder abonniert." in back
    assert "Abonnements verwalten" in back
    # Nothing left to rejoin from this link now: a 400 page in German.
    refused = client.post(f"/unsubscribe/{token}", data={"action": "rejoin"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "Über diesen Link können Sie keiner Liste wieder beitreten." in html
    _german(html)


def test_the_do_not_mail_list_is_explained_in_german(app, client):
    news = make_list(app, "Neuigkeiten", opt_in=OptIn.SINGLE)
    subscriber_id = make_subscriber(app, address("de"), [news], language="de")
    token = with_token(app, tokens.unsubscribe_token, subscriber_id)
    assert app.test_client().post(f"/unsubscribe/{token}", data=ONE_CLICK).status_code == 200  # leaves everything
    again = client.get(f"/unsubscribe/{token}").get_data(as_text=True)
    _german(again)
    assert "Ihre Adresse steht auf unserer Sperrliste. Kontaktieren Sie uns" in again
    assert "Sie haben alle unsere Listen verlassen: Wir senden Ihnen überhaupt keine E-Mails." in again
    refused = client.post(f"/unsubscribe/{token}", data={"action": "rejoin"}).get_data(as_text=True)
    _german(refused)
    assert "Ihre Adresse steht auf unserer Sperrliste" in refused
    assert "Sie haben alle unsere Listen verlassen, daher senden wir Ihnen überhaupt keine E-Mails." in refused


def test_the_public_404_pages_are_german(app, client):
    private = make_list(app, "Intern", public=False)
    for url, sentence in ((f"/subscribe/{private}", "Es gibt keine solche Liste zum Abonnieren."),
                          (f"/subscribe/{MAX_ID + 1}", "Diese ID gibt es nicht.")):
        page = client.get(url, headers=GERMAN)
        html = page.get_data(as_text=True)
        assert page.status_code == 404 and sentence in html, (url, html)
        _german(html)
    # The web view of a campaign that is gone, for a German subscriber (an English browser).
    subscriber_id = make_subscriber(app, address("de"), [], language="de")
    token = with_token(app, tokens.view_token, 987654, subscriber_id)
    page = client.get(f"/view/{token}", headers={"Accept-Language": "en"})
    html = page.get_data(as_text=True)
    assert page.status_code == 404 and "Diese E-Mail ist nicht mehr verfügbar." in html
    _german(html)
