"""Languages through the API: a subscriber's `language` (create, update, import) and a campaign's
`translations` (create, update, read), with their refusals."""
from __future__ import annotations

from tests.api.test_imports import _finished, _list, _upload

PROBLEM = "application/problem+json"
CAMPAIGN = {"name": "June", "subject": "June news", "from_email": "news@example.com",
            "html": "<p>Hello {{ subscriber.name }}</p>", "list_ids": []}
DE = {"subject": "Juni-Neuigkeiten für {{ subscriber.name }}", "body": "<p>Hallo {{ subscriber.name }}</p>"}


def _problem_fields(response) -> dict[str, str]:
    assert response.mimetype == PROBLEM, response.get_data(as_text=True)
    return {e["field"]: e["message"] for e in response.get_json()["errors"]}


def test_subscriber_language_is_created_normalised_changed_and_cleared(api):
    created = api.post("/api/v1/subscribers", json={"email": "ana@example.com", "language": "pt_br"})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["language"] == "pt-BR"
    plain = api.post("/api/v1/subscribers", json={"email": "bo@example.com"}).get_json()
    assert plain["language"] is None
    patched = api.patch(f"/api/v1/subscribers/{body['id']}", json={"language": "DE"})
    assert patched.status_code == 200 and patched.get_json()["language"] == "de"
    assert api.get(f"/api/v1/subscribers/{body['id']}").get_json()["language"] == "de"
    cleared = api.patch(f"/api/v1/subscribers/{body['id']}", json={"language": None})
    assert cleared.status_code == 200 and cleared.get_json()["language"] is None


def test_a_language_that_is_not_a_tag_is_a_422_and_nothing_changes(api):
    for bad in ("german!", "d", "de-DE-x-private-long", "<b>en</b>"):
        response = api.post("/api/v1/subscribers", json={"email": "cy@example.com", "language": bad})
        assert response.status_code == 422, (bad, response.get_json())
        assert "language" in _problem_fields(response)
    assert api.get("/api/v1/subscribers?email=cy@example.com").get_json()["items"] == []
    ok = api.post("/api/v1/subscribers", json={"email": "cy@example.com", "language": "fr"}).get_json()
    refused = api.patch(f"/api/v1/subscribers/{ok['id']}", json={"language": "nope-nope", "name": "Cy"})
    assert refused.status_code == 422
    after = api.get(f"/api/v1/subscribers/{ok['id']}").get_json()
    assert (after["language"], after["name"]) == ("fr", "")  # the whole change refused


def test_import_reads_a_language_column(api, worker):
    weekly = _list(api, "Weekly")
    csv = (b"email,name,language,city\n"
           b"de1@example.com,Anna,de,Berlin\n"
           b"br1@example.com,Bia,pt-br,Recife\n"
           b"none@example.com,Nils,,Oslo\n"
           b"bad@example.com,Bad,not a tag,Rome\n")
    report = _finished(api, _upload(api, csv, list_ids=[str(weekly)], mode="confirmed").get_json()["id"])
    assert report["status"] == "done", report
    assert (report["created"], report["invalid"]) == (3, 1)
    assert report["errors"][0]["email"] == "bad@example.com" and "language tag" in report["errors"][0]["reason"]
    people = {s["email"]: s for s in api.get(f"/api/v1/subscribers?list_id={weekly}").get_json()["items"]}
    assert {e: s["language"] for e, s in people.items()} == {
        "de1@example.com": "de", "br1@example.com": "pt-BR", "none@example.com": None}
    assert people["de1@example.com"]["attributes"] == {"city": "Berlin"}  # not an attribute
    # A second import changes the language of a known subscriber.
    again = _finished(api, _upload(api, b"email,language\nnone@example.com,nb\n", mode="update").get_json()["id"])
    assert again["status"] == "done"
    assert api.get(f"/api/v1/subscribers/{people['none@example.com']['id']}").get_json()["language"] == "nb"


def test_campaign_translations_are_saved_read_replaced_and_removed(api):
    created = api.post("/api/v1/campaigns", json={**CAMPAIGN, "translations": {"de": DE}})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["translations"] == {"de": DE}
    campaign_id = body["id"]
    assert api.get(f"/api/v1/campaigns/{campaign_id}").get_json()["translations"] == {"de": DE}
    # A PATCH without translations keeps them; with them, replaces them all.
    assert api.patch(f"/api/v1/campaigns/{campaign_id}", json={"name": "June!"}).get_json()["translations"] == {
        "de": DE}
    fr = {"subject": "Nouvelles de juin", "body": "<p>Bonjour</p>"}
    replaced = api.patch(f"/api/v1/campaigns/{campaign_id}", json={"translations": {"fr": fr, "pt_br": fr}})
    assert replaced.status_code == 200, replaced.get_json()
    assert replaced.get_json()["translations"] == {"fr": fr, "pt-BR": fr}
    emptied = api.patch(f"/api/v1/campaigns/{campaign_id}", json={"translations": {}})
    assert emptied.get_json()["translations"] == {}
    assert api.get("/api/v1/campaigns").get_json()["items"][0]["translations"] == {}


def test_campaign_translations_are_checked_like_the_campaign(api):
    cases = {
        "bad tag": ({"deutsch!!": DE}, "translations"),
        "no subject": ({"de": {"subject": " ", "body": "<p>x</p>"}}, "translations.de.subject"),
        "broken body": ({"de": {"subject": "x", "body": "{% if %}"}}, "translations.de.body"),
        "internals": ({"de": {"subject": "{{ ''.__class__ }}", "body": "<p>x</p>"}}, "translations.de.subject"),
    }
    for label, (translations, field) in cases.items():
        response = api.post("/api/v1/campaigns", json={**CAMPAIGN, "translations": translations})
        assert response.status_code == 422, (label, response.get_json())
        assert field in _problem_fields(response), (label, response.get_json())
    missing = api.post("/api/v1/campaigns", json={**CAMPAIGN, "translations": {"de": {"subject": "x"}}})
    assert missing.status_code == 422
    assert api.get("/api/v1/campaigns").get_json()["items"] == []  # nothing half-saved
    campaign = api.post("/api/v1/campaigns", json={**CAMPAIGN, "translations": {"de": DE}}).get_json()
    refused = api.patch(f"/api/v1/campaigns/{campaign['id']}",
                        json={"name": "Changed", "translations": {"de": {"subject": "x", "body": "{{ oops("}}})
    assert refused.status_code == 422
    after = api.get(f"/api/v1/campaigns/{campaign['id']}").get_json()
    assert (after["name"], after["translations"]) == ("June", {"de": DE})
