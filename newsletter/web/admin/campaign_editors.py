"""The campaign editors' helpers: the "Insert field" menu and Markdown/rich text → HTML for a switch."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from ...models import Role
from ...services.campaigns import editors, merge_fields
from ...services.errors import ValidationError
from ..i18n import localized
from ..lookups import parse_id
from ..roles import role_required

bp = Blueprint("campaign_editors", __name__, url_prefix="/admin/campaigns")


@bp.get("/merge-fields.json")
@role_required(Role.MARKETER)
def fields():
    """Merge fields for the checked lists' members (every subscriber's when none is checked)."""
    list_ids = [i for i in map(parse_id, request.args.getlist("list_ids")) if i is not None]
    return jsonify(fields=merge_fields.menu(list_ids))


@bp.post("/convert")
@role_required(Role.MARKETER)
def convert():
    """The HTML the server would save for this format and source (the editor switch uses it)."""
    try:
        _, _, html = editors.body_html({"body_format": request.form.get("body_format"),
                                        "body_source": request.form.get("body_source", ""),
                                        "html": request.form.get("html", "")})
    except ValidationError as exc:
        return jsonify(error={"field": exc.field, "message": localized(exc)}), 422
    return jsonify(html=html)
