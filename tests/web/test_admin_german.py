"""The admin UI in German: every admin GET page, found in the URL map, rendered with German
chosen through the footer's language switch, shows none of a list of common English UI words and
no English sentence (a run of text with two or more English function words: "the", "is", "of"...,
which German text, proper nouns, e-mail addresses and the seeded user data do not have).

The same holds for what is not on a GET page: a service's refusal shown next to a field or in a
flash, the health page's queue warnings, and the words the admin's scripts show (static/*.js take
them from the page, newsletter/web/ui_text.py). The API keeps answering in English.

User data is seeded without those words; text in <code>, <pre>, <textarea>, <script>, <style> and <samp>
(templates, HTML bodies, snippets, recorded answers) is not UI text and is skipped.
"""
from __future__ import annotations

import io
import json
import re
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest

from newsletter.models import Role
from newsletter.services import health
from newsletter.services.accounts import users
from newsletter.services.audience import lists
from newsletter.web import ui_text
from newsletter.web.admin import charts
from newsletter.web.i18n import localized
from tests.api.conftest import api, api_key  # noqa: F401  (fixtures: the API in English)
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.web import csrf_token, is_english, login, post_form, sign_in_page
from tests.web.test_accessibility import _pages, everything  # noqa: F401  (everything: a fixture)
from tests.web.test_browser import CHROMIUM, VIEWPORTS, browser, shots  # noqa: F401  (fixtures)

# Common English UI words; each has a different German word in the catalog (so "Name", "Status",
# "Filter", "Import", "Export", "Layouts", "Webhooks" and "Bounces", used in German too, are not here).
ENGLISH = ("Save", "Cancel", "Delete", "Edit", "Create", "Search", "Subscribers", "Campaigns", "Campaign",
           "Settings", "Lists", "Users", "Remove", "Add", "Sent", "Back", "Send", "Password", "Subject",
           "Created", "Sign out", "Yes", "Show", "Enabled", "Disabled", "Segments",
           "Schedule", "Draft", "Preview", "Language", "Opens", "Clicks", "Members", "Unsubscribed",
           "Confirmed", "Recipients", "Events", "Change", "Update", "Revoke", "Never")
WORD = re.compile(r"\b(" + "|".join(re.escape(w) for w in ENGLISH) + r")\b")
# <samp>: what a program answered, as recorded (a webhook receiver's or the resolver's error).
NOT_UI = {"code", "pre", "textarea", "script", "style", "samp"}
# What the seeded data (tests/web/test_accessibility.py's `everything`) calls things: user data, not UI.
# The test email's subject is mail as it was sent (queued outside a request: English), shown in the mail log.
USER_DATA = ("Sent news", "Draft news", "A11y sent", "Welcome {{ subscriber.name }}",
             "Test email from your newsletter platform")
VISIBLE_ATTRS = ("placeholder", "title", "aria-label", "alt")


class _UiText(HTMLParser):
    """The text a person reads: visible text and labelling attributes, outside NOT_UI elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in NOT_UI:
            self.depth += 1
        elif not self.depth:
            self.parts.extend(v for k, v in attrs if k in VISIBLE_ATTRS and v)
            if tag == "input" and dict(attrs).get("type") in ("submit", "button"):
                self.parts.append(dict(attrs).get("value") or "")

    def handle_endtag(self, tag):
        if tag in NOT_UI and self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if not self.depth:
            self.parts.append(data)


def _ui_parts(html: str) -> list[str]:
    parser = _UiText()
    parser.feed(html)
    parts = []
    for part in parser.parts:
        for name in USER_DATA:
            part = part.replace(name, "")
        parts.append(part)
    return parts


def english_words(html: str) -> list[str]:
    text = "\n".join(_ui_parts(html))
    return sorted({m.group(1) for m in WORD.finditer(text)})


def english_sentences(html: str) -> list[str]:
    """Runs of UI text (a text node, a label) with two or more different English function words."""
    return [" ".join(part.split())[:100] for part in _ui_parts(html) if is_english(part)]


def english(html: str) -> list[str]:
    return english_words(html) + english_sentences(html)


def test_the_check_finds_english_and_skips_code():
    assert english_words('<h1>Subscribers</h1><button title="Delete it">x</button><input type="submit" value="Save">') \
        == ["Delete", "Save", "Subscribers"]
    assert english_words("<p>Abonnenten <code>Save</code></p><pre>Cancel</pre><textarea>Edit</textarea>") == []


def test_the_check_finds_english_sentences_but_not_names_or_addresses():
    found = english_sentences("<p>Gefunden.</p><small>No DKIM key for example.com: generate one and publish it."
                              "</small>")
    assert found == ["No DKIM key for example.com: generate one and publish it."]
    assert english_sentences('<p aria-label="Tabelle">Ein Abonnent mit der Adresse ada@example.com existiert bereits.'
                             "</p><p>Gmail und Yahoo, The Guardian, Sent news</p><code>the rules of it</code>") == []


def test_every_admin_page_is_german(app, admin_client, everything):  # noqa: F811
    pages, unfilled = _pages(app, *everything)
    assert not unfilled, f"pages without a value to visit them with: {unfilled}"
    response = post_form(admin_client, "/admin/", "/language", {"language": "de", "next": "/admin/"})
    assert response.status_code == 302
    found: dict[str, list[str]] = {}
    checked = 0
    for _endpoint, url in pages:
        if not url.startswith("/admin"):
            continue  # subscribers' pages: in their own language, tested in test_languages
        response = admin_client.get(url)
        assert response.status_code < 500, f"{url} answered {response.status_code}"
        if "text/html" not in response.content_type or response.status_code != 200:
            continue
        html = response.get_data(as_text=True)
        assert '<html lang="de"' in html, url
        checked += 1
        if words := english(html):
            found[url] = words
    assert checked >= 50, f"only {checked} admin pages checked"
    assert not found, "English left on German admin pages:\n" + "\n".join(f"{u}: {w}" for u, w in found.items())


def test_the_switch_sets_and_clears_the_language(client, admin_client):
    assert '<html lang="en"' in admin_client.get("/admin/").get_data(as_text=True)
    post_form(admin_client, "/admin/", "/language", {"language": "de", "next": "/admin/"})
    assert '<html lang="de"' in admin_client.get("/admin/").get_data(as_text=True)
    post_form(admin_client, "/admin/", "/language", {"language": "", "next": "/admin/"})
    page = admin_client.get("/admin/", headers={"Accept-Language": "de-DE,de;q=0.9"}).get_data(as_text=True)
    assert '<html lang="de"' in page  # back to following the browser
    response = post_form(admin_client, "/admin/", "/language", {"language": "xx", "next": "/admin/"})
    assert response.status_code == 302
    assert "Language: “xx” is not one of the languages offered." in admin_client.get("/admin/").get_data(as_text=True)


@pytest.mark.skipif(not CHROMIUM, reason="no chromium executable (apt-get install chromium)")
@pytest.mark.parametrize("device", VIEWPORTS)
def test_an_admin_switches_to_german_in_the_footer(app, browser, live_server, admin, shots, device):  # noqa: F811
    with app.app_context():
        lists.create("Leser", "double", public=True, description="Monatliche Neuigkeiten")
    page = browser.new_page(viewport=VIEWPORTS[device])
    sign_in_page(page, live_server)
    assert page.locator("html").get_attribute("lang") == "en"
    page.select_option("#ui-language", "de")
    page.click(".language-switch [type=submit]")
    page.wait_for_url(live_server + "/admin/")
    assert page.locator("html").get_attribute("lang") == "de"
    assert page.locator("h1").inner_text() == "Übersicht"
    page.screenshot(path=shots / f"admin_german_dashboard_{device}.png", full_page=True)
    page.goto(live_server + "/admin/subscribers/new")
    assert page.locator("h1").inner_text() == "Abonnenten hinzufügen"
    page.click("main form button[type=submit]:not([name])")  # empty: the errors name the fields, in German
    assert "Dieses Feld wird benötigt." in page.inner_text("main form")
    page.screenshot(path=shots / f"admin_german_subscriber_form_{device}.png", full_page=True)
    page.close()


def _german(admin_client) -> None:
    response = post_form(admin_client, "/admin/", "/language", {"language": "de", "next": "/admin/"})
    assert response.status_code == 302


def test_service_refusals_in_forms_and_flashes_are_german_and_the_api_stays_english(app, admin_client, admin,
                                                                                    api):  # noqa: F811
    with app.app_context():
        readers = lists.create("Leser", "single").id
    first = post_form(admin_client, "/admin/subscribers/new", "/admin/subscribers/new",
                      {"email": "ada@example.com", "name": "Ada", "status": "confirmed", "lists": [readers]})
    assert first.status_code == 302
    _german(admin_client)
    # A Conflict next to its field: the address is taken.
    page = post_form(admin_client, "/admin/subscribers/new", "/admin/subscribers/new",
                     {"email": "ada@example.com", "name": "Ada", "status": "confirmed", "lists": [readers]})
    html = page.get_data(as_text=True)
    assert "Ein Abonnent mit der Adresse ada@example.com existiert bereits." in html
    assert english(html) == []
    # An AccountError next to its field: an admin cannot demote themself.
    page = post_form(admin_client, f"/admin/users/{admin}", f"/admin/users/{admin}/role", {"role": "viewer"})
    html = page.get_data(as_text=True)
    assert "Sie können sich nicht selbst herabstufen." in html and english(html) == []
    # A RuleError in the segment builder's live count (JSON for the page's script).
    token = csrf_token(admin_client.get("/admin/segments/new").get_data(as_text=True))
    answer = admin_client.post("/admin/segments/count.json", headers={"X-CSRFToken": token}, json={
        "rules": {"match": "all", "rules": [{"type": "attribute", "key": "plan", "op": "equals", "colour": 1}]}})
    assert answer.status_code == 400
    error = answer.get_json()["error"]
    assert error["field"] == "rules.rules[0].colour"
    assert error["message"].startswith("Unbekannter Schlüssel; erlaubt sind")
    # The API: the same conflict, in English whatever the cookie and Accept-Language say.
    answer = api.post("/api/v1/subscribers", json={"email": "ada@example.com"}, headers={"Accept-Language": "de"})
    assert answer.status_code == 409
    assert answer.get_json()["errors"] == [{"field": "email",
                                            "message": "A subscriber with the address ada@example.com already exists."}]


def test_a_state_conflict_flash_is_german(app, admin_client, everything):  # noqa: F811
    values, _webhooks, _tokens = everything
    sent = values["campaign_id"][0]
    _german(admin_client)
    response = post_form(admin_client, f"/admin/campaigns/{sent}", f"/admin/campaigns/{sent}/pause")
    assert response.status_code in (302, 409)
    html = (admin_client.get(response.headers["Location"]) if response.status_code == 302 else response).get_data(
        as_text=True)
    assert "Eine Kampagne im Status „gesendet“" in html, html
    assert english(html) == []


def test_a_missing_row_is_named_in_german_on_the_page_and_in_english_by_the_api(admin_client, api):  # noqa: F811
    _german(admin_client)
    for url, sentence in (("/admin/campaigns/987654", "Kampagne mit der ID 987654 gibt es nicht."),
                          ("/admin/subscribers/987654", "Abonnent mit der ID 987654 gibt es nicht."),
                          ("/admin/webhooks/x9", "Webhook mit der ID x9 gibt es nicht.")):
        page = admin_client.get(url)
        html = page.get_data(as_text=True)
        assert page.status_code == 404 and sentence in html and "<h1>Seite nicht gefunden</h1>" in html, (url, html)
        assert english(html) == [], url
    answer = api.get("/api/v1/campaigns/987654", headers={"Accept-Language": "de"})
    assert answer.status_code == 404 and "No campaign with id 987654." in answer.get_data(as_text=True)


def test_a_forbidden_page_names_the_roles_in_german(app, client):
    with app.app_context():
        users.create_user("leser@example.com", "long enough password", Role.VIEWER)
    login(client, "leser@example.com", "long enough password")
    _german(client)
    page = client.get("/admin/users/")
    html = page.get_data(as_text=True)
    assert page.status_code == 403 and "<h1>Nicht erlaubt</h1>" in html
    assert "erfordert die Rolle Admin oder höher; Sie sind als Betrachter angemeldet" in html
    assert english(html) == []


def test_the_queue_warnings_are_german_on_a_german_page(app):
    _rows, warnings = health.queue_status(["lonely"], {"lonely": 3}, {})
    assert str(warnings[0]).startswith("No worker consumes the lonely queue (3 waiting)")  # the logs' English
    with app.test_request_context("/admin/status.json", headers={"Cookie": "ui_language=de"}):
        shown = localized(warnings[0])
    assert shown == ("Kein Worker verarbeitet die Warteschlange lonely (3 wartend): Ihre Aufgaben warten, bis einer "
                     "startet (celery -A celery_worker worker --queues lonely).")


# What a script shows: uiText("...") or t("...") in static/*.js (t is uiText inside the scripts).
SCRIPT_TEXT = re.compile(r"""\b(?:uiText|t|t\.parts|uiText\.parts)\(\s*"((?:[^"\\]|\\.)*)"\s*[,)]""")
# Places a script puts text in front of a person; a string literal with letters there is a word not
# taken from the page.
LITERAL_SINKS = re.compile(r"""(?:textContent\s*=|text:|"aria-label":|placeholder:|title\s*=|alert\(|confirm\(|"""
                           r"""Error\(|message:)\s*[`"]([^`"]*)[`"]""")
# Example values in inputs (the same in every language).
EXAMPLES = {"plan", "pro", "example.com"}


def _shows_words(literal: str) -> bool:
    """Letters outside ${...} interpolations and outside code-like `attributes.` prefixes."""
    text = re.sub(r"\$\{[^}]*\}?", " ", literal).replace("attributes.", " ")
    return literal not in EXAMPLES and re.search(r"[A-Za-z]{3}", text) is not None
STATIC = Path(__file__).resolve().parents[2] / "static"


def test_every_word_the_scripts_show_comes_from_the_page():
    scripts = {path.name: path.read_text() for path in sorted(STATIC.glob("*.js"))}
    shown = {(name, m.group(1)) for name, source in scripts.items() for m in SCRIPT_TEXT.finditer(source)}
    assert len(shown) > 80, shown
    listed = set(ui_text.WORDS)
    assert sorted(f"{name}: {text}" for name, text in shown if text not in listed) == []
    literals = [f"{name}: {m.group(1)}" for name, source in scripts.items() for m in LITERAL_SINKS.finditer(source)
                if _shows_words(m.group(1))]
    assert literals == [], "words a script shows without uiText(): add them to newsletter/web/ui_text.py"


def test_a_german_admin_page_gives_its_scripts_german_words(admin_client):
    _german(admin_client)
    html = admin_client.get("/admin/segments/new").get_data(as_text=True)
    words = json.loads(re.search(r'<script type="application/json" id="ui-text">(.*?)</script>', html, re.S).group(1))
    assert set(words) == set(ui_text.WORDS)
    assert words["+ Condition"] == "+ Bedingung"
    assert words["Not valid JSON: %(error)s"] == "Kein gültiges JSON: %(error)s"
    same = {english for english, german in words.items() if english == german}
    # The same in both: names, units and the placeholders-only ones.
    assert same <= {"%(seconds)s s", "%(minutes)s min %(seconds)s s", "%(hours)s h %(minutes)s min", "HTML",
                    "Markdown", "Status", "Domain", "Bounces"}, same


@pytest.mark.skipif(not CHROMIUM, reason="no chromium executable (apt-get install chromium)")
def test_the_segment_builder_speaks_german(app, browser, live_server, admin, shots):  # noqa: F811
    with app.app_context():
        lists.create("Leser", "single")
    page = browser.new_page(viewport=VIEWPORTS["desktop"])
    sign_in_page(page, live_server)
    page.select_option("#ui-language", "de")
    page.click(".language-switch [type=submit]")
    page.wait_for_url(live_server + "/admin/")
    page.goto(live_server + "/admin/segments/new")
    builder = page.locator("[data-builder]")
    builder.wait_for(state="visible")
    for kind in ("attribute", "email_domain", "status", "list", "signup_date", "engagement", "bounce"):
        page.locator("[data-builder] button", has_text="+ Bedingung").first.click()
        page.locator("[data-builder] select[aria-label='Bedingung']").last.select_option(kind)
    page.locator("[data-builder] button", has_text="+ Gruppe").first.click()
    page.wait_for_timeout(600)  # the debounced live count
    shown = builder.evaluate("""(box) => [box.innerText,
        ...[...box.querySelectorAll('[aria-label], [placeholder], option')].map(
          (el) => [el.getAttribute('aria-label'), el.getAttribute('placeholder'), el.textContent].join(' '))
      ].join('\\n')""")
    assert "Abonnenten, die" in shown and "Attributname" in shown and "hat nicht geöffnet" in shown
    html = "<div>" + "".join(f"<p>{line}</p>" for line in shown.splitlines()) + "</div>"
    assert english(html) == [], shown
    page.screenshot(path=shots / "admin_german_segment_builder_desktop.png", full_page=True)
    page.close()


# What no GET page shows: the answers to posted forms (tests/web/test_unmarked_text.py checks statically
# that such text is marked; these check it arrives in German).

def _flashed(client, response) -> str:
    """The page a redirect leads to, with its flash; the page itself when there was no redirect."""
    assert response.status_code in (200, 302, 400, 429), response.status_code
    return (client.get(response.headers["Location"]) if response.status_code == 302 else response).get_data(
        as_text=True)


def test_sign_in_errors_and_the_sign_out_flash_are_german(app, client, admin):
    post_form(client, "/login", "/language", {"language": "de", "next": "/login"})
    wrong = post_form(client, "/login", "/login", {"email": "nobody@example.com", "password": "not the password"})
    html = wrong.get_data(as_text=True)
    assert "Falsche E-Mail-Adresse oder falsches Passwort, oder das Konto ist deaktiviert." in html, html
    assert english(html) == []
    assert login(client, ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 302
    html = _flashed(client, post_form(client, "/admin/", "/logout"))
    assert "Sie sind abgemeldet." in html and english(html) == []


def test_automation_flashes_are_german(app, admin_client):
    with app.app_context():
        readers = lists.create("Leser", "single").id
    _german(admin_client)
    created = post_form(admin_client, "/admin/automations/new", "/admin/automations/new",
                        {"name": "Begrüßung", "trigger": "subscribed", "trigger_key": str(readers)})
    html = _flashed(admin_client, created)
    assert "Automation „Begrüßung“ angelegt, pausiert" in html and english(html) == []
    detail = created.headers["Location"]
    url = f"{detail}/steps/new/wait"
    html = _flashed(admin_client, post_form(admin_client, url, url, {"minutes": "60", "timezone": "UTC"}))
    assert "Warten: Schritt hinzugefügt." in html and english(html) == []
    html = _flashed(admin_client, post_form(admin_client, detail, f"{detail}/status", {"status": "active"}))
    assert "Läuft: Fällige Schritte gehen innerhalb von Sekunden raus." in html and english(html) == []
    html = _flashed(admin_client, post_form(admin_client, detail, f"{detail}/status", {"status": "paused"}))
    assert "Pausiert: Alle bleiben, wo sie sind, bis Sie fortsetzen." in html and english(html) == []


def test_import_form_errors_are_german(app, admin_client):
    with app.app_context():
        lists.create("Leser", "single")
    _german(admin_client)
    page = admin_client.get("/admin/imports/").get_data(as_text=True)
    no_file = admin_client.post("/admin/imports/", data={"csrf_token": csrf_token(page), "mode": "confirmed"},
                                content_type="multipart/form-data")
    html = no_file.get_data(as_text=True)
    assert no_file.status_code == 400 and "Wählen Sie eine CSV-Datei zum Importieren." in html
    assert english(html) == []
    no_list = admin_client.post("/admin/imports/", data={"csrf_token": csrf_token(page), "mode": "confirmed",
                                                         "file": (io.BytesIO(b"email\na@example.com\n"), "a.csv")},
                                content_type="multipart/form-data")
    html = no_list.get_data(as_text=True)
    assert no_list.status_code == 400 and "Kreuzen Sie die Listen an, in die diese Abonnenten sollen" in html
    assert english(html) == []


def test_charts_speak_german(app):
    line = SimpleNamespace(starts=[datetime(2026, 12, 7), datetime(2026, 12, 8)], unit="day",
                           series={"total": [3, 0]})
    with app.test_request_context("/admin/", headers={"Cookie": "ui_language=de"}):
        html = str(charts.timeline_chart(line, [("total", "Abonnenten", "success")], title="Wachstum", empty=""))
        empty = str(charts.bar_chart([], [], title="Wachstum"))
    assert "Wachstum. Abonnenten: insgesamt 3, am meisten 3 um Mo., 7. Dez. 2026." in html, html
    assert ">Tag (UTC)<" in html and ">7. Dez.<" in html and "Mo., 7. Dez. 2026: 3 Abonnenten" in html
    assert "Noch nichts anzuzeigen." in empty
    assert english(html) == [] and english(empty) == []
