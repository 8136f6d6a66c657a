"""/api/v1/lists: mailing lists."""
from __future__ import annotations

from typing import Any

import marshmallow as ma
from sqlalchemy import select

from ...extensions import db
from ...models import MailingList
from ...services.audience import lists
from .core import InSchema, PageArgs, decode_cursor, page, page_schema, resource_blueprint

bp = resource_blueprint("lists", "/lists", "Mailing lists people subscribe to.")

OPT_IN = ma.validate.OneOf(["single", "double"])


class ListOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    description = ma.fields.String(required=True)
    opt_in = ma.fields.Function(lambda m: m.opt_in.value, required=True,
                                metadata={"type": "string", "enum": ["single", "double"]})
    public = ma.fields.Boolean(required=True)
    created_at = ma.fields.DateTime(required=True)
    updated_at = ma.fields.DateTime(required=True)


class ListIn(InSchema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(1, 200))
    opt_in = ma.fields.String(required=True, validate=OPT_IN)
    public = ma.fields.Boolean(load_default=False)
    description = ma.fields.String(load_default="", validate=ma.validate.Length(max=5000))


class ListPatch(InSchema):
    name = ma.fields.String(validate=ma.validate.Length(1, 200))
    opt_in = ma.fields.String(validate=OPT_IN)
    public = ma.fields.Boolean()
    description = ma.fields.String(validate=ma.validate.Length(max=5000))


@bp.route("", methods=["POST"])
@bp.arguments(ListIn)
@bp.response(201, ListOut)
def create(body: dict[str, Any]) -> MailingList:
    """Create a list."""
    return lists.create(**body)


@bp.route("", methods=["GET"])
@bp.arguments(PageArgs, location="query")
@bp.response(200, page_schema(ListOut, "ListPage"))
def index(args: dict[str, Any]) -> dict[str, Any]:
    """All lists, oldest first."""
    query = select(MailingList).order_by(MailingList.id).limit(args["limit"] + 1)
    if (after := decode_cursor(args["cursor"])) is not None:
        query = query.where(MailingList.id > after)
    return page(db.session.scalars(query).all(), args["limit"])


@bp.route("/<int:list_id>", methods=["GET"])
@bp.response(200, ListOut)
def read(list_id: int) -> MailingList:
    """One list."""
    return lists.get(list_id)


@bp.route("/<int:list_id>", methods=["PATCH"])
@bp.arguments(ListPatch)
@bp.response(200, ListOut)
def patch(body: dict[str, Any], list_id: int) -> MailingList:
    """Change a list's name, description, opt-in or visibility."""
    return lists.update(list_id, **body)


@bp.route("/<int:list_id>", methods=["DELETE"])
@bp.response(204)
def delete(list_id: int) -> None:
    """Delete a list and its memberships (the subscribers stay)."""
    lists.delete(list_id)
