"""An A/B test's set-up and its split: the variants a campaign is saved with, and who gets which.

The split happens once, in the transaction that completes the snapshot (recipients.py): every
A/B recipient is frozen held (pending, not due until HELD_UNTIL), then a reproducible sample of
`ab_share` percent is released, spread evenly over the variants. The rest stay held until the
winner is picked (ab_tests.py); the ledger's own moves then send each row once, as for any campaign.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from ...extensions import db
from ...models import VARIANT_LABELS, AbMetric, AbMode, AbVariant, Campaign, Delivery, DeliveryStatus, Tracking
from ...models.base import utcnow
from ...sending.render import RenderError, check
from ..errors import ValidationError
from ..messages import N_
from ..numbers import whole_number
from ..text import one_line
from .context import sample_context

# Far beyond any retry: `ledger.publish` takes pending rows whose time has come, so a held row
# is simply never due until the winner's release clears it.
HELD_UNTIL = datetime(3000, 1, 1, tzinfo=UTC)
MAX_WAIT_MINUTES = 30 * 24 * 60
UPDATE_CHUNK = 5000


def clean(value: Any, tracking: Tracking, layout_html: str | None) -> dict[str, Any] | None:
    """The `ab_test` field checked (None: no test); ValidationError names the part that is wrong."""
    if value is None or value == {} or value == "":
        return None
    if not isinstance(value, Mapping):
        raise ValidationError("ab_test", "Give the A/B test as variants, share, metric, wait_minutes and mode.")
    variants = value.get("variants")
    if not isinstance(variants, list) or not 2 <= len(variants) <= len(VARIANT_LABELS):
        raise ValidationError("ab_test.variants", "An A/B test has 2 to %(count)s variants.", count=len(VARIANT_LABELS))
    share = whole_number(value.get("share"), "ab_test.share", "test share")
    if not 1 <= share <= 100:
        raise ValidationError("ab_test.share", "The test share is a percentage from 1 to 100.")
    wait = whole_number(value.get("wait_minutes", 60), "ab_test.wait_minutes", "wait")
    if not 0 <= wait <= MAX_WAIT_MINUTES:
        raise ValidationError("ab_test.wait_minutes", "The wait is 0 to %(limit)s minutes (30 days).",
                              limit=MAX_WAIT_MINUTES)
    metric = _choice(AbMetric, value.get("metric", "opens"), "ab_test.metric")
    mode = _choice(AbMode, value.get("mode", "auto"), "ab_test.mode")
    if tracking != Tracking.INDIVIDUAL:
        raise ValidationError("tracking", "An A/B test counts each variant's readers: set tracking to individual.")
    return {"share": share, "wait": wait * 60, "metric": metric, "mode": mode,
            "variants": [_variant(v, label, layout_html) for label, v in zip(VARIANT_LABELS, variants, strict=False)]}


def _choice(enum_class: Any, value: Any, field: str) -> Any:
    try:
        return enum_class(value)
    except ValueError:
        choices = ", ".join(member.value for member in enum_class)
        raise ValidationError(field, "Choose one of: %(choices)s.", choices=choices) from None


def _variant(value: Any, label: str, layout_html: str | None) -> dict[str, str]:
    field = f"ab_test.variants.{VARIANT_LABELS.index(label)}"
    if not isinstance(value, Mapping):
        raise ValidationError(field, "Each variant has a subject (and optionally from_name and html).")
    subject = one_line(value.get("subject"), f"{field}.subject", 500, required=True, label=N_("The subject"))
    from_name = one_line(value.get("from_name"), f"{field}.from_name", 200)
    html = value.get("html") or ""
    if not isinstance(html, str) or len(html) > 1_000_000:
        raise ValidationError(f"{field}.html", "The body is text of at most 1,000,000 characters.")
    parts = [("subject", subject)] + ([("html", html)] if html.strip() else [])
    try:
        check(parts, sample_context(), layout_html if html.strip() else None)
    except RenderError as exc:
        raise ValidationError(f"{field}.{exc.field}", exc.message) from None
    return {"label": label, "subject": subject, "from_name": from_name, "html": html}


def apply(campaign: Campaign, clean_test: dict[str, Any] | None) -> None:
    """Save the test's settings and variants on a draft (None: no test)."""
    # Kept rows are updated in place: new rows inserted beside old ones of the same label would
    # clash on (campaign, label) before the orphans are deleted.
    existing = {v.label: v for v in campaign.variants}
    variants = []
    for values in (clean_test or {}).get("variants", []):
        row = existing.get(values["label"]) or AbVariant(label=values["label"])
        row.subject, row.from_name, row.html = values["subject"], values["from_name"], values["html"]
        variants.append(row)
    campaign.variants = variants
    campaign.ab_share = clean_test["share"] if clean_test else 0
    if clean_test:
        campaign.ab_wait, campaign.ab_metric, campaign.ab_mode = clean_test["wait"], clean_test["metric"], \
            clean_test["mode"]
    campaign.ab_winner, campaign.ab_decided_at = None, None
    campaign.updated_at = utcnow()  # the send engine's compiled variants are keyed by it


def current(campaign: Campaign) -> dict[str, Any] | None:
    """The test as `clean` takes it (clone, edit forms, the API); None without one."""
    if not campaign.ab_test:
        return None
    return {"share": campaign.ab_share, "wait_minutes": campaign.ab_wait // 60, "metric": campaign.ab_metric.value,
            "mode": campaign.ab_mode.value,
            "variants": [{"subject": v.subject, "from_name": v.from_name, "html": v.html} for v in campaign.variants]}


def variant(campaign_id: int, label: str | None) -> AbVariant | None:
    if label is None:
        return None
    return db.session.scalar(select(AbVariant).where(AbVariant.campaign_id == campaign_id, AbVariant.label == label))


# The split ------------------------------------------------------------------------------------

def order_key(campaign_id: int, subscriber_id: int | None, delivery_id: int) -> bytes:
    """A recipient's place in the random order: the same for the same campaign and subscriber,
    unrelated between campaigns (so nobody is always in the test share)."""
    who = f"s{subscriber_id}" if subscriber_id is not None else f"d{delivery_id}"
    return hashlib.sha256(f"ab:{campaign_id}:{who}".encode()).digest()


def split(campaign_id: int, rows: list[tuple[int, int | None]], share: int,
          labels: tuple[str, ...]) -> dict[str, list[int]]:
    """The test share of `rows` ((delivery id, subscriber id)) by variant: the first round(N x share)
    in the random order (at least one per variant while there are enough), dealt in turn so the
    variants' sizes differ by at most one. Pure."""
    ordered = sorted(rows, key=lambda row: order_key(campaign_id, row[1], row[0]))
    size = min(len(ordered), max(len(labels), round(len(ordered) * share / 100)))
    dealt: dict[str, list[int]] = {label: [] for label in labels}
    for i, (delivery_id, _) in enumerate(ordered[:size]):
        dealt[labels[i % len(labels)]].append(delivery_id)
    return dealt


def assign(campaign_id: int) -> dict[str, int]:
    """Release the test share, each row with its variant; part of the snapshot's last transaction
    (the caller commits), which runs once (`snapshot_at` is set in it). Sizes by variant."""
    labels = tuple(db.session.scalars(select(AbVariant.label).where(AbVariant.campaign_id == campaign_id)
                                      .order_by(AbVariant.label)))
    share = db.session.scalar(select(Campaign.ab_share).where(Campaign.id == campaign_id)) or 0
    if not labels or share <= 0:
        return {}
    held = (Delivery.campaign_id == campaign_id, Delivery.status == DeliveryStatus.PENDING,
            Delivery.variant.is_(None))
    rows = [(row.id, row.subscriber_id) for row in db.session.execute(
        select(Delivery.id, Delivery.subscriber_id).where(*held))]
    dealt = split(campaign_id, rows, share, labels)
    for label, ids in dealt.items():
        for i in range(0, len(ids), UPDATE_CHUNK):
            db.session.execute(update(Delivery).where(Delivery.id.in_(ids[i:i + UPDATE_CHUNK]), *held)
                               .values(variant=label, ab_tested=True, next_attempt_at=None)
                               .execution_options(synchronize_session=False))
    return {label: len(ids) for label, ids in dealt.items()}


def hold_rest(campaign_id: int) -> None:
    """Pending rows without a variant back to held, while the campaign's test has no winner (a
    retry of a cancelled test must not send the rest the campaign's own content). The caller commits."""
    undecided = db.session.scalar(select(Campaign.id).where(
        Campaign.id == campaign_id, Campaign.ab_share > 0, Campaign.ab_winner.is_(None)))
    if undecided is None:
        return
    db.session.execute(update(Delivery).where(
        Delivery.campaign_id == campaign_id, Delivery.status == DeliveryStatus.PENDING, Delivery.variant.is_(None))
        .values(next_attempt_at=HELD_UNTIL).execution_options(synchronize_session=False))
