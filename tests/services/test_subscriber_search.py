"""Subscriber search: exact keyset pages for every filter, capped counts, bulk actions, CRUD."""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select

from newsletter.extensions import db
from newsletter.models import (
    ConsentRecord,
    MailingList,
    OptIn,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Suppression,
)
from newsletter.services.audience import subscribers
from newsletter.services.errors import Conflict, NotFound, ValidationError

NAMES = ["Ann Lee", "ANNA Smith", "Bob Stone", "", "Zoë Ünicode", "joe_100%", "Hannah"]
CITIES = ["Lyon", "Paris", "lyon", None]


@dataclass
class Row:
    id: int
    email: str
    name: str
    status: str
    attributes: dict
    lists: dict[int, str] = field(default_factory=dict)


def attribute_text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def seed(app, n: int = 237, seed_value: int = 7) -> tuple[list[int], list[Row]]:
    """`n` subscribers across three lists and every status; returns (list ids, rows as stored)."""
    rng = random.Random(seed_value)
    with app.app_context():
        lists = [MailingList(name=name, opt_in=OptIn.SINGLE) for name in ("Alpha", "Beta", "Gamma")]
        db.session.add_all(lists)
        db.session.flush()
        people = []
        for i in range(n):
            attributes = {}
            if city := rng.choice(CITIES):
                attributes["city"] = city
            if rng.random() < 0.5:
                attributes["age"] = rng.randint(20, 40)
            if rng.random() < 0.3:
                attributes["vip"] = rng.random() < 0.5
            person = Subscriber(email=f"user{i}{rng.choice(['', '_x', '.ann', '%y'])}@example{i % 3}.com",
                                name=rng.choice(NAMES), status=rng.choice(list(SubscriberStatus)),
                                attributes=attributes)
            for mailing_list in lists:
                if rng.random() < 0.5:
                    person.subscriptions.append(Subscription(list_id=mailing_list.id,
                                                             status=rng.choice(list(SubscriptionStatus))))
            people.append(person)
        db.session.add_all(people)
        db.session.commit()
        return [m.id for m in lists], snapshot()


def snapshot() -> list[Row]:
    rows = {s.id: Row(s.id, s.email, s.name, s.status.value, dict(s.attributes or {}))
            for s in db.session.scalars(select(Subscriber))}
    for membership in db.session.scalars(select(Subscription)):
        rows[membership.subscriber_id].lists[membership.list_id] = membership.status.value
    return sorted(rows.values(), key=lambda r: r.id, reverse=True)


def expected(rows: list[Row], q=None, status=None, list_id=None, attribute=None) -> list[int]:
    def keep(r: Row) -> bool:
        if q and q.lower() not in r.email.lower() and q.lower() not in r.name.lower():
            return False
        if status and r.status != status:
            return False
        if list_id is not None and list_id not in r.lists:
            return False
        # Attribute values match ignoring case ("lyon" finds "Lyon"; SQLite folds ASCII letters only).
        if attribute and (attribute[0] not in r.attributes
                          or attribute_text(r.attributes[attribute[0]]).lower() != attribute[1].lower()):
            return False
        return True
    return [r.id for r in rows if keep(r)]


def walk(limit: int = 10, **filters) -> list[int]:
    seen, cursor, pages = [], None, 0
    while True:
        items, cursor = subscribers.search(cursor=cursor, limit=limit, **filters)
        assert len(items) <= limit
        seen += [s.id for s in items]
        pages += 1
        if cursor is None:
            return seen
        assert items and cursor == items[-1].id and pages < 1000


def filter_cases(list_ids: list[int]) -> list[dict]:
    alpha, beta, gamma = list_ids
    return [
        {}, {"q": "ann"}, {"q": "ANN"}, {"q": "_x"}, {"q": "%y"}, {"q": "100%"}, {"q": "example1"},
        *({"status": s.value} for s in SubscriberStatus),
        {"list_id": alpha}, {"list_id": beta}, {"list_id": gamma},
        {"attribute": ("city", "Lyon")}, {"attribute": ("age", "30")}, {"attribute": ("vip", "true")},
        {"attribute": ("vip", "false")}, {"attribute": ("nope", "x")},
        {"q": "ann", "status": "confirmed", "list_id": alpha},
        {"list_id": beta, "attribute": ("city", "Paris"), "status": "unsubscribed"},
    ]


def test_every_filter_pages_exactly_newest_first(app):
    list_ids, rows = seed(app)
    with app.app_context():
        for case in filter_cases(list_ids):
            want = expected(rows, **case)
            for limit in (7, 50):
                got = walk(limit=limit, **case)
                assert got == want, case  # same ids, same order: no duplicates, no gaps
            assert len(set(got)) == len(got)
            assert subscribers.count(subscribers.make_filters(**case)) == subscribers.Count(len(want), True)
        assert len(expected(rows, q="ann")) > 20 and len(expected(rows, list_id=list_ids[0])) > 50


def test_a_page_that_ends_exactly_at_the_last_match_offers_no_next_page(app):
    _, rows = seed(app, n=30)
    with app.app_context():
        items, cursor = subscribers.search(limit=30)
        assert len(items) == 30 and cursor is None
        items, cursor = subscribers.search(limit=29)
        assert cursor == items[-1].id == rows[28].id


def test_rows_added_or_removed_between_pages_cause_no_duplicates_or_gaps(app):
    list_ids, rows = seed(app, n=60)
    want = expected(rows, list_id=list_ids[0])
    with app.app_context():
        first, cursor = subscribers.search(list_id=list_ids[0], limit=10)
        subscribers.create("newcomer@example.com", list_ids=[list_ids[0]])  # newer: belongs before page 1
        subscribers.delete(first[0].id)  # already seen
        rest = walk(limit=10, list_id=list_ids[0]) if cursor is None else []
        seen = [s.id for s in first]
        while cursor is not None:
            items, cursor = subscribers.search(list_id=list_ids[0], limit=10, cursor=cursor)
            seen += [s.id for s in items]
        assert seen == want and not rest


def test_count_is_capped(app):
    seed(app, n=40)
    with app.app_context():
        assert subscribers.count(subscribers.make_filters(), cap=25) == subscribers.Count(25, False)
        assert str(subscribers.Count(10_000, False)) == "more than 10,000"
        assert str(subscribers.count(subscribers.make_filters(), cap=40)) == "40"


@pytest.mark.parametrize("bad, field_name", [
    ({"status": "gone"}, "status"), ({"list_id": "abc"}, "list_id"), ({"attribute": ("", "x")}, "attr_key"),
    ({"attribute": ('a"b', "x")}, "attr_key"), ({"cursor": "zz"}, "cursor"),
])
def test_bad_search_input_is_a_validation_error(app, bad, field_name):
    with app.app_context(), pytest.raises(ValidationError) as error:
        subscribers.search(**bad)
    assert error.value.field == field_name


# Bulk actions ------------------------------------------------------------------------------

def test_add_to_list_on_a_selection(app):
    list_ids, rows = seed(app, n=40)
    alpha = list_ids[0]
    with app.app_context():
        db.session.add(Suppression(email=rows[0].email, reason="manual"))
        db.session.commit()
    chosen = [r.id for r in rows[:12]]
    eligible = [r for r in rows[1:12] if r.status in ("confirmed", "unconfirmed") and alpha not in r.lists]
    with app.app_context():
        assert subscribers.bulk_add_to_list(alpha, ids=chosen) == len(eligible)
        after = {r.id: r for r in snapshot()}
        for before in rows:
            now = after[before.id]
            if before in eligible:
                assert now.lists[alpha] == "confirmed" and now.status == "confirmed"
            else:  # untouched, including memberships someone had left
                assert now.lists == before.lists and now.status == before.status
        consents = db.session.scalars(select(ConsentRecord.subscriber_id).where(ConsentRecord.list_id == alpha))
        assert sorted(consents) == sorted(r.id for r in eligible)
        assert subscribers.bulk_add_to_list(alpha, ids=chosen) == 0  # idempotent


def test_add_to_list_on_a_whole_search_filtered_by_status(app):
    list_ids, rows = seed(app, n=120)
    gamma = list_ids[2]
    case = {"q": "ann", "status": "unconfirmed"}
    targets = [r for r in rows if r.id in expected(rows, **case) and gamma not in r.lists]
    with app.app_context():
        added = subscribers.bulk_add_to_list(gamma, filters=subscribers.make_filters(**case))
        assert added == len(targets) > 0
        after = {r.id: r for r in snapshot()}
        assert sorted(i for i, r in after.items() if r.lists.get(gamma) and r.id in {t.id for t in targets}) == \
            sorted(t.id for t in targets)
        assert all(after[t.id].status == "confirmed" for t in targets)
        changed = {i for i, r in after.items() if r.lists != next(x for x in rows if x.id == i).lists}
        assert changed == {t.id for t in targets}


def test_remove_from_list_on_a_whole_search(app):
    alpha, beta, _ = (ids := seed(app, n=120))[0]
    rows = ids[1]
    case = {"list_id": alpha, "attribute": ("city", "Lyon")}
    targets = [r for r in rows if r.id in expected(rows, **case) and beta in r.lists]
    with app.app_context():
        assert subscribers.bulk_remove_from_list(beta, filters=subscribers.make_filters(**case)) == len(targets)
        after = {r.id: r for r in snapshot()}
    for before in rows:
        want = {k: v for k, v in before.lists.items() if not (k == beta and before in targets)}
        assert after[before.id].lists == want


def test_unsubscribe_a_whole_search_suppresses_every_address(app):
    list_ids, rows = seed(app, n=120)
    case = {"status": "confirmed", "list_id": list_ids[1]}
    targets = [r for r in rows if r.id in expected(rows, **case)]
    with app.app_context():
        assert subscribers.bulk_unsubscribe(filters=subscribers.make_filters(**case)) == len(targets) > 0
        after = {r.id: r for r in snapshot()}
        suppressed = set(db.session.scalars(select(Suppression.email)))
    assert suppressed == {t.email for t in targets}  # the status filter was read before it changed
    for before in rows:
        now = after[before.id]
        if before in targets:
            assert now.status == "unsubscribed" and set(now.lists.values()) <= {"unsubscribed"}
            assert now.lists.keys() == before.lists.keys()
        else:
            assert (now.status, now.lists) == (before.status, before.lists)


def test_delete_a_selection_and_a_whole_search(app):
    list_ids, rows = seed(app, n=80)
    with app.app_context():
        assert subscribers.bulk_delete(ids=[rows[0].id, rows[1].id, str(rows[2].id), 10**9]) == 3
        rest = rows[3:]
        doomed = expected(rest, status="bounced")
        assert subscribers.bulk_delete(filters=subscribers.make_filters(status="bounced")) == len(doomed)
        assert [r.id for r in snapshot()] == [r.id for r in rest if r.id not in doomed]
        left = set(db.session.scalars(select(Subscription.subscriber_id)))
    assert left <= {r.id for r in rest if r.id not in doomed}


def test_bulk_actions_refuse_an_empty_or_ambiguous_target(app):
    list_ids, _ = seed(app, n=3)
    with app.app_context():
        for call in (lambda: subscribers.bulk_delete(ids=[]), lambda: subscribers.bulk_delete(),
                     lambda: subscribers.bulk_delete(ids=["x"]),
                     lambda: subscribers.bulk_delete(ids=[1], filters=subscribers.make_filters())):
            with pytest.raises(ValidationError):
                call()
        with pytest.raises(NotFound):
            subscribers.bulk_add_to_list(10**9, ids=[1])
        assert len(snapshot()) == 3


# One subscriber -----------------------------------------------------------------------------

def test_create_update_delete_and_their_errors(app):
    list_ids, _ = seed(app, n=1)
    with app.app_context():
        created = subscribers.create(" New@Example.COM ", name="New", attributes={"a": 1}, list_ids=[list_ids[0]],
                                     status="unconfirmed")
        assert (created.email, created.status, created.confirmed_at) == \
            ("new@example.com", SubscriberStatus.UNCONFIRMED, None)
        assert [(m.list_id, m.status.value) for m in created.subscriptions] == [(list_ids[0], "unconfirmed")]
        with pytest.raises(Conflict):
            subscribers.create("NEW@example.com")
        with pytest.raises(ValidationError) as error:
            subscribers.create("not an address")
        assert error.value.field == "email"
        subscribers.suppress_address("Blocked@example.com", "asked by phone")
        with pytest.raises(ValidationError, match="suppression"):
            subscribers.create("blocked@example.com")
        for bad in ({"status": "bounced"}, {"attributes": ["x"]}, {"name": "x" * 201}, {"list_ids": [10**9]}):
            with pytest.raises(ValidationError) as error:
                subscribers.create("fine@example.com", **bad)
            assert error.value.field in ("status", "attributes", "name", "list_ids")

        other = subscribers.create("other@example.com")
        with pytest.raises(Conflict):
            subscribers.update(created.id, email="Other@example.com", name="Changed")
        assert subscribers.get(created.id).name == "New"  # nothing changed on a refusal
        updated = subscribers.update(created.id, name="Changed", status="confirmed", attributes={"b": "2"})
        assert (updated.name, updated.status, updated.attributes) == ("Changed", SubscriberStatus.CONFIRMED, {"b": "2"})
        assert updated.confirmed_at is not None
        subscribers.delete(other.id)
        with pytest.raises(NotFound):
            subscribers.get(other.id)
        with pytest.raises(NotFound):
            subscribers.delete(other.id)
