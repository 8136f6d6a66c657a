"""A/B tests in the API: `ab_test` on create/update/read, GET .../ab, POST .../ab/winner, and the 4xx answers."""
from __future__ import annotations

import pytest

from newsletter.services.campaigns import recipients

from .test_campaigns import PROBLEM, _campaign, _list, _members

AB = {"variants": [{"subject": "Subject A"}, {"subject": "Subject B", "from_name": "Bea"}], "share": 40,
      "metric": "clicks", "wait_minutes": 90, "mode": "manual"}


def _fields(response) -> dict[str, str]:
    assert response.mimetype == PROBLEM, response.get_data(as_text=True)
    return {e["field"]: e["message"] for e in response.get_json()["errors"]}


def test_a_campaign_carries_its_test_and_a_patch_changes_or_removes_it(api):
    list_id = _list(api)
    body = _campaign(api, [list_id], tracking="individual", ab_test=AB)
    assert body["ab_test"] == {"variants": [{"label": "A", "subject": "Subject A", "from_name": "", "html": ""},
                                            {"label": "B", "subject": "Subject B", "from_name": "Bea", "html": ""}],
                               "share": 40, "metric": "clicks", "wait_minutes": 90, "mode": "manual", "winner": None}
    renamed = api.patch(f"/api/v1/campaigns/{body['id']}", json={"name": "Renamed"}).get_json()
    assert renamed["ab_test"] == body["ab_test"]  # a patch without ab_test keeps it
    three = {**AB, "variants": AB["variants"] + [{"subject": "Subject C", "html": "<p>Other body</p>"}],
             "mode": "auto"}
    patched = api.patch(f"/api/v1/campaigns/{body['id']}", json={"ab_test": three}).get_json()
    assert ([v["label"] for v in patched["ab_test"]["variants"]], patched["ab_test"]["mode"]) == (["A", "B", "C"],
                                                                                                   "auto")
    removed = api.patch(f"/api/v1/campaigns/{body['id']}", json={"ab_test": None}).get_json()
    assert removed["ab_test"] is None
    assert _campaign(api, [list_id])["ab_test"] is None


@pytest.mark.parametrize(("test", "field"), [
    ({**AB, "variants": AB["variants"][:1]}, "ab_test.variants"),
    ({**AB, "share": 0}, "ab_test.share"),
    ({**AB, "share": 101}, "ab_test.share"),
    ({**AB, "metric": "revenue"}, "ab_test.metric"),
    ({**AB, "wait_minutes": -5}, "ab_test.wait_minutes"),
    ({**AB, "variants": [{"subject": "ok"}, {"subject": ""}]}, "ab_test.variants.1.subject"),
    ({**AB, "variants": [{"subject": "ok"}, {"subject": "{{ nope"}]}, "ab_test.variants.1.subject"),
    ({**AB, "extra": 1}, "ab_test.extra"),
])
def test_a_bad_test_is_a_422_naming_the_field(api, test, field):
    list_id = _list(api)
    response = api.post("/api/v1/campaigns", json={"name": "N", "subject": "S", "from_email": "news@example.com",
                                                   "html": "<p>Hi</p>", "list_ids": [list_id], "tracking": "individual",
                                                   "ab_test": test})
    assert response.status_code == 422, response.get_json()
    assert field in _fields(response), _fields(response)
    assert api.get("/api/v1/campaigns").get_json()["items"] == []


def test_a_test_without_individual_tracking_is_a_422_on_tracking(api):
    response = api.post("/api/v1/campaigns", json={"name": "N", "subject": "S", "from_email": "news@example.com",
                                                   "html": "<p>Hi</p>", "list_ids": [_list(api)],
                                                   "tracking": "anonymous", "ab_test": AB})
    assert response.status_code == 422 and "individual" in _fields(response)["tracking"]


def test_the_report_and_the_manual_pick(app, api):
    list_id = _list(api)
    _members(api, list_id, 10)
    campaign = _campaign(api, [list_id], tracking="individual", ab_test=AB)
    url = f"/api/v1/campaigns/{campaign['id']}"
    report = api.get(f"{url}/ab").get_json()
    assert (report["winner"], report["held"], report["metric"], report["test"]) == (
        None, 0, "clicks", "two-proportion z-test (pooled, two-sided)")
    assert [(v["label"], v["sent"], v["confidence"]) for v in report["variants"]] == [("A", 0, 0.0), ("B", 0, 0.0)]
    early = api.post(f"{url}/ab/winner", json={"variant": "B"})
    assert early.status_code == 409 and "status" in _fields(early)  # a draft: nothing is waiting

    assert api.post(f"{url}/send").status_code == 202
    with app.app_context():  # the snapshot, as the dispatcher takes it (no worker in this test)
        recipients.snapshot(campaign["id"])
    assert api.get(f"{url}/ab").get_json()["held"] == 6  # 40% of 10 in the test
    assert api.post(f"{url}/ab/winner", json={"variant": "E"}).status_code == 422
    picked = api.post(f"{url}/ab/winner", json={"variant": "B"})
    assert picked.status_code == 200, picked.get_json()
    assert (picked.get_json()["winner"], picked.get_json()["held"]) == ("B", 0)
    again = api.post(f"{url}/ab/winner", json={"variant": "A"})
    assert again.status_code == 409 and "already" in _fields(again)["ab_test"]
    assert api.get(f"{url}").get_json()["ab_test"]["winner"] == "B"


def test_a_campaign_without_a_test_has_no_report(api):
    campaign = _campaign(api, [_list(api)])
    response = api.get(f"/api/v1/campaigns/{campaign['id']}/ab")
    assert response.status_code == 409 and "ab_test" in _fields(response)
    assert api.get("/api/v1/campaigns/999999/ab").status_code == 404
