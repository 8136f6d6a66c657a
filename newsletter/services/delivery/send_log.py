"""The send log: every delivery, newest first, filtered, paged by keyset, exported as CSV.

"Time" is a delivery's `updated_at`: when it last moved (sent, failed, retried, cancelled).
Pages are keyset pages on (updated_at, id), answered by one of the send-log indexes on
`deliveries` (see the Delivery model and bench/README.md): never an OFFSET, never a count.
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select, tuple_

from ...extensions import db
from ...models import Campaign, Delivery, DeliveryStatus, Subscriber
from ...models.delivery_attempt import DeliveryAttempt
from ...models.subscriber import search_text
from ..audience.csv_files import iso_utc, safe_row
from ..errors import NotFound, ValidationError
from ..numbers import MAX_BIGINT, whole_number
from ..text import escape_like

PAGE = 50
EXPORT_BATCH = 5_000
CSV_COLUMNS = ["time", "delivery_id", "campaign_id", "campaign", "email", "status", "attempts", "smtp_code",
               "smtp_message", "sent_at", "worker"]
_CODE = re.compile(r"^([2-5])(\d\d|xx)$")


@dataclass(frozen=True)
class Filters:
    """A validated send-log query; build it with `make_filters`."""
    campaign_id: int | None = None
    status: DeliveryStatus | None = None
    q: str | None = None  # part of the recipient's address or name (the subscribers search)
    code: str | None = None  # "550", or a class: "4xx", "5xx"
    since: date | None = None  # inclusive, UTC days
    until: date | None = None

    def as_args(self) -> dict[str, Any]:
        """The filters as query-string arguments (the pages and the export round-trip them)."""
        args = asdict(self)
        args["status"] = self.status and self.status.value
        args["since"], args["until"] = self.since and self.since.isoformat(), self.until and self.until.isoformat()
        return {key: value for key, value in args.items() if value not in (None, "")}


def _day(value: Any, field: str) -> date | None:
    if isinstance(value, date) or value in (None, ""):
        return value or None
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationError(field, "Give the day as YYYY-MM-DD.") from None


def make_filters(campaign_id: Any = None, status: Any = None, q: Any = None, code: Any = None, since: Any = None,
                 until: Any = None) -> Filters:
    campaign_id = whole_number(campaign_id, "campaign_id", "campaign id") if campaign_id not in (None, "") else None
    try:
        status = DeliveryStatus(status) if status else None
    except ValueError:
        raise ValidationError("status", "Unknown status %(status)r.", status=status) from None
    code = (str(code).strip().lower() if code is not None else "") or None
    if code is not None and not _CODE.match(code):
        raise ValidationError("code", "An SMTP code like 550, or a class: 4xx, 5xx.")
    since, until = _day(since, "since"), _day(until, "until")
    if since and until and since > until:
        raise ValidationError("until", "The end day is before the start day.")
    return Filters(campaign_id, status, (str(q).strip() if q else "") or None, code, since, until)


def conditions(filters: Filters) -> list[Any]:
    """WHERE clauses on `deliveries`; the planner picks the index (time, campaign, status, code)."""
    where: list[Any] = []
    if filters.campaign_id is not None:
        where.append(Delivery.campaign_id == filters.campaign_id)
    if filters.status is not None:
        where.append(Delivery.status == filters.status)
    if filters.code is not None:
        if filters.code.endswith("xx"):
            low = int(filters.code[0]) * 100
            where.append(Delivery.smtp_code.between(low, low + 99))
        else:
            where.append(Delivery.smtp_code == int(filters.code))
    if filters.since is not None:
        where.append(Delivery.updated_at >= _midnight(filters.since))
    if filters.until is not None:
        where.append(Delivery.updated_at < _midnight(filters.until + timedelta(days=1)))
    if filters.q:
        # The subscribers' trigram index finds the people (no trigram index on `deliveries`:
        # every pipeline move would write ~20 GIN entries per row); their deliveries come
        # from the subscriber_id index. Erased subscribers' rows are anonymised: not found.
        people = select(Subscriber.id).where(search_text().ilike(f"%{escape_like(filters.q)}%", escape="\\"))
        where.append(Delivery.subscriber_id.in_(people))
    return where


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


# Cursors: "<microseconds since the epoch>.<id>" of the last row shown --------------------------

def cursor_of(row: Any) -> str:
    delta = row.updated_at - datetime(1970, 1, 1, tzinfo=UTC)
    return f"{(delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds}.{row.id}"


def parse_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        micros, ident = (whole_number(part, "cursor", "cursor", MAX_BIGINT) for part in str(cursor).split("."))
    except ValueError:
        raise ValidationError("cursor", "That page link is broken; start from the newest.") from None
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros), ident


_COLUMNS = (Delivery.id, Delivery.updated_at, Delivery.campaign_id, Delivery.email, Delivery.status,
            Delivery.attempts, Delivery.smtp_code, Delivery.smtp_message, Delivery.sent_at, Delivery.worker)


def _query(filters: Filters, cursor: str | None, limit: int) -> Any:
    query = (select(*_COLUMNS).where(*conditions(filters))
             .order_by(Delivery.updated_at.desc(), Delivery.id.desc()).limit(limit))
    if cursor:
        at, ident = parse_cursor(cursor)
        query = query.where(tuple_(Delivery.updated_at, Delivery.id) < tuple_(at, ident))
    return query


@dataclass
class Page:
    rows: Sequence[Any]
    campaigns: dict[int, str]  # id -> name, for the rows shown
    older: str | None  # the cursor of the next (older) page, if there is one


def campaign_names(ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(db.session.execute(select(Campaign.id, Campaign.name).where(Campaign.id.in_(ids))).all())


def page(filters: Filters, cursor: str | None = None, limit: int = PAGE) -> Page:
    """One page, newest first; `older` continues after its last row."""
    rows = db.session.execute(_query(filters, cursor, limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, campaign_names({r.campaign_id for r in rows}), cursor_of(rows[-1]) if more else None)


def rows(filters: Filters, batch: int = EXPORT_BATCH) -> Iterator[Sequence[Any]]:
    """Every matching row, newest first, `batch` at a time by keyset (never all in memory)."""
    cursor = None
    while True:
        found = db.session.execute(_query(filters, cursor, batch)).all()
        if not found:
            return
        yield found
        if len(found) < batch:
            return
        cursor = cursor_of(found[-1])


def export_csv(filters: Filters, batch: int = EXPORT_BATCH) -> Iterator[str]:
    """The filtered view as CSV text chunks (header, then one chunk per batch); cells that a
    spreadsheet would run as formulas are defused."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    names: dict[int, str] = {}
    for found in rows(filters, batch):
        missing = {r.campaign_id for r in found} - names.keys()
        names.update(campaign_names(missing))
        for r in found:
            writer.writerow(safe_row([
                iso_utc(r.updated_at), str(r.id), str(r.campaign_id), names.get(r.campaign_id, ""), r.email,
                r.status.value, str(r.attempts), "" if r.smtp_code is None else str(r.smtp_code), r.smtp_message,
                iso_utc(r.sent_at), r.worker]))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


def detail(delivery_id: int) -> tuple[Delivery, str, list[DeliveryAttempt]]:
    """One delivery, its campaign's name and every attempt, oldest first."""
    delivery = db.session.get(Delivery, delivery_id)
    if delivery is None:
        raise NotFound("delivery", delivery_id)
    name = db.session.scalar(select(Campaign.name).where(Campaign.id == delivery.campaign_id)) or ""
    attempts = list(db.session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == delivery_id)
                                       .order_by(DeliveryAttempt.id)))
    return delivery, name, attempts + _recorded_send(delivery, attempts)


def _recorded_send(delivery: Delivery, stored: list[DeliveryAttempt]) -> list[DeliveryAttempt]:
    """The send a batch recorded onto the row itself, as the history's last entry: `ledger.record`
    writes no attempt row for it (the row holds its attempt, time, answer, worker and task). Not
    when a stored attempt already says the same (rows recorded before migration 0026, SQLite, a
    sweeper's "assumed delivered" that no batch has answered since)."""
    if delivery.status != DeliveryStatus.SENT or any(
            a.status == DeliveryStatus.SENT.value and a.attempt == delivery.attempts
            and a.smtp_message == delivery.smtp_message for a in stored):
        return []
    return [DeliveryAttempt(delivery_id=delivery.id, attempt=delivery.attempts, status=DeliveryStatus.SENT.value,
                            at=delivery.sent_at or delivery.updated_at, smtp_code=delivery.smtp_code,
                            smtp_message=delivery.smtp_message, worker=delivery.worker, task_id=delivery.task_id)]


def campaign_choices(limit: int = 200) -> list[tuple[int, str]]:
    """The newest campaigns that have a ledger, for the filter's drop-down."""
    return list(db.session.execute(select(Campaign.id, Campaign.name).where(Campaign.snapshot_at.is_not(None))
                                   .order_by(Campaign.id.desc()).limit(limit)).all())
