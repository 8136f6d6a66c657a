"""A translated campaign through the real pipeline: worker, broker, SMTP server, database.

Each recipient gets the variant of their language exactly once: `de` and `de-AT` the German one,
`en`, `fr` (no translation) and unknown the campaign's own."""
from __future__ import annotations

import email
import email.policy
import re
from urllib.parse import urlsplit

from sqlalchemy import update

from newsletter.extensions import db
from newsletter.models import Subscriber
from tests.pipeline.conftest import (
    assert_exactly_once,
    assert_totals_match_ledger,
    ledger,
    make_audience,
    make_campaign,
    start,
    wait_until_status,
)

GERMAN_HTML = ('<p>Hallo {{ subscriber.name }} aus {{ subscriber.attributes.city }}</p>'
               '<p><a href="https://example.com/de">Mehr</a></p>')


def _message(smtp_server, address: str) -> email.message.EmailMessage:
    return email.message_from_bytes(smtp_server.received[address][0], policy=email.policy.default)


def test_each_recipient_gets_their_language_once_with_the_default_as_fallback(ctx, worker, beat, smtp_server):
    list_id, emails = make_audience(5, prefix="lang")
    languages = dict(zip(emails, ["en", "de", "fr", "de-AT", None], strict=True))
    for address, language in languages.items():
        db.session.execute(update(Subscriber).where(Subscriber.email == address).values(language=language))
    db.session.commit()
    campaign_id = make_campaign([list_id], tracking="anonymous", translations={
        "de": {"subject": "Neuigkeiten für {{ subscriber.name }}", "body": GERMAN_HTML}})
    start(ctx, campaign_id)
    wait_until_status(campaign_id, "sent")
    client = ctx.test_client()

    assert smtp_server.duplicates() == {}
    assert_exactly_once(smtp_server, emails)
    assert ledger(campaign_id) == {"sent": 5}
    assert_totals_match_ledger(campaign_id)
    for i, (address, language) in enumerate(languages.items()):
        message = _message(smtp_server, address)
        html = message.get_body(("html",)).get_content()
        text = message.get_body(("plain",)).get_content()
        if language in ("de", "de-AT"):
            assert message["Subject"] == f"Neuigkeiten für Person {i}", address
            assert f"Hallo Person {i} aus City{i}" in html and f"Hallo Person {i} aus City{i}" in text
            assert "Hello" not in html
            # Its own link is tracked: our redirect leads to the German variant's URL.
            assert "https://example.com/de" not in html
            click = re.search(r'href="(http[^"]+/c/[^"]+)"', html).group(1)
            assert client.get(urlsplit(click).path).location == "https://example.com/de"
        else:
            assert message["Subject"] == f"News for Person {i}", address
            assert f"Hello Person {i} from City{i}" in html and "Hallo" not in html
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
