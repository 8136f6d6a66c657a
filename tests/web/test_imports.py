"""The import pages, with the real worker: upload -> progress -> report."""
import io
import uuid

from sqlalchemy import func, select

from newsletter.extensions import db
from newsletter.models import ImportStatus, Role, Subscriber
from newsletter.services.accounts import users
from newsletter.services.audience import imports, lists
from tests.support.net import wait_for
from tests.support.web import csrf_token, login


def upload(client, content: bytes, filename="people.csv", **fields):
    token = csrf_token(client.get("/admin/imports/").get_data(as_text=True))
    data = {"csrf_token": token, "mode": "confirmed", **fields, "file": (io.BytesIO(content), filename)}
    return client.post("/admin/imports/", data=data, content_type="multipart/form-data")


def finished(client, job_id):
    data = client.get(f"/admin/imports/{job_id}.json").json
    return data if data["status"] in ("done", "failed") else None


def test_upload_runs_on_the_worker_and_reports(app, admin_client, worker):
    with app.app_context():
        news_id = lists.create("News", "single").id
    content = b"email,name,plan\na@example.com,A,pro\nbroken,B,x\na@example.com,A2,y\nb@example.com,,free\n"
    response = upload(admin_client, content, list_ids=str(news_id))
    assert response.status_code == 302
    job_id = int(response.location.rstrip("/").rsplit("/", 1)[1])
    status = wait_for(lambda: finished(admin_client, job_id), 60, 0.3, "the import to finish")
    assert status | {"progress": None} == {
        "id": job_id, "status": "done", "progress": None, "rows": 4, "created": 2, "updated": 0,
        "unchanged": 0, "suppressed": 0, "invalid": 1, "duplicates": 1, "not_found": 0, "left_lists": 0,
        "failure": None}
    page = admin_client.get(f"/admin/imports/{job_id}").get_data(as_text=True)
    assert "broken" in page and "Download all as CSV" in page
    report = admin_client.get(f"/admin/imports/{job_id}/invalid.csv")
    assert report.status_code == 200 and report.data.decode().splitlines()[1].startswith("3,broken,")


def test_not_csv_is_refused_with_a_form_error_and_nothing_written(app, admin_client):
    response = upload(admin_client, b"\x00\x01\x02binary", filename="photo.png")
    assert response.status_code == 400
    assert "This is not a CSV file" in response.get_data(as_text=True)
    response = upload(admin_client, b"name\nAna\n")
    assert response.status_code == 400 and "one must be &#39;email&#39;" in response.get_data(as_text=True)
    with app.app_context():
        assert imports.recent() == []


def test_missing_file_and_unknown_list_are_form_errors(admin_client):
    token = csrf_token(admin_client.get("/admin/imports/").get_data(as_text=True))
    response = admin_client.post("/admin/imports/", data={"csrf_token": token, "mode": "confirmed"},
                                 content_type="multipart/form-data")
    assert response.status_code == 400 and "Choose a CSV file" in response.get_data(as_text=True)
    response = upload(admin_client, b"email\na@example.com\n", list_ids="424242")
    assert response.status_code == 400 and "Unknown list id(s): 424242" in response.get_data(as_text=True)


def test_oversized_upload_is_a_413_page(app, admin_client):
    app.config["MAX_CONTENT_LENGTH"], saved = 1024, app.config["MAX_CONTENT_LENGTH"]
    try:
        response = upload(admin_client, b"email\n" + b"a@example.com\n" * 200)
        assert response.status_code == 413
    finally:
        app.config["MAX_CONTENT_LENGTH"] = saved


def test_viewers_see_imports_but_cannot_upload(app, client):
    with app.app_context():
        users.create_user("view@example.com", "long enough password", Role.VIEWER)
    login(client, "view@example.com", "long enough password")
    page = client.get("/admin/imports/")
    assert page.status_code == 200 and "Upload and import" not in page.get_data(as_text=True)
    token = csrf_token(client.get("/admin/").get_data(as_text=True))
    response = client.post("/admin/imports/", data={"csrf_token": token}, content_type="multipart/form-data")
    assert response.status_code == 403


def test_unknown_import_is_404(admin_client):
    assert admin_client.get("/admin/imports/999999").status_code == 404
    assert admin_client.get("/admin/imports/999999.json").status_code == 404


def test_a_100000_row_import_through_the_worker(app, admin_client, worker):
    rows = 100_000
    content = "email,name,segment\n" + "".join(f"bulk{i}-{uuid.uuid4().hex[:4]}@example{i % 50}.com,N{i},s{i % 3}\n"
                                               for i in range(rows))
    response = upload(admin_client, content.encode())
    job_id = int(response.location.rstrip("/").rsplit("/", 1)[1])
    status = wait_for(lambda: finished(admin_client, job_id), 280, 1.0, "the 100,000-row import")
    assert status["status"] == "done" and status["created"] == rows and status["rows"] == rows
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Subscriber)) == rows
        assert imports.get(job_id).status == ImportStatus.DONE
