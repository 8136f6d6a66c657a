"""Subscribers: create, edit, delete, and search with exact keyset pagination."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, Text, func, literal, select
from sqlalchemy import cast as sql_cast
from sqlalchemy import delete as delete_rows
from sqlalchemy import insert as insert_rows
from sqlalchemy import update as update_rows
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from sqlalchemy.sql.dml import Insert

from ...extensions import db
from ...models import (
    ConsentAction,
    ConsentRecord,
    ConsentSource,
    MailingList,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Suppression,
    SuppressionReason,
    TriggerKind,
    dialect,
)
from ...models.base import utcnow
from ...models.subscriber import search_text
from .. import audit, automation_events, languages
from ..addresses import normalize_email
from ..errors import Conflict, NotFound, ValidationError
from ..messages import N_
from ..numbers import whole_number
from ..text import escape_like, one_line
from ..webhooks import webhooks
from . import lists as lists_service
from . import suppressions

MAX_LIMIT = 500
# Counting every match of a broad filter over 1M rows takes seconds on PostgreSQL; counting
# at most COUNT_CAP + 1 of them is one short index scan, and "more than 10,000" is enough to
# decide on a bulk action.
COUNT_CAP = 10_000
NEW_STATUSES = (SubscriberStatus.CONFIRMED, SubscriberStatus.UNCONFIRMED)
_UNSET: Any = object()


@dataclass(frozen=True)
class Filters:
    """A validated search; build it with `make_filters`."""
    q: str | None = None
    status: SubscriberStatus | None = None
    list_id: int | None = None
    attribute: tuple[str, str] | None = None
    email: str | None = None  # one exact (normalised) address

    def as_args(self) -> dict[str, Any]:
        """The filters as query-string arguments (the web pages round-trip them)."""
        args: dict[str, Any] = {"q": self.q, "status": self.status and self.status.value, "list_id": self.list_id,
                                "email": self.email}
        if self.attribute:
            args["attr_key"], args["attr_value"] = self.attribute
        return {key: value for key, value in args.items() if value not in (None, "")}


@dataclass(frozen=True)
class Count:
    value: int
    exact: bool

    def __str__(self) -> str:
        return f"{self.value:,}" if self.exact else f"more than {self.value:,}"


def make_filters(q: str | None = None, status: str | SubscriberStatus | None = None, list_id: Any = None,
                 attribute: tuple[str, Any] | None = None, email: str | None = None) -> Filters:
    q = (q or "").strip() or None
    email = normalize_email(email) if email and email.strip() else None
    if q and len(q) > 254:
        raise ValidationError("q", "Search for at most 254 characters.")
    try:
        status = SubscriberStatus(status) if status else None
    except ValueError:
        raise ValidationError("status", "Unknown status %(status)r.", status=status) from None
    if list_id not in (None, ""):
        list_id = whole_number(list_id, "list_id", "list id")
    else:
        list_id = None
    if attribute is not None:
        key, value = (attribute[0] or "").strip(), "" if attribute[1] is None else str(attribute[1])
        if not key:
            raise ValidationError("attr_key", "Name the attribute to search.")
        if '"' in key or len(key) > 100:
            raise ValidationError("attr_key", 'An attribute name is at most 100 characters, without ".')
        attribute = (key, value)
    return Filters(q, status, list_id, attribute, email)


def _attribute_equals(key: str, value: str) -> Any:
    """Compare an attribute's text form with `value`, ignoring case ("lyon" finds "Lyon").

    There is no index on attributes: this is a filter over the rows the other conditions
    (and the id order) reach, so on its own it scans. Numbers and booleans match their JSON
    text ("5", "true"). SQLite's lower() folds ASCII letters only; PostgreSQL's folds all.
    """
    # The CAST: PostgreSQL cannot pick lower(text) or lower(anyrange) for an untyped parameter.
    return func.lower(dialect.json_text(Subscriber.attributes, key)) == func.lower(sql_cast(value, Text))


def conditions(filters: Filters) -> list[Any]:
    """WHERE clauses on `subscribers` for the search; each maps to an index on PostgreSQL.

    q: the trigram GIN indexes serve ILIKE '%q%'; status: (status, id); list: the membership
    primary key (subscriber_id, list_id) answers EXISTS per row, and EXISTS (unlike a join)
    can never repeat a subscriber, which keeps pagination exact.
    """
    where: list[Any] = []
    if filters.q:
        pattern = f"%{escape_like(filters.q)}%"
        # One ILIKE over `email || ' ' || name`, spelled like ix_subscribers_search_trgm, so
        # PostgreSQL answers it from the trigram index (two ILIKEs on the columns never can).
        where.append(search_text().ilike(pattern, escape="\\"))
    if filters.email:
        where.append(Subscriber.email == filters.email)
    if filters.status:
        where.append(Subscriber.status == filters.status)
    if filters.list_id is not None:
        # An alias, so a correlated EXISTS stays correct inside UPDATE/INSERT on subscriptions.
        member = Subscription.__table__.alias("member")
        where.append(select(literal(1)).where(member.c.subscriber_id == Subscriber.id,
                                              member.c.list_id == filters.list_id).correlate(Subscriber).exists())
    if filters.attribute:
        where.append(_attribute_equals(*filters.attribute))
    return where


def search(q: str | None = None, status: str | None = None, list_id: Any = None,
           attribute: tuple[str, Any] | None = None, cursor: Any = None, limit: int = 50,
           filters: Filters | None = None) -> tuple[list[Subscriber], int | None]:
    """One page, newest first; pass the returned cursor (the last id) for the next page."""
    filters = filters or make_filters(q, status, list_id, attribute)
    limit = max(1, min(int(limit), MAX_LIMIT))
    query = select(Subscriber).where(*conditions(filters)).order_by(Subscriber.id.desc()).limit(limit + 1)
    if cursor not in (None, ""):
        query = query.where(Subscriber.id < whole_number(cursor, "cursor", "cursor"))
    items = list(db.session.scalars(query))
    more = len(items) > limit
    items = items[:limit]
    return items, (items[-1].id if more else None)


def oldest_first(filters: Filters, after: int | None = None, limit: int = 50) -> list[Subscriber]:
    """Up to `limit` matches with ids above `after`, oldest first, memberships loaded (API pages).

    Ascending ids let a client that saved its last cursor pick up later additions.
    """
    query = (select(Subscriber).where(*conditions(filters)).order_by(Subscriber.id).limit(limit)
             .options(selectinload(Subscriber.subscriptions).selectinload(Subscription.mailing_list)))
    if after is not None:
        query = query.where(Subscriber.id > after)
    return list(db.session.scalars(query))


def count(filters: Filters, cap: int = COUNT_CAP) -> Count:
    capped = select(Subscriber.id).where(*conditions(filters)).limit(cap + 1).subquery()
    found = db.session.scalar(select(func.count()).select_from(capped)) or 0
    return Count(min(found, cap), found <= cap)


def status_counts() -> dict[SubscriberStatus, int]:
    """How many subscribers have each status (every status present, zeros included)."""
    rows = db.session.execute(select(Subscriber.status, func.count()).group_by(Subscriber.status))
    found = {SubscriberStatus(status): n for status, n in rows}
    return {status: found.get(status, 0) for status in SubscriberStatus}


def get(subscriber_id: int) -> Subscriber:
    subscriber = db.session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise NotFound("subscriber", subscriber_id)
    return subscriber


def memberships(subscriber_id: int) -> list[tuple[MailingList, Subscription]]:
    query = (select(MailingList, Subscription).join(Subscription, Subscription.list_id == MailingList.id)
             .where(Subscription.subscriber_id == subscriber_id).order_by(MailingList.name, MailingList.id))
    return [(mailing_list, subscription) for mailing_list, subscription in db.session.execute(query)]


def consents(subscriber_id: int) -> list[ConsentRecord]:
    return list(db.session.scalars(select(ConsentRecord).where(ConsentRecord.subscriber_id == subscriber_id)
                                   .order_by(ConsentRecord.id.desc())))


def _clean_name(name: str | None) -> str:
    return one_line(name, "name", 200, label=N_("A name"))


# The one set of limits on attributes, for the API, the admin form and CSV imports alike.
MAX_ATTRIBUTE_KEY = 100        # characters in a name (the search by attribute takes as many)
MAX_ATTRIBUTES_JSON = 10_000   # characters of JSON (ASCII-escaped) for all of one subscriber's


def check_attribute_key(key: Any) -> None:
    """ValidationError("attributes") unless `key` can name an attribute."""
    if not isinstance(key, str) or not key:
        raise ValidationError("attributes", "Attributes must be a JSON object with named keys.")
    if len(key) > MAX_ATTRIBUTE_KEY:
        raise ValidationError("attributes", "An attribute name is at most %(limit)s characters "
                                            "(%(key)r… has %(count)s).",
                              limit=MAX_ATTRIBUTE_KEY, key=key[:20], count=format(len(key), ","))


def _json_bound(attributes: dict[str, str]) -> int:
    """At least len(json.dumps(attributes)) for string values: a character is at most 12
    characters of ASCII-escaped JSON (a surrogate pair), an item adds quotes, colon, comma."""
    return 2 + sum(12 * (len(key) + len(value)) + 8 for key, value in attributes.items())


def clean_attributes(attributes: Any) -> dict[str, Any]:
    """The attributes to store, or ValidationError("attributes") saying which limit they break."""
    if attributes is None:
        return {}
    if not isinstance(attributes, dict):
        raise ValidationError("attributes", "Attributes must be a JSON object with named keys.")
    for key in attributes:
        check_attribute_key(key)
    if all(type(value) is str for value in attributes.values()) and _json_bound(attributes) <= MAX_ATTRIBUTES_JSON:
        return attributes  # an import's row: short strings need no encoding to be known to fit
    try:
        encoded = json.dumps(attributes, allow_nan=False)
    except ValueError:  # NaN or Infinity: not JSON, and PostgreSQL's jsonb refuses them
        raise ValidationError("attributes", "Attributes must hold finite numbers only.") from None
    if len(encoded) > MAX_ATTRIBUTES_JSON:
        raise ValidationError("attributes", "Attributes are at most %(limit)s characters of JSON "
                                            "(these are %(count)s).",
                              limit=format(MAX_ATTRIBUTES_JSON, ","), count=format(len(encoded), ","))
    return attributes


def _clean_status(status: Any, allowed: Iterable[SubscriberStatus]) -> SubscriberStatus:
    allowed = tuple(allowed)
    try:
        status = SubscriberStatus(status)
    except ValueError:
        status = None
    if status not in allowed:
        raise ValidationError("status", "Status must be one of: %(value)s.", value=', '.join(s.value for s in allowed))
    return status


def _free_address(email: str, subscriber_id: int | None = None) -> str:
    email = normalize_email(email)
    if suppressions.is_suppressed(email):
        raise ValidationError("email", "%(email)s is on the suppression list; lift the suppression first.", email=email)
    other = db.session.scalar(select(Subscriber.id).where(Subscriber.email == email))
    if other is not None and other != subscriber_id:
        raise Conflict("email", "A subscriber with the address %(email)s already exists.", email=email)
    return email


def _commit_or_conflict(email: str, before_commit: Callable[[], Any] | None = None) -> None:
    try:
        if before_commit is not None:  # may flush, which is where a concurrent duplicate shows
            before_commit()
        db.session.commit()
    except IntegrityError:  # the same address added concurrently since the check
        db.session.rollback()
        raise Conflict("email", "A subscriber with the address %(email)s already exists.", email=email) from None


def create(email: str, name: str = "", attributes: dict[str, Any] | None = None, list_ids: Sequence[int] = (),
           status: str | SubscriberStatus = SubscriberStatus.CONFIRMED,
           source: ConsentSource = ConsentSource.ADMIN, language: str | None = None) -> Subscriber:
    """Add one subscriber; its memberships take its status and each leaves a consent record."""
    email = _free_address(email)
    status = _clean_status(status, NEW_STATUSES)
    subscriber = Subscriber(email=email, name=_clean_name(name), attributes=clean_attributes(attributes),
                            language=languages.normalize(language),
                            status=status, confirmed_at=utcnow() if status == SubscriberStatus.CONFIRMED else None)
    membership = SubscriptionStatus(status.value)
    for list_id in lists_service.existing_ids(list(list_ids)):
        subscriber.subscriptions.append(Subscription(list_id=list_id, status=membership))
        db.session.add(ConsentRecord(subscriber=subscriber, list_id=list_id, action=ConsentAction.SUBSCRIBED,
                                     source=source))
    db.session.add(subscriber)

    def before_commit() -> None:
        list_ids = [s.list_id for s in subscriber.subscriptions]
        webhooks.emit_subscriber("subscriber.created", subscriber, source=source.value, list_ids=list_ids)
        if list_ids:
            db.session.flush()  # the id, for the automation events committed with it
            automation_events.record_many(TriggerKind.SUBSCRIBED, list_ids, subscriber.id)
            if membership == SubscriptionStatus.CONFIRMED:
                automation_events.record_many(TriggerKind.CONFIRMED, list_ids, subscriber.id)

    _commit_or_conflict(email, before_commit)
    return subscriber


def update(subscriber_id: int, *, name: Any = _UNSET, email: Any = _UNSET, attributes: Any = _UNSET,
           status: Any = _UNSET, language: Any = _UNSET) -> Subscriber:
    """Change the given fields only; everything is checked before anything changes.

    Unsubscribing from everything (with a suppression) is `bulk_unsubscribe`, not a status edit.
    """
    subscriber = get(subscriber_id)
    changes: dict[str, Any] = {}
    if email is not _UNSET and normalize_email(email) != subscriber.email:
        changes["email"] = _free_address(email, subscriber.id)
    if name is not _UNSET:
        changes["name"] = _clean_name(name)
    if attributes is not _UNSET:
        changes["attributes"] = clean_attributes(attributes)
    if language is not _UNSET:  # None or "": not known any more
        changes["language"] = languages.normalize(language)
    if status is not _UNSET:
        changes["status"] = _clean_status(status, SubscriberStatus)
        if changes["status"] in NEW_STATUSES and suppressions.is_suppressed(changes.get("email", subscriber.email)):
            raise ValidationError("status", "This address is on the suppression list; lift the suppression first.")
        if changes["status"] == SubscriberStatus.CONFIRMED and subscriber.confirmed_at is None:
            changes["confirmed_at"] = utcnow()
    if "attributes" in changes:
        for key in automation_events.changed_attributes(subscriber.attributes, changes["attributes"]):
            automation_events.record(TriggerKind.ATTRIBUTE_CHANGED, key, subscriber.id)
    for field, value in changes.items():
        setattr(subscriber, field, value)
    _commit_or_conflict(subscriber.email)
    return subscriber


def delete(subscriber_id: int) -> None:
    """Delete the row, its memberships and consent records; a suppression stays."""
    db.session.delete(get(subscriber_id))
    audit.record("subscriber.deleted", "subscriber", subscriber_id)  # no address: the person is gone
    db.session.commit()


def suppress_address(email: str, note: str = "") -> str:
    """Suppress an address by hand (reason "manual"); returns it normalised. Keeps an earlier reason."""
    email = normalize_email(email)
    suppressions.suppress(email, SuppressionReason.MANUAL, note=(note or "").strip())
    db.session.commit()
    return email


# Bulk actions: a selection of ids or a whole search, each a few set-based statements in one
# transaction, so they take the same time per row whether the UI sends 3 ids or 1,000,000
# matches. The statement that changes what the filters look at (status) always runs last:
# the earlier ones must see the same matching rows.

def _target(ids: Iterable[Any] | None, filters: Filters | None) -> list[Any]:
    if (ids is None) == (filters is None):
        raise ValidationError("ids", "Choose some subscribers, or a whole search.")
    if filters is not None:
        return conditions(filters)
    assert ids is not None  # one of the two, checked above
    wanted = sorted({whole_number(i, "ids", "subscriber id") for i in ids})
    if not wanted:
        raise ValidationError("ids", "Select at least one subscriber.")
    return [Subscriber.id.in_(wanted)]


def _member(list_id: int, status: SubscriptionStatus | None = None) -> Any:
    member = Subscription.__table__.alias("already")
    where = [member.c.subscriber_id == Subscriber.id, member.c.list_id == list_id]
    if status is not None:
        where.append(member.c.status == status.value)
    return select(literal(1)).where(*where).correlate(Subscriber).exists()


def _run(statement: Any) -> int:
    if isinstance(statement, Insert):
        # psycopg reports rowcount -1 for INSERT ... SELECT ... ON CONFLICT here: count the
        # rows RETURNING gives back instead (exact on PostgreSQL and SQLite alike).
        table = statement.table
        first_key = next(iter(table.primary_key))
        return len(db.session.connection().execute(statement.returning(first_key)).all())
    # No ORM session synchronisation: "fetch" would pull every matched id into Python.
    result = db.session.execute(statement, execution_options={"synchronize_session": False})
    return cast(CursorResult, result).rowcount  # UPDATE and DELETE give a cursor's result


def bulk_add_to_list(list_id: int, ids: Iterable[Any] | None = None, filters: Filters | None = None) -> int:
    """Add as confirmed members (an admin's decision, like `create`); returns memberships added.

    Existing memberships stay as they are (one the person left is not re-joined), and
    suppressed, bounced, complained or unsubscribed subscribers are skipped.
    """
    lists_service.get(list_id)
    where = _target(ids, filters)
    now = utcnow()
    joining = [*where, Subscriber.status.in_(NEW_STATUSES), ~suppressions.address_suppressed()]
    _run(insert_rows(ConsentRecord).from_select(
        ["subscriber_id", "list_id", "action", "source", "created_at"],
        select(Subscriber.id, literal(list_id), literal(ConsentAction.SUBSCRIBED.value),
               literal(ConsentSource.ADMIN.value), literal(now)).where(*joining, ~_member(list_id))))
    joining_now = select(Subscriber.id).where(*joining, ~_member(list_id))
    automation_events.record_from_select(TriggerKind.SUBSCRIBED, list_id, joining_now)
    automation_events.record_from_select(TriggerKind.CONFIRMED, list_id, joining_now)
    added = _run(dialect.insert(Subscription.__table__).from_select(
        ["subscriber_id", "list_id", "status", "created_at", "updated_at"],
        select(Subscriber.id, literal(list_id), literal(SubscriptionStatus.CONFIRMED.value), literal(now),
               literal(now)).where(*joining)).on_conflict_do_nothing())
    _run(update_rows(Subscriber).where(*where, Subscriber.status == SubscriberStatus.UNCONFIRMED,
                                  _member(list_id, SubscriptionStatus.CONFIRMED))
         .values(status=SubscriberStatus.CONFIRMED, confirmed_at=func.coalesce(Subscriber.confirmed_at, now),
                 updated_at=now))
    db.session.commit()
    return added


def bulk_remove_from_list(list_id: int, ids: Iterable[Any] | None = None, filters: Filters | None = None) -> int:
    """Delete the memberships (an admin's correction, not the person's unsubscribe); returns how many."""
    lists_service.get(list_id)
    where = _target(ids, filters)
    removed = _run(delete_rows(Subscription).where(Subscription.list_id == list_id,
                                              Subscription.subscriber_id.in_(select(Subscriber.id).where(*where))))
    db.session.commit()
    return removed


def bulk_unsubscribe(ids: Iterable[Any] | None = None, filters: Filters | None = None) -> int:
    """Leave every list and suppress each address; returns subscribers newly unsubscribed."""
    where = _target(ids, filters)
    now = utcnow()
    _run(update_rows(Subscription).where(Subscription.subscriber_id.in_(select(Subscriber.id).where(*where)),
                                    Subscription.status != SubscriptionStatus.UNSUBSCRIBED)
         .values(status=SubscriptionStatus.UNSUBSCRIBED, updated_at=now))
    _run(dialect.insert(Suppression.__table__).from_select(
        ["email", "reason", "note", "created_at"],
        select(Subscriber.email, literal(SuppressionReason.UNSUBSCRIBED_ALL.value),
               literal("unsubscribed by an admin"), literal(now)).where(*where)).on_conflict_do_nothing())
    changed = _run(update_rows(Subscriber).where(*where, Subscriber.status.in_(NEW_STATUSES))
                   .values(status=SubscriberStatus.UNSUBSCRIBED, updated_at=now))
    db.session.commit()
    return changed


def bulk_delete(ids: Iterable[Any] | None = None, filters: Filters | None = None) -> int:
    """Delete subscribers (memberships and consent records go by ON DELETE CASCADE)."""
    deleted = _run(delete_rows(Subscriber).where(*_target(ids, filters)))
    if deleted:
        audit.record("subscriber.deleted", "subscriber", count=deleted,
                     selection="search" if filters is not None else "selected ids")
    db.session.commit()
    return deleted

