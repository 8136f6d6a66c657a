"""The editor switch on the campaign form, its Insert-field menu and conversion endpoint (real database)."""
from __future__ import annotations

from newsletter.extensions import db
from newsletter.models import BodyFormat, Campaign
from newsletter.services.audience import lists, subscribers
from tests.support.web import csrf_token, post_form

NEW = "/admin/campaigns/new"


def _form(**overrides) -> dict:
    return {"name": "June", "subject": "Hi", "from_name": "", "from_email": "news@example.org", "reply_to": "",
            "layout_id": "", "html": "", "text": "", **overrides}


def test_the_form_offers_four_editors_and_saves_markdown(app, admin_client):
    page = admin_client.get(NEW).get_data(as_text=True)
    for value, label in (("html", "HTML"), ("markdown", "Markdown"), ("richtext", "Rich text"), ("visual", "Visual")):
        assert f'value="{value}"' in page and f"<span>{label}</span>" in page
    assert '<input checked id="body_format-0" name="body_format" type="radio" value="html">' in page
    assert "vendor/grapesjs/grapes.min.js" in page and "https://" not in page.split("<body")[1].split("</body>")[0]
    response = post_form(admin_client, NEW, NEW, _form(body_format="markdown",
                                                       body_source="**Bold** {{ subscriber.name }}"))
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        campaign = db.session.query(Campaign).one()
        assert campaign.body_format == BodyFormat.MARKDOWN
        assert campaign.html == "<p><strong>Bold</strong> {{ subscriber.name }}</p>\n"
    edit = admin_client.get(f"/admin/campaigns/{campaign.id}/edit").get_data(as_text=True)
    assert '<input checked id="body_format-1" name="body_format" type="radio" value="markdown">' in edit
    assert "**Bold** {{ subscriber.name }}</textarea>" in edit


def test_a_broken_markdown_template_is_shown_next_to_the_source(admin_client):
    response = post_form(admin_client, NEW, NEW, _form(body_format="markdown", body_source="{% if %}"))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'id="body_source-error"' in page and "Template error" in page


def test_insert_field_menu_lists_the_audiences_attribute_keys(app, admin_client):
    with app.app_context():
        one, two = lists.create("One", "single"), lists.create("Two", "single")
        subscribers.create("a@example.org", attributes={"city": "Oslo", "first name": "A"}, list_ids=[one.id])
        subscribers.create("b@example.org", attributes={"plan": "pro", "_hidden": 1}, list_ids=[two.id])
        one_id = one.id
    everyone = admin_client.get("/admin/campaigns/fields.json").get_json()["fields"]
    tags = {f["label"]: f["tag"] for f in everyone}
    assert tags["Name"] == "{{ subscriber.name }}"
    assert tags["attributes.city"] == "{{ subscriber.attributes.city }}"
    assert tags["attributes.first name"] == '{{ subscriber.attributes["first name"] }}'
    assert tags["attributes.plan"] == "{{ subscriber.attributes.plan }}"
    assert not any("_hidden" in label for label in tags)
    of_one = admin_client.get(f"/admin/campaigns/fields.json?list_ids={one_id}").get_json()["fields"]
    labels = [f["label"] for f in of_one]
    assert "attributes.city" in labels and "attributes.plan" not in labels


def test_convert_turns_markdown_into_html_and_refuses_bad_input(admin_client):
    token = csrf_token(admin_client.get(NEW).get_data(as_text=True))
    headers = {"X-CSRFToken": token}
    ok = admin_client.post("/admin/campaigns/convert", headers=headers,
                           data={"body_format": "markdown", "body_source": "# Hi {{ subscriber.name }}"})
    assert ok.get_json() == {"html": "<h1>Hi {{ subscriber.name }}</h1>\n"}
    bad = admin_client.post("/admin/campaigns/convert", headers=headers, data={"body_format": "pdf"})
    assert bad.status_code == 422 and bad.get_json()["error"]["field"] == "body_format"
    no_token = admin_client.post("/admin/campaigns/convert", data={"body_format": "markdown", "body_source": "x"})
    assert no_token.status_code == 400
