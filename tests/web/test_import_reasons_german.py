"""An import's reasons on its admin page in German: why each row was skipped (suppressed, had left a
list) or invalid, with the date in the page's locale; the API and the CSV report keep the English."""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from flask_babel import force_locale, format_date

from newsletter.extensions import db
from newsletter.models import ImportJob, ImportMode, ImportStatus, OptIn
from newsletter.services.audience import subscriptions
from tests.api.conftest import api, api_key  # noqa: F401  (fixtures: the API in English)
from tests.support.net import wait_for
from tests.support.web import post_form
from tests.web.test_admin_german import english
from tests.web.test_imports import finished, upload
from tests.web.test_public import make_list, make_subscriber

LONG_NAME = "N" * 201
CONTENT = ("email,name,language\n"
           "left-news@example.com,Nora,\n"
           "left-all@example.com,Alma,\n"
           "bad-tag@example.com,Bea,not a tag!\n"
           f"long-name@example.com,{LONG_NAME},de\n"
           "new@example.com,Neo,de\n").encode()


def _german(admin_client) -> None:
    """German chosen with the footer's switch, as a person does."""
    assert post_form(admin_client, "/admin/", "/language", {"language": "de", "next": "/admin/"}).status_code == 302


def _table(page: str, start: str) -> str:
    return page.split(start, 1)[1].split("</table>", 1)[0]


def test_skipped_and_invalid_rows_are_german_on_the_page_and_english_in_the_api(app, admin_client, api,  # noqa: F811
                                                                                worker):
    news = make_list(app, "News", opt_in=OptIn.SINGLE)
    left_news = make_subscriber(app, "left-news@example.com", [news])
    left_all = make_subscriber(app, "left-all@example.com", [news])
    with app.app_context():
        subscriptions.unsubscribe(left_news, [news])
        subscriptions.unsubscribe(left_all, None)
    today = datetime.now(UTC).date()  # the day they left (a test run across midnight may fail here)
    response = upload(admin_client, CONTENT, list_ids=str(news))
    job_id = int(response.location.rstrip("/").rsplit("/", 1)[1])
    status = wait_for(lambda: finished(admin_client, job_id), 60, 0.3, "the import to finish")
    assert (status["created"], status["suppressed"], status["left_lists"], status["invalid"]) == (1, 1, 1, 2)

    _german(admin_client)
    page = admin_client.get(f"/admin/imports/{job_id}").get_data(as_text=True)
    with app.test_request_context(), force_locale("de"):
        german_day = format_date(today)
    assert german_day == today.strftime("%d.%m.%Y")
    skipped = _table(page, 'id="skipped-rows"')
    assert f"Hat „News“ am {german_day} verlassen; ein Import fügt niemanden wieder hinzu" in skipped, skipped
    assert f"Am {german_day} von allen Listen abgemeldet; ein Import meldet die Adresse nicht wieder an." \
        in skipped, skipped
    invalid = _table(page, "<h2>Ungültige Zeilen</h2>")
    assert "„not a tag!“ ist kein Sprachkürzel" in invalid, invalid
    assert "Ein Name: höchstens 200 Zeichen." in invalid, invalid
    assert english(page) == []

    day = today.isoformat()
    report = api.get(f"/api/v1/imports/{job_id}", headers={"Accept-Language": "de"}).get_json()
    assert report["skipped"] == [
        {"row": 2, "email": "left-news@example.com",
         "reason": f"Left “News” on {day}; an import does not add back anyone who unsubscribed."},
        {"row": 3, "email": "left-all@example.com",
         "reason": f"Unsubscribed from every list on {day}; an import does not subscribe them again."}]
    assert report["errors"] == [
        {"row": 4, "email": "bad-tag@example.com",
         "reason": "“not a tag!” is not a language tag: use one like en, de or pt-BR."},
        {"row": 5, "email": "long-name@example.com", "reason": "A name is at most 200 characters."}]
    csv_report = admin_client.get(f"/admin/imports/{job_id}/invalid.csv").get_data(as_text=True)
    assert list(csv.reader(io.StringIO(csv_report))) == [["row", "email", "reason"]] + [
        [str(e["row"]), e["email"], e["reason"]] for e in report["errors"]]


def test_a_job_stored_before_the_reasons_had_keys_shows_its_english_text(app, admin_client):
    with app.app_context():
        job = ImportJob(filename="old.csv", path="/nonexistent/old.csv", mode=ImportMode.CONFIRMED,
                        status=ImportStatus.DONE, rows=2, suppressed=1, invalid=1,
                        skipped=[{"row": 2, "email": "gone@example.com",
                                  "reason": "Suppressed on 2025-03-01: mail to it kept bouncing."}],
                        errors=[{"row": 3, "email": "x", "reason": "An email address is required."}])
        db.session.add(job)
        db.session.commit()
        job_id = job.id
    _german(admin_client)
    page = admin_client.get(f"/admin/imports/{job_id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Suppressed on 2025-03-01: mail to it kept bouncing." in _table(html, 'id="skipped-rows"')
    assert "An email address is required." in _table(html, "<h2>Ungültige Zeilen</h2>")
