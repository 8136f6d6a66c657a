"""Issue 18 item 8, the polish: markup checked with the Flask client, layout in Chromium at phone width."""
from __future__ import annotations

import re

import pytest

from newsletter.models import Role
from newsletter.services.accounts import users
from newsletter.services.audience import lists, subscribers, tokens
from newsletter.services.campaigns import campaigns
from newsletter.services.campaigns.web_view import as_page
from newsletter.web.admin.forms.campaigns import timezone_choices
from tests.support.web import login, sign_in_page
from tests.web.test_browser import CHROMIUM, VIEWPORTS


def _campaign(app, html="<p>Hi {{ subscriber.name }}</p>", subject="June <news> & more") -> int:
    with app.app_context():
        news = lists.create("Readers", "single")
        subscribers.create("ada@example.com", name="Ada", list_ids=[news.id])
        return campaigns.create(name="June", subject=subject, from_name="Acme", from_email="news@example.org",
                                html=html, text="", list_ids=[news.id]).id


def test_an_invalid_send_log_filter_says_no_delivery_matches(admin_client):
    page = admin_client.get("/admin/send-log/?since=not-a-date").get_data(as_text=True)
    assert "No delivery matches these filters" in page and "Nothing sent yet" not in page
    empty = admin_client.get("/admin/send-log/").get_data(as_text=True)
    assert "Nothing sent yet" in empty  # the real empty state is still there


def test_no_field_prints_autocomplete_none(admin_client):
    for url in ("/admin/send-log/", "/admin/settings/", "/admin/settings/servers/new", "/admin/lists/new",
                "/admin/users/new"):
        page = admin_client.get(url).get_data(as_text=True)
        assert 'autocomplete="None"' not in page, url
    assert 'autocomplete="new-password"' in admin_client.get("/admin/users/new").get_data(as_text=True)


def test_every_page_has_a_favicon_and_a_skip_link_to_main(client):
    page = client.get("/login").get_data(as_text=True)
    assert re.search(r'<link rel="icon" href="/static/favicon\.svg"', page)
    assert '<a class="skip-link" href="#main">' in page and '<main class="container" id="main"' in page
    icon = client.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"


def test_the_web_view_has_the_subject_as_its_title(app, client):
    campaign_id = _campaign(app)
    with app.app_context():
        url = "/view/" + tokens.view_token(campaign_id, None)
    page = client.get(url).get_data(as_text=True)
    assert "<title>June &lt;news&gt; &amp; more</title>" in page and "<p>Hi " in page and 'lang="und"' in page


@pytest.mark.parametrize(("html", "expected"), [
    ("<p>x</p>", '<!doctype html><html lang="und"><head><title>S</title></head>\n<p>x</p>'),
    ("<!DOCTYPE html><p>x</p>", '<!DOCTYPE html><html lang="und"><head><title>S</title></head>\n<p>x</p>'),
    ("<html><body>x</body></html>", '<html lang="und"><head><title>S</title></head><body>x</body></html>'),
    ("<html lang=fr><head><meta charset=utf-8></head>x</html>",
     "<html lang=fr><head><title>S</title><meta charset=utf-8></head>x</html>"),
    ('<html dir="ltr"><head><title> </title></head>x</html>',
     '<html dir="ltr" lang="und"><head><title>S</title></head>x</html>'),
    ('<html lang="de"><head><title>Own</title></head>x</html>',
     '<html lang="de"><head><title>Own</title></head>x</html>'),
])
def test_the_web_view_page_gets_a_title_and_language_only_where_missing(html, expected):
    assert as_page(html, "S") == expected


def test_timezones_list_real_places_first():
    choices = timezone_choices()
    real = [value for value, _ in choices["Time zones"]]
    other = [value for value, _ in choices["Other names"]]
    assert real[0] == "UTC" and "Europe/Paris" in real and "America/New_York" in real
    assert "US/Eastern" in other and "Etc/GMT+5" in other and "US/Eastern" not in real
    assert not set(real) & set(other)


def test_the_schedule_form_asks_for_the_browser_zone_until_one_is_chosen(app, admin_client):
    campaign_id = _campaign(app)
    page = admin_client.get(f"/admin/campaigns/{campaign_id}").get_data(as_text=True)
    select = re.search(r'<select[^>]*id="timezone"[^>]*>', page).group(0)
    assert "data-browser-zone" in select
    assert page.index('<optgroup label="Time zones">') < page.index('<optgroup label="Other names">')


def test_the_one_time_password_is_in_a_monospace_copyable_box(admin_client):
    from tests.support.web import post_form

    response = post_form(admin_client, "/admin/users/new", "/admin/users/new",
                         {"email": "new@example.com", "name": "New", "role": "viewer", "password": ""})
    page = response.get_data(as_text=True)
    assert re.search(r'<code class="secret-box" id="password">[^<]{12,}</code>', page), page
    assert 'data-copy="password"' in page


def test_a_forbidden_page_is_in_our_words(app, client):
    with app.app_context():
        users.create_user("viewer@example.com", "long enough password", Role.VIEWER)
    login(client, "viewer@example.com", "long enough password")
    response = client.get("/admin/users/")
    page = response.get_data(as_text=True)
    assert response.status_code == 403
    assert "<h1>Not allowed</h1>" in page and "needs the role admin or above; you are signed in as viewer" in page
    assert "permission to access the requested resource" not in page  # Werkzeug's sentence
    missing = client.get("/admin/campaigns/424242")
    assert missing.status_code == 404 and "<h1>Page not found</h1>" in missing.get_data(as_text=True)


def test_api_doc_groups_have_human_names(app):
    from newsletter.web.api.core import api

    with app.app_context():
        spec = api.spec.to_dict()
    names = [tag["name"] for tag in spec["tags"]]
    assert "Campaigns" in names and "Subscribers" in names and not [n for n in names if n.startswith("api_")]
    used = {tag for path in spec["paths"].values() for op in path.values() if isinstance(op, dict)
            for tag in op.get("tags", [])}
    assert used == set(names)


# In Chromium, at a phone's width --------------------------------------------------------------

browser_only = pytest.mark.skipif(not CHROMIUM, reason="no chromium executable (apt-get install chromium)")


def _signed_in(browser, live_server, device):
    page = browser.new_page(viewport=VIEWPORTS[device], timezone_id="Europe/Paris")
    sign_in_page(page, live_server)
    return page


@browser_only
def test_the_phone_menu_takes_one_row_until_opened(browser, live_server, admin):
    page = _signed_in(browser, live_server, "phone")
    closed = page.locator("header.topbar").bounding_box()["height"]
    brand, toggle = page.locator(".brand").bounding_box(), page.locator(".menu-toggle").bounding_box()
    assert abs((brand["y"] + brand["height"] / 2) - (toggle["y"] + toggle["height"] / 2)) < 8  # one row
    assert closed <= 100, f"the top bar is {closed}px high on a phone (it was about 200 before)"
    assert not page.is_visible("#nav-links")
    page.click(".menu-toggle")
    assert page.get_attribute(".menu-toggle", "aria-expanded") == "true"
    page.click("#nav-links >> text=Campaigns")
    page.wait_for_url("**/admin/campaigns/")
    desktop = _signed_in(browser, live_server, "desktop")
    assert desktop.is_visible("#nav-links >> text=Campaigns") and not desktop.is_visible(".menu-toggle")
    page.close()
    desktop.close()


@browser_only
def test_the_skip_link_shows_when_focused_and_moves_to_main(browser, live_server, admin):
    page = _signed_in(browser, live_server, "desktop")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    assert page.locator(".skip-link").bounding_box()["y"] >= 0  # on screen once focused
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.close()


@browser_only
@pytest.mark.parametrize("device", VIEWPORTS)
def test_send_log_filters_are_not_truncated(browser, live_server, admin, device):
    page = _signed_in(browser, live_server, device)
    page.goto(live_server + "/admin/send-log/?since=2026-01-01")
    # Each control's text (value, chosen option or placeholder; a date's "mm/dd/yyyy" and its
    # calendar button) measured in the control's own font, against the room inside it.
    cut = page.evaluate("""() => {
      const ctx = document.createElement('canvas').getContext('2d');
      return [...document.querySelectorAll('.log-filters input, .log-filters select')].flatMap((el) => {
        const style = getComputedStyle(el);
        ctx.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
        const text = el.tagName === 'SELECT' ? el.options[el.selectedIndex].text
          : el.type === 'date' ? 'mm/dd/yyyy' : (el.value.length > el.placeholder.length ? el.value : el.placeholder);
        const need = ctx.measureText(text).width + (el.type === 'date' ? 28 : 0);
        const room = el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
        return need > room ? [`${el.name}: "${text}" needs ${Math.ceil(need)}px, has ${Math.floor(room)}px`] : [];
      });
    }""")
    tops = page.evaluate("""() => [...document.querySelectorAll('.log-filters input, .log-filters select')]
        .map((el) => Math.round(el.getBoundingClientRect().top))""")
    rows = [tops[i:i + (3 if device == "desktop" else 2)] for i in range(0, len(tops), 3 if device == "desktop" else 2)]
    assert all(len(set(row)) == 1 for row in rows), f"fields in a row are not aligned: {rows}"
    assert not cut, cut
    page.close()


@browser_only
def test_the_timezone_defaults_to_the_browsers_and_keeps_the_instant(app, browser, live_server, admin):
    campaign_id = _campaign(app)
    page = _signed_in(browser, live_server, "desktop")  # the browser is in Europe/Paris
    page.goto(f"{live_server}/admin/campaigns/{campaign_id}")
    assert page.input_value("#timezone") == "Europe/Paris"
    page.fill("#send_at", "2031-01-15T09:30")
    page.click("#schedule button[type=submit]")
    page.wait_for_selector(".flash")
    with app.app_context():
        send_at = campaigns.get(campaign_id).send_at
    assert send_at.strftime("%Y-%m-%d %H:%M") == "2031-01-15 08:30"  # 09:30 in Paris, in winter
    page.goto(f"{live_server}/admin/campaigns/{campaign_id}")  # the UTC time shown again, moved to Paris
    assert page.input_value("#timezone") == "Europe/Paris" and page.input_value("#send_at") == "2031-01-15T09:30"
    page.close()
