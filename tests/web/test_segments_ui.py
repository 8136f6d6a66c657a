"""The Segments pages: the builder page renders and saves, the live count answers (CSRF-checked),
bad rules show next to the JSON, roles hold, and the campaign editor offers segments."""
from __future__ import annotations

import json

from newsletter.extensions import db
from newsletter.models import Role, Segment, Subscriber, SubscriberStatus
from newsletter.services.accounts import users
from newsletter.services.audience.segments import segments
from tests.support.web import csrf_token, login, post_form

RULES = {"match": "all", "rules": [{"type": "attribute", "key": "plan", "op": "equals", "value": "pro"}]}


def _people(app) -> None:
    with app.app_context():
        db.session.add_all([Subscriber(email=f"s{i}@example.org", status=SubscriberStatus.CONFIRMED,
                                       attributes={"plan": "pro" if i < 3 else "free"}) for i in range(5)])
        db.session.commit()


def test_empty_state_then_create_and_edit(app, admin_client):
    page = admin_client.get("/admin/segments/").get_data(as_text=True)
    assert "No segments yet" in page and 'href="/admin/segments/new"' in page
    form = admin_client.get("/admin/segments/new").get_data(as_text=True)
    assert 'id="segment-form"' in form and "segments.js" in form and "Rules as JSON" in form

    created = post_form(admin_client, "/admin/segments/new", "/admin/segments/new",
                        {"name": "Pro", "description": "Paying", "rules": json.dumps(RULES)})
    assert created.status_code == 302, created.get_data(as_text=True)
    with app.app_context():
        segment = db.session.query(Segment).one()
        assert segment.rules == RULES and segment.description == "Paying"
        segment_id = segment.id
    assert created.location.endswith(f"/admin/segments/{segment_id}")
    editor = admin_client.get(created.location).get_data(as_text=True)
    assert "Pro" in editor and "&#34;plan&#34;" in editor  # the saved rules in the JSON text area
    assert "Pro" in admin_client.get("/admin/segments/").get_data(as_text=True)

    saved = post_form(admin_client, created.location, created.location,
                      {"name": "Pro or free", "rules": json.dumps({"match": "any", "rules": []})})
    assert saved.status_code == 302
    with app.app_context():
        assert segments.get(segment_id).name == "Pro or free"


def test_bad_rules_show_their_path_next_to_the_json_and_nothing_is_saved(app, admin_client):
    bad = {"match": "all", "rules": [{"type": "attribute", "key": "plan", "op": "like", "value": "x"}]}
    response = post_form(admin_client, "/admin/segments/new", "/admin/segments/new",
                         {"name": "Broken", "rules": json.dumps(bad)})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'id="rules-error"' in page and "Choose one of: equals" in page
    not_json = post_form(admin_client, "/admin/segments/new", "/admin/segments/new",
                         {"name": "Broken", "rules": "{nope"})
    assert "Not JSON" in not_json.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(Segment).count() == 0


def test_live_count_and_preview_need_the_csrf_token(app, admin_client):
    _people(app)
    token = csrf_token(admin_client.get("/admin/segments/new").get_data(as_text=True))
    answer = admin_client.post("/admin/segments/count.json", json={"rules": RULES}, headers={"X-CSRFToken": token})
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["count"] == 3 and [p["email"] for p in body["preview"]] == [f"s{i}@example.org" for i in range(3)]
    assert body["exact"] is True and body["margin"] == 0
    # After an estimate the page asks for the exact figure alone.
    exact = admin_client.post("/admin/segments/count.json", json={"rules": RULES, "exact": True},
                              headers={"X-CSRFToken": token}).get_json()
    assert exact == {"count": 3, "exact": True, "margin": 0, "preview": None}
    bad = admin_client.post("/admin/segments/count.json", json={"rules": {"match": "x", "rules": []}},
                            headers={"X-CSRFToken": token})
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "rules.match"
    assert admin_client.post("/admin/segments/count.json", json={"rules": RULES}).status_code == 400  # no token


def test_viewers_see_segments_but_cannot_change_them(app, client):
    with app.app_context():
        users.create_user("viewer@example.com", "long enough password", Role.VIEWER)
        segment_id = segments.create("Pro", RULES).id
    login(client, "viewer@example.com", "long enough password")
    page = client.get(f"/admin/segments/{segment_id}").get_data(as_text=True)
    assert "Pro" in page and "Create segment" not in page and ">Save<" not in page
    token = csrf_token(page)
    assert client.post(f"/admin/segments/{segment_id}", data={"csrf_token": token, "name": "x",
                                                              "rules": "{}"}).status_code == 403
    assert client.post(f"/admin/segments/{segment_id}/delete", data={"csrf_token": token}).status_code == 403


def test_delete_asks_first(app, admin_client):
    with app.app_context():
        segment_id = segments.create("Pro", RULES).id
    url = f"/admin/segments/{segment_id}/delete"
    assert "Delete “Pro”?" in admin_client.get(url).get_data(as_text=True)
    assert post_form(admin_client, url, url).status_code == 302
    with app.app_context():
        assert db.session.query(Segment).count() == 0


def test_the_campaign_editor_offers_segments(app, admin_client):
    with app.app_context():
        segment_id = segments.create("Pro", RULES).id
    page = admin_client.get("/admin/campaigns/new").get_data(as_text=True)
    assert 'name="segment_ids"' in page and f'value="{segment_id}"' in page
    _people(app)
    estimate = admin_client.get(f"/admin/campaigns/estimate.json?segment_ids={segment_id}").get_json()
    assert estimate == {"recipients": 3}


def test_rules_nested_past_any_parser_are_a_form_error_not_a_500(app, admin_client):
    deep = "[" * 20_000 + "]" * 20_000
    response = post_form(admin_client, "/admin/segments/new", "/admin/segments/new", {"name": "Deep", "rules": deep})
    assert response.status_code == 200 and 'id="rules-error"' in response.get_data(as_text=True)
    token = csrf_token(admin_client.get("/admin/segments/new").get_data(as_text=True))
    answer = admin_client.post("/admin/segments/count.json", data='{"rules": ' + deep + "}",
                               headers={"X-CSRFToken": token, "Content-Type": "application/json"})
    assert answer.status_code == 400


def test_the_send_page_names_the_segments(app, admin_client):
    from newsletter.services.campaigns import campaigns

    _people(app)
    with app.app_context():
        segment_id = segments.create("Pro", RULES).id
        campaign_id = campaigns.create(name="N", subject="S", from_email="n@example.org", html="<p>x</p>",
                                       segment_ids=[segment_id]).id
    page = admin_client.get(f"/admin/campaigns/{campaign_id}/send").get_data(as_text=True)
    assert "the segment Pro" in page and "Send to 3 recipients" in page
    detail = admin_client.get(f"/admin/campaigns/{campaign_id}").get_data(as_text=True)
    assert f'href="/admin/segments/{segment_id}"' in detail
