"""/api/v1/imports: multipart CSV uploads, run by the real worker, and their reports."""
from __future__ import annotations

import io

from tests.support.net import wait_for

PROBLEM = "application/problem+json"
CSV = (b"email,name,city\n"
       b"new1@example.com,New One,Oslo\n"
       b"NEW2@example.com,,Rome\n"
       b"old@example.com,Old Name,Lima\n"
       b"not-an-address,Broken,\n"
       b"new1@example.com,Repeat,\n")


def _list(api, name: str) -> int:
    return api.post("/api/v1/lists", json={"name": name, "opt_in": "single"}).get_json()["id"]


def _upload(api, content: bytes, filename: str = "people.csv", **fields):
    return api.post("/api/v1/imports", data={"file": (io.BytesIO(content), filename), **fields},
                    content_type="multipart/form-data")


def _finished(api, import_id: int) -> dict:
    def done():
        body = api.get(f"/api/v1/imports/{import_id}").get_json()
        return body if body["status"] in ("done", "failed") else None
    return wait_for(done, 60, interval=0.2, message=f"import {import_id} to finish")


def _fields(response) -> set[str]:
    assert response.mimetype == PROBLEM, response.get_data(as_text=True)
    return {e["field"].split(".")[0] for e in response.get_json()["errors"]}


def test_upload_runs_on_the_worker_and_reports_counts(api, worker):
    weekly, monthly = _list(api, "Weekly"), _list(api, "Monthly")
    old = api.post("/api/v1/subscribers", json={"email": "old@example.com", "name": "Old"}).get_json()["id"]

    started = _upload(api, CSV, list_ids=[str(weekly), str(monthly)], mode="confirmed")
    assert started.status_code == 202, started.get_json()
    body = started.get_json()
    assert body["status"] == "queued" and body["filename"] == "people.csv"
    assert body["list_ids"] == [weekly, monthly] and body["mode"] == "confirmed"

    report = _finished(api, body["id"])
    assert report["status"] == "done", report
    assert (report["rows"], report["created"], report["updated"], report["invalid"], report["duplicates"]) == (
        5, 2, 1, 1, 1)
    assert report["errors"] == [{"row": 5, "email": "not-an-address", "reason": report["errors"][0]["reason"]}]
    assert report["failure"] is None and report["finished_at"] is not None and report["progress"] == 1.0

    members = api.get(f"/api/v1/subscribers?list_id={monthly}").get_json()["items"]
    assert sorted(m["email"] for m in members) == ["new1@example.com", "new2@example.com", "old@example.com"]
    new1 = next(m for m in members if m["email"] == "new1@example.com")
    assert (new1["name"], new1["attributes"], new1["status"]) == ("New One", {"city": "Oslo"}, "confirmed")
    assert {(m["id"], m["status"]) for m in new1["lists"]} == {(weekly, "confirmed"), (monthly, "confirmed")}
    assert api.get(f"/api/v1/subscribers/{old}").get_json()["attributes"] == {"city": "Lima"}


def test_update_mode_touches_existing_subscribers_only(api, worker):
    api.post("/api/v1/subscribers", json={"email": "old@example.com", "name": "Old"})
    report = _finished(api, _upload(api, CSV, mode="update").get_json()["id"])
    assert (report["status"], report["created"], report["updated"], report["not_found"]) == ("done", 0, 1, 2)
    assert [s["email"] for s in api.get("/api/v1/subscribers").get_json()["items"]] == ["old@example.com"]


def test_a_file_that_breaks_midway_fails_with_nothing_written(api, worker):
    rows = b"".join(b"p%05d@example.com\n" % i for i in range(5000))  # past the first 64 KiB inspected
    started = _upload(api, b"email\n" + rows + b"bad\xff@example.com\n")
    assert started.status_code == 202
    report = _finished(api, started.get_json()["id"])
    assert report["status"] == "failed" and "UTF-8" in report["failure"]
    assert (report["created"], report["rows"]) == (0, 0)
    assert api.get("/api/v1/subscribers").get_json()["items"] == []


def test_a_file_refused_as_a_whole_is_a_422_and_nothing_is_kept(api):
    for content in (b"", b"name,city\nAda,London\n", b"\x00\x01binary", b"email\n\xff\xfe\n"):
        response = _upload(api, content)
        assert response.status_code == 422 and _fields(response) == {"file"}, (content, response.get_json())
    assert api.get("/api/v1/imports").get_json() == {"items": [], "next_cursor": None}


def test_the_api_limits_on_attributes_hold_for_imports_too(api, worker):
    """A name the API refuses is refused as a column; a value the API refuses is an invalid row."""
    long_key = "k" * 101
    refused = api.post("/api/v1/subscribers", json={"email": "a@example.com", "attributes": {long_key: 1}})
    assert refused.status_code == 422
    column = _upload(api, f"email,{long_key}\na@example.com,1\n".encode())
    assert column.status_code == 422 and _fields(column) == {"file"}
    assert "at most 100 characters" in column.get_data(as_text=True)

    too_big = {"note": "x" * 10_001}
    assert api.post("/api/v1/subscribers", json={"email": "a@example.com", "attributes": too_big}).status_code == 422
    report = _finished(api, _upload(api, f"email,note\na@example.com,{'x' * 10_001}\nb@example.com,ok\n"
                                         .encode()).get_json()["id"])
    assert (report["status"], report["created"], report["invalid"]) == ("done", 1, 1)
    assert report["errors"][0]["row"] == 2 and "10,000 characters of JSON" in report["errors"][0]["reason"]


def test_invalid_options_are_422s_naming_the_field(api):
    weekly = _list(api, "Weekly")
    cases = [
        ({"mode": "merge"}, "mode"),
        ({"mode": "optin"}, "list_ids"),  # an opt-in import needs a list to confirm
        ({"list_ids": ["abc"]}, "list_ids"),
        ({"list_ids": [str(2**31)]}, "list_ids"),
        ({"list_ids": ["999999"]}, "list_ids"),
        ({"colour": "red"}, "colour"),
    ]
    for fields, field in cases:
        response = _upload(api, CSV, **fields)
        assert response.status_code == 422 and field in _fields(response), (fields, response.get_json())
    no_file = api.post("/api/v1/imports", data={"list_ids": str(weekly)}, content_type="multipart/form-data")
    assert no_file.status_code == 422 and _fields(no_file) == {"file"}
    as_text = api.post("/api/v1/imports", data={"file": "email\na@example.com\n"}, content_type="multipart/form-data")
    assert as_text.status_code == 422 and _fields(as_text) == {"file"}
    as_json = api.post("/api/v1/imports", json={"file": "email\na@example.com\n"})
    assert as_json.status_code == 422 and _fields(as_json) == {"file"}
    assert api.get("/api/v1/imports").get_json()["items"] == []


def test_list_pages_and_404(app, api):
    from newsletter.extensions import db
    from newsletter.models import ImportJob

    with app.app_context():  # jobs without a worker: only the listing is under test
        jobs = [ImportJob(filename=f"f{i}.csv", path=f"/nonexistent/{i}.csv") for i in range(5)]
        db.session.add_all(jobs)
        db.session.commit()
        ids = [job.id for job in jobs]
    seen, cursor = [], None
    while True:
        body = api.get("/api/v1/imports?limit=2" + (f"&cursor={cursor}" if cursor else "")).get_json()
        seen += [item["id"] for item in body["items"]]
        assert all(item["status"] == "queued" for item in body["items"])
        if (cursor := body["next_cursor"]) is None:
            break
    assert seen == ids
    missing = api.get(f"/api/v1/imports/{ids[-1] + 1}")
    assert missing.status_code == 404 and missing.mimetype == PROBLEM
    assert api.get("/api/v1/imports?cursor=nope").status_code == 422


def test_viewer_reads_but_may_not_upload(api_as):
    viewer = api_as("viewer")
    assert viewer.get("/api/v1/imports").status_code == 200
    refused = _upload(viewer, CSV)
    assert refused.status_code == 403 and refused.mimetype == PROBLEM
    assert viewer.get("/api/v1/imports").get_json()["items"] == []
