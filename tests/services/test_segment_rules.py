"""Segment rules compiled to SQL agree with a plain-Python evaluation, on whichever database the
suite runs (SQLite by default, PostgreSQL with DATABASE_URL): every op, random rule trees over
random data, values that look like SQL, and attribute values that cannot be numbers or dates."""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from newsletter.extensions import db
from newsletter.models import (
    Bounce,
    BounceType,
    Campaign,
    EngagementEvent,
    EngagementKind,
    EngagementUnique,
    MailingList,
    OptIn,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from newsletter.services.audience.segments import segments
from newsletter.services.audience.segments.compile import compile_rules
from newsletter.services.audience.segments.rules import validate

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
KEYS = ["plan", "age", "score", "born", "vip", "it's", "a.b", "x[0]", "$y", "city"]
VALUES: dict[str, list[Any]] = {
    "plan": ["pro", "Pro", "free", "", "pro plus", "100%_off", "'; DROP TABLE subscribers; --"],
    "age": [17, 30, 30.0, 30.5, 45, "30", " 7", "n/a", "1e3", "01", "-2", "30.0", True],
    "score": [0, 1, -1, 2.5, "2.5", "abc", None],
    "born": ["1990-05-01", "2026-01-05T10:00:00Z", "2026-02-31", "soon", "1990", "2001-12-31"],
    "vip": [True, False, "true", "yes"],
    "it's": ["o'clock", "x"],
    "a.b": ["dot", "ab"],
    "x[0]": ["bracket"],
    "$y": ["dollar", 5],
    "city": ["Lyon", "lyon", "LYON city", "Paris"],
}
DOMAINS = ["example.com", "Example.org", "mail.example.com", "x_y.com"]
NUMBER = re.compile(r"^\s*-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]{1,3})?\s*$")
ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass
class Person:
    id: int
    email: str
    status: str
    created_at: datetime
    attributes: dict[str, Any]
    lists: dict[int, str] = field(default_factory=dict)
    uniques: set[tuple[int, str]] = field(default_factory=set)       # (campaign, kind)
    events: list[tuple[int, str, bool, datetime]] = field(default_factory=list)
    bounces: list[tuple[str, datetime]] = field(default_factory=list)


@dataclass
class World:
    people: list[Person]
    list_ids: list[int]
    campaign_ids: list[int]


def seed(app, n: int = 160, seed_value: int = 11) -> World:
    rng = random.Random(seed_value)
    with app.app_context():
        lists = [MailingList(name=name, opt_in=OptIn.SINGLE) for name in ("A", "B")]
        campaigns = [Campaign(name=f"C{i}", subject="s", from_email="n@example.com") for i in range(2)]
        db.session.add_all(lists + campaigns)
        db.session.flush()
        people = []
        for i in range(n):
            attributes = {key: rng.choice(VALUES[key]) for key in KEYS if rng.random() < 0.45}
            created = NOW - timedelta(days=rng.randint(0, 400), hours=rng.randint(0, 23))
            subscriber = Subscriber(email=f"u{i}@{rng.choice(DOMAINS).lower()}", attributes=attributes,
                                    status=rng.choice(list(SubscriberStatus)), created_at=created)
            db.session.add(subscriber)
            db.session.flush()
            person = Person(subscriber.id, subscriber.email, subscriber.status.value, created, attributes)
            for mailing_list in lists:
                if rng.random() < 0.5:
                    status = rng.choice(list(SubscriptionStatus))
                    db.session.add(Subscription(subscriber_id=subscriber.id, list_id=mailing_list.id, status=status))
                    person.lists[mailing_list.id] = status.value
            for campaign in campaigns:
                for kind in EngagementKind:
                    if rng.random() < 0.3:
                        machine = rng.random() < 0.3
                        at = NOW - timedelta(days=rng.randint(0, 90))
                        db.session.add(EngagementEvent(campaign_id=campaign.id, subscriber_id=subscriber.id,
                                                       kind=kind, machine=machine, at=at))
                        person.events.append((campaign.id, kind.value, machine, at))
                        if not machine:
                            db.session.add(EngagementUnique(campaign_id=campaign.id, kind=kind, link_id=0,
                                                            subscriber_id=subscriber.id))
                            person.uniques.add((campaign.id, kind.value))
            if rng.random() < 0.25:
                kind = rng.choice(list(BounceType))
                at = NOW - timedelta(days=rng.randint(0, 60))
                db.session.add(Bounce(type=kind, source="api", email=subscriber.email, subscriber_id=subscriber.id,
                                      created_at=at))
                person.bounces.append((kind.value, at))
            people.append(person)
        db.session.commit()
        return World(people, [m.id for m in lists], [c.id for c in campaigns])


# The reference: the documented meaning of each condition, in Python ---------------------------

def text_form(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def number(value: Any) -> float | None:
    text = text_form(value)
    return float(text) if text is not None and NUMBER.match(text) else None


def attribute(p: Person, node: dict[str, Any]) -> bool:
    raw = p.attributes.get(node["key"])
    text, op, value = text_form(raw), node["op"], node.get("value")
    if op in ("is_set", "is_not_set"):
        return (text is not None and text != "") == (op == "is_set")
    if op in ("equals", "not_equals"):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            equal = number(raw) is not None and number(raw) == value
        else:
            equal = text is not None and text == text_form(value)
        return equal == (op == "equals")
    if op in ("contains", "not_contains"):
        found = text is not None and value.lower() in text.lower()
        return found == (op == "contains")
    if op == "starts_with":
        return text is not None and text.lower().startswith(value.lower())
    if op in ("before", "after"):
        if text is None or not ISO_DATE.match(text):
            return False
        return text[:10] < value if op == "before" else text[:10] > value
    n = number(raw)
    if n is None:
        return False
    return {"gt": n > value, "gte": n >= value, "lt": n < value, "lte": n <= value}[op]


def engaged(p: Person, node: dict[str, Any]) -> bool:
    kinds = {"click"} if node["op"] in ("clicked", "not_clicked") else {"open", "click"}
    campaign, days = node.get("campaign_id"), node.get("days")
    if days is None:
        hit = any(k in kinds and (campaign is None or c == campaign) for c, k in p.uniques)
    else:
        hit = any(k in kinds and not machine and at >= NOW - timedelta(days=days)
                  and (campaign is None or c == campaign) for c, k, machine, at in p.events)
    return hit == (node["op"] in ("opened", "clicked"))


def holds(p: Person, node: dict[str, Any]) -> bool:
    if "match" in node:
        results = [holds(p, child) for child in node["rules"]]
        return all(results) if node["match"] == "all" else any(results)
    kind = node["type"]
    if kind == "attribute":
        return attribute(p, node)
    if kind == "email_domain":
        return p.email.endswith("@" + node["value"]) == (node["op"] == "equals")
    if kind == "status":
        return (p.status == node["value"]) == (node["op"] == "equals")
    if kind == "list":
        status = p.lists.get(node["list_id"])
        member = status is not None and (node["status"] == "any" or status == node["status"])
        return member == (node["op"] == "member")
    if kind == "signup_date":
        if node["op"] == "within_last_days":
            return p.created_at >= NOW - timedelta(days=node["days"])
        day = datetime.combine(date.fromisoformat(node["value"]), datetime.min.time(), UTC)
        return p.created_at < day if node["op"] == "before" else p.created_at >= day + timedelta(days=1)
    if kind == "engagement":
        if node["op"] == "never_opened":
            return not any(k in ("open", "click") for _, k in p.uniques)
        return engaged(p, node)
    if kind == "bounce":
        types = {"hard", "soft"} if node["bounce_type"] == "any" else {node["bounce_type"]}
        hit = any(t in types and (node["days"] is None or at >= NOW - timedelta(days=node["days"]))
                  for t, at in p.bounces)
        return hit == (node["op"] == "has")
    raise AssertionError(kind)


# Rule generators --------------------------------------------------------------------------------

def every_condition(world: World) -> list[dict[str, Any]]:
    a, b = world.list_ids
    c1, _ = world.campaign_ids
    out: list[dict[str, Any]] = []
    for key in KEYS + ["missing"]:
        out += [{"type": "attribute", "key": key, "op": op} for op in ("is_set", "is_not_set")]
    for value in ["pro", "Pro", "", "'; DROP TABLE subscribers; --", "30", "true", "5", "o'clock", "dot", "Lyon"]:
        for key in ("plan", "age", "vip", "it's", "a.b", "$y", "city"):
            out += [{"type": "attribute", "key": key, "op": op, "value": value} for op in ("equals", "not_equals")]
    for value in [30, 7, 1000, 2.5, -2, 0]:
        for key in ("age", "score", "$y"):
            out += [{"type": "attribute", "key": key, "op": op, "value": value}
                    for op in ("equals", "not_equals", "gt", "gte", "lt", "lte")]
    for value in ["pro", "%", "_", "lyon", "' OR 1=1 --", "o'c"]:
        for key in ("plan", "city", "it's"):
            out += [{"type": "attribute", "key": key, "op": op, "value": value}
                    for op in ("contains", "not_contains", "starts_with")]
    for value in ["1990-05-01", "2026-01-05", "2000-01-01"]:
        out += [{"type": "attribute", "key": "born", "op": op, "value": value} for op in ("before", "after")]
    out += [{"type": "email_domain", "op": op, "value": d} for op in ("equals", "not_equals")
            for d in ("example.com", "example.org", "x_y.com", "xy.com")]
    out += [{"type": "status", "op": op, "value": s.value} for op in ("equals", "not_equals") for s in SubscriberStatus]
    out += [{"type": "list", "op": op, "list_id": lid, "status": st} for op in ("member", "not_member")
            for lid in (a, b) for st in ("any", "confirmed", "unconfirmed", "unsubscribed")]
    out += [{"type": "signup_date", "op": "within_last_days", "days": d} for d in (1, 30, 365)]
    out += [{"type": "signup_date", "op": op, "value": v} for op in ("before", "after")
            for v in ("2026-06-01", "2026-12-06")]
    out += [{"type": "engagement", "op": op, "campaign_id": c, "days": d}
            for op in ("opened", "clicked", "not_opened", "not_clicked") for c in (None, c1) for d in (None, 30)]
    out.append({"type": "engagement", "op": "never_opened"})
    out += [{"type": "bounce", "op": op, "bounce_type": t, "days": d} for op in ("has", "has_not")
            for t in ("any", "hard", "soft", "complaint") for d in (None, 30)]
    return out


def random_tree(rng: random.Random, conditions: list[dict[str, Any]], depth: int = 1) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    for _ in range(rng.randint(0, 4)):
        if depth < 3 and rng.random() < 0.3:
            rules.append(random_tree(rng, conditions, depth + 1))
        else:
            rules.append(rng.choice(conditions))
    return {"match": rng.choice(["all", "any"]), "rules": rules}


def sql_ids(rules: dict[str, Any]) -> set[int]:
    clean, _ = validate(rules)
    return set(db.session.scalars(select(Subscriber.id).where(compile_rules(clean, NOW))))


def python_ids(world: World, rules: dict[str, Any]) -> set[int]:
    clean, _ = validate(rules)
    return {p.id for p in world.people if holds(p, clean)}


@pytest.fixture
def world(app) -> World:
    return seed(app)


def test_every_condition_matches_the_reference(app, world):
    conditions = every_condition(world)
    assert len(conditions) > 300
    nonempty = 0
    with app.app_context():
        for condition in conditions:
            rules = {"match": "all", "rules": [condition]}
            expected = python_ids(world, rules)
            assert sql_ids(rules) == expected, condition
            nonempty += bool(expected) and len(expected) < len(world.people)
    assert nonempty > len(conditions) // 3  # the data tells most conditions apart


def test_random_rule_trees_match_the_reference(app, world):
    rng = random.Random(5)
    conditions = every_condition(world)
    with app.app_context():
        for _ in range(150):
            rules = random_tree(rng, conditions)
            assert sql_ids(rules) == python_ids(world, rules), rules


def test_empty_groups_mean_everyone_for_all_and_nobody_for_any(app, world):
    with app.app_context():
        assert sql_ids({"match": "all", "rules": []}) == {p.id for p in world.people}
        assert sql_ids({"match": "any", "rules": []}) == set()


def test_values_that_look_like_sql_are_only_ever_parameters(app, world):
    hostile = "x' OR '1'='1'; DROP TABLE subscribers; --"
    with app.app_context():
        clean, _ = validate({"match": "all", "rules": [
            {"type": "attribute", "key": "plan", "op": "equals", "value": hostile},
            {"type": "attribute", "key": "it's", "op": "contains", "value": hostile}]})
        statement = select(Subscriber.id).where(compile_rules(clean, NOW))
        assert hostile not in str(statement.compile(db.engine))
        assert "it's" not in str(statement.compile(db.engine))
        assert sql_ids(clean) == set()
        assert db.session.scalar(select(db.func.count()).select_from(Subscriber)) == len(world.people)


def test_count_and_preview_agree_with_the_reference(app, world):
    rules = {"match": "any", "rules": [{"type": "attribute", "key": "age", "op": "gte", "value": 30},
                                       {"type": "email_domain", "op": "equals", "value": "example.org"}]}
    with app.app_context():
        expected = sorted(python_ids(world, rules))
        assert segments.count(rules) == len(expected) > 0
        assert [s.id for s in segments.preview(rules, limit=5)] == expected[:5]
