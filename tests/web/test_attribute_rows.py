"""Subscriber attributes edited as name / kind / value rows (no raw JSON), with and without JavaScript."""
import shutil

import pytest

from newsletter.services.audience import subscribers
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.web import csrf_token

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def post_edit(client, subscriber_id, rows, **extra):
    path = f"/admin/subscribers/{subscriber_id}/edit"
    token = csrf_token(client.get(path).get_data(as_text=True))
    data = {"csrf_token": token, "email": "rows@example.com", "name": "R", "status": "confirmed", "attr_rows": "1",
            "attr_key": [r[0] for r in rows], "attr_type": [r[1] for r in rows],
            "attr_value": [r[2] for r in rows], **extra}
    return client.post(path, data=data)


def make(app, attributes):
    with app.app_context():
        return subscribers.create("rows@example.com", name="R", attributes=attributes).id


def stored(app, subscriber_id):
    with app.app_context():
        return subscribers.get(subscriber_id).attributes


def test_rows_show_each_attribute_with_its_kind(app, admin_client):
    subscriber_id = make(app, {"city": "Lyon", "zip": "75001", "age": 41, "vip": True, "tags": ["a", "b"]})
    page = admin_client.get(f"/admin/subscribers/{subscriber_id}/edit").get_data(as_text=True)
    assert 'name="attr_value" value="75001"' in page and 'name="attr_value" value="[&#34;a&#34;, &#34;b&#34;]"' in page
    assert page.count('name="attr_key"') == 5 + 1 + 1  # five rows, one empty row, the template's row
    assert "<textarea" not in page


def test_saving_rows_keeps_types_renames_and_removes(app, admin_client):
    subscriber_id = make(app, {"city": "Lyon", "zip": "75001", "old": "x"})
    response = post_edit(admin_client, subscriber_id, [
        ("city", "text", "Paris"), ("zip", "text", "75001"), ("old", "text", ""), ("", "text", ""),
        ("age", "number", "41.5"), ("vip", "boolean", "Yes"), ("tags", "json", '["a"]')])
    assert response.status_code == 302
    assert stored(app, subscriber_id) == {"city": "Paris", "zip": "75001", "age": 41.5, "vip": True, "tags": ["a"]}
    # every row removed: no attributes left
    assert post_edit(admin_client, subscriber_id, []).status_code == 302
    assert stored(app, subscriber_id) == {}


@pytest.mark.parametrize("rows, error", [
    ([("age", "number", "forty")], "Row 1: “forty” is not a number"),
    ([("vip", "boolean", "maybe")], "Row 1: a yes/no value is “true” or “false”"),
    ([("a", "text", "1"), ("a", "text", "2")], "Row 2: “a” is named twice."),
    ([("", "text", "orphan")], "Row 1: name the attribute"),
    ([("tags", "json", "[1,")], "Row 1: this is not valid JSON"),
])
def test_bad_rows_are_form_errors_and_change_nothing(app, admin_client, rows, error):
    subscriber_id = make(app, {"city": "Lyon"})
    response = post_edit(admin_client, subscriber_id, rows)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and error in page
    assert f'value="{rows[-1][2]}"' in page.replace("&#34;", '"')  # what was typed is kept
    assert stored(app, subscriber_id) == {"city": "Lyon"}


def test_add_a_row_without_javascript_posts_and_saves_nothing(app, admin_client):
    subscriber_id = make(app, {"city": "Lyon"})
    response = post_edit(admin_client, subscriber_id, [("city", "text", "Nice"), ("", "text", "")], add_row="1")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and 'value="Nice"' in page
    assert page.count('name="attr_key"') == 1 + 2 + 1  # the typed row, two empty rows, the template's row
    assert stored(app, subscriber_id) == {"city": "Lyon"}


@pytest.mark.skipif(not CHROMIUM, reason="no chromium executable (apt-get install chromium)")
def test_rows_are_added_and_removed_in_the_browser(app, browser, live_server, admin, shots):
    subscriber_id = make(app, {"city": "Lyon", "plan": "pro"})
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(live_server + f"/admin/subscribers/{subscriber_id}/edit")
    page.fill("#email", ADMIN_EMAIL)
    page.fill("#password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server + f"/admin/subscribers/{subscriber_id}/edit")
    rows = page.locator("#attribute-rows .attr-row:not(.attr-head)")
    assert rows.count() == 3
    page.click("[data-add-row]")  # JavaScript: a row in place, no round trip
    assert rows.count() == 4 and page.url.endswith("/edit")
    rows.nth(3).locator('input[name="attr_key"]').fill("age")
    rows.nth(3).locator('select[name="attr_type"]').select_option("number")
    rows.nth(3).locator('input[name="attr_value"]').fill("30")
    rows.nth(1).locator("[data-remove-row]").click()  # "plan" goes
    assert rows.count() == 3
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    page.screenshot(path=shots / "subscriber_attribute_rows_phone.png", full_page=True)
    page.locator("form button[type=submit]:not([data-add-row])").last.click()
    page.wait_for_url(live_server + f"/admin/subscribers/{subscriber_id}")
    assert stored(app, subscriber_id) == {"city": "Lyon", "age": 30}
