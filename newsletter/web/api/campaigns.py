"""/api/v1/campaigns: compose, send or schedule, pause, resume, cancel, and follow the deliveries."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import marshmallow as ma

from ...models import (
    VARIANT_LABELS,
    AbMetric,
    AbMode,
    BodyFormat,
    BounceType,
    Campaign,
    CampaignStatus,
    DeliveryStatus,
    ResendTo,
    Tracking,
)
from ...services.campaigns import ab_tests, campaigns, resend
from ...services.campaigns import translations as translations_service
from ...services.deliverability import bounces, preflight
from ...services.delivery import ledger as deliveries
from ...services.engagement import report as engagement_report
from ...services.engagement import stats as engagement
from ...tasks import campaigns as campaign_tasks
from ...tasks import enqueue
from .core import MAX_ID, InSchema, PageArgs, decode_cursor, page, page_schema, resource_blueprint

bp = resource_blueprint("campaigns", "/campaigns", "Campaigns: compose, send, control and follow them.")

ID = ma.validate.Range(1, MAX_ID)
BODY = ma.validate.Length(max=1_000_000)
TRACKING_HELP = ("Opens and clicks: `off`, `anonymous` (counts only, nobody named) or `individual` "
                 "(per subscriber); absent at creation: the settings' default.")
FORMAT_HELP = ("How the body is written: `html` (the default: `html` is the body), `markdown`, `richtext` (the "
               "rich-text editor's HTML) or `visual` (the visual editor's project JSON in `body_source`, its "
               "exported HTML in `html`). For markdown and richtext the server makes `html` from `body_source` "
               "(raw HTML in Markdown is escaped; scripts, frames, forms and event handlers are removed from "
               "rich-text and visual HTML). Sending `html` alone on a PATCH makes the body `html` again.")
SOURCE_HELP = "What the editor works on: the Markdown text, the rich-text HTML or the visual project JSON."
SEGMENTS_HELP = ("Saved segments (/api/v1/segments) it also goes to: the snapshot at send time takes the "
                 "lists' and the segments' confirmed, unsuppressed subscribers, each address once.")
POOL_HELP = ("The sending servers' pool it goes out through (an admin sets pools up under Settings → Sending "
             "servers); `default`, the Settings page's server, when absent. A pool with no enabled server is a 422.")


TRANSLATIONS_HELP = ("The subject and HTML body in other languages, keyed by a short BCP 47 tag (`de`, `pt-BR`): "
                     "a subscriber whose `language` is that tag (or has it as primary language: `de-AT` gets `de`) "
                     "receives that variant, everyone else the campaign's own subject and body. Checked like the "
                     "campaign's own templates. On a PATCH the object replaces every translation; `{}` removes them.")


class TranslationIn(InSchema):
    subject = ma.fields.String(required=True, validate=ma.validate.Length(1, 500))
    body = ma.fields.String(required=True, validate=ma.validate.Length(1, 1_000_000),
                            metadata={"description": "Jinja template of the HTML body, as `html`."})


class TranslationOut(ma.Schema):
    subject = ma.fields.String(required=True)
    body = ma.fields.String(required=True)


class Translations(ma.fields.Dict):
    """A campaign's translations, read from their table."""

    def get_value(self, obj: Any, attr: str, accessor: Any = None, default: Any = ma.missing) -> Any:
        return translations_service.of(obj.id)


class ListRef(ma.Schema):
    id = ma.fields.Integer(required=True)


class TotalsOut(ma.Schema):
    recipients = ma.fields.Integer(required=True)
    sent = ma.fields.Integer(required=True)
    failed = ma.fields.Integer(required=True)
    cancelled = ma.fields.Integer(required=True)
    skipped = ma.fields.Integer(required=True, metadata={"description": "Left out at the snapshot "
                                                                        "(suppressed, unsubscribed, unconfirmed)."})
    pending = ma.fields.Integer(required=True)
    bounced = ma.fields.Integer(required=True, metadata={"description": "Deliveries that bounced (hard or soft), "
                                                                        "each counted once."})
    complained = ma.fields.Integer(required=True, metadata={"description": "Deliveries that drew a complaint."})


class Totals(ma.fields.Nested):
    """A campaign's totals: live while it sends or is paused, final (from the ledger) after."""

    def get_value(self, obj: Any, attr: str, accessor: Any = None, default: Any = ma.missing) -> Any:
        return campaigns.totals(obj)


AB_HELP = ("An A/B test: `share` percent of the recipients (a reproducible random sample, split evenly) get "
           "the 2-4 variants; after `wait_minutes` the variant with the best `metric` (distinct human openers or "
           "clickers, individual tracking) goes to the rest (`mode` auto), or the marketer picks it (`manual`, "
           "POST .../ab/winner). null: no test (on a PATCH, null removes it).")


class AbVariantIn(InSchema):
    subject = ma.fields.String(required=True, validate=ma.validate.Length(1, 500))
    from_name = ma.fields.String(validate=ma.validate.Length(max=200),
                                 metadata={"description": "Empty or absent: the campaign's."})
    html = ma.fields.String(validate=BODY, metadata={"description": "Its own HTML body; empty or absent: the "
                                                                     "campaign's."})


class AbTestIn(InSchema):
    variants = ma.fields.List(ma.fields.Nested(AbVariantIn), required=True,
                              validate=ma.validate.Length(2, len(VARIANT_LABELS)),
                              metadata={"description": "Labelled A, B, C, D in this order."})
    share = ma.fields.Integer(required=True, validate=ma.validate.Range(1, 100),
                              metadata={"description": "Percent of the recipients in the test."})
    metric = ma.fields.String(load_default="opens", validate=ma.validate.OneOf([m.value for m in AbMetric]))
    wait_minutes = ma.fields.Integer(load_default=60, validate=ma.validate.Range(0, ab_tests.MAX_WAIT_MINUTES),
                                     metadata={"description": "From the test share's start to the pick (auto)."})
    mode = ma.fields.String(load_default="auto", validate=ma.validate.OneOf([m.value for m in AbMode]))


class AbVariantOut(ma.Schema):
    label = ma.fields.String(required=True)
    subject = ma.fields.String(required=True)
    from_name = ma.fields.String(required=True)
    html = ma.fields.String(required=True)


class AbTestOut(ma.Schema):
    variants = ma.fields.List(ma.fields.Nested(AbVariantOut), required=True)
    share = ma.fields.Integer(required=True, attribute="ab_share")
    metric = ma.fields.Enum(AbMetric, by_value=True, required=True, attribute="ab_metric")
    wait_minutes = ma.fields.Function(lambda c: c.ab_wait // 60, required=True)
    mode = ma.fields.Enum(AbMode, by_value=True, required=True, attribute="ab_mode")
    winner = ma.fields.String(required=True, allow_none=True, attribute="ab_winner")


class AbTestField(ma.fields.Nested):
    """The campaign itself seen as its test (null without one)."""

    def get_value(self, obj: Any, attr: str, accessor: Any = None, default: Any = ma.missing) -> Any:
        return obj if obj.ab_test else None


class CampaignOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    subject = ma.fields.String(required=True)
    from_name = ma.fields.String(required=True)
    from_email = ma.fields.String(required=True)
    reply_to = ma.fields.String(required=True)
    html = ma.fields.String(required=True)
    text = ma.fields.String(required=True)
    body_format = ma.fields.Enum(BodyFormat, by_value=True, required=True, metadata={"description": FORMAT_HELP})
    body_source = ma.fields.String(required=True, metadata={"description": SOURCE_HELP})
    layout_id = ma.fields.Integer(required=True, allow_none=True)
    list_ids = ma.fields.Pluck(ListRef, "id", many=True, attribute="lists", required=True)
    segment_ids = ma.fields.Pluck(ListRef, "id", many=True, attribute="segments", required=True,
                                  metadata={"description": SEGMENTS_HELP})
    tracking = ma.fields.Enum(Tracking, by_value=True, required=True, metadata={"description": TRACKING_HELP})
    pool = ma.fields.String(required=True, metadata={"description": POOL_HELP})
    status = ma.fields.Enum(CampaignStatus, by_value=True, required=True)
    status_reason = ma.fields.String(required=True, metadata={"description": "Why it paused or failed."})
    send_at = ma.fields.DateTime(required=True, allow_none=True)
    totals = Totals(TotalsOut, required=True)
    created_at = ma.fields.DateTime(required=True)
    updated_at = ma.fields.DateTime(required=True)
    started_at = ma.fields.DateTime(required=True, allow_none=True)
    finished_at = ma.fields.DateTime(required=True, allow_none=True)
    translations = Translations(keys=ma.fields.String(), values=ma.fields.Nested(TranslationOut), required=True,
                                metadata={"description": TRANSLATIONS_HELP})
    resend_of_id = ma.fields.Integer(required=True, allow_none=True, metadata={
        "description": "The campaign this one resends (null: not a resend, or the original was deleted)."})
    resend_to = ma.fields.Enum(ResendTo, by_value=True, required=True, allow_none=True, metadata={
        "description": "A resend goes only to the original's recipients without a human open "
                       "(`non_openers`) or click (`non_clickers`), decided when it is sent."})
    ab_test = AbTestField(AbTestOut, required=True, allow_none=True, metadata={"description": AB_HELP})


class CampaignPatch(InSchema):
    name = ma.fields.String(validate=ma.validate.Length(1, 200))
    subject = ma.fields.String(validate=ma.validate.Length(1, 500))
    from_email = ma.fields.String(validate=ma.validate.Length(1, 254))
    from_name = ma.fields.String(validate=ma.validate.Length(max=200))
    reply_to = ma.fields.String(validate=ma.validate.Length(max=254))
    html = ma.fields.String(validate=BODY, metadata={"description": "Jinja template of the HTML body."})
    text = ma.fields.String(validate=BODY, metadata={"description": "Text body; empty: made from the HTML."})
    body_format = ma.fields.String(validate=ma.validate.OneOf([f.value for f in BodyFormat]),
                                   metadata={"description": FORMAT_HELP})
    body_source = ma.fields.String(validate=BODY, metadata={"description": SOURCE_HELP})
    list_ids = ma.fields.List(ma.fields.Integer(validate=ID), validate=ma.validate.Length(max=1000))
    segment_ids = ma.fields.List(ma.fields.Integer(validate=ID), validate=ma.validate.Length(max=100),
                                 metadata={"description": SEGMENTS_HELP})
    layout_id = ma.fields.Integer(validate=ID, allow_none=True)
    tracking = ma.fields.String(validate=ma.validate.OneOf([t.value for t in Tracking]),
                                metadata={"description": TRACKING_HELP})
    pool = ma.fields.String(validate=ma.validate.Length(1, 64), metadata={"description": POOL_HELP})
    ab_test = ma.fields.Nested(AbTestIn, allow_none=True, metadata={"description": AB_HELP})
    translations = ma.fields.Dict(keys=ma.fields.String(validate=ma.validate.Length(1, 16)),
                                  values=ma.fields.Nested(TranslationIn), validate=ma.validate.Length(max=50),
                                  metadata={"description": TRANSLATIONS_HELP, "example": {
                                      "de": {"subject": "Hallo {{ subscriber.name }}", "body": "<p>Hallo!</p>"}}})


class CampaignIn(CampaignPatch):
    name = ma.fields.String(required=True, validate=ma.validate.Length(1, 200))
    subject = ma.fields.String(required=True, validate=ma.validate.Length(1, 500))
    from_email = ma.fields.String(required=True, validate=ma.validate.Length(1, 254))
    list_ids = ma.fields.List(ma.fields.Integer(validate=ID), required=True, validate=ma.validate.Length(max=1000))


class SendIn(InSchema):
    send_at = ma.fields.DateTime(load_default=None, allow_none=True, metadata={
        "description": "Schedule for this time (ISO 8601 with an offset); absent: send now."})

    @ma.validates("send_at")
    def _aware(self, value: datetime | None, **_: Any) -> None:
        if value is None:
            return
        if value.tzinfo is None:
            raise ma.ValidationError("Give the time with its timezone offset.")
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ma.ValidationError("Not a time that can be scheduled.") from None


class ResendIn(InSchema):
    to = ma.fields.String(required=True, validate=ma.validate.OneOf([t.value for t in ResendTo]), metadata={
        "description": "`non_openers`: no human open or click; `non_clickers`: no human click. Machine "
                       "events (privacy proxies, scanners) do not count as engagement."})
    subject = ma.fields.String(validate=ma.validate.Length(1, 500),
                               metadata={"description": "A new subject; absent: the original's."})


class CountsOut(ma.Schema):
    total = ma.fields.Integer(required=True, metadata={"description": "Human events."})
    unique = ma.fields.Integer(required=True, allow_none=True, metadata={
        "description": "Distinct subscribers with a human event; null unless tracking is `individual`."})
    machine = ma.fields.Integer(required=True, metadata={"description": "Events classified as machines "
                                                                          "(privacy proxies, scanners)."})


class LinkStatsOut(ma.Schema):
    url = ma.fields.String(required=True)
    clicks = ma.fields.Integer(required=True, metadata={"description": "Human clicks."})
    unique = ma.fields.Integer(required=True, allow_none=True)
    machine = ma.fields.Integer(required=True)


class StatsOut(ma.Schema):
    tracking = ma.fields.String(required=True, validate=ma.validate.OneOf([t.value for t in Tracking]))
    opens = ma.fields.Nested(CountsOut, required=True)
    clicks = ma.fields.Nested(CountsOut, required=True)
    links = ma.fields.List(ma.fields.Nested(LinkStatsOut), required=True,
                           metadata={"description": "Every tracked link, most clicked first."})


class LinkListOut(ma.Schema):
    links = ma.fields.List(ma.fields.Nested(LinkStatsOut), required=True,
                           metadata={"description": "Every tracked link, most clicked first (as in `stats`)."})


class HourCountsOut(ma.Schema):
    total = ma.fields.Integer(required=True, metadata={"description": "Human events in the hour."})
    machine = ma.fields.Integer(required=True, metadata={"description": "Machine events in the hour."})


class HourOut(ma.Schema):
    hour = ma.fields.DateTime(required=True, metadata={"description": "Start of the hour (UTC)."})
    opens = ma.fields.Nested(HourCountsOut, required=True)
    clicks = ma.fields.Nested(HourCountsOut, required=True)


class TimelineOut(ma.Schema):
    tracking = ma.fields.String(required=True, validate=ma.validate.OneOf([t.value for t in Tracking]))
    buckets = ma.fields.List(ma.fields.Nested(HourOut), required=True, metadata={
        "description": "One per hour from the first event to the last, quiet hours at 0; empty before any event. "
                       "A campaign with events over more than a week is given in wider buckets (`hour` is each "
                       "bucket's start)."})


class CampaignArgs(PageArgs):
    status = ma.fields.String(validate=ma.validate.OneOf([s.value for s in CampaignStatus]))


class DeliveryBounceOut(ma.Schema):
    type = ma.fields.Enum(BounceType, by_value=True, required=True)
    status_code = ma.fields.String(required=True)
    diagnostic = ma.fields.String(required=True)
    source = ma.fields.String(required=True)
    at = ma.fields.DateTime(required=True, attribute="created_at")
CHECK_STATUSES = ma.validate.OneOf([preflight.PASS, preflight.WARN, preflight.FAIL])


class CheckOut(ma.Schema):
    key = ma.fields.String(required=True, metadata={"description": "spf, dkim, dmarc, size, links, unsubscribe, "
                                                                   "text (or render when the template is broken)."})
    label = ma.fields.String(required=True)
    status = ma.fields.String(required=True, validate=CHECK_STATUSES)
    detail = ma.fields.String(required=True, metadata={"description": "Why, in a sentence."})
    records = ma.fields.List(ma.fields.String(), required=True, metadata={"description": "DNS records found."})


class PreflightOut(ma.Schema):
    campaign_id = ma.fields.Integer(required=True)
    from_domain = ma.fields.String(required=True)
    return_path_domain = ma.fields.String(required=True, metadata={
        "description": "The envelope sender's domain, which SPF checks (BOUNCE_ADDRESS's when set)."})
    status = ma.fields.String(required=True, validate=CHECK_STATUSES, metadata={"description": "The worst check."})
    checks = ma.fields.List(ma.fields.Nested(CheckOut), required=True)
    checked_at = ma.fields.DateTime(required=True)


class DeliveryOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    email = ma.fields.String(required=True)
    status = ma.fields.Enum(DeliveryStatus, by_value=True, required=True)
    attempts = ma.fields.Integer(required=True)
    smtp_code = ma.fields.Integer(required=True, allow_none=True)
    smtp_message = ma.fields.String(required=True)
    sent_at = ma.fields.DateTime(required=True, allow_none=True)
    bounce = ma.fields.Nested(DeliveryBounceOut, required=True, allow_none=True,
                              metadata={"description": "The latest bounce or complaint reported for it, if any."})


class AbVariantReportOut(ma.Schema):
    label = ma.fields.String(required=True)
    subject = ma.fields.String(required=True)
    from_name = ma.fields.String(required=True)
    has_body = ma.fields.Boolean(required=True, metadata={"description": "It has its own HTML body."})
    sent = ma.fields.Integer(required=True, metadata={"description": "Test messages sent."})
    opens = ma.fields.Integer(required=True, metadata={"description": "Distinct human openers (a click counts)."})
    clicks = ma.fields.Integer(required=True, metadata={"description": "Distinct human clickers."})
    open_rate = ma.fields.Float(required=True)
    click_rate = ma.fields.Float(required=True)
    leader = ma.fields.Boolean(required=True, metadata={"description": "The best rate on the metric so far."})
    compared_with = ma.fields.String(required=True, allow_none=True, metadata={
        "description": "The leader (for the leader: the runner-up)."})
    z = ma.fields.Float(required=True)
    p_value = ma.fields.Float(required=True, metadata={"description": "Two-sided."})
    confidence = ma.fields.Float(required=True, metadata={"description": "1 - p_value."})
    summary = ma.fields.String(required=True, metadata={"description": "The comparison in words."})


class AbReportOut(ma.Schema):
    campaign_id = ma.fields.Integer(required=True)
    metric = ma.fields.Enum(AbMetric, by_value=True, required=True)
    mode = ma.fields.Enum(AbMode, by_value=True, required=True)
    share = ma.fields.Integer(required=True)
    wait_minutes = ma.fields.Integer(required=True)
    winner = ma.fields.String(required=True, allow_none=True)
    decided_at = ma.fields.DateTime(required=True, allow_none=True)
    decide_at = ma.fields.DateTime(required=True, allow_none=True, metadata={
        "description": "When beat picks the winner (auto mode, once the test share is out)."})
    held = ma.fields.Integer(required=True, metadata={"description": "Recipients waiting for the winner."})
    test = ma.fields.String(required=True, metadata={"description": "The statistical test used."})
    variants = ma.fields.List(ma.fields.Nested(AbVariantReportOut), required=True)


class AbWinnerIn(InSchema):
    variant = ma.fields.String(required=True, validate=ma.validate.OneOf(list(VARIANT_LABELS)))


class DeliveryArgs(PageArgs):
    status = ma.fields.String(validate=ma.validate.OneOf([s.value for s in DeliveryStatus]))


# Compose ------------------------------------------------------------------------------------

@bp.route("", methods=["POST"])
@bp.arguments(CampaignIn)
@bp.response(201, CampaignOut)
def create(body: dict[str, Any]) -> Campaign:
    """Create a draft; templates are checked (and test-rendered) now."""
    return campaigns.create(**body)


@bp.route("", methods=["GET"])
@bp.arguments(CampaignArgs, location="query")
@bp.response(200, page_schema(CampaignOut, "CampaignPage"))
def index(args: dict[str, Any]) -> dict[str, Any]:
    """All campaigns (or those of one status), oldest first."""
    status = CampaignStatus(args["status"]) if args.get("status") else None
    rows = campaigns.oldest_first(decode_cursor(args["cursor"]), args["limit"] + 1, status)
    return page(rows, args["limit"])


@bp.route("/<int:campaign_id>", methods=["GET"])
@bp.response(200, CampaignOut)
def read(campaign_id: int) -> Campaign:
    """One campaign with its status and totals; `status` is "sent" once the final totals are in."""
    return campaigns.get(campaign_id)


@bp.route("/<int:campaign_id>", methods=["PATCH"])
@bp.arguments(CampaignPatch)
@bp.response(200, CampaignOut)
@bp.alt_response(409, response="CONFLICT")
def patch(body: dict[str, Any], campaign_id: int) -> Campaign:
    """Change a draft or scheduled campaign (409 once it has started)."""
    return campaigns.update(campaign_id, **body)


@bp.route("/<int:campaign_id>", methods=["DELETE"])
@bp.response(204)
@bp.alt_response(409, response="CONFLICT")
def delete(campaign_id: int) -> None:
    """Delete a campaign that is not sending or paused (cancel it first)."""
    campaigns.delete(campaign_id)


# Status changes: a campaign in the wrong state for one is a 409 naming `status`. ----------

@bp.route("/<int:campaign_id>/send", methods=["POST"])
@bp.arguments(SendIn, required=False)
@bp.response(202, CampaignOut)
@bp.alt_response(409, response="CONFLICT")
def send(body: dict[str, Any], campaign_id: int) -> Campaign:
    """Send now, or schedule with `send_at`; exactly what the campaign page's buttons do."""
    if body.get("send_at") is not None:
        return campaigns.schedule(campaign_id, body["send_at"])
    campaign = campaigns.send_now(campaign_id)
    enqueue(campaign_tasks.dispatch_campaign, campaign.id)  # after send_now committed the move to sending
    return campaign


@bp.route("/<int:campaign_id>/unschedule", methods=["POST"])
@bp.response(200, CampaignOut)
@bp.alt_response(409, response="CONFLICT")
def unschedule(campaign_id: int) -> Campaign:
    """A scheduled campaign back to draft."""
    return campaigns.unschedule(campaign_id)


@bp.route("/<int:campaign_id>/pause", methods=["POST"])
@bp.response(200, CampaignOut)
@bp.alt_response(409, response="CONFLICT")
def pause(campaign_id: int) -> Campaign:
    """Pause sending; messages already handed to the mail server still go out."""
    return campaigns.pause(campaign_id)


@bp.route("/<int:campaign_id>/resume", methods=["POST"])
@bp.response(202, CampaignOut)
@bp.alt_response(409, response="CONFLICT")
def resume(campaign_id: int) -> Campaign:
    """Resume a paused campaign."""
    campaign = campaigns.resume(campaign_id)
    enqueue(campaign_tasks.dispatch_campaign, campaign.id)  # after resume committed
    return campaign


@bp.route("/<int:campaign_id>/cancel", methods=["POST"])
@bp.response(200, CampaignOut)
@bp.alt_response(409, response="CONFLICT")
def cancel(campaign_id: int) -> Campaign:
    """Stop for good: deliveries not yet handed to the mail server end as cancelled."""
    return campaigns.cancel(campaign_id)


# Engagement -----------------------------------------------------------------------------------

@bp.route("/<int:campaign_id>/resend", methods=["POST"])
@bp.arguments(ResendIn)
@bp.response(201, CampaignOut)
@bp.alt_response(409, response="CONFLICT")
def resend_campaign(body: dict[str, Any], campaign_id: int) -> Campaign:
    """A draft copy of a sent campaign for those who did not open (or click) it.

    Only for campaigns sent with `individual` tracking (409 names why otherwise). Who gets it
    is decided when the draft is sent: the original's recipients with no human open (or
    click) by then, minus the usual exclusions.
    """
    return resend.create(campaign_id, body["to"], body.get("subject"))

@bp.route("/<int:campaign_id>/ab", methods=["GET"])
@bp.response(200, AbReportOut)
@bp.alt_response(409, response="CONFLICT")
def ab_report(campaign_id: int) -> dict[str, Any]:
    """The A/B test: each variant's test messages, human openers and clickers, and its confidence
    against the leader (a pooled two-proportion z-test, two-sided). 409 without a test."""
    return ab_tests.report(campaign_id)


@bp.route("/<int:campaign_id>/ab/winner", methods=["POST"])
@bp.arguments(AbWinnerIn)
@bp.response(200, AbReportOut)
@bp.alt_response(409, response="CONFLICT")
def ab_winner(body: dict[str, Any], campaign_id: int) -> dict[str, Any]:
    """Pick the winner (either mode): the recipients still held get it, each once. 409 once picked."""
    ab_tests.pick(campaign_id, body["variant"], campaign_tasks.publish_window)
    return ab_tests.report(campaign_id)


@bp.route("/<int:campaign_id>/stats", methods=["GET"])
@bp.response(200, StatsOut)
def stats(campaign_id: int) -> dict[str, Any]:
    """Opens and clicks, human and machine apart, and per link; counted within seconds of the event."""
    return engagement.campaign_stats(campaign_id)


@bp.route("/<int:campaign_id>/stats/links", methods=["GET"])
@bp.response(200, LinkListOut)
def link_stats(campaign_id: int) -> dict[str, Any]:
    """Clicks per tracked link, human and machine apart: the same link objects as `stats`."""
    return {"links": engagement_report.link_stats(campaign_id)}


@bp.route("/<int:campaign_id>/stats/timeline", methods=["GET"])
@bp.response(200, TimelineOut)
def stats_timeline(campaign_id: int) -> dict[str, Any]:
    """Opens and clicks per hour (UTC), human and machine apart, from the pre-aggregated counters."""
    return engagement_report.timeline_buckets(campaign_id)


@bp.route("/<int:campaign_id>/preflight", methods=["GET"])
@bp.response(200, PreflightOut)
def preflight_checks(campaign_id: int) -> dict[str, Any]:
    """Pre-flight checks before sending: SPF, DKIM and DMARC of the From domain and their alignment,
    Gmail's 102 KB clipping, links that are not http(s), the unsubscribe link, the text part.

    Each check is `pass`, `warn` or `fail` with why; DNS answers are kept a minute.
    """
    return preflight.run(campaigns.get(campaign_id).id).as_dict()


# Deliveries -----------------------------------------------------------------------------------

@bp.route("/<int:campaign_id>/deliveries", methods=["GET"])
@bp.arguments(DeliveryArgs, location="query")
@bp.response(200, page_schema(DeliveryOut, "DeliveryPage"))
def delivery_index(args: dict[str, Any], campaign_id: int) -> dict[str, Any]:
    """The campaign's deliveries (one per recipient) in id order, optionally of one status."""
    status = DeliveryStatus(args["status"]) if args.get("status") else None
    rows = deliveries.for_campaign(campaign_id, status, decode_cursor(args["cursor"]), args["limit"] + 1)
    returned = bounces.for_deliveries([row.id for row in rows])
    fields = ("id", "email", "status", "attempts", "smtp_code", "smtp_message", "sent_at")
    items = [{name: getattr(row, name) for name in fields} | {"bounce": returned.get(row.id)} for row in rows]
    return page(items, args["limit"], key=lambda item: item["id"])
