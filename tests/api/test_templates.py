"""/api/v1/templates: reusable transactional templates, checked in the sandbox when saved."""
from __future__ import annotations

PROBLEM = "application/problem+json"
WELCOME = {"name": "welcome", "subject": "Welcome, {{ name }}", "html": "<p>Hi {{ name }}</p>"}


def test_create_read_update_list_delete(api):
    created = api.post("/api/v1/templates", json=WELCOME)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert (body["name"], body["subject"], body["text"]) == ("welcome", "Welcome, {{ name }}", "")
    template_id = body["id"]

    assert api.get(f"/api/v1/templates/{template_id}").get_json()["html"] == "<p>Hi {{ name }}</p>"
    patched = api.patch(f"/api/v1/templates/{template_id}", json={"text": "Hi {{ name }}"})
    assert patched.status_code == 200 and patched.get_json()["text"] == "Hi {{ name }}"
    assert patched.get_json()["subject"] == "Welcome, {{ name }}"  # untouched

    api.post("/api/v1/templates", json={**WELCOME, "name": "reset"})
    first = api.get("/api/v1/templates?limit=1").get_json()
    assert [t["name"] for t in first["items"]] == ["welcome"] and first["next_cursor"]
    second = api.get(f"/api/v1/templates?limit=1&cursor={first['next_cursor']}").get_json()
    assert [t["name"] for t in second["items"]] == ["reset"] and second["next_cursor"] is None

    assert api.delete(f"/api/v1/templates/{template_id}").status_code == 204
    gone = api.get(f"/api/v1/templates/{template_id}")
    assert gone.status_code == 404 and gone.mimetype == PROBLEM


def test_a_template_that_cannot_work_is_refused_with_the_field_and_line(api):
    broken = api.post("/api/v1/templates", json={**WELCOME, "html": "<p>\n{% if name %}unclosed</p>"})
    assert broken.status_code == 422 and broken.mimetype == PROBLEM
    error = broken.get_json()["errors"][0]
    assert error["field"] == "html" and "line" in error["message"]

    internals = api.post("/api/v1/templates", json={**WELCOME, "subject": "{{ ''.__class__ }}"})
    assert internals.status_code == 422 and internals.get_json()["errors"][0]["field"] == "subject"

    empty = api.post("/api/v1/templates", json={"name": "x", "subject": "s"})
    assert empty.status_code == 422 and empty.get_json()["errors"][0]["field"] == "html"

    missing = api.post("/api/v1/templates", json={"subject": "s", "html": "h"})
    assert missing.status_code == 422 and missing.get_json()["errors"][0]["field"] == "name"


def test_names_are_unique(api):
    assert api.post("/api/v1/templates", json=WELCOME).status_code == 201
    clash = api.post("/api/v1/templates", json=WELCOME)
    assert clash.status_code == 409 and clash.get_json()["errors"][0]["field"] == "name"
    other = api.post("/api/v1/templates", json={**WELCOME, "name": "other"}).get_json()["id"]
    renamed = api.patch(f"/api/v1/templates/{other}", json={"name": "welcome"})
    assert renamed.status_code == 409


def test_viewers_read_but_do_not_write(api, api_as):
    api.post("/api/v1/templates", json=WELCOME)
    viewer = api_as("viewer")
    assert len(viewer.get("/api/v1/templates").get_json()["items"]) == 1
    assert viewer.post("/api/v1/templates", json={**WELCOME, "name": "v"}).status_code == 403
