"""/api/v1/campaigns: compose, state changes (409 when the state forbids them), deliveries, and a
real send through the worker and SMTP server, followed by polling."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.net import wait_for

PROBLEM = "application/problem+json"
HTML = '<p>Hello {{ subscriber.name }}</p><p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
ZERO = {"recipients": 0, "sent": 0, "failed": 0, "cancelled": 0, "skipped": 0, "pending": 0, "bounced": 0,
        "complained": 0}


def _list(api, name: str = "Weekly") -> int:
    return api.post("/api/v1/lists", json={"name": name, "opt_in": "single"}).get_json()["id"]


def _campaign(api, list_ids: list[int], **overrides) -> dict:
    body = {"name": "Spring news", "subject": "News for {{ subscriber.name }}", "from_email": "news@example.com",
            "html": HTML, "list_ids": list_ids, **overrides}
    response = api.post("/api/v1/campaigns", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _members(api, list_id: int, n: int, prefix: str = "r") -> list[str]:
    emails = [f"{prefix}{i:03d}@example.com" for i in range(n)]
    for i, email in enumerate(emails):
        created = api.post("/api/v1/subscribers", json={"email": email, "name": f"Person {i}", "list_ids": [list_id]})
        assert created.status_code == 201, created.get_json()
    return emails


def _errors(response) -> dict[str, str]:
    assert response.mimetype == PROBLEM, response.get_data(as_text=True)
    return {e["field"].split(".")[0]: e["message"] for e in response.get_json()["errors"]}


def _walk(api, url: str, limit: int) -> tuple[list[dict], int]:
    items, cursor, pages = [], None, 0
    while True:
        sep = "&" if "?" in url else "?"
        response = api.get(f"{url}{sep}limit={limit}" + (f"&cursor={cursor}" if cursor else ""))
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        items += body["items"]
        pages += 1
        if (cursor := body["next_cursor"]) is None:
            return items, pages


def _wait_for_status(api, campaign_id: int, status: str, timeout: float = 90) -> dict:
    def reached():
        body = api.get(f"/api/v1/campaigns/{campaign_id}").get_json()
        return body if body["status"] == status else None
    return wait_for(reached, timeout, interval=0.25, message=f"campaign {campaign_id} to be {status}")


# Compose ------------------------------------------------------------------------------------

def test_create_read_update_delete(api):
    weekly, monthly = _list(api, "Weekly"), _list(api, "Monthly")
    body = _campaign(api, [weekly], from_name="Ünïcode Sender", text="Hi {{ subscriber.name }}")
    assert (body["status"], body["list_ids"], body["totals"]) == ("draft", [weekly], ZERO)
    assert (body["from_name"], body["layout_id"], body["send_at"], body["started_at"]) == (
        "Ünïcode Sender", None, None, None)
    campaign_id = body["id"]
    assert api.get(f"/api/v1/campaigns/{campaign_id}").get_json() == body

    patched = api.patch(f"/api/v1/campaigns/{campaign_id}", json={"subject": "Later", "list_ids": [weekly, monthly]})
    assert patched.status_code == 200, patched.get_json()
    assert (patched.get_json()["subject"], sorted(patched.get_json()["list_ids"])) == ("Later", [weekly, monthly])
    assert patched.get_json()["name"] == "Spring news"

    assert api.delete(f"/api/v1/campaigns/{campaign_id}").status_code == 204
    assert api.get(f"/api/v1/campaigns/{campaign_id}").status_code == 404
    assert api.patch(f"/api/v1/campaigns/{campaign_id}", json={"name": "x"}).status_code == 404
    assert api.post(f"/api/v1/campaigns/{campaign_id}/send").status_code == 404


def test_invalid_campaigns_are_422s_naming_the_field(api):
    weekly = _list(api)
    good = {"name": "N", "subject": "S", "from_email": "news@example.com", "html": HTML, "list_ids": [weekly]}
    cases = [
        ({k: v for k, v in good.items() if k != "list_ids"}, "list_ids"),
        ({k: v for k, v in good.items() if k != "subject"}, "subject"),
        ({**good, "name": "   "}, "name"),
        ({**good, "from_email": "nobody"}, "from_email"),
        ({**good, "reply_to": "nobody"}, "reply_to"),
        ({**good, "subject": "Line\nbreak"}, "subject"),
        ({**good, "html": "", "text": ""}, "html"),
        ({**good, "html": "<p>{{ broken</p>"}, "html"),
        ({**good, "list_ids": [999999]}, "list_ids"),
        ({**good, "list_ids": [2**31]}, "list_ids"),
        ({**good, "layout_id": 999999}, "layout_id"),
        ({**good, "html": "x" * 1_000_001}, "html"),
        ({**good, "name": "a\x00b"}, "name"),
        ({**good, "status": "sent"}, "status"),
    ]
    for body, field in cases:
        response = api.post("/api/v1/campaigns", json=body)
        assert response.status_code == 422 and field in _errors(response), (field, response.get_json())
    assert api.get("/api/v1/campaigns").get_json()["items"] == []


def test_list_pages_exactly_and_filters_by_status(api):
    weekly = _list(api)
    ids = [_campaign(api, [weekly], name=f"C{i}")["id"] for i in range(5)]
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert api.post(f"/api/v1/campaigns/{ids[3]}/send", json={"send_at": future}).status_code == 202
    items, pages = _walk(api, "/api/v1/campaigns", 2)
    assert ([c["id"] for c in items], pages) == (ids, 3)
    assert [c["id"] for c in _walk(api, "/api/v1/campaigns?status=scheduled", 2)[0]] == [ids[3]]
    assert api.get("/api/v1/campaigns?status=lost").status_code == 422
    assert api.get("/api/v1/campaigns?cursor=zzz").status_code == 422


# State changes ------------------------------------------------------------------------------

def test_schedule_reschedule_and_unschedule(api):
    campaign_id = _campaign(api, [_list(api)])["id"]
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    scheduled = api.post(f"/api/v1/campaigns/{campaign_id}/send", json={"send_at": at.isoformat()})
    assert scheduled.status_code == 202, scheduled.get_json()
    body = scheduled.get_json()
    assert body["status"] == "scheduled"
    assert datetime.fromisoformat(body["send_at"]).replace(tzinfo=UTC) == at

    later = at + timedelta(hours=3)
    moved = api.post(f"/api/v1/campaigns/{campaign_id}/send", json={"send_at": later.isoformat()})
    assert datetime.fromisoformat(moved.get_json()["send_at"]).replace(tzinfo=UTC) == later
    for send_at, field in [("2001-01-01T00:00:00+00:00", "send_at"), ("2999-01-01T00:00:00", "send_at"),
                           ("tomorrow", "send_at"), ("9999-12-31T23:59:59-14:00", "send_at")]:
        response = api.post(f"/api/v1/campaigns/{campaign_id}/send", json={"send_at": send_at})
        assert response.status_code == 422 and field in _errors(response), (send_at, response.get_json())

    back = api.post(f"/api/v1/campaigns/{campaign_id}/unschedule")
    assert back.status_code == 200 and back.get_json()["status"] == "draft" and back.get_json()["send_at"] is None
    again = api.post(f"/api/v1/campaigns/{campaign_id}/unschedule")
    assert again.status_code == 409 and list(_errors(again)) == ["status"]


def test_the_wrong_state_is_a_409_naming_status(api):
    campaign_id = _campaign(api, [_list(api)])["id"]
    for action in ("pause", "resume", "cancel"):
        response = api.post(f"/api/v1/campaigns/{campaign_id}/{action}")
        assert response.status_code == 409, (action, response.get_json())
        assert list(_errors(response)) == ["status"] and "draft" in response.get_json()["detail"]

    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    api.post(f"/api/v1/campaigns/{campaign_id}/send", json={"send_at": future})
    cancelled = api.post(f"/api/v1/campaigns/{campaign_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    for response in (api.post(f"/api/v1/campaigns/{campaign_id}/send"),
                     api.post(f"/api/v1/campaigns/{campaign_id}/send", json={"send_at": future}),
                     api.patch(f"/api/v1/campaigns/{campaign_id}", json={"name": "again"}),
                     api.post(f"/api/v1/campaigns/{campaign_id}/cancel")):
        assert response.status_code == 409 and list(_errors(response)) == ["status"], response.get_json()
    assert api.delete(f"/api/v1/campaigns/{campaign_id}").status_code == 204


def test_sending_without_lists_is_a_422(api):
    campaign_id = _campaign(api, [])["id"]
    response = api.post(f"/api/v1/campaigns/{campaign_id}/send")
    assert response.status_code == 422 and list(_errors(response)) == ["list_ids"]
    assert api.get(f"/api/v1/campaigns/{campaign_id}").get_json()["status"] == "draft"


def test_deliveries_page_exactly_by_status_and_cancel_records_totals(app, api):
    from newsletter.services.campaigns import recipients

    list_id = _list(api)
    _members(api, list_id, 7)
    api.post("/api/v1/subscribers", json={"email": "later@example.com", "list_ids": [list_id],
                                          "status": "unconfirmed"})
    campaign_id = _campaign(api, [list_id])["id"]
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert api.post(f"/api/v1/campaigns/{campaign_id}/send", json={"send_at": future}).status_code == 202
    with app.app_context():  # the snapshot a send takes, without sending (it stays scheduled)
        assert recipients.snapshot(campaign_id) == 7

    url = f"/api/v1/campaigns/{campaign_id}/deliveries"
    items, pages = _walk(api, url, 3)
    assert pages == 3 and [d["id"] for d in items] == sorted(d["id"] for d in items)
    assert sorted(d["email"] for d in items) == [f"r{i:03d}@example.com" for i in range(7)]
    assert items[0] == {"id": items[0]["id"], "email": items[0]["email"], "status": "pending", "attempts": 0,
                        "smtp_code": None, "smtp_message": "", "sent_at": None, "bounce": None}
    assert _walk(api, f"{url}?status=sent", 3) == ([], 1)

    cancelled = api.post(f"/api/v1/campaigns/{campaign_id}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.get_json()["totals"] == {**ZERO, "recipients": 7, "cancelled": 7, "skipped": 1}
    assert [d["id"] for d in _walk(api, f"{url}?status=cancelled", 5)[0]] == [d["id"] for d in items]
    assert _walk(api, f"{url}?status=pending", 5) == ([], 1)

    for query in ("status=lost", "cursor=nope", "limit=0"):
        assert api.get(f"{url}?{query}").status_code == 422
    assert api.get(f"/api/v1/campaigns/{campaign_id + 1}/deliveries").status_code == 404


def test_viewer_reads_but_may_not_write(api, api_as):
    campaign_id = _campaign(api, [_list(api)])["id"]
    viewer = api_as("viewer")
    assert viewer.get("/api/v1/campaigns").status_code == 200
    assert viewer.get(f"/api/v1/campaigns/{campaign_id}").status_code == 200
    assert viewer.get(f"/api/v1/campaigns/{campaign_id}/deliveries").status_code == 200
    writes = [viewer.post("/api/v1/campaigns", json={"name": "x"}),
              viewer.patch(f"/api/v1/campaigns/{campaign_id}", json={"name": "x"}),
              viewer.delete(f"/api/v1/campaigns/{campaign_id}")]
    writes += [viewer.post(f"/api/v1/campaigns/{campaign_id}/{action}")
               for action in ("send", "unschedule", "pause", "resume", "cancel")]
    assert {(r.status_code, r.mimetype) for r in writes} == {(403, PROBLEM)}
    assert api.get(f"/api/v1/campaigns/{campaign_id}").get_json()["status"] == "draft"


# End to end: real worker, broker and SMTP server ------------------------------------------------

def test_send_through_the_api_until_sent_with_matching_totals(api, worker, beat, smtp_server):
    list_id = _list(api)
    emails = _members(api, list_id, 30, prefix="e")
    api.post("/api/v1/subscribers", json={"email": "pending@example.com", "list_ids": [list_id],
                                          "status": "unconfirmed"})
    refused = emails[:2]
    smtp_server.rule = lambda rcpt, attempt: "550 5.1.1 No such user here" if rcpt in refused else None
    campaign_id = _campaign(api, [list_id])["id"]

    started = api.post(f"/api/v1/campaigns/{campaign_id}/send")
    assert started.status_code == 202, started.get_json()
    assert started.get_json()["status"] == "sending" and started.get_json()["started_at"] is not None
    again = api.post(f"/api/v1/campaigns/{campaign_id}/send")
    assert again.status_code == 409 and list(_errors(again)) == ["status"]

    body = _wait_for_status(api, campaign_id, "sent")
    assert body["totals"] == {**ZERO, "recipients": 30, "sent": 28, "failed": 2, "skipped": 1}
    assert body["finished_at"] is not None
    assert smtp_server.duplicates() == {}
    assert sorted(smtp_server.received) == sorted(emails[2:])

    url = f"/api/v1/campaigns/{campaign_id}/deliveries"
    sent, _ = _walk(api, f"{url}?status=sent", 10)
    assert sorted(d["email"] for d in sent) == sorted(emails[2:])
    assert {(d["attempts"], d["smtp_code"]) for d in sent} == {(1, 250)} and all(d["sent_at"] for d in sent)
    failed, _ = _walk(api, f"{url}?status=failed", 10)
    assert sorted(d["email"] for d in failed) == sorted(refused)
    assert all(d["smtp_code"] == 550 and "No such user" in d["smtp_message"] and d["sent_at"] is None
               for d in failed)
    assert api.get("/api/v1/campaigns?status=sent").get_json()["items"][0]["totals"] == body["totals"]


def test_pause_and_resume_through_the_api(api, worker, beat, smtp_server, send_rate):
    send_rate(20)
    list_id = _list(api)
    emails = _members(api, list_id, 60, prefix="q")
    campaign_id = _campaign(api, [list_id])["id"]
    assert api.post(f"/api/v1/campaigns/{campaign_id}/send").status_code == 202
    wait_for(lambda: smtp_server.count() >= 5, 30, message="the first sends")

    paused = api.post(f"/api/v1/campaigns/{campaign_id}/pause")
    assert paused.status_code == 200 and paused.get_json()["status"] == "paused"
    # Batches notice the pause within a second and hand their rows back: wait until none is in flight.
    wait_for(lambda: not any(api.get(f"/api/v1/campaigns/{campaign_id}/deliveries?status={status}&limit=1")
                             .get_json()["items"] for status in ("queued", "sending", "committing")),
             60, interval=0.25, message="every delivery handed back or sent")
    totals = api.get(f"/api/v1/campaigns/{campaign_id}").get_json()["totals"]
    assert totals["recipients"] == 60 and 0 < totals["pending"] < 60, totals
    assert api.post(f"/api/v1/campaigns/{campaign_id}/pause").status_code == 409

    resumed = api.post(f"/api/v1/campaigns/{campaign_id}/resume")
    assert resumed.status_code == 202 and resumed.get_json()["status"] == "sending"
    body = _wait_for_status(api, campaign_id, "sent")
    assert body["totals"] == {**ZERO, "recipients": 60, "sent": 60}
    assert smtp_server.duplicates() == {} and sorted(smtp_server.received) == sorted(emails)
