"""Personal fields: what a campaign's templates read, against what its audience really has.

The previews' sample subscriber carries the audience's attribute keys (the ones the editors'
"Insert field" menu offers, `merge_fields.attribute_keys`, with a value seen on one of its
recipients), and the editor warns how many recipients lack each attribute a
template reads without a `default`. Both read a bounded sample or one counting scan, never
a row per recipient.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import case, func, or_, select

from ...extensions import db
from ...models import Campaign, Layout, Subscriber, dialect
from ...sending.fields import default_suggestion, uses
from ...sending.render import CompiledMessage, RenderError
from ..numbers import MAX_ID
from .context import campaign_fields, preview_context
from .merge_fields import attribute_keys
from .recipients import audience, eligible_subscribers

VALUE_ROWS = 200  # recipients read whole for an example value per key
MAX_KEYS = 50
MAX_COUNTED = 20  # attribute keys counted per request (one scan, one sum per key)
_COUNTABLE = re.compile(r'^[^"\\]{1,200}$')  # a key that fits a JSON path unescaped


def _audience(list_ids: list[int]) -> Any:
    """The lists' recipients' attributes (for a resend, a superset: fine for a sample or a share)."""
    return eligible_subscribers(list_ids).with_only_columns(Subscriber.attributes)


def audience_attributes(list_ids: Iterable[int]) -> dict[str, Any]:
    """Attribute keys of the lists' members (merge_fields' sample), each with a value one of the lists'
    recipients has, else a `[key]` placeholder."""
    ids = list(list_ids)
    if not ids:
        return {}
    keys = attribute_keys(ids)[:MAX_KEYS]  # the sample the "Insert field" menu offers
    example: dict[str, Any] = {}
    if keys:
        for attributes in db.session.scalars(_audience(ids).order_by(Subscriber.id).limit(VALUE_ROWS)):
            for key, value in (attributes or {}).items() if isinstance(attributes, dict) else ():
                if key in keys and key not in example and value not in (None, ""):
                    example[key] = value
    db.session.commit()
    return {key: example.get(key, f"[{key}]") for key in keys}


def missing_counts(list_ids: Iterable[int], keys: Iterable[str]) -> tuple[int, dict[str, int]]:
    """(recipients, how many of them lack each key): no key, null or an empty string. One scan."""
    ids, wanted = list(list_ids), [key for key in dict.fromkeys(keys) if _COUNTABLE.match(key)][:MAX_COUNTED]
    if not ids or not wanted:
        return 0, {}
    rows = _audience(ids).subquery()
    sums = [func.coalesce(func.sum(case((or_(text.is_(None), text == ""), 1), else_=0)), 0)
            for text in (dialect.json_text(rows.c.attributes, key) for key in wanted)]
    total, *missing = db.session.execute(select(func.count(), *sums).select_from(rows)).one()
    db.session.commit()
    return int(total), {key: int(n) for key, n in zip(wanted, missing, strict=True)}


def warnings(sources: Iterable[str], list_ids: Iterable[int], counts: bool = True) -> dict[str, Any]:
    """What the editor and the send page show about personal fields.

    `attributes`: per unguarded key, recipients lacking it and the `default` form to use;
    `unknown`: names no subscriber or campaign has (they render as nothing).
    """
    usage = uses(sources)
    keys = usage.unguarded
    total, missing = missing_counts(list_ids, keys) if counts else (0, {})
    return {
        "recipients": total,
        "attributes": [{"key": key, "missing": missing.get(key), "suggestion": default_suggestion(key)}
                       for key in keys if not counts or missing.get(key)],
        "unknown": usage.unknown,
    }


def _layout_html(layout_id: Any) -> str:
    try:
        number = int(layout_id) if layout_id else 0
    except (TypeError, ValueError, OverflowError):
        return ""  # the preview reports a bad layout id; the warnings just leave it out
    layout = db.session.get(Layout, number) if 0 < number <= MAX_ID else None  # PostgreSQL's INTEGER ids
    return layout.html if layout is not None else ""


def parse_list_ids(values: Any) -> list[int]:
    try:
        ids = [int(i) for i in values or []]
    except (TypeError, ValueError):
        return []
    return [i for i in ids if 0 < i <= MAX_ID]


def campaign_warnings(values: Mapping[str, Any], counts: bool = True) -> dict[str, Any]:
    """`warnings` for a campaign's (saved or unsaved) values: subject, bodies, layout, lists."""
    sources = [values.get("subject") or "", values.get("html") or "", values.get("text") or "",
               _layout_html(values.get("layout_id"))]
    return warnings(sources, parse_list_ids(values.get("list_ids")), counts)


def example_subject(campaign: Campaign) -> tuple[str, str] | None:
    """(address, subject) as one real recipient will see it: the campaign's first recipient by id."""
    ids = [ml.id for ml in campaign.lists]
    if not ids:
        return None
    first = db.session.execute(audience(campaign.id, ids).with_only_columns(
        Subscriber.id, Subscriber.email, Subscriber.name, Subscriber.attributes)
        .order_by(Subscriber.id).limit(1)).first()
    db.session.commit()
    if first is None:
        return None
    try:
        compiled = CompiledMessage(campaign.subject, "", "x")
        rendered = compiled.render(preview_context(campaign_fields(campaign), first.id, first.email, first.name,
                                                   first.attributes))
    except RenderError as exc:
        return first.email, f"(does not render: {exc.message})"
    return first.email, rendered.subject
