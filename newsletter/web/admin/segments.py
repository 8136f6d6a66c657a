"""Admin pages for segments: the list, the rule builder with a live count and preview, delete."""
from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ...models import Role, Segment
from ...services.audience import lists as lists_service
from ...services.audience.segments import segments
from ...services.audience.segments.rules import RuleError
from ...services.campaigns import campaigns as campaigns_service
from ...services.errors import ValidationError
from ..forms import ConfirmForm
from ..i18n import localized
from ..lookups import found
from ..roles import role_required
from .forms import saved_or_form_error
from .forms.segments import SegmentForm
from .lists import can_edit_context

bp = Blueprint("segments", __name__, url_prefix="/admin/segments")
bp.context_processor(can_edit_context)

PREVIEW_ROWS = 10


def _builder_options() -> dict[str, Any]:
    """What the builder's pickers offer: lists and recent campaigns, by id."""
    return {"lists": [{"id": ml.id, "name": ml.name} for ml in lists_service.all_lists()],
            "campaigns": [{"id": c.id, "name": c.name, "tracking": c.tracking.value}
                          for c in campaigns_service.recent(limit=100)]}


def _save(form: SegmentForm, segment_id: int | None = None) -> Segment | None:
    """Save through the service; a bad rule shows under the JSON, with its path."""
    values = {"name": form.name.data, "description": form.description.data, "rules": form.rules.data or ""}

    def save() -> Segment | None:
        try:
            return segments.update(segment_id, **values) if segment_id else segments.create(**values)
        except RuleError as exc:
            form.rules.errors = [*form.rules.errors, f"{exc.field}: {localized(exc)}"]
            return None

    return saved_or_form_error(form, save)


def _editor(form: SegmentForm, segment: Segment | None) -> str:
    return render_template("admin/segments/form.html", form=form, segment=segment, options=_builder_options())


@bp.get("/")
@role_required(Role.VIEWER)
def index():
    return render_template("admin/segments/index.html", segments=segments.all_segments())


@bp.route("/new", methods=["GET", "POST"])
@role_required(Role.MARKETER)
def new():
    form = SegmentForm()
    if form.validate_on_submit() and (saved := _save(form)):
        flash(_("Segment “%(name)s” created.", name=saved.name), "success")
        return redirect(url_for(".edit", segment_id=saved.id))
    return _editor(form, None)


@bp.get("/<segment_id>")
@role_required(Role.VIEWER)
def edit(segment_id: str):
    """The builder; viewers see it too (saving is `save`, for marketers)."""
    segment = found(segments.get, segment_id, "segment")
    form = SegmentForm(obj=segment)
    form.rules.data = json.dumps(segment.rules, indent=2, ensure_ascii=False)
    return _editor(form, segment)


@bp.post("/<segment_id>")
@role_required(Role.MARKETER)
def save(segment_id: str):
    segment = found(segments.get, segment_id, "segment")
    form = SegmentForm()
    if form.validate_on_submit() and (saved := _save(form, segment.id)):
        flash(_("Segment “%(name)s” saved.", name=saved.name), "success")
        return redirect(url_for(".edit", segment_id=saved.id))
    return _editor(form, segment)


@bp.post("/count.json")
@role_required(Role.VIEWER)
def count():
    """The live count and the first matches of the rules being edited (unsaved); CSRF-checked. The count
    may be an estimate (`exact` false, `margin`): the page then asks again with `exact: true`."""
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # nested past what Python's parser takes: not rules anyway
        body = None
    rules = body.get("rules") if isinstance(body, dict) else None
    exact = isinstance(body, dict) and body.get("exact") is True  # the figure after an estimate: no preview
    try:
        total = segments.live_count(rules, exact=exact)
        people = [] if exact else segments.preview(rules, PREVIEW_ROWS)
    except ValidationError as exc:
        return jsonify(error={"field": exc.field, "message": localized(exc)}), 400
    return jsonify(count=total.value, exact=total.exact, margin=total.margin,
                   preview=None if exact else [
                       {"id": p.id, "email": p.email, "name": p.name, "status": p.status.value,
                        "url": url_for("subscribers.detail", subscriber_id=p.id)} for p in people])


@bp.route("/<segment_id>/delete", methods=["GET", "POST"])
@role_required(Role.MARKETER)
def delete(segment_id: str):
    """GET asks for confirmation; POST deletes (campaigns keep their lists)."""
    segment = found(segments.get, segment_id, "segment")
    form = ConfirmForm()
    if form.validate_on_submit():
        name = segment.name
        segments.delete(segment.id)
        flash(_("Segment “%(name)s” deleted.", name=name), "success")
        return redirect(url_for(".index"))
    return render_template("admin/segments/delete.html", segment=segment, form=form)
