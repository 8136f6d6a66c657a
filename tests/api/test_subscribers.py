"""/api/v1/subscribers: create, read, change, delete, filter and page through subscribers."""
from __future__ import annotations

PROBLEM = "application/problem+json"


def _list(api, name: str = "Weekly", opt_in: str = "single") -> int:
    return api.post("/api/v1/lists", json={"name": name, "opt_in": opt_in}).get_json()["id"]


def _errors(response) -> dict[str, str]:
    """{field: message}, with a list item's path (`list_ids.0`) under its field's name."""
    assert response.mimetype == PROBLEM, response.get_data(as_text=True)
    return {e["field"].split(".")[0]: e["message"] for e in response.get_json()["errors"]}


def test_create_read_update_delete(api):
    weekly, monthly = _list(api, "Weekly"), _list(api, "Monthly", "double")
    created = api.post("/api/v1/subscribers", json={
        "email": "  Ada@Example.COM ", "name": "Ada", "attributes": {"city": "London", "plan": 3},
        "list_ids": [weekly, monthly], "status": "unconfirmed"})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert (body["email"], body["name"], body["status"]) == ("ada@example.com", "Ada", "unconfirmed")
    assert body["attributes"] == {"city": "London", "plan": 3} and body["confirmed_at"] is None
    assert sorted(body["lists"], key=lambda m: m["id"]) == [
        {"id": weekly, "name": "Weekly", "status": "unconfirmed"},
        {"id": monthly, "name": "Monthly", "status": "unconfirmed"}]

    subscriber_id = body["id"]
    assert api.get(f"/api/v1/subscribers/{subscriber_id}").get_json() == body
    patched = api.patch(f"/api/v1/subscribers/{subscriber_id}",
                        json={"name": "Ada L.", "status": "confirmed", "attributes": {"city": "Paris"}})
    assert patched.status_code == 200, patched.get_json()
    after = patched.get_json()
    assert (after["name"], after["status"], after["attributes"]) == ("Ada L.", "confirmed", {"city": "Paris"})
    assert after["email"] == "ada@example.com" and after["confirmed_at"] is not None

    assert api.delete(f"/api/v1/subscribers/{subscriber_id}").status_code == 204
    gone = api.get(f"/api/v1/subscribers/{subscriber_id}")
    assert gone.status_code == 404 and gone.mimetype == PROBLEM
    assert api.patch(f"/api/v1/subscribers/{subscriber_id}", json={"name": "x"}).status_code == 404
    assert api.delete(f"/api/v1/subscribers/{subscriber_id}").status_code == 404


def test_defaults_to_confirmed_with_no_lists(api):
    body = api.post("/api/v1/subscribers", json={"email": "bo@example.com"}).get_json()
    assert (body["status"], body["name"], body["attributes"], body["lists"]) == ("confirmed", "", {}, [])
    assert body["confirmed_at"] is not None


def test_an_existing_address_is_a_409_naming_email(api):
    assert api.post("/api/v1/subscribers", json={"email": "cy@example.com"}).status_code == 201
    again = api.post("/api/v1/subscribers", json={"email": "CY@example.com"})
    assert again.status_code == 409 and list(_errors(again)) == ["email"]
    other = api.post("/api/v1/subscribers", json={"email": "di@example.com"}).get_json()["id"]
    taken = api.patch(f"/api/v1/subscribers/{other}", json={"email": "cy@example.com"})
    assert taken.status_code == 409 and list(_errors(taken)) == ["email"]


def test_invalid_input_is_a_422_naming_the_field(api):
    cases = [
        ({"email": "not an address"}, "email"),
        ({"email": ""}, "email"),
        ({"email": "a" * 250 + "@example.com"}, "email"),
        ({"name": "x"}, "email"),
        ({"email": "ok@example.com", "status": "bounced"}, "status"),
        ({"email": "ok@example.com", "list_ids": [999999]}, "list_ids"),
        ({"email": "ok@example.com", "list_ids": [2**31]}, "list_ids"),
        ({"email": "ok@example.com", "list_ids": "1"}, "list_ids"),
        ({"email": "ok@example.com", "attributes": ["a"]}, "attributes"),
        ({"email": "ok@example.com", "attributes": {"": 1}}, "attributes"),
        ({"email": "ok@example.com", "attributes": {"note": "x" * 10_001}}, "attributes"),
        ({"email": "ok@example.com", "name": "x" * 201}, "name"),
        ({"email": "ok@example.com", "name": "a\x00b"}, "name"),
        ({"email": "ok@example.com", "colour": "red"}, "colour"),
    ]
    for body, field in cases:
        response = api.post("/api/v1/subscribers", json=body)
        assert response.status_code == 422, (body, response.get_json())
        assert field in _errors(response), (body, response.get_json())
    # JSON that Python accepts but no database stores: NaN.
    nan = api.post("/api/v1/subscribers", data='{"email": "ok@example.com", "attributes": {"x": NaN}}',
                   headers={"Content-Type": "application/json"})
    assert nan.status_code == 422 and "attributes" in _errors(nan)
    assert api.get("/api/v1/subscribers").get_json()["items"] == []


def test_patch_refuses_bad_values(api):
    subscriber_id = api.post("/api/v1/subscribers", json={"email": "ed@example.com"}).get_json()["id"]
    for body, field in [({"email": "nope"}, "email"), ({"status": "gone"}, "status"),
                        ({"attributes": None}, "attributes"), ({"id": 5}, "id")]:
        response = api.patch(f"/api/v1/subscribers/{subscriber_id}", json=body)
        assert response.status_code == 422 and field in _errors(response), (body, response.get_json())
    assert api.get(f"/api/v1/subscribers/{subscriber_id}").get_json()["email"] == "ed@example.com"
    assert api.get(f"/api/v1/subscribers/{2**31}").status_code == 404


def test_a_suppressed_address_is_never_resubscribed(app, api):
    from newsletter.services.audience import subscriptions

    weekly = _list(api)
    body = api.post("/api/v1/subscribers", json={"email": "fay@example.com", "list_ids": [weekly]}).get_json()
    with app.app_context():
        subscriptions.unsubscribe(body["id"])  # leaves every list and suppresses the address
    after = api.get(f"/api/v1/subscribers/{body['id']}").get_json()
    assert after["status"] == "unsubscribed" and after["lists"][0]["status"] == "unsubscribed"

    back = api.patch(f"/api/v1/subscribers/{body['id']}", json={"status": "confirmed"})
    assert back.status_code == 422 and "status" in _errors(back)
    assert api.delete(f"/api/v1/subscribers/{body['id']}").status_code == 204
    again = api.post("/api/v1/subscribers", json={"email": "FAY@example.com", "list_ids": [weekly]})
    assert again.status_code == 422 and "suppression" in _errors(again)["email"]


def test_filters_and_exact_cursor_pages(api):
    weekly, other = _list(api, "Weekly"), _list(api, "Other")
    ids = []
    for i in range(8):
        body = {"email": f"p{i}@example.com", "list_ids": [weekly] if i % 2 == 0 else [other],
                "status": "unconfirmed" if i % 3 == 0 else "confirmed"}
        ids.append(api.post("/api/v1/subscribers", json=body).get_json()["id"])

    def walk(query: str, limit: int) -> tuple[list[int], int]:
        seen, cursor, pages = [], None, 0
        while True:
            url = f"/api/v1/subscribers?limit={limit}{query}" + (f"&cursor={cursor}" if cursor else "")
            response = api.get(url)
            assert response.status_code == 200, response.get_json()
            body = response.get_json()
            seen += [item["id"] for item in body["items"]]
            pages += 1
            cursor = body["next_cursor"]
            if cursor is None:
                return seen, pages

    assert walk("", 3) == (ids, 3)
    assert walk("", 8) == (ids, 1)
    assert walk("", 200) == (ids, 1)
    assert walk(f"&list_id={weekly}", 2) == ([ids[i] for i in (0, 2, 4, 6)], 2)
    assert walk("&status=unconfirmed", 1) == ([ids[i] for i in (0, 3, 6)], 3)
    assert walk(f"&list_id={weekly}&status=unconfirmed", 5) == ([ids[0], ids[6]], 1)
    assert walk("&email=P5@Example.com", 50) == ([ids[5]], 1)
    assert walk("&email=nobody@example.com", 50) == ([], 1)
    assert walk("&list_id=999999", 50) == ([], 1)

    for query, field in [("cursor=garbage", "cursor"), ("limit=0", "limit"), ("limit=201", "limit"),
                         ("status=gone", "status"), ("list_id=abc", "list_id"), (f"list_id={2**31}", "list_id"),
                         ("email=not-an-address", "email")]:
        response = api.get(f"/api/v1/subscribers?{query}")
        assert response.status_code == 422 and field in _errors(response), (query, response.get_json())


def test_viewer_reads_but_may_not_write(api, api_as):
    subscriber_id = api.post("/api/v1/subscribers", json={"email": "gil@example.com"}).get_json()["id"]
    viewer = api_as("viewer")
    assert viewer.get("/api/v1/subscribers").status_code == 200
    assert viewer.get(f"/api/v1/subscribers/{subscriber_id}").status_code == 200
    for response in (viewer.post("/api/v1/subscribers", json={"email": "new@example.com"}),
                     viewer.patch(f"/api/v1/subscribers/{subscriber_id}", json={"name": "x"}),
                     viewer.delete(f"/api/v1/subscribers/{subscriber_id}")):
        assert response.status_code == 403 and response.mimetype == PROBLEM
    assert api.get(f"/api/v1/subscribers/{subscriber_id}").get_json()["name"] == ""
    assert api.get("/api/v1/subscribers?email=new@example.com").get_json()["items"] == []


def test_names_with_control_characters_are_422_everywhere_a_name_is_set(api):
    """Subscriber, list and template names: one rule (services/text.py), the field named."""
    for bad in ("Eve\r\nBcc: x@example.org", "Eve\x1b[2J", "Eve\u202eexe.txt", "E\x85ve"):
        made = api.post("/api/v1/subscribers", json={"email": "eve@example.org", "name": bad})
        assert made.status_code == 422, (bad, made.get_json())
        assert made.get_json()["errors"][0]["field"] == "name"
        listed = api.post("/api/v1/lists", json={"name": bad, "opt_in": "single"})
        assert listed.status_code == 422 and listed.get_json()["errors"][0]["field"] == "name"
    assert api.get("/api/v1/subscribers").get_json()["items"] == []
    ok = api.post("/api/v1/subscribers", json={"email": "eve@example.org", "name": "Ève d’Arc"})
    assert ok.status_code == 201 and ok.get_json()["name"] == "Ève d’Arc"
    patched = api.patch(f"/api/v1/subscribers/{ok.get_json()['id']}", json={"name": "Eve\tTab"})
    assert patched.status_code == 422 and patched.get_json()["errors"][0]["field"] == "name"
