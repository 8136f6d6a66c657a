"""/api/v1/lists, and the API's shared behaviour: auth, roles, problem+json, cursors."""
from __future__ import annotations

PROBLEM = "application/problem+json"


def test_create_read_update_delete(api):
    created = api.post("/api/v1/lists", json={"name": "Weekly", "opt_in": "single", "public": True})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["name"] == "Weekly" and body["opt_in"] == "single" and body["public"] is True
    list_id = body["id"]

    assert api.get(f"/api/v1/lists/{list_id}").get_json()["name"] == "Weekly"
    patched = api.patch(f"/api/v1/lists/{list_id}", json={"name": "Weekly news", "opt_in": "double"})
    assert patched.status_code == 200
    assert patched.get_json()["name"] == "Weekly news" and patched.get_json()["opt_in"] == "double"

    assert api.delete(f"/api/v1/lists/{list_id}").status_code == 204
    gone = api.get(f"/api/v1/lists/{list_id}")
    assert gone.status_code == 404 and gone.mimetype == PROBLEM
    assert gone.get_json()["status"] == 404


def test_invalid_fields_are_422_problems_naming_the_field(api):
    response = api.post("/api/v1/lists", json={"name": "", "opt_in": "triple", "colour": "red"})
    assert response.status_code == 422 and response.mimetype == PROBLEM
    fields = {e["field"] for e in response.get_json()["errors"]}
    assert fields == {"name", "opt_in", "colour"}
    # Whitespace passes the schema; the service refuses it, with the same shape.
    blank = api.post("/api/v1/lists", json={"name": "   ", "opt_in": "single"})
    assert blank.status_code == 422 and blank.get_json()["errors"] == [
        {"field": "name", "message": "A list needs a name."}]
    nul = api.post("/api/v1/lists", json={"name": "a\x00b", "opt_in": "single"})
    assert nul.status_code == 422 and nul.get_json()["errors"][0]["field"] == "name"


def test_not_json_is_a_problem(api):
    response = api.post("/api/v1/lists", data="name=x", headers={"Content-Type": "text/plain"})
    assert response.status_code in (415, 422) and response.mimetype == PROBLEM


def test_cursor_pagination_has_no_gaps_or_duplicates(api):
    ids = [api.post("/api/v1/lists", json={"name": f"L{i}", "opt_in": "single"}).get_json()["id"]
           for i in range(7)]
    seen, cursor, pages = [], None, 0
    while True:
        url = "/api/v1/lists?limit=3" + (f"&cursor={cursor}" if cursor else "")
        body = api.get(url).get_json()
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ids and pages == 3
    bad = api.get("/api/v1/lists?cursor=garbage")
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "cursor"


def test_auth_401_without_or_with_a_bad_key(client, api_key):
    assert client.get("/api/v1/lists").status_code == 401
    response = client.get("/api/v1/lists", headers={"Authorization": "Bearer nl_not-a-key"})
    assert response.status_code == 401 and response.mimetype == PROBLEM
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_viewer_reads_but_may_not_write(api_as):
    viewer = api_as("viewer")
    assert viewer.get("/api/v1/lists").status_code == 200
    refused = viewer.post("/api/v1/lists", json={"name": "x", "opt_in": "single"})
    assert refused.status_code == 403 and refused.mimetype == PROBLEM


def test_revoked_key_is_refused(app, client, api_key):
    from newsletter.services.accounts import api_keys

    raw = api_key("admin")
    headers = {"Authorization": f"Bearer {raw}"}
    assert client.get("/api/v1/lists", headers=headers).status_code == 200
    with app.app_context():
        key = api_keys.authenticate(raw)
        api_keys.revoke(key.id)
    assert client.get("/api/v1/lists", headers=headers).status_code == 401


def test_openapi_document_is_generated_and_needs_auth(client, api):
    assert client.get("/api/v1/openapi.json").status_code == 401
    spec = api.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/lists/{list_id}" in spec["paths"]
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
