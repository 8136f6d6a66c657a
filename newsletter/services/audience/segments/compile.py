"""Valid segment rules (rules.py) as one SQLAlchemy condition on `Subscriber`.

Every value reaches the database as a bound parameter; no SQL is ever built from text. The
dialect differences (JSON text, numbers and dates read out of the attributes) come from
models/dialect.py. Engagement conditions read per-subscriber events, which exist only for
campaigns tracked in `individual` mode; bounce conditions read the bounce reports.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, false, literal, not_, or_, select, true

from ....models import (
    Bounce,
    BounceType,
    EngagementEvent,
    EngagementKind,
    EngagementUnique,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    dialect,
)

Condition = ColumnElement[bool]


def compile_rules(rules: dict[str, Any], now: datetime) -> Condition:
    """The condition a subscriber matches; `now` anchors "in the last N days" (pass one instant
    for every statement of a snapshot, so its chunks agree)."""
    return _group(rules, now)


def _group(group: dict[str, Any], now: datetime) -> Condition:
    # Cheap tests first: PostgreSQL evaluates AND/OR inside an expression in the order written
    # (it sorts only a WHERE's top-level conditions by cost), and stops at the first that decides.
    # The live count's estimate applies the rules as one such expression to every sampled row, so
    # "on the list AND signed up in the last 30 days" probed the list for every row first.
    nodes = sorted(group["rules"], key=_cost)
    parts = [_group(node, now) if "match" in node else _condition(node, now) for node in nodes]
    if group["match"] == "all":
        return and_(*parts) if parts else true()
    return or_(*parts) if parts else false()


_COSTS = {"status": 0, "signup_date": 0, "email_domain": 0, "attribute": 1}  # others read another table: 2


def _cost(node: dict[str, Any]) -> int:
    if "match" in node:
        return max((_cost(child) for child in node["rules"]), default=0)
    return _COSTS.get(node["type"], 2)


def _condition(node: dict[str, Any], now: datetime) -> Condition:
    return COMPILERS[node["type"]](node, now)


def _attribute(node: dict[str, Any], now: datetime) -> Condition:
    column, key, op, value = Subscriber.attributes, node["key"], node["op"], node.get("value")
    text_form = dialect.json_text(column, key)
    if op in ("is_set", "is_not_set"):
        present = and_(dialect.json_has_key(column, key), text_form.is_not(None), text_form != "")
        return present if op == "is_set" else not_(present)
    if op in ("equals", "not_equals"):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            equal = dialect.json_number(column, key) == value
        else:
            equal = dialect.json_equals_text(column, key, _json_text(value))
        # Missing attributes do not equal anything: "not equals" includes them.
        return equal if op == "equals" else not_(_known(equal))
    if op in ("contains", "not_contains"):
        found = text_form.icontains(value, autoescape=True)
        return found if op == "contains" else not_(_known(found))
    if op == "starts_with":
        return text_form.istartswith(value, autoescape=True)
    if op in ("before", "after"):
        as_date = dialect.json_date(column, key)
        return as_date < value if op == "before" else as_date > value
    number = dialect.json_number(column, key)
    return {"gt": number > value, "gte": number >= value, "lt": number < value, "lte": number <= value}[op]


def _json_text(value: Any) -> str:
    """The text form dialect.json_text gives a stored JSON value: strings as they are, true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _known(condition: Condition) -> Condition:
    """The condition with NULL (a missing attribute) read as false, so NOT of it is true."""
    return and_(condition.is_not(None), condition)


def _email_domain(node: dict[str, Any], now: datetime) -> Condition:
    at_domain = Subscriber.email.endswith(f"@{node['value']}", autoescape=True)
    return at_domain if node["op"] == "equals" else not_(at_domain)


def _status(node: dict[str, Any], now: datetime) -> Condition:
    status = SubscriberStatus(node["value"])
    return Subscriber.status == status if node["op"] == "equals" else Subscriber.status != status


def _list(node: dict[str, Any], now: datetime) -> Condition:
    where = [Subscription.subscriber_id == Subscriber.id, Subscription.list_id == node["list_id"]]
    if node["status"] != "any":
        where.append(Subscription.status == SubscriptionStatus(node["status"]))
    member = select(literal(1)).where(*where).correlate(Subscriber).exists()
    return member if node["op"] == "member" else not_(member)


def _day_start(value: str) -> datetime:
    return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)


def _signup_date(node: dict[str, Any], now: datetime) -> Condition:
    if node["op"] == "within_last_days":
        return Subscriber.created_at >= now - timedelta(days=node["days"])
    if node["op"] == "before":
        return Subscriber.created_at < _day_start(node["value"])
    return Subscriber.created_at >= _day_start(node["value"]) + timedelta(days=1)


def _engagement(node: dict[str, Any], now: datetime) -> Condition:
    """Human events only (machines never reach the per-subscriber tables); a click counts as an open."""
    op = node["op"]
    kinds = [EngagementKind.CLICK] if op in ("clicked", "not_clicked") else [EngagementKind.OPEN, EngagementKind.CLICK]
    campaign_id, days = node.get("campaign_id"), node.get("days")
    if days is None:
        # Who counted as unique: one row per campaign, kind and subscriber (link 0: any link).
        where = [EngagementUnique.subscriber_id == Subscriber.id, EngagementUnique.kind.in_(kinds),
                 EngagementUnique.link_id == 0]
        if campaign_id is not None:
            where.append(EngagementUnique.campaign_id == campaign_id)
    else:
        # `machine IS false` is the predicate of the partial index on (kind, at, subscriber_id)
        # (migration 0025): written the same way, the window is read from the index alone.
        where = [EngagementEvent.subscriber_id == Subscriber.id, EngagementEvent.kind.in_(kinds),
                 EngagementEvent.machine.is_(False), EngagementEvent.at >= now - timedelta(days=days)]
        if campaign_id is not None:
            where.append(EngagementEvent.campaign_id == campaign_id)
    engaged = select(literal(1)).where(*where).correlate(Subscriber).exists()
    return engaged if op in ("opened", "clicked") else not_(engaged)


def _bounce(node: dict[str, Any], now: datetime) -> Condition:
    where = [Bounce.subscriber_id == Subscriber.id]
    if node["bounce_type"] != "any":
        where.append(Bounce.type == BounceType(node["bounce_type"]))
    else:
        where.append(Bounce.type.in_([BounceType.HARD, BounceType.SOFT]))
    if node.get("days") is not None:
        where.append(Bounce.created_at >= now - timedelta(days=node["days"]))
    bounced = select(literal(1)).where(*where).correlate(Subscriber).exists()
    return bounced if node["op"] == "has" else not_(bounced)


COMPILERS: dict[str, Callable[[dict[str, Any], datetime], Condition]] = {
    "attribute": _attribute, "email_domain": _email_domain, "status": _status, "list": _list,
    "signup_date": _signup_date, "engagement": _engagement, "bounce": _bounce,
}
