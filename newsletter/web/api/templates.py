"""/api/v1/templates: reusable transactional templates (sandboxed Jinja2, rendered with `data`)."""
from __future__ import annotations

from typing import Any

import marshmallow as ma
from sqlalchemy import select

from ...extensions import db
from ...models import Template
from ...services.notifications import templates
from .core import InSchema, PageArgs, decode_cursor, page, page_schema, resource_blueprint

bp = resource_blueprint("templates", "/templates",
                        "Reusable templates for notifications: subject, HTML and text in sandboxed Jinja2.")


class TemplateOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    subject = ma.fields.String(required=True)
    html = ma.fields.String(required=True)
    text = ma.fields.String(required=True)
    created_at = ma.fields.DateTime(required=True)
    updated_at = ma.fields.DateTime(required=True)


class TemplateIn(InSchema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(1, 200))
    subject = ma.fields.String(required=True, validate=ma.validate.Length(1, 500))
    html = ma.fields.String(load_default="", validate=ma.validate.Length(max=1_000_000))
    text = ma.fields.String(load_default="", validate=ma.validate.Length(max=1_000_000))


class TemplatePatch(InSchema):
    name = ma.fields.String(validate=ma.validate.Length(1, 200))
    subject = ma.fields.String(validate=ma.validate.Length(1, 500))
    html = ma.fields.String(validate=ma.validate.Length(max=1_000_000))
    text = ma.fields.String(validate=ma.validate.Length(max=1_000_000))


@bp.route("", methods=["POST"])
@bp.arguments(TemplateIn)
@bp.response(201, TemplateOut)
@bp.alt_response(409, response="CONFLICT")
def create(body: dict[str, Any]) -> Template:
    """Create a template (refused with the line if it does not compile or reaches for internals)."""
    return templates.create(**body)


@bp.route("", methods=["GET"])
@bp.arguments(PageArgs, location="query")
@bp.response(200, page_schema(TemplateOut, "TemplatePage"))
def index(args: dict[str, Any]) -> dict[str, Any]:
    """All templates, oldest first."""
    query = select(Template).order_by(Template.id).limit(args["limit"] + 1)
    if (after := decode_cursor(args["cursor"])) is not None:
        query = query.where(Template.id > after)
    return page(db.session.scalars(query).all(), args["limit"])


@bp.route("/<int:template_id>", methods=["GET"])
@bp.response(200, TemplateOut)
def read(template_id: int) -> Template:
    """One template."""
    return templates.get(template_id)


@bp.route("/<int:template_id>", methods=["PATCH"])
@bp.arguments(TemplatePatch)
@bp.response(200, TemplateOut)
@bp.alt_response(409, response="CONFLICT")
def patch(body: dict[str, Any], template_id: int) -> Template:
    """Change a template; notifications already accepted keep what they rendered."""
    return templates.update(template_id, **body)


@bp.route("/<int:template_id>", methods=["DELETE"])
@bp.response(204)
def delete(template_id: int) -> None:
    """Delete a template."""
    templates.delete(template_id)
