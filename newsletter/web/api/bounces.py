"""/api/v1/bounces: report a bounce or complaint from anywhere the platform cannot see itself
(a provider without a webhook here, a CRM), and list what came back from every source."""
from __future__ import annotations

from typing import Any

import marshmallow as ma

from ...models import Bounce, BounceType
from ...services.deliverability import bounces
from .core import MAX_ID, InSchema, PageArgs, decode_cursor, page, page_schema, resource_blueprint

bp = resource_blueprint("bounces", "/bounces",
                        "Bounces and complaints: from the bounce mailbox, provider webhooks and this API, "
                        "all acted on by the same rules (docs/deliverability.md).")

TYPES = [t.value for t in BounceType]
DOMAIN = r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$"


class BounceIn(InSchema):
    email = ma.fields.Email(validate=ma.validate.Length(max=254),
                            metadata={"description": "The address that bounced (or complained)."})
    delivery_id = ma.fields.Integer(validate=ma.validate.Range(1, 2**63 - 1),
                                    metadata={"description": "A campaign delivery, from `/campaigns/{id}/deliveries`."})
    notification_id = ma.fields.Integer(validate=ma.validate.Range(1, MAX_ID),
                                        metadata={"description": "A notification, from `/notifications`."})
    type = ma.fields.String(required=True, validate=ma.validate.OneOf(TYPES),
                            metadata={"description": "`hard` (permanent), `soft` (transient) or `complaint`."})
    status_code = ma.fields.String(load_default="", validate=ma.validate.Regexp(
        r"^([245]\.\d{1,3}\.\d{1,3}|[245]\d\d)?$", error="An enhanced status code (5.1.1) or a reply code (550)."),
        metadata={"description": "Enhanced status code (`5.1.1`) or SMTP reply code (`550`)."})
    reason = ma.fields.String(load_default="", validate=ma.validate.Length(max=2000),
                              metadata={"description": "The remote server's diagnostic, or why."})
    event_id = ma.fields.String(load_default="", validate=ma.validate.Length(max=200),
                                metadata={"description": "Your id for this report: the same id again is recorded "
                                                         "once (safe retries)."})
    occurred_at = ma.fields.AwareDateTime(load_default=None)

    @ma.validates_schema
    def _one_target(self, data: dict[str, Any], **_: Any) -> None:
        given = [name for name in ("email", "delivery_id", "notification_id") if data.get(name) is not None]
        if not given:
            # As {field: [message]} (what field_name= builds): `make translations` reads a second
            # argument of a ValidationError as a sentence to translate.
            raise ma.ValidationError(
                {"email": ["Give the address (`email`), or a `delivery_id` or `notification_id`."]})
        if "delivery_id" in given and "notification_id" in given:
            raise ma.ValidationError(
                {"notification_id": ["A report is about one message: a delivery or a notification."]})


class BounceOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    type = ma.fields.Enum(BounceType, by_value=True, required=True)
    source = ma.fields.String(required=True)
    email = ma.fields.String(required=True)
    subscriber_id = ma.fields.Integer(required=True, allow_none=True)
    campaign_id = ma.fields.Integer(required=True, allow_none=True)
    delivery_id = ma.fields.Integer(required=True, allow_none=True)
    notification_id = ma.fields.Integer(required=True, allow_none=True)
    status_code = ma.fields.String(required=True)
    diagnostic = ma.fields.String(required=True)
    event_id = ma.fields.String(required=True)
    occurred_at = ma.fields.DateTime(required=True, allow_none=True)
    created_at = ma.fields.DateTime(required=True)


class BounceRecorded(BounceOut):
    recorded = ma.fields.Boolean(required=True, metadata={"description": "False: `event_id` was already recorded; "
                                                                         "nothing changed."})
    action = ma.fields.String(required=True, metadata={
        "description": "What the rules did: `suppressed` (hard bounce, or the soft rule reached), `counted` "
                       "(soft bounce), `complained`, or `none`.",
        "enum": ["suppressed", "counted", "complained", "none"]})


class BounceArgs(PageArgs):
    type = ma.fields.String(load_default=None, validate=ma.validate.OneOf(TYPES))
    campaign_id = ma.fields.Integer(load_default=None, validate=ma.validate.Range(1, MAX_ID))
    domain = ma.fields.String(load_default=None, validate=ma.validate.Regexp(DOMAIN, error="A domain: example.com."))


@bp.route("", methods=["POST"])
@bp.arguments(BounceIn)
@bp.response(201, BounceRecorded)
@bp.alt_response(200, schema=BounceRecorded, description="A repeat of an `event_id` already recorded.")
@bp.alt_response(404, response="NOT_FOUND", description="No such delivery or notification.")
def create(body: dict[str, Any]) -> Any:
    """Report a bounce or complaint; the same rules as every other source act on it at once."""
    row, result = bounces.report_from_api(body)
    out = {column.key: getattr(row, column.key) for column in Bounce.__table__.columns}
    out.update(recorded=result.status == "recorded", action=result.action)
    return out, 201 if result.status == "recorded" else 200


@bp.route("", methods=["GET"])
@bp.arguments(BounceArgs, location="query")
@bp.response(200, page_schema(BounceOut, "BouncePage"))
def index(args: dict[str, Any]) -> dict[str, Any]:
    """Bounces and complaints from every source, newest first."""
    rows: list[Bounce] = bounces.recent(args["limit"] + 1, decode_cursor(args["cursor"]), args["type"],
                                        args["campaign_id"], args["domain"])
    return page(rows, args["limit"])
