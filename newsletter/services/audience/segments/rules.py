"""A segment's rules as JSON: the one strict validator, shared by the API, the admin page and saved rows.

A rule set is a group: `{"match": "all" | "any", "rules": [node, ...]}`, where a node is a
group again or a condition (`{"type": ..., ...}`). `validate` returns a normalised copy (defaults
filled in, text trimmed) or raises `RuleError` naming the JSON path of the first bad part, such
as `rules[1].rules[0].op`. Nothing here touches the database: compile.py turns valid rules into SQL.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ...errors import ValidationError
from ...messages import Message

MAX_DEPTH = 5         # groups inside groups, the root counting as 1
MAX_NODES = 100       # groups and conditions in all
MAX_TEXT = 500        # characters of a compared value
MAX_KEY = 100         # an attribute name (subscribers.MAX_ATTRIBUTE_KEY)
MAX_DAYS = 36_500
MAX_ID = 2**31 - 1
MAX_JSON = 50_000     # characters of the whole rule set

MATCHES = ("all", "any")
TEXT_OPS = ("equals", "not_equals", "contains", "not_contains", "starts_with")
NUMBER_OPS = ("gt", "gte", "lt", "lte")
DATE_OPS = ("before", "after")
PRESENCE_OPS = ("is_set", "is_not_set")
ATTRIBUTE_OPS = TEXT_OPS + NUMBER_OPS + DATE_OPS + PRESENCE_OPS
STATUSES = ("unconfirmed", "confirmed", "unsubscribed", "bounced", "complained")
SUBSCRIPTION_STATUSES = ("any", "confirmed", "unconfirmed", "unsubscribed")
ENGAGEMENT_OPS = ("opened", "clicked", "not_opened", "not_clicked", "never_opened")
BOUNCE_TYPES = ("any", "hard", "soft", "complaint")
EMPTY: dict[str, Any] = {"match": "all", "rules": []}  # everyone


class RuleError(ValidationError):
    """A rule refused: `field` is its JSON path from the root group (the API answers 400)."""


@dataclass
class References:
    """Ids the rules name, with the path of each, for the service to check they exist."""
    lists: list[tuple[str, int]] = field(default_factory=list)
    campaigns: list[tuple[str, int]] = field(default_factory=list)


def validate(rules: Any, prefix: str = "rules") -> tuple[dict[str, Any], References]:
    """The normalised rules and the ids they reference, or RuleError at the first bad part."""
    if isinstance(rules, str):
        if len(rules) > MAX_JSON:
            raise RuleError(prefix, "The rules are at most %(limit)s characters of JSON.", limit=format(MAX_JSON, ','))
        try:
            rules = json.loads(rules)
        except ValueError as exc:
            raise RuleError(prefix, "Not JSON: %(exc)s.", exc=exc) from None
        except RecursionError:
            raise RuleError(prefix, "Groups nest at most %(limit)s deep.", limit=MAX_DEPTH) from None
    try:
        size = len(json.dumps(rules))
    except (TypeError, ValueError):
        raise RuleError(prefix, "The rules must be JSON.") from None
    except RecursionError:
        raise RuleError(prefix, "Groups nest at most %(limit)s deep.", limit=MAX_DEPTH) from None
    if size > MAX_JSON:
        raise RuleError(prefix, "The rules are at most %(limit)s characters of JSON.", limit=format(MAX_JSON, ','))
    checker = _Checker()
    clean = checker.group(rules, prefix, 1)
    return clean, checker.references


class _Checker:
    def __init__(self) -> None:
        self.nodes = 0
        self.references = References()

    def group(self, node: Any, path: str, depth: int) -> dict[str, Any]:
        _object(node, path, {"match", "rules"}, Message("A group is an object with `match` and `rules`."))
        if depth > MAX_DEPTH:
            raise RuleError(path, "Groups nest at most %(limit)s deep.", limit=MAX_DEPTH)
        match = _choice(node, "match", path, MATCHES)
        children = node.get("rules")
        if not isinstance(children, list):
            raise RuleError(f"{path}.rules", "A list of conditions and groups.")
        clean = []
        for index, child in enumerate(children):
            self.nodes += 1
            child_path = f"{path}.rules[{index}]"
            if self.nodes > MAX_NODES:
                raise RuleError(child_path, "At most %(limit)s conditions and groups in all.", limit=MAX_NODES)
            if isinstance(child, dict) and "match" in child and "type" not in child:
                clean.append(self.group(child, child_path, depth + 1))
            else:
                clean.append(self.condition(child, child_path))
        return {"match": match, "rules": clean}

    def condition(self, node: Any, path: str) -> dict[str, Any]:
        if not isinstance(node, dict):
            raise RuleError(path, "A condition (an object with `type`) or a group (with `match`).")
        kind = node.get("type")
        checker = CONDITIONS.get(kind) if isinstance(kind, str) else None
        if checker is None:
            raise RuleError(f"{path}.type", "Choose one of: %(value)s.", value=', '.join(CONDITIONS))
        return checker(self, node, path)

    def attribute(self, node: dict[str, Any], path: str) -> dict[str, Any]:
        op = _choice(node, "op", path, ATTRIBUTE_OPS)
        key = node.get("key")
        if not isinstance(key, str) or not key.strip():
            raise RuleError(f"{path}.key", "Name the attribute.")
        key = key.strip()
        if len(key) > MAX_KEY or '"' in key:
            raise RuleError(f"{path}.key", "An attribute name is at most %(limit)s characters, without \".",
                             limit=MAX_KEY)
        if op in PRESENCE_OPS:
            _object(node, path, {"type", "key", "op"}, Message("`%(op)s` takes no value.", op=op))
            return {"type": "attribute", "key": key, "op": op}
        _object(node, path, {"type", "key", "op", "value"}, "")
        if "value" not in node:
            raise RuleError(f"{path}.value", "Give the value to compare with.")
        value = node["value"]
        if op in NUMBER_OPS:
            value = _number(value, f"{path}.value")
        elif op in DATE_OPS:
            value = _date(value, f"{path}.value")
        elif op in ("equals", "not_equals") and _is_number(value):
            value = _number(value, f"{path}.value")
        elif op in ("equals", "not_equals") and isinstance(value, bool):
            pass
        else:
            value = _text(value, f"{path}.value", allow_empty=op in ("equals", "not_equals"))
        return {"type": "attribute", "key": key, "op": op, "value": value}

    def email_domain(self, node: dict[str, Any], path: str) -> dict[str, Any]:
        _object(node, path, {"type", "op", "value"}, "")
        op = _choice(node, "op", path, ("equals", "not_equals"))
        domain = _text(node.get("value"), f"{path}.value").lower().lstrip("@")
        if not domain or "@" in domain or any(c.isspace() for c in domain) or len(domain) > 253:
            raise RuleError(f"{path}.value", "A domain such as example.com.")
        return {"type": "email_domain", "op": op, "value": domain}

    def status(self, node: dict[str, Any], path: str) -> dict[str, Any]:
        _object(node, path, {"type", "op", "value"}, "")
        op = _choice(node, "op", path, ("equals", "not_equals"))
        return {"type": "status", "op": op, "value": _choice(node, "value", path, STATUSES)}

    def list(self, node: dict[str, Any], path: str) -> dict[str, Any]:
        _object(node, path, {"type", "op", "list_id", "status"}, "")
        op = _choice(node, "op", path, ("member", "not_member"))
        list_id = _identifier(node.get("list_id"), f"{path}.list_id")
        status = _choice(node, "status", path, SUBSCRIPTION_STATUSES) if "status" in node else "confirmed"
        self.references.lists.append((f"{path}.list_id", list_id))
        return {"type": "list", "op": op, "list_id": list_id, "status": status}

    def signup_date(self, node: dict[str, Any], path: str) -> dict[str, Any]:
        op = _choice(node, "op", path, ("before", "after", "within_last_days"))
        if op == "within_last_days":
            _object(node, path, {"type", "op", "days"}, "")
            return {"type": "signup_date", "op": op, "days": _days(node.get("days"), f"{path}.days")}
        _object(node, path, {"type", "op", "value"}, "")
        return {"type": "signup_date", "op": op, "value": _date(node.get("value"), f"{path}.value")}

    def engagement(self, node: dict[str, Any], path: str) -> dict[str, Any]:
        op = _choice(node, "op", path, ENGAGEMENT_OPS)
        if op == "never_opened":
            _object(node, path, {"type", "op"}, Message("`never_opened` takes no campaign and no days."))
            return {"type": "engagement", "op": op}
        _object(node, path, {"type", "op", "campaign_id", "days"}, "")
        clean: dict[str, Any] = {"type": "engagement", "op": op, "campaign_id": None, "days": None}
        if node.get("campaign_id") is not None:
            clean["campaign_id"] = _identifier(node["campaign_id"], f"{path}.campaign_id")
            self.references.campaigns.append((f"{path}.campaign_id", clean["campaign_id"]))
        if node.get("days") is not None:
            clean["days"] = _days(node["days"], f"{path}.days")
        return clean

    def bounce(self, node: dict[str, Any], path: str) -> dict[str, Any]:
        _object(node, path, {"type", "op", "bounce_type", "days"}, "")
        op = _choice(node, "op", path, ("has", "has_not"))
        bounce_type = _choice(node, "bounce_type", path, BOUNCE_TYPES) if "bounce_type" in node else "any"
        days = _days(node["days"], f"{path}.days") if node.get("days") is not None else None
        return {"type": "bounce", "op": op, "bounce_type": bounce_type, "days": days}


CONDITIONS = {
    "attribute": _Checker.attribute, "email_domain": _Checker.email_domain, "status": _Checker.status,
    "list": _Checker.list, "signup_date": _Checker.signup_date, "engagement": _Checker.engagement,
    "bounce": _Checker.bounce,
}


def _object(node: Any, path: str, allowed: set[str], hint: str | Message) -> None:
    if not isinstance(node, dict):
        raise RuleError(path, hint or Message("An object."))
    for key in node:
        if key not in allowed:
            raise RuleError(f"{path}.{key}", Message("Unknown key; this takes %(keys)s.",
                                                     keys=", ".join(sorted(allowed)))
                            if isinstance(key, str) else Message("Unknown key."))


def _choice(node: dict[str, Any], key: str, path: str, choices: tuple[str, ...]) -> str:
    value = node.get(key)
    if not isinstance(value, str) or value not in choices:
        raise RuleError(f"{path}.{key}", "Choose one of: %(value)s.", value=', '.join(choices))
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(value: Any, path: str) -> int | float:
    if not _is_number(value) or (isinstance(value, float) and not math.isfinite(value)):
        raise RuleError(path, "A number.")
    if abs(value) >= 1e15:
        raise RuleError(path, "A number below 10^15 in size.")
    return value


def _text(value: Any, path: str, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise RuleError(path, "Text.")
    if not allow_empty and not value.strip():
        raise RuleError(path, "Give the text to compare with.")
    if len(value) > MAX_TEXT or "\x00" in value:
        raise RuleError(path, "At most %(limit)s characters, no NUL.", limit=MAX_TEXT)
    return value


def _date(value: Any, path: str) -> str:
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise RuleError(path, "A date as YYYY-MM-DD.") from None


def _days(value: Any, path: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_DAYS:
        raise RuleError(path, "A whole number of days from 1 to %(limit)s.", limit=format(MAX_DAYS, ','))
    return value


def _identifier(value: Any, path: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_ID:
        raise RuleError(path, "An id (a positive whole number).")
    return value
