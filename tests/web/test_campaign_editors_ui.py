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
    everyone = admin_client.get("/admin/campaigns/merge-fields.json").get_json()["fields"]
    tags = {f["label"]: f["tag"] for f in everyone}
    assert tags["Name"] == "{{ subscriber.name }}"
    assert tags["attributes.city"] == "{{ subscriber.attributes.city }}"
    assert tags["attributes.first name"] == '{{ subscriber.attributes["first name"] }}'
    assert tags["attributes.plan"] == "{{ subscriber.attributes.plan }}"
    assert not any("_hidden" in label for label in tags)
    of_one = admin_client.get(f"/admin/campaigns/merge-fields.json?list_ids={one_id}").get_json()["fields"]
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


def test_the_gallery_shows_layouts_and_saved_templates_and_starts_campaigns(app, admin_client):
    page = admin_client.get("/admin/campaigns/gallery").get_data(as_text=True)
    for name in ("Newsletter", "Announcement", "Digest", "Plain letter", "Receipt"):
        assert f"<h3>{name}</h3>" in page
    assert page.count('<iframe sandbox=""') == 5 and "No saved templates yet" in page
    assert "Sam Sample" in page  # thumbnails are rendered for the sample subscriber
    start = admin_client.get("/admin/campaigns/new?template=gallery:digest&editor=visual").get_data(as_text=True)
    assert '<input checked id="body_format-3" name="body_format" type="radio" value="visual">' in start
    assert "The weekly digest" in start and 'value="The week in five links"' in start
    missing = admin_client.get("/admin/campaigns/new?template=gallery:nope", follow_redirects=True)
    assert missing.status_code == 200 and "no longer exists" in missing.get_data(as_text=True)


def test_save_as_template_then_start_from_it_and_delete_it(app, admin_client):
    response = post_form(admin_client, NEW, NEW,
                         _form(body_format="markdown", body_source="# House {{ subscriber.name }}"))
    campaign_id = int(response.headers["Location"].rsplit("/", 1)[-1])
    detail = admin_client.get(f"/admin/campaigns/{campaign_id}").get_data(as_text=True)
    assert f"/admin/campaigns/{campaign_id}/save-template" in detail
    url = f"/admin/campaigns/{campaign_id}/save-template"
    refused = post_form(admin_client, url, url, {"name": ""})
    assert refused.status_code == 200 and 'id="name-error"' in refused.get_data(as_text=True)
    saved = post_form(admin_client, url, url, {"name": "House style"})
    assert saved.status_code == 302
    gallery_page = admin_client.get("/admin/campaigns/gallery").get_data(as_text=True)
    assert "<h3 class=\"break\">House style</h3>" in gallery_page and "Markdown" in gallery_page
    from newsletter.models import CampaignTemplate
    with app.app_context():
        template_id = db.session.query(CampaignTemplate.id).scalar()
    start = admin_client.get(f"/admin/campaigns/new?template=saved:{template_id}").get_data(as_text=True)
    assert "# House {{ subscriber.name }}</textarea>" in start
    deleted = post_form(admin_client, "/admin/campaigns/gallery", f"/admin/campaigns/templates/{template_id}/delete")
    assert deleted.status_code == 302
    assert "No saved templates yet" in admin_client.get("/admin/campaigns/gallery").get_data(as_text=True)


def test_viewers_cannot_use_the_gallery_or_save_templates(app, client):
    from newsletter.models import Role
    from newsletter.services.accounts import users
    from tests.support.web import login
    with app.app_context():
        users.create_user("viewer@example.org", "long enough password", Role.VIEWER)
    login(client, "viewer@example.org", "long enough password")
    assert client.get("/admin/campaigns/gallery").status_code == 403
    assert client.get("/admin/campaigns/merge-fields.json").status_code == 403
