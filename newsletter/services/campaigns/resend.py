"""Resend to non-openers (or non-clickers): a new draft from a sent, individually tracked campaign.

The draft copies the content and lists and records what it resends and to whom
(`resend_of_id`, `resend_to`); the restriction itself is applied by the send snapshot
(`recipients.audience`), so opens counted after the draft was made but before it is sent
still drop their readers, and the usual exclusions (unsubscribed, bounced, suppressed,
erased) apply as for any campaign.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select

from ...extensions import db
from ...models import Campaign, CampaignStatus, ResendTo, Subscriber, Tracking, campaign_lists
from ..errors import StateConflict, ValidationError
from ..messages import Message
from ..text import one_line
from . import ab_variants, campaigns
from .recipients import audience, eligible_subscribers, not_engaged, segment_condition

LABELS = {ResendTo.NON_OPENERS: "non-openers", ResendTo.NON_CLICKERS: "non-clickers"}


def refusal(campaign: Campaign) -> Message | None:
    """Why this campaign cannot be resent to its non-openers, or None when it can."""
    if campaign.status != CampaignStatus.SENT:
        return Message("Only a sent campaign can be resent to its non-openers; this one is %(status)s.",
                       status=Message(campaign.status.value))
    if campaign.tracking == Tracking.OFF:
        return Message("This campaign was sent without tracking: no opens or clicks were recorded, so nobody "
                       "can tell who did not open it.")
    if campaign.tracking == Tracking.ANONYMOUS:
        return Message("This campaign was tracked anonymously (counts only, nobody named), so nobody can tell "
                       "who opened it. Only campaigns sent with individual tracking can be resent to non-openers.")
    return None


def _to(value: Any) -> ResendTo:
    try:
        return ResendTo(value)
    except ValueError:
        raise ValidationError("to", "Choose one of: %(value)s.", value=', '.join(t.value for t in ResendTo)) from None


def create(original_id: int, to: Any, subject: str | None = None, created_by_id: int | None = None) -> Campaign:
    """A draft resend of `original_id`; StateConflict (a 409) names why it cannot be made."""
    original = campaigns.get(original_id)
    reason = refusal(original)
    if reason:
        raise StateConflict("tracking" if original.status == CampaignStatus.SENT else "status", reason)
    target = _to(to)
    values = campaigns.current_values(original)
    values["name"] = f"{original.name} (resend to {LABELS[target]})"[:200]
    values["ab_test"] = None  # one message for everyone: an A/B test's winner when it had one
    winner = ab_variants.variant(original.id, original.ab_winner)
    if winner is not None:
        values.update(subject=winner.subject, from_name=winner.from_name or values["from_name"])
        if winner.html.strip():
            values.update(html=winner.html, body_format="html", body_source="", text="")
    if subject is not None:
        values["subject"] = one_line(subject, "subject", 500, required=True)
    return campaigns.create(created_by_id=created_by_id, resend_of=(original.id, target), **values)


def reach(original_id: int) -> dict[ResendTo, int]:
    """How many a resend made now would reach, per target: one pass over the lists' eligible members."""
    lists = select(campaign_lists.c.list_id).where(campaign_lists.c.campaign_id == original_id).scalar_subquery()
    received, not_opened = not_engaged(original_id, ResendTo.NON_OPENERS)
    _, not_clicked = not_engaged(original_id, ResendTo.NON_CLICKERS)
    people = eligible_subscribers(lists, segment_condition(original_id)).with_only_columns(
        case((not_opened, 1), else_=0).label("non_openers"),
        case((not_clicked, 1), else_=0).label("non_clickers")).where(received).subquery()
    row = db.session.execute(select(func.coalesce(func.sum(people.c.non_openers), 0),
                                    func.coalesce(func.sum(people.c.non_clickers), 0))).one()
    return {ResendTo.NON_OPENERS: int(row[0]), ResendTo.NON_CLICKERS: int(row[1])}


def recipients_now(campaign_id: int) -> int:
    """Who a (resend) campaign would go to if its snapshot ran now."""
    lists = select(campaign_lists.c.list_id).where(campaign_lists.c.campaign_id == campaign_id).scalar_subquery()
    return db.session.scalar(select(func.count()).select_from(
        audience(campaign_id, lists, segment_condition(campaign_id)).with_only_columns(Subscriber.id).subquery())) or 0
