"""/api/v1/subscribers: people, their attributes and their list memberships."""
from __future__ import annotations

from typing import Any

import marshmallow as ma

from ...models import Subscriber, SubscriberStatus, SubscriptionStatus
from ...services.audience import subscribers
from .core import MAX_ID, InSchema, PageArgs, decode_cursor, page, page_schema, resource_blueprint

bp = resource_blueprint("subscribers", "/subscribers", "Subscribers, their attributes and list memberships.")

NEW_STATUS = ma.validate.OneOf([s.value for s in subscribers.NEW_STATUSES])
ANY_STATUS = ma.validate.OneOf([s.value for s in SubscriberStatus])
EMAIL = ma.validate.Length(1, 254)
NAME = ma.validate.Length(max=200)
LIST_ID = ma.validate.Range(1, MAX_ID)
LANGUAGE = {"description": "A short BCP 47 language tag (en, de, pt-BR): the language of system emails, "
                           "public pages and campaign translations for this subscriber; null: not known.",
            "example": "de"}


class MembershipOut(ma.Schema):
    id = ma.fields.Integer(required=True, attribute="list_id")
    name = ma.fields.Function(lambda s: s.mailing_list.name, required=True, metadata={"type": "string"})
    status = ma.fields.Enum(SubscriptionStatus, by_value=True, required=True,
                            metadata={"description": "This membership's status."})


class SubscriberOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    email = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    attributes = ma.fields.Dict(keys=ma.fields.String(), required=True)
    status = ma.fields.Enum(SubscriberStatus, by_value=True, required=True)
    language = ma.fields.String(required=True, allow_none=True, metadata=LANGUAGE)
    lists = ma.fields.List(ma.fields.Nested(MembershipOut), required=True, attribute="subscriptions")
    created_at = ma.fields.DateTime(required=True)
    updated_at = ma.fields.DateTime(required=True)
    confirmed_at = ma.fields.DateTime(required=True, allow_none=True)


def _attributes(**kwargs: Any) -> ma.fields.Dict:
    return ma.fields.Dict(keys=ma.fields.String(validate=ma.validate.Length(1, 100)), **kwargs,
                          metadata={"description": "Free-form JSON values; at most 10,000 characters of JSON."})


class SubscriberIn(InSchema):
    email = ma.fields.String(required=True, validate=EMAIL)
    name = ma.fields.String(load_default="", validate=NAME)
    attributes = _attributes(load_default=dict)
    list_ids = ma.fields.List(ma.fields.Integer(validate=LIST_ID), load_default=list,
                              validate=ma.validate.Length(max=1000))
    status = ma.fields.String(load_default=SubscriberStatus.CONFIRMED.value, validate=NEW_STATUS)
    language = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.Length(max=16),
                                metadata=LANGUAGE)


class SubscriberPatch(InSchema):
    email = ma.fields.String(validate=EMAIL)
    name = ma.fields.String(validate=NAME)
    attributes = _attributes()
    status = ma.fields.String(validate=ANY_STATUS, metadata={
        "description": "Leaving every list with a suppression is an unsubscribe, not a status edit."})
    language = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=16), metadata=LANGUAGE)


class SubscriberArgs(PageArgs):
    email = ma.fields.String(validate=ma.validate.Length(max=254), metadata={"description": "One exact address."})
    list_id = ma.fields.Integer(validate=LIST_ID, metadata={"description": "Members of this list (any status)."})
    status = ma.fields.String(validate=ANY_STATUS)


@bp.route("", methods=["POST"])
@bp.arguments(SubscriberIn)
@bp.response(201, SubscriberOut)
@bp.alt_response(409, response="CONFLICT")
def create(body: dict[str, Any]) -> Subscriber:
    """Add a subscriber, optionally to lists (memberships take its status).

    A suppressed address is refused (422); an address already present is a 409.
    """
    return subscribers.create(**body)


@bp.route("", methods=["GET"])
@bp.arguments(SubscriberArgs, location="query")
@bp.response(200, page_schema(SubscriberOut, "SubscriberPage"))
def index(args: dict[str, Any]) -> dict[str, Any]:
    """Subscribers matching every filter given, oldest first."""
    filters = subscribers.make_filters(email=args.get("email"), status=args.get("status"),
                                       list_id=args.get("list_id"))
    rows = subscribers.oldest_first(filters, decode_cursor(args["cursor"]), args["limit"] + 1)
    return page(rows, args["limit"])


@bp.route("/<int:subscriber_id>", methods=["GET"])
@bp.response(200, SubscriberOut)
def read(subscriber_id: int) -> Subscriber:
    """One subscriber, with its lists."""
    return subscribers.get(subscriber_id)


@bp.route("/<int:subscriber_id>", methods=["PATCH"])
@bp.arguments(SubscriberPatch)
@bp.response(200, SubscriberOut)
@bp.alt_response(409, response="CONFLICT")
def patch(body: dict[str, Any], subscriber_id: int) -> Subscriber:
    """Change the given fields only; a new address already taken is a 409."""
    return subscribers.update(subscriber_id, **body)


@bp.route("/<int:subscriber_id>", methods=["DELETE"])
@bp.response(204)
def delete(subscriber_id: int) -> None:
    """Delete a subscriber and its memberships (a suppression of the address stays)."""
    subscribers.delete(subscriber_id)
