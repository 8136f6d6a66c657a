"""The send log against a seeded ledger: every filter and keyset page exact, the CSV equal to the view,
and which rows a retry moves."""
from __future__ import annotations

import csv
import io
import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, update

from newsletter.extensions import db
from newsletter.models import Campaign, CampaignStatus, Delivery, DeliveryStatus, Subscriber, SubscriberStatus
from newsletter.models.base import utcnow
from newsletter.models.delivery_attempt import DeliveryAttempt
from newsletter.services.audience import lists
from newsletter.services.campaigns import campaigns
from newsletter.services.delivery import ledger as deliveries
from newsletter.services.delivery import send_log
from newsletter.services.errors import ValidationError

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CODES = {"sent": [250], "failed": [550, 554, 451, 452, None], "pending": [None, 421], "cancelled": [None],
         "queued": [None], "sending": [None], "committing": [None]}


@pytest.fixture
def ledger(app):
    """Three campaigns x 40 subscribers, statuses/codes/times drawn with a fixed seed; many rows
    share a timestamp so the id tie-break is exercised. Returns the rows as dicts."""
    rng = random.Random(7)
    with app.app_context():
        news = lists.create("News", "single")
        now = T0
        db.session.execute(insert(Subscriber), [
            {"email": f"{'anna' if i % 7 == 0 else 'bob'}{i:02d}@{'example.org' if i % 2 else 'mail.test'}",
             "name": f"Person {i}" if i % 5 else f"Zoë {i}", "attributes": {}, "status": SubscriberStatus.CONFIRMED,
             "created_at": now, "updated_at": now} for i in range(40)])
        people = db.session.execute(select(Subscriber.id, Subscriber.email, Subscriber.name)).all()
        ids = []
        for name in ("=Spring, news", "Summer", "Autumn"):  # a formula-looking name, defused in the CSV
            ids.append(campaigns.create(name=name, subject="Hi", from_email="n@example.com", html="<p>x</p>",
                                        list_ids=[news.id]).id)
        rows = []
        for campaign_id, (sid, email, _) in itertools.product(ids, people):
            # No queued/sending rows: a beat sweeper left running by other tests would recover them.
            status = rng.choice(["sent"] * 6 + ["failed"] * 3 + ["pending", "cancelled"])
            # 20 distinct instants over 4 days: lots of ties on updated_at
            at = T0 + timedelta(hours=5 * rng.randrange(20), microseconds=rng.choice([0, 0, 123456]))
            rows.append({"campaign_id": campaign_id, "subscriber_id": sid, "email": email,
                         "status": DeliveryStatus(status), "attempts": rng.randrange(1, 4),
                         "smtp_code": rng.choice(CODES[status]), "smtp_message": f"answer {rng.randrange(99)}",
                         "created_at": T0, "updated_at": at, "worker": "w1"})
        rng.shuffle(rows)
        db.session.execute(insert(Delivery), rows)
        # An erased subscriber's row: anonymised, no subscriber.
        db.session.execute(insert(Delivery), [{"campaign_id": ids[0], "subscriber_id": None, "email": "erased",
                                               "status": DeliveryStatus.SENT, "smtp_code": 250, "attempts": 1,
                                               "created_at": T0, "updated_at": T0, "worker": ""}])
        db.session.commit()
        found = [dict(r._mapping) for r in db.session.execute(
            select(Delivery.id, Delivery.campaign_id, Delivery.subscriber_id, Delivery.email, Delivery.status,
                   Delivery.smtp_code, Delivery.updated_at))]
        names = {sid: (email, name) for sid, email, name in people}
        yield {"rows": found, "campaigns": ids, "people": names}


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def expected(seed, f: send_log.Filters) -> list[int]:
    def keep(r) -> bool:
        at = _aware(r["updated_at"])
        person = seed["people"].get(r["subscriber_id"])
        code = r["smtp_code"]
        return ((f.campaign_id is None or r["campaign_id"] == f.campaign_id)
                and (f.status is None or r["status"] == f.status)
                and (f.code is None or (code is not None and (
                    str(code)[0] == f.code[0] if f.code.endswith("xx") else code == int(f.code))))
                and (f.since is None or at.date() >= f.since) and (f.until is None or at.date() <= f.until)
                and (f.q is None or (person is not None and f.q.lower() in f"{person[0]} {person[1]}".lower())))
    chosen = [r for r in seed["rows"] if keep(r)]
    chosen.sort(key=lambda r: (_aware(r["updated_at"]), r["id"]), reverse=True)
    return [r["id"] for r in chosen]


def all_pages(f: send_log.Filters, limit: int) -> list[int]:
    seen, cursor = [], None
    for _ in range(1000):
        found = send_log.page(f, cursor, limit=limit)
        assert len(found.rows) <= limit
        seen += [r.id for r in found.rows]
        if found.older is None:
            return seen
        assert len(found.rows) == limit
        cursor = found.older
    raise AssertionError("the pages never end")


def filter_sets(seed) -> list[send_log.Filters]:
    one = seed["campaigns"][1]
    singles = [dict(), dict(campaign_id=one), dict(status="failed"), dict(status="pending"), dict(status="sent"),
               dict(q="anna"), dict(q="ZOë"), dict(q="example.org"), dict(code="550"), dict(code="4xx"),
               dict(code="2xx"), dict(since="2026-03-02"), dict(until="2026-03-02"),
               dict(since="2026-03-02", until="2026-03-03"), dict(q="nobody-at-all")]
    pairs = [dict(campaign_id=one, status="failed"), dict(campaign_id=one, q="bob"), dict(status="failed", code="5xx"),
             dict(campaign_id=one, since="2026-03-03"), dict(status="sent", q="mail.test", until="2026-03-02"),
             dict(campaign_id=seed["campaigns"][0], status="cancelled", q="o", since="2026-03-01",
                  until="2026-03-04"), dict(code="451", campaign_id=seed["campaigns"][2])]
    return [send_log.make_filters(**kw) for kw in singles + pairs]


def test_every_filter_and_combination_pages_exactly_without_gaps_or_duplicates(app, ledger):
    with app.app_context():
        nonempty = 0
        for f in filter_sets(ledger):
            want = expected(ledger, f)
            nonempty += bool(want)
            for limit in (1, 7, 50):
                got = all_pages(f, limit)
                assert got == want, (f, limit)
        assert nonempty >= 18  # the seed exercises the filters, it does not just return nothing


def test_a_page_starting_inside_a_run_of_equal_times_continues_by_id(app, ledger):
    with app.app_context():
        f = send_log.make_filters()
        first = send_log.page(f, limit=3)
        at, ident = send_log.parse_cursor(first.older)
        assert (at, ident) == (_aware(first.rows[-1].updated_at), first.rows[-1].id)
        assert [r.id for r in send_log.page(f, first.older, limit=5).rows] == expected(ledger, f)[3:8]


def test_the_csv_export_equals_the_filtered_rows(app, ledger):
    with app.app_context():
        for f in filter_sets(ledger)[:8]:
            text = "".join(send_log.export_csv(f, batch=11))  # batches smaller than the result
            table = list(csv.DictReader(io.StringIO(text)))
            assert [int(r["delivery_id"]) for r in table] == expected(ledger, f)
        f = send_log.make_filters(campaign_id=ledger["campaigns"][0])
        table = list(csv.DictReader(io.StringIO("".join(send_log.export_csv(f)))))
        by_id = {r["id"]: r for r in ledger["rows"]}
        for line in table:
            row = by_id[int(line["delivery_id"])]
            assert line["campaign"] == "'=Spring, news"  # defused, not a formula
            assert (line["email"], line["status"], line["smtp_code"]) == (
                row["email"], row["status"].value, "" if row["smtp_code"] is None else str(row["smtp_code"]))
            assert line["time"] == _aware(row["updated_at"]).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert list(table[0]) == send_log.CSV_COLUMNS


@pytest.mark.parametrize("kwargs, field", [(dict(status="lost"), "status"), (dict(code="99"), "code"),
                                            (dict(code="6xx"), "code"), (dict(since="March"), "since"),
                                            (dict(since="2026-03-05", until="2026-03-01"), "until"),
                                            (dict(campaign_id="x"), "campaign_id")])
def test_bad_filters_name_their_field(app, kwargs, field):
    with app.app_context(), pytest.raises(ValidationError) as caught:
        send_log.make_filters(**kwargs)
    assert caught.value.field == field


def test_a_broken_cursor_is_a_validation_error(app, ledger):
    with app.app_context(), pytest.raises(ValidationError):
        send_log.page(send_log.make_filters(), "not-a-cursor")


def test_retry_moves_transient_failures_and_cancelled_rows_only(app, ledger):
    with app.app_context():
        campaign_id = ledger["campaigns"][2]
        db.session.execute(update(Campaign).where(Campaign.id == campaign_id).values(status=CampaignStatus.SENT))
        template = db.session.scalar(select(Delivery.id).where(Delivery.campaign_id == campaign_id,
                                                               Delivery.status == DeliveryStatus.SENT).limit(1))
        db.session.execute(update(Delivery).where(Delivery.id == template).values(
            status=DeliveryStatus.FAILED, smtp_code=None, smtp_message="Template error: 'x' is undefined"))
        db.session.commit()
        rows = {r.id: r for r in db.session.execute(select(Delivery).where(Delivery.campaign_id == campaign_id))
                .scalars()}
        want = {i for i, r in rows.items() if r.status == DeliveryStatus.CANCELLED or (
            r.status == DeliveryStatus.FAILED and (r.smtp_code is None or 400 <= r.smtp_code < 500)
            and i != template)}
        untouched = {i: (r.status, r.attempts) for i, r in rows.items() if i not in want}
        assert want and any(r.smtp_code in (550, 554) for r in rows.values())
        assert deliveries.retryable(campaign_id) == len(want)

        assert campaigns.retry_failed(campaign_id, by="retry by a@example.com") == len(want)
        retried_by = utcnow()
        db.session.expire_all()
        after = {r.id: r for r in db.session.scalars(select(Delivery).where(Delivery.campaign_id == campaign_id))}
        # Due at once: the publisher finds a row behind the campaign's publication cursor by its due time.
        assert {i for i, r in after.items() if r.status == DeliveryStatus.PENDING and r.attempts == 0
                and r.next_attempt_at is not None and r.next_attempt_at <= retried_by and i in want} == want
        assert {i: (r.status, r.attempts) for i, r in after.items() if i not in want} == untouched
        notes = db.session.execute(select(DeliveryAttempt.delivery_id, DeliveryAttempt.status,
                                          DeliveryAttempt.worker)).all()
        assert {n.delivery_id for n in notes} == want and {(n.status, n.worker) for n in notes} == {
            ("requeued", "retry by a@example.com")}
        campaign = db.session.get(Campaign, campaign_id)
        assert (campaign.status, campaign.finished_at) == (CampaignStatus.SENDING, None)
        assert campaign.failed == sum(1 for r in after.values() if r.status == DeliveryStatus.FAILED)

        # Only sent or cancelled campaigns retry; and with nothing left to retry, nothing moves.
        with pytest.raises(ValidationError):
            campaigns.retry_failed(campaign_id)
        other = ledger["campaigns"][0]
        db.session.execute(update(Delivery).where(Delivery.campaign_id == other).values(status=DeliveryStatus.SENT))
        db.session.execute(update(Campaign).where(Campaign.id == other).values(status=CampaignStatus.SENT))
        db.session.commit()
        assert campaigns.retry_failed(other) == 0
        assert db.session.get(Campaign, other).status == CampaignStatus.SENT


def test_a_send_recorded_onto_its_row_is_the_history_s_last_entry(ledger):
    """`ledger.record` writes no attempt row for a send it records onto the row (PostgreSQL): the
    detail shows it from the row, once, after any stored attempt, and never twice."""
    sent = [r["id"] for r in ledger["rows"] if r["status"] == DeliveryStatus.SENT][:3]
    at = T0 + timedelta(days=9)
    db.session.execute(update(Delivery).where(Delivery.id.in_(sent)).values(
        attempts=2, smtp_code=250, smtp_message="2.0.0 Ok: queued", sent_at=at, worker="celery@box pid 7",
        task_id="task-of-the-batch"))
    retry = {"attempt": 1, "status": "pending", "at": T0, "smtp_code": 451, "smtp_message": "4.3.0 later",
             "worker": "celery@box pid 6", "task_id": "first-task"}
    db.session.execute(insert(DeliveryAttempt), [
        {"delivery_id": sent[0], **retry},  # a retry, then the send on the row
        {"delivery_id": sent[1], **retry},  # ... and the send also stored (before 0026, or SQLite)
        {"delivery_id": sent[1], "attempt": 2, "status": "sent", "at": at, "smtp_code": 250,
         "smtp_message": "2.0.0 Ok: queued", "worker": "celery@box pid 7", "task_id": "task-of-the-batch"},
        # the sweeper assumed it delivered; the batch's own answer came later, onto the row
        {"delivery_id": sent[2], "attempt": 2, "status": "sent", "at": T0, "smtp_code": None,
         "smtp_message": "Assumed delivered: ...", "worker": "sweeper", "task_id": ""}])
    db.session.commit()

    def history(delivery_id: int) -> list[tuple]:
        return [(a.attempt, a.status, a.smtp_code, a.worker, a.task_id) for a in send_log.detail(delivery_id)[2]]

    from_row = (2, "sent", 250, "celery@box pid 7", "task-of-the-batch")
    assert history(sent[0]) == [(1, "pending", 451, "celery@box pid 6", "first-task"), from_row]
    assert history(sent[1]) == [(1, "pending", 451, "celery@box pid 6", "first-task"), from_row]
    assert history(sent[2]) == [(2, "sent", None, "sweeper", ""), from_row]
    failed = next(r["id"] for r in ledger["rows"] if r["status"] == DeliveryStatus.FAILED)
    assert history(failed) == []  # only a sent row is its own entry: a failure is always stored
