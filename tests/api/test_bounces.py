"""/api/v1/bounces, the campaigns' bounced/complained totals and each delivery's bounce, and the
VERP return path on real sends: a campaign's and a notification's envelope sender names them."""
from __future__ import annotations

from newsletter.services.deliverability import verp
from tests.support.net import wait_for

from .test_campaigns import _campaign, _errors, _list, _members, _wait_for_status, _walk
from .test_notifications import RESET, wait_status


def test_bad_reports_are_422s_naming_the_field(api):
    cases = [
        ({"type": "hard"}, "email"),
        ({"type": "hard", "delivery_id": 1, "notification_id": 2}, "notification_id"),
        ({"type": "bounced", "email": "a@example.com"}, "type"),
        ({"email": "a@example.com"}, "type"),
        ({"type": "hard", "email": "not-an-address"}, "email"),
        ({"type": "hard", "email": "a@example.com", "status_code": "5.1"}, "status_code"),
        ({"type": "hard", "email": "a@example.com", "delivery_id": 0}, "delivery_id"),
        ({"type": "hard", "email": "a@example.com", "event_id": "x" * 201}, "event_id"),
        ({"type": "hard", "email": "a@example.com", "occurred_at": "2026-01-01T00:00:00"}, "occurred_at"),
        ({"type": "hard", "email": "a@example.com", "colour": "red"}, "colour"),
    ]
    for body, field in cases:
        response = api.post("/api/v1/bounces", json=body)
        assert response.status_code == 422, (body, response.get_json())
        assert field in _errors(response), (body, response.get_json())


def test_unknown_deliveries_are_404s_and_change_nothing(api):
    for body in ({"type": "hard", "delivery_id": 424242}, {"type": "complaint", "notification_id": 424242}):
        response = api.post("/api/v1/bounces", json=body)
        assert response.status_code == 404, response.get_json()
    assert api.get("/api/v1/bounces").get_json()["items"] == []


def test_reporting_needs_a_marketer_key(api_as):
    assert api_as("viewer").post("/api/v1/bounces", json={"type": "hard", "email": "a@example.com"}).status_code \
        == 403
    assert api_as("viewer").get("/api/v1/bounces").status_code == 200


def test_an_address_reported_hard_is_suppressed_and_a_repeat_is_recorded_once(api):
    body = {"type": "hard", "email": "Gone@Example.net", "status_code": "5.1.1", "reason": "user unknown",
            "event_id": "crm-1"}
    first = api.post("/api/v1/bounces", json=body)
    assert first.status_code == 201, first.get_json()
    out = first.get_json()
    assert (out["email"], out["type"], out["source"], out["recorded"], out["action"]) == \
        ("gone@example.net", "hard", "api", True, "suppressed")
    repeat = api.post("/api/v1/bounces", json=body)
    assert repeat.status_code == 200 and repeat.get_json()["recorded"] is False
    assert repeat.get_json()["id"] == out["id"]
    listed = api.get("/api/v1/bounces?type=hard&domain=example.net").get_json()["items"]
    assert [b["id"] for b in listed] == [out["id"]]
    assert api.get("/api/v1/bounces?type=soft").get_json()["items"] == []
    assert api.get("/api/v1/bounces?domain=bad%20domain").status_code == 422


def test_a_sent_campaign_gets_verp_return_paths_then_bounces_and_complaints_in_its_totals(
        api, worker, beat, smtp_server):
    list_id = _list(api)
    emails = _members(api, list_id, 4, prefix="verp")
    campaign_id = _campaign(api, [list_id], tracking="off")["id"]
    assert api.post(f"/api/v1/campaigns/{campaign_id}/send").status_code == 202
    body = _wait_for_status(api, campaign_id, "sent")
    assert (body["totals"]["bounced"], body["totals"]["complained"]) == (0, 0)

    deliveries, _ = _walk(api, f"/api/v1/campaigns/{campaign_id}/deliveries", 10)
    by_email = {d["email"]: d for d in deliveries}
    assert all(d["bounce"] is None for d in deliveries)
    with api.client.application.app_context():
        for address in emails:
            [sender] = smtp_server.senders[address]
            assert sender.startswith("bounces+d") and sender.endswith("@example.org")
            assert verp.parse(sender) == verp.Ref("d", by_email[address]["id"])

    hard = api.post("/api/v1/bounces", json={"type": "hard", "delivery_id": by_email[emails[0]]["id"],
                                             "status_code": "5.1.1", "reason": "550 5.1.1 no such user"})
    assert hard.status_code == 201 and hard.get_json()["campaign_id"] == campaign_id
    for event in ("s1", "s2"):  # two soft reports on one delivery: one bounced delivery
        api.post("/api/v1/bounces", json={"type": "soft", "delivery_id": by_email[emails[1]]["id"],
                                          "status_code": "4.2.2", "event_id": event})
    api.post("/api/v1/bounces", json={"type": "complaint", "delivery_id": by_email[emails[2]]["id"]})

    totals = api.get(f"/api/v1/campaigns/{campaign_id}").get_json()["totals"]
    assert (totals["bounced"], totals["complained"]) == (2, 1)
    deliveries, _ = _walk(api, f"/api/v1/campaigns/{campaign_id}/deliveries", 10)
    shown = {d["email"]: d["bounce"] for d in deliveries}
    assert shown[emails[0]]["type"] == "hard" and shown[emails[0]]["status_code"] == "5.1.1"
    assert "no such user" in shown[emails[0]]["diagnostic"] and shown[emails[0]]["source"] == "api"
    assert shown[emails[1]]["type"] == "soft" and shown[emails[2]]["type"] == "complaint"
    assert shown[emails[3]] is None

    people = {s["email"]: s["status"] for s in api.get("/api/v1/subscribers?limit=50").get_json()["items"]}
    assert (people[emails[0]], people[emails[1]], people[emails[2]], people[emails[3]]) == \
        ("bounced", "confirmed", "complained", "confirmed")
    listed = api.get(f"/api/v1/bounces?campaign_id={campaign_id}").get_json()["items"]
    assert len(listed) == 4


def test_a_notification_goes_out_with_its_own_verp_return_path(api, worker, smtp_server):
    accepted = api.post("/api/v1/notifications", json=RESET).get_json()
    wait_status(api, accepted["id"], "sent")
    [sender] = wait_for(lambda: smtp_server.senders.get("ada@example.com"), 10, message="the envelope")
    with api.client.application.app_context():
        assert verp.parse(sender) == verp.Ref("n", accepted["id"])
    soft = api.post("/api/v1/bounces", json={"type": "soft", "notification_id": accepted["id"]})
    assert soft.status_code == 201 and soft.get_json()["notification_id"] == accepted["id"]
    assert soft.get_json()["email"] == "ada@example.com" and soft.get_json()["action"] == "counted"
