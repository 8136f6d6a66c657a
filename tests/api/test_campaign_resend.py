"""POST /api/v1/campaigns/{id}/resend: a draft for the non-openers of a sent, individually tracked campaign."""
from __future__ import annotations

import pytest

from newsletter.services.audience import lists, subscribers
from newsletter.services.engagement import flush
from tests.engagement.conftest import sent_campaign

from .test_campaigns import _errors


@pytest.fixture
def sent(app):
    """Sent campaigns to three people, one per mode; the first person opened the individual one."""
    with app.app_context():
        news = lists.create("Resend", "single")
        ids = [subscribers.create(f"r{i}@example.com", list_ids=[news.id]).id for i in range(3)]
        made = {mode: sent_campaign(news.id, mode) for mode in ("individual", "anonymous", "off")}
        flush.apply("api-resend", [["open", made["individual"], 0, ids[0], 0, "", 1_800_000_000]])
        return made


def test_resend_makes_a_draft_with_the_content_lists_and_restriction(api, sent):
    original = api.get(f"/api/v1/campaigns/{sent['individual']}").get_json()
    assert (original["resend_of_id"], original["resend_to"]) == (None, None)
    response = api.post(f"/api/v1/campaigns/{sent['individual']}/resend",
                        json={"to": "non_openers", "subject": "In case you missed it"})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["status"], body["resend_of_id"], body["resend_to"], body["subject"]) == (
        "draft", sent["individual"], "non_openers", "In case you missed it")
    assert (body["html"], body["list_ids"], body["tracking"]) == (original["html"], original["list_ids"], "individual")
    assert body["id"] != sent["individual"]
    assert api.get(f"/api/v1/campaigns/{body['id']}").get_json()["resend_to"] == "non_openers"
    other = api.post(f"/api/v1/campaigns/{sent['individual']}/resend", json={"to": "non_clickers"}).get_json()
    assert (other["resend_to"], other["subject"]) == ("non_clickers", original["subject"])


@pytest.mark.parametrize("mode, words", [("anonymous", "tracked anonymously"), ("off", "without tracking")])
def test_resend_of_a_campaign_that_cannot_know_who_opened_is_a_409_with_the_reason(api, sent, mode, words):
    response = api.post(f"/api/v1/campaigns/{sent[mode]}/resend", json={"to": "non_openers"})
    assert response.status_code == 409
    assert words in _errors(response)["tracking"]
    assert api.get("/api/v1/campaigns?status=draft").get_json()["items"] == []


def test_resend_of_a_draft_is_a_409_and_of_a_missing_campaign_a_404(api, sent):
    draft = api.post(f"/api/v1/campaigns/{sent['individual']}/resend", json={"to": "non_openers"}).get_json()
    again = api.post(f"/api/v1/campaigns/{draft['id']}/resend", json={"to": "non_openers"})
    assert again.status_code == 409 and "Only a sent campaign" in _errors(again)["status"]
    assert api.post("/api/v1/campaigns/999999/resend", json={"to": "non_openers"}).status_code == 404


@pytest.mark.parametrize("body, field", [({}, "to"), ({"to": "everyone"}, "to"), ({"to": 1}, "to"),
                                         ({"to": "non_openers", "subject": ""}, "subject"),
                                         ({"to": "non_openers", "subject": "x" * 501}, "subject"),
                                         ({"to": "non_openers", "lists": [1]}, "lists")])
def test_bad_resend_bodies_are_422s_naming_the_field(api, sent, body, field):
    response = api.post(f"/api/v1/campaigns/{sent['individual']}/resend", json=body)
    assert response.status_code == 422 and field in _errors(response)
    assert api.get("/api/v1/campaigns?status=draft").get_json()["items"] == []


def test_resend_is_in_the_openapi_document(api):
    document = api.get("/api/v1/openapi.json").get_json()
    operation = document["paths"]["/api/v1/campaigns/{campaign_id}/resend"]["post"]
    assert set(operation["responses"]) >= {"201", "409", "404", "422"}
    schemas = document["components"]["schemas"]
    assert set(schemas["ResendIn"]["properties"]) == {"to", "subject"}
    assert {"resend_of_id", "resend_to"} <= set(schemas["CampaignOut"]["properties"])
