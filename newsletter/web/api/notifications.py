"""/api/v1/notifications: transactional email to one address, sent through the priority lane."""
from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import g, request

from ...models import Notification, NotificationKind, NotificationStatus
from ...services.errors import ValidationError
from ...services.notifications import notifications
from ...tasks import enqueue
from ...tasks.notifications import send_notification
from .core import MAX_ID, InSchema, PageArgs, decode_cursor, page, page_schema, resource_blueprint

bp = resource_blueprint("notifications", "/notifications",
                        "Transactional email (welcome, password reset, receipts): one message to one address, "
                        "never delayed by campaigns.")

IDEMPOTENCY_HEADER = "Idempotency-Key"
# Only one-off mail is ever cancelled, and the API lists only its own notifications (kind
# `api`): the platform's confirmations and manage links carry subscribers' live links.
STATUSES = [s.value for s in NotificationStatus if s is not NotificationStatus.CANCELLED]


class Recipient(ma.fields.Field):
    """An address (`"ada@example.com"`) or a subscriber (`{"subscriber_id": 7}`)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> dict[str, Any]:
        if isinstance(value, str):
            return {"email": value}
        if isinstance(value, dict) and set(value) == {"subscriber_id"}:
            subscriber_id = value["subscriber_id"]
            if isinstance(subscriber_id, int) and not isinstance(subscriber_id, bool) and 0 < subscriber_id <= MAX_ID:
                return {"subscriber_id": subscriber_id}
        raise ma.ValidationError('An email address, or {"subscriber_id": <id>}.')


RECIPIENT_DOC = {"oneOf": [
    {"type": "string", "format": "email", "maxLength": 254},
    {"type": "object", "properties": {"subscriber_id": {"type": "integer", "minimum": 1, "maximum": MAX_ID}},
     "required": ["subscriber_id"], "additionalProperties": False},
]}


class NotificationIn(InSchema):
    to = Recipient(required=True, metadata=RECIPIENT_DOC)
    subject = ma.fields.String(validate=ma.validate.Length(max=2000),
                               metadata={"description": "Jinja2 (sandboxed); overrides the template's."})
    html = ma.fields.String(validate=ma.validate.Length(max=1_000_000))
    text = ma.fields.String(validate=ma.validate.Length(max=1_000_000))
    template_id = ma.fields.Integer(validate=ma.validate.Range(min=1))
    data = ma.fields.Dict(keys=ma.fields.String(), load_default=dict,
                          metadata={"description": "Values the templates use: `{{ name }}`. At most "
                                                   f"{notifications.MAX_DATA_BYTES // 1024} KB as JSON."})


class NotificationAccepted(ma.Schema):
    id = ma.fields.Integer(required=True)
    status = ma.fields.Function(lambda n: n.status.value, required=True,
                                metadata={"type": "string", "enum": STATUSES})


class NotificationOut(NotificationAccepted):
    to = ma.fields.Function(lambda n: n.email, required=True, metadata={"type": "string"})
    email = ma.fields.String(required=True)
    subscriber_id = ma.fields.Integer(allow_none=True, required=True)
    template_id = ma.fields.Integer(allow_none=True, required=True)
    subject = ma.fields.String(required=True)
    attempts = ma.fields.Integer(required=True)
    smtp_code = ma.fields.Integer(allow_none=True, required=True)
    smtp_message = ma.fields.String(required=True)
    next_attempt_at = ma.fields.DateTime(allow_none=True, required=True)
    sent_at = ma.fields.DateTime(allow_none=True, required=True)
    created_at = ma.fields.DateTime(required=True)


class NotificationPageArgs(PageArgs):
    status = ma.fields.String(load_default=None, validate=ma.validate.OneOf(STATUSES))


def _idempotency_key() -> str | None:
    raw = request.headers.get(IDEMPOTENCY_HEADER)
    if raw is None:
        return None
    key = raw.strip()
    if not key or len(key) > 200 or not key.isprintable() or not key.isascii():
        raise ValidationError(IDEMPOTENCY_HEADER, "1 to 200 printable ASCII characters.")
    return key


@bp.route("", methods=["POST"])
@bp.arguments(NotificationIn)
@bp.response(202, NotificationOut)
@bp.alt_response(409, response="CONFLICT")
@bp.doc(parameters=[{"in": "header", "name": IDEMPOTENCY_HEADER, "required": False,
                     "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!-~]([ -~]*[!-~])?$"},
                     "description": "Retry safely: the same key with the same body returns the same notification "
                                    "and sends nothing new; with a different body, 409."}])
def create(body: dict[str, Any]) -> Notification:
    """Accept a notification: rendered now (errors are 422 naming the field), sent at once on the priority lane."""
    notification, created = notifications.accept(body, g.get("api_key_id"), _idempotency_key())
    if created:
        enqueue(send_notification, notification.id)  # committed by accept
    return notification


@bp.route("", methods=["GET"])
@bp.arguments(NotificationPageArgs, location="query")
@bp.response(200, page_schema(NotificationOut, "NotificationPage"))
def index(args: dict[str, Any]) -> dict[str, Any]:
    """Notifications, newest first."""
    rows = notifications.recent(args["limit"] + 1, decode_cursor(args["cursor"]), args["status"])
    return page(rows, args["limit"])


@bp.route("/<int:notification_id>", methods=["GET"])
@bp.response(200, NotificationOut)
def read(notification_id: int) -> Notification:
    """One notification: its status, attempts and the SMTP server's last answer."""
    return notifications.get(notification_id, NotificationKind.API)
