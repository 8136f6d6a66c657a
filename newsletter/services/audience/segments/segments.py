"""Saved segments: create, edit, delete; count and preview who matches (saved or unsaved rules)."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select

from ....extensions import db
from ....models import Campaign, MailingList, Segment, Subscriber
from ....models.base import utcnow
from ...errors import NotFound, ValidationError
from ...messages import N_
from ...text import one_line
from . import estimate
from .compile import Condition, compile_rules
from .rules import EMPTY, RuleError, validate

PREVIEW_LIMIT = 50


def get(segment_id: int) -> Segment:
    segment = db.session.get(Segment, segment_id)
    if segment is None:
        raise NotFound("segment", segment_id)
    return segment


def all_segments() -> list[Segment]:
    return list(db.session.scalars(select(Segment).order_by(Segment.name, Segment.id)))


def oldest_first(after: int | None = None, limit: int = 50) -> list[Segment]:
    """Up to `limit` segments with ids above `after` (API pages)."""
    query = select(Segment).order_by(Segment.id).limit(limit)
    if after is not None:
        query = query.where(Segment.id > after)
    return list(db.session.scalars(query))


def validated(rules: Any, prefix: str = "rules") -> dict[str, Any]:
    """The rules normalised, or RuleError naming the JSON path of the first bad part (including
    a list or campaign that does not exist)."""
    clean, references = validate(rules, prefix)
    for model, named, missing in ((MailingList, references.lists, N_("No list with id %(ident)s.")),
                                  (Campaign, references.campaigns, N_("No campaign with id %(ident)s."))):
        if not named:
            continue
        found = set(db.session.scalars(select(model.id).where(model.id.in_({ident for _, ident in named}))))
        for path, ident in named:
            if ident not in found:
                raise RuleError(path, missing, ident=ident)
    return clean


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    name = one_line(values.get("name"), "name", 200, required=True, label=N_("A segment name"))
    description = values.get("description") or ""
    if not isinstance(description, str) or len(description) > 5000:
        raise ValidationError("description", "A description is text of at most 5,000 characters.")
    rules = values.get("rules")
    return {"name": name, "description": description.strip(),
            "rules": validated(EMPTY if rules is None else rules)}


def create(name: str, rules: Any = None, description: str = "") -> Segment:
    segment = Segment(**_clean({"name": name, "rules": rules, "description": description}))
    db.session.add(segment)
    db.session.commit()
    return segment


def update(segment_id: int, **changes: Any) -> Segment:
    segment = get(segment_id)
    unknown = set(changes) - {"name", "description", "rules"}
    if unknown:
        raise ValidationError(sorted(unknown)[0], "Unknown field.")
    current = {"name": segment.name, "description": segment.description, "rules": segment.rules}
    for key, value in _clean({**current, **changes}).items():
        setattr(segment, key, value)
    db.session.commit()
    return segment


def delete(segment_id: int) -> None:
    """Delete a segment; campaigns that targeted it keep their lists (a sent one keeps its ledger)."""
    db.session.delete(get(segment_id))
    db.session.commit()


def existing_ids(segment_ids: Iterable[Any], field: str = "segment_ids") -> list[int]:
    """`segment_ids` deduplicated, or ValidationError naming the unknown ones."""
    wanted = sorted({int(i) for i in segment_ids})
    if not wanted:
        return []
    found = set(db.session.scalars(select(Segment.id).where(Segment.id.in_(wanted))))
    missing = [i for i in wanted if i not in found]
    if missing:
        raise ValidationError(field, "Unknown segment id(s): %(value)s.", value=', '.join(map(str, missing)))
    return wanted


def matching(segment_ids: Iterable[int], now: datetime | None = None) -> Condition | None:
    """Whether a subscriber matches any of the saved segments (None: no segments); `now` anchors
    their "last N days"."""
    rules = list(db.session.scalars(select(Segment.rules).where(Segment.id.in_(list(segment_ids)))
                                    .order_by(Segment.id)))
    if not rules:
        return None
    now = now or utcnow()
    return or_(*(compile_rules(validate(r)[0], now) for r in rules))


def count(rules: Any) -> int:
    """How many subscribers match `rules` (any status: the campaign snapshot then keeps the
    confirmed, unsuppressed ones); RuleError when the rules are not valid."""
    return estimate.exact(compile_rules(validated(rules), utcnow()))


def live_count(rules: Any, exact: bool = False) -> estimate.Count:
    """The count while rules are edited (the builder, the API): exact if PostgreSQL answers within
    estimate.BUDGET_MS, else a labelled estimate with its 95 % margin; `exact` waits for the figure."""
    condition = compile_rules(validated(rules), utcnow())
    return estimate.Count(estimate.exact(condition)) if exact else estimate.within(condition)


def preview(rules: Any, limit: int = PREVIEW_LIMIT) -> list[Subscriber]:
    """The first `limit` matching subscribers, oldest first."""
    condition = compile_rules(validated(rules), utcnow())
    return list(db.session.scalars(select(Subscriber).where(condition).order_by(Subscriber.id).limit(limit)))
