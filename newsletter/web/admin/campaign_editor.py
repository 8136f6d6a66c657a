"""The campaign editor's live parts: the preview, the recipient estimate, the subscriber picker,
and how many recipients lack each personal field the templates read (all JSON for campaigns.js)."""
from __future__ import annotations

from flask import jsonify, request

from ...models import Role
from ...services.campaigns import campaigns, fields
from ...services.errors import ValidationError
from ..i18n import localized
from ..lookups import parse_id, preview_subscriber_id
from ..roles import role_required
from .campaigns import bp
from .forms.campaigns import CampaignForm


@bp.post("/preview")
@role_required(Role.MARKETER)
def preview():
    """The editor's live preview: the unsaved form rendered as JSON, or the broken field (422)."""
    form = CampaignForm()  # no choices needed: nothing is validated against them here
    values = {**form.values(), "id": parse_id(request.form.get("campaign_id", ""))}
    try:
        rendered = campaigns.render_preview(values, preview_subscriber_id(form.preview_as.data))
    except ValidationError as exc:
        return jsonify(error={"field": exc.field, "message": localized(exc)},
                       fields=fields.campaign_warnings(values, counts=False)), 422
    return jsonify(subject=rendered.subject, html=rendered.html, text=rendered.text,
                   fields=fields.campaign_warnings(values, counts=False))


@bp.get("/fields.json")
@role_required(Role.MARKETER)
def missing_fields():
    """How many of the checked lists' recipients lack each attribute key (the editor's warnings)."""
    list_ids = [i for i in map(parse_id, request.args.getlist("list_ids")) if i is not None]
    keys = [key[:200] for key in request.args.getlist("keys")]
    total, missing = fields.missing_counts(list_ids, keys)
    return jsonify(recipients=total, missing=missing)


@bp.get("/estimate.json")
@role_required(Role.VIEWER)
def estimate():
    list_ids = [i for i in map(parse_id, request.args.getlist("list_ids")) if i is not None]
    segment_ids = [i for i in map(parse_id, request.args.getlist("segment_ids")) if i is not None]
    try:
        return jsonify(recipients=campaigns.estimate_recipients(list_ids, segment_ids))
    except ValidationError as exc:
        return jsonify(error={"field": exc.field, "message": localized(exc)}), 422


@bp.get("/subscribers.json")
@role_required(Role.MARKETER)
def subscriber_options():
    found = campaigns.subscriber_choices(request.args.get("q", "")[:254], limit=20)
    return jsonify(subscribers=[{"id": s.id, "email": s.email, "name": s.name} for s in found])
