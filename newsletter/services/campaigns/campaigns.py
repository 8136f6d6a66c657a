"""Campaigns: compose, validate, clone, preview; and what users do to them (send, pause, cancel, retry).

Every status change these make goes through `status.transition`, the one state machine."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from ...extensions import db
from ...models import Campaign, CampaignStatus, Layout, ResendTo, Subscriber, Tracking
from ...models.base import utcnow
from ...sending.render import CompiledMessage, RenderError, check, compile_each
from .. import audit, settings
from ..addresses import normalize_email
from ..audience import lists as lists_service
from ..audience.segments import segments as segments_service
from ..delivery import ledger, servers
from ..errors import NotFound, StateConflict, ValidationError
from ..messages import Message
from ..numbers import whole_number
from ..text import one_line
from . import ab_variants
from . import translations as translations_service
from .context import preview_context, recipient_context, sample_context
from .editors import body_html
from .fields import audience_attributes, parse_list_ids
from .recipients import eligible_subscribers
from .status import transition
from .totals import record_totals

S = CampaignStatus
EDITABLE = frozenset({S.DRAFT, S.SCHEDULED})
FIELDS = ("name", "subject", "from_name", "from_email", "reply_to", "html", "text", "layout_id", "list_ids", "tracking",
          "pool", "body_format", "body_source", "segment_ids", "ab_test", "translations")


def get(campaign_id: int) -> Campaign:
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("campaign", campaign_id)
    return campaign


def recent(limit: int = 100, status: str | None = None) -> list[Campaign]:
    query = select(Campaign).order_by(Campaign.id.desc()).limit(limit)
    if status:
        try:
            query = query.where(Campaign.status == CampaignStatus(status))
        except ValueError:
            raise ValidationError("status", "Unknown status %(status)r.", status=status) from None
    return list(db.session.scalars(query))


def oldest_first(after: int | None = None, limit: int = 50, status: CampaignStatus | None = None) -> list[Campaign]:
    """Up to `limit` campaigns with ids above `after`, oldest first, lists loaded (API pages)."""
    query = select(Campaign).options(selectinload(Campaign.lists)).order_by(Campaign.id).limit(limit)
    if after is not None:
        query = query.where(Campaign.id > after)
    if status is not None:
        query = query.where(Campaign.status == status)
    return list(db.session.scalars(query))


def _address(value: Any, field: str, required: bool) -> str:
    value = one_line(value, field, 254, required=required)
    if not value:
        return ""
    try:
        return normalize_email(value)
    except ValueError as exc:
        raise ValidationError(field, str(exc)) from None


def _layout_html(layout_id: int | None) -> str | None:
    if layout_id is None:
        return None
    layout = db.session.get(Layout, layout_id)
    if layout is None:
        raise ValidationError("layout_id", "No layout with id %(layout_id)s.", layout_id=layout_id)
    return layout.html


def _tracking(value: Any) -> Tracking:
    """A mode by name (or a Tracking); absent: the settings' default for new campaigns."""
    if value is None or value == "":
        value = settings.get("TRACKING_DEFAULT")
    try:
        return Tracking(value)
    except ValueError:
        raise ValidationError("tracking", "Choose one of: %(value)s.",
                              value=', '.join(t.value for t in Tracking)) from None


def _existing(check: Callable[[list[Any]], list[int]], values: Mapping[str, Any], field: str, label: str) -> list[int]:
    """The ids under `field` that exist (deduplicated), or ValidationError naming the field."""
    try:
        return check(list(values.get(field) or []))
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ValidationError):
            raise
        raise ValidationError(field, "%(label)s ids must be numbers.", label=label) from None


def _clean(values: Mapping[str, Any]) -> dict[str, Any]:
    """Every field checked, templates compiled and test-rendered; ValidationError names the field."""
    layout_id = values.get("layout_id") or None
    layout_id = whole_number(layout_id, "layout_id", "layout id") if layout_id is not None else None
    body_format, body_source, html = body_html(values)
    clean: dict[str, Any] = {
        "name": one_line(values.get("name"), "name", 200, required=True),
        "subject": one_line(values.get("subject"), "subject", 500, required=True),
        "from_name": one_line(values.get("from_name"), "from_name", 200),
        "from_email": _address(values.get("from_email"), "from_email", required=True),
        "reply_to": _address(values.get("reply_to"), "reply_to", required=False),
        "html": html,
        "text": values.get("text") or "",
        "body_format": body_format,
        "body_source": body_source,
        "layout_id": layout_id,
        "tracking": _tracking(values.get("tracking")),
        "pool": servers.check_pool(values.get("pool")),
    }
    if not clean["html"].strip() and not clean["text"].strip():
        field = "html" if body_format.value in ("html", "visual") else "body_source"
        raise ValidationError(field, "Write the email: an HTML body, a text body, or both.")
    list_ids = _existing(lists_service.existing_ids, values, "list_ids", "List")
    segment_ids = _existing(segments_service.existing_ids, values, "segment_ids", "Segment")
    try:
        check([("subject", clean["subject"]), ("html", clean["html"]), ("text", clean["text"])],
              sample_context(), _layout_html(layout_id))
    except RenderError as exc:
        converted = exc.field == "html" and body_format.value in ("markdown", "richtext")
        raise ValidationError("body_source" if converted else exc.field, exc.message) from None
    clean["list_ids"], clean["segment_ids"] = list_ids, segment_ids
    clean["ab_test"] = ab_variants.clean(values.get("ab_test"), clean["tracking"], _layout_html(layout_id))
    clean["translations"] = translations_service.clean(values.get("translations"), _layout_html(layout_id))
    if clean["ab_test"] and clean["translations"]:
        # Which variant would a German reader get, the test's or the translation? Neither answer is
        # obviously right, so the two are not combined (yet): one or the other.
        raise ValidationError("ab_test", "A campaign with translations cannot also be an A/B test: remove the "
                                         "translations, or test the subject in a campaign of its own.")
    return clean


def _apply(campaign: Campaign, clean: dict[str, Any]) -> None:
    list_ids, segment_ids = clean.pop("list_ids"), clean.pop("segment_ids")
    ab_variants.apply(campaign, clean.pop("ab_test"))
    translations = clean.pop("translations")
    for key, value in clean.items():
        setattr(campaign, key, value)
    campaign.lists = [lists_service.get(i) for i in list_ids]
    campaign.segments = [segments_service.get(i) for i in segment_ids]
    translations_service.replace(campaign, translations)


def create(created_by_id: int | None = None, resend_of: tuple[int, ResendTo] | None = None, **values: Any) -> Campaign:
    """A draft; `resend_of` (original id, target) makes it a resend (resend.create decides when)."""
    campaign = Campaign(created_by_id=created_by_id)
    if resend_of is not None:
        campaign.resend_of_id, campaign.resend_to = resend_of
    _apply(campaign, _clean(values))
    db.session.add(campaign)
    db.session.commit()
    return campaign


def current_values(campaign: Campaign) -> dict[str, Any]:
    values = {key: getattr(campaign, key) for key in FIELDS
              if key not in ("list_ids", "segment_ids", "ab_test", "translations")}
    values["ab_test"] = ab_variants.current(campaign)
    values["translations"] = translations_service.of(campaign.id)
    values["list_ids"] = [m.id for m in campaign.lists]
    values["segment_ids"] = [s.id for s in campaign.segments]
    return values


def update(campaign_id: int, **changes: Any) -> Campaign:
    campaign = get(campaign_id)
    if campaign.status not in EDITABLE:
        raise StateConflict("status", "A %(status)s campaign cannot be edited; clone it instead.",
                            status=Message(campaign.status.value))
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise ValidationError(sorted(unknown)[0], "Unknown field.")
    if "html" in changes and not {"body_format", "body_source"} & set(changes):
        changes["body_format"] = "html"  # a client that only knows HTML replaces the body with it
    _apply(campaign, _clean({**current_values(campaign), **changes}))
    db.session.commit()
    return campaign


def delete(campaign_id: int) -> None:
    campaign = get(campaign_id)
    if campaign.status in (S.SENDING, S.PAUSED):
        raise StateConflict("status", "Cancel the campaign before deleting it.")
    db.session.delete(campaign)
    db.session.commit()


def clone(campaign_id: int, created_by_id: int | None = None) -> Campaign:
    values = current_values(get(campaign_id))
    values["name"] = f"Copy of {values['name']}"[:200]
    return create(created_by_id=created_by_id, **values)


def estimate_recipients(list_ids: Iterable[int], segment_ids: Iterable[int] = ()) -> int:
    """Distinct confirmed, unsuppressed members of the lists and segments (as the send snapshot
    would take them now)."""
    ids = lists_service.existing_ids(list(list_ids))
    segment = segments_service.matching(segments_service.existing_ids(list(segment_ids)))
    if not ids and segment is None:
        return 0
    return db.session.scalar(select(func.count()).select_from(eligible_subscribers(ids, segment).subquery())) or 0


# Status changes -------------------------------------------------------------------------------

def _move(campaign_id: int, to: CampaignStatus, reason: str = "", action: str = "", **columns: Any) -> Campaign:
    """A user's status change; `action` is audited in the same transaction when the move happens."""
    campaign = get(campaign_id)
    moved = transition(campaign_id, to, reason, commit=False, **columns)
    if moved and action:
        details = {"send_at": columns["send_at"]} if columns.get("send_at") else {}
        audit.record(action, "campaign", campaign_id, name=campaign.name, **details)
    db.session.commit()
    db.session.refresh(campaign)
    if not moved:
        raise StateConflict("status", "A %(status)s campaign cannot become %(value)s.",
                            status=Message(campaign.status.value), value=Message(to.value))
    return campaign


def _ready_to_send(campaign: Campaign) -> None:
    if not campaign.lists and not campaign.segments:
        raise ValidationError("list_ids", "Choose at least one list or segment to send to.")
    if campaign.resend_to is not None and campaign.resend_of_id is None:
        raise StateConflict("resend_of_id", "The campaign this resends was deleted: nobody is left to resend to. "
                                            "Clone it to send to the whole lists instead.")
    # Templates were checked when saved; a layout edited since could have broken them.
    _clean(current_values(campaign))


def send_now(campaign_id: int) -> Campaign:
    """Commit the move to `sending`; the caller then enqueues the dispatcher (never before)."""
    campaign = get(campaign_id)
    if campaign.status not in (S.DRAFT, S.SCHEDULED):
        hint = Message(" Resume it instead." if campaign.status == S.PAUSED else "")
        raise StateConflict("status", "A %(status)s campaign cannot be sent again.%(hint)s",
                            status=Message(campaign.status.value), hint=hint)
    _ready_to_send(campaign)
    return _move(campaign_id, S.SENDING, action="campaign.sent", started_at=utcnow())


def schedule(campaign_id: int, send_at: datetime) -> Campaign:
    if send_at.tzinfo is None:
        raise ValidationError("send_at", "Give the time with its timezone.")
    if send_at <= datetime.now(UTC):
        raise ValidationError("send_at", "Pick a time in the future.")
    send_at = send_at.astimezone(UTC)  # SQLite keeps the digits and drops the offset
    _ready_to_send(get(campaign_id))
    campaign = get(campaign_id)
    if campaign.status == S.SCHEDULED:  # a new time for an already scheduled campaign
        campaign.send_at = send_at
        audit.record("campaign.scheduled", "campaign", campaign_id, name=campaign.name, send_at=send_at)
        db.session.commit()
        return campaign
    return _move(campaign_id, S.SCHEDULED, action="campaign.scheduled", send_at=send_at)


def unschedule(campaign_id: int) -> Campaign:
    return _move(campaign_id, S.DRAFT, action="campaign.unscheduled", send_at=None)


def pause(campaign_id: int, reason: str = "Paused by a user.") -> Campaign:
    return _move(campaign_id, S.PAUSED, reason, action="campaign.paused")


def resume(campaign_id: int) -> Campaign:
    # Only from paused: draft -> sending is `send_now`, which checks the campaign first.
    campaign = get(campaign_id)
    if campaign.status != S.PAUSED:
        raise StateConflict("status", "A %(status)s campaign cannot become sending.",
                            status=Message(campaign.status.value))
    return _move(campaign_id, S.SENDING, action="campaign.resumed")


def cancel(campaign_id: int) -> Campaign:
    """Stop for good: deliveries not yet handed to the SMTP server end as cancelled."""
    campaign = _move(campaign_id, S.CANCELLED, "Cancelled by a user.", action="campaign.cancelled",
                     finished_at=utcnow())
    ledger.cancel_unsent(campaign_id)
    record_totals(campaign_id)
    return campaign


RETRY_FROM = (S.SENT, S.CANCELLED)  # the statuses a retry of failed deliveries starts from


def retry_failed(campaign_id: int, by: str = "") -> int:
    """Transiently failed and cancelled deliveries go back to pending with a fresh attempt
    budget, and a sent or cancelled campaign back to sending; returns how many rows moved.

    Row moves and the campaign's move commit together, so the sweeper never sees a cancelled
    campaign with pending rows. The caller enqueues the dispatcher after this returns (> 0).
    Permanent failures (5xx) stay as they are.
    """
    status = db.session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
    if status is None:
        raise NotFound("campaign", campaign_id)
    if status not in RETRY_FROM:
        raise StateConflict("status", "A %(value)s campaign cannot retry its failures: only a sent or cancelled one"
                                      " can.", value=Message(status.value))
    if not transition(campaign_id, S.SENDING, "Retrying failed deliveries.", commit=False,
                      finished_at=None):
        db.session.rollback()
        raise StateConflict("status", "The campaign changed status meanwhile; reload and try again.")
    moved = ledger.requeue_retryable(campaign_id, by)
    if not moved:
        db.session.rollback()  # nothing to send: the campaign stays as it was
        return 0
    ab_variants.hold_rest(campaign_id)  # an A/B test's rest still waits for its winner
    audit.record("campaign.retried", "campaign", campaign_id, deliveries=moved)
    db.session.commit()
    record_totals(campaign_id)
    return moved


def start_due(now: datetime | None = None) -> list[int]:
    """Scheduled campaigns whose time has come move to `sending`; returns their ids."""
    now = now or utcnow()
    due = db.session.scalars(select(Campaign.id).where(Campaign.status == S.SCHEDULED, Campaign.send_at <= now))
    return [campaign_id for campaign_id in list(due) if transition(campaign_id, S.SENDING, started_at=now)]


def subscriber_choices(query: str = "", limit: int = 20) -> list[Subscriber]:
    """Subscribers to preview as (an email substring, newest first)."""
    statement = select(Subscriber).order_by(Subscriber.id.desc()).limit(limit)
    if query:
        statement = statement.where(Subscriber.email.contains(query.strip().lower(), autoescape=True))
    return list(db.session.scalars(statement))



# Preview and progress -----------------------------------------------------------------------

def render_preview(values: Mapping[str, Any], subscriber_id: int | None = None, live_links: bool = False) -> Any:
    """Render unsaved or saved content as the sample subscriber or a real one.

    The links in it are inert previews unless `live_links` (the recipient's own web view).
    Returns a `Rendered` (subject, html, text); ValidationError names the broken part.
    """
    _, _, html = body_html(values)
    values = {**values, "html": html}
    try:
        compile_each((field, values.get(field) or "") for field in ("subject", "html", "text"))
        layout_id = whole_number(values["layout_id"], "layout_id", "layout id") if values.get("layout_id") else None
        compiled = CompiledMessage(values.get("subject") or "", values.get("html") or "", values.get("text") or "",
                                   _layout_html(layout_id))
    except RenderError as exc:
        raise ValidationError(exc.field, exc.message) from None
    except (TypeError, ValueError):
        raise ValidationError("layout_id", "The layout id must be a number.") from None
    campaign_id = values.get("id")
    context = sample_context()
    context["campaign"].update({"id": campaign_id or 0, "name": values.get("name") or "",
                                "subject": values.get("subject") or ""})
    if not live_links:
        try:  # as saving does: a subscriber without any attribute must not break it
            compiled.render(context)
        except RenderError as exc:
            raise ValidationError(exc.field, exc.message) from None
    if subscriber_id is None:
        if not live_links:  # an admin's preview; a public web view never shows anyone's values
            context["subscriber"]["attributes"] = audience_attributes(parse_list_ids(values.get("list_ids")))
    else:
        subscriber = db.session.get(Subscriber, subscriber_id)
        if subscriber is None:
            raise ValidationError("subscriber_id", "No subscriber with id %(subscriber_id)s.",
                                  subscriber_id=subscriber_id)
        campaign = context["campaign"]
        if live_links:
            context = recipient_context(campaign, list(values.get("list_ids") or []), subscriber.id, subscriber.email,
                                        subscriber.name, subscriber.attributes, subscriber.token_version)
        else:
            context = preview_context(campaign, subscriber.id, subscriber.email, subscriber.name,
                                      subscriber.attributes)
    try:
        return compiled.render(context)
    except RenderError as exc:
        raise ValidationError(exc.field, exc.message) from None


def totals(campaign: Campaign) -> dict[str, int]:
    """Live from the ledger while sending or paused; otherwise the totals the pipeline recorded."""
    keys = ("recipients", "sent", "failed", "cancelled", "skipped", "pending")
    # What came back after sending: counted as reports arrive, in any status.
    returned = {"bounced": campaign.bounced, "complained": campaign.complained}
    if campaign.status in (S.SENDING, S.PAUSED):
        live = progress(campaign.id)
        return {key: live[key] for key in keys} | returned
    return {key: getattr(campaign, key) for key in keys} | returned


def progress(campaign_id: int) -> dict[str, Any]:
    """Live numbers for the campaign page, straight from the Delivery table (an index-only count
    by status; the batches write their outcomes every `send.RECORD_EVERY` seconds)."""
    campaign = get(campaign_id)
    by_status = ledger.counts(campaign_id)
    total = sum(by_status.values())
    done = by_status["sent"] + by_status["failed"] + by_status["cancelled"]
    pending = total - done
    rate = ledger.rate(campaign_id) if campaign.status == S.SENDING else 0.0
    return {
        "id": campaign.id, "status": campaign.status.value, "reason": campaign.status_reason,
        "recipients": total, "sent": by_status["sent"], "failed": by_status["failed"],
        "cancelled": by_status["cancelled"], "pending": pending,
        "skipped": campaign.skipped, "snapshot_done": campaign.snapshot_at is not None,
        # While the recipients are frozen their total still grows: the page says so, not "0 %".
        "phase": "preparing" if campaign.status == S.SENDING and campaign.snapshot_at is None
        else campaign.status.value,
        "rate": round(rate, 1), "eta_seconds": round(pending / rate) if rate > 0 else None,
        "percent": round(100 * done / total, 1) if total else (100.0 if campaign.status.finished else 0.0),
    }
