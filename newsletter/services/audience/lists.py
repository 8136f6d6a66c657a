"""Mailing lists: create, edit, delete, and member counts by status."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select

from ...extensions import db
from ...models import MailingList, OptIn, Subscription, SubscriptionStatus
from ..errors import NotFound, ValidationError
from ..messages import N_
from ..text import one_line


def get(list_id: int) -> MailingList:
    mailing_list = db.session.get(MailingList, list_id)
    if mailing_list is None:
        raise NotFound("list", list_id)
    return mailing_list


def _clean(name: str, opt_in: str | OptIn, description: str) -> tuple[str, OptIn, str]:
    name = one_line(name, "name", 200, label=N_("A list name"))
    if not name:
        raise ValidationError("name", "A list needs a name.")
    try:
        opt_in = OptIn(opt_in)
    except ValueError:
        raise ValidationError("opt_in", 'opt_in must be "single" or "double".') from None
    return name, opt_in, (description or "").strip()


def create(name: str, opt_in: str | OptIn = OptIn.DOUBLE, public: bool = False, description: str = "") -> MailingList:
    name, opt_in, description = _clean(name, opt_in, description)
    mailing_list = MailingList(name=name, opt_in=opt_in, public=bool(public), description=description)
    db.session.add(mailing_list)
    db.session.commit()
    return mailing_list


def update(list_id: int, **changes: Any) -> MailingList:
    mailing_list = get(list_id)
    name, opt_in, description = _clean(
        changes.get("name", mailing_list.name), changes.get("opt_in", mailing_list.opt_in),
        changes.get("description", mailing_list.description),
    )
    mailing_list.name, mailing_list.opt_in, mailing_list.description = name, opt_in, description
    if "public" in changes:
        mailing_list.public = bool(changes["public"])
    db.session.commit()
    return mailing_list


def delete(list_id: int) -> None:
    """Delete a list and its memberships; the subscribers themselves stay."""
    db.session.delete(get(list_id))
    db.session.commit()


def all_lists() -> list[MailingList]:
    return list(db.session.scalars(select(MailingList).order_by(MailingList.name, MailingList.id)))


def public_lists() -> list[MailingList]:
    return list(db.session.scalars(select(MailingList).where(MailingList.public).order_by(MailingList.name)))


def counts_by_status(list_ids: list[int] | None = None) -> dict[int, dict[str, int]]:
    """{list_id: {"confirmed": n, "unconfirmed": n, "unsubscribed": n}}."""
    query = select(Subscription.list_id, Subscription.status, func.count()).group_by(
        Subscription.list_id, Subscription.status)
    if list_ids is not None:
        query = query.where(Subscription.list_id.in_(list_ids))
    counts: dict[int, dict[str, int]] = defaultdict(lambda: {s.value: 0 for s in SubscriptionStatus})
    for list_id, status, count in db.session.execute(query):
        counts[list_id][status.value] = count
    return counts


def existing_ids(list_ids: list[int], field: str = "list_ids") -> list[int]:
    """`list_ids` deduplicated, or ValidationError naming the unknown ones."""
    wanted = sorted({int(i) for i in list_ids})
    if not wanted:
        return []
    found = set(db.session.scalars(select(MailingList.id).where(MailingList.id.in_(wanted))))
    missing = [i for i in wanted if i not in found]
    if missing:
        raise ValidationError(field, "Unknown list id(s): %(value)s.", value=', '.join(map(str, missing)))
    return wanted
