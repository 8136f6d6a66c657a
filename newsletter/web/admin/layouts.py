"""Admin pages for layouts: the reusable HTML around campaigns, with a live preview."""
from __future__ import annotations

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ...models import Layout, Role
from ...services.campaigns import layouts
from ...services.errors import ValidationError
from ..forms import ConfirmForm
from ..i18n import localized
from ..roles import role_required
from .forms import saved_or_form_error
from .forms.campaigns import LayoutForm
from .lists import can_edit_context

bp = Blueprint("layouts", __name__, url_prefix="/admin/layouts")
bp.context_processor(can_edit_context)


def _save(form: LayoutForm, layout_id: int | None = None) -> Layout | None:
    return saved_or_form_error(form, lambda: layouts.update(layout_id, name=form.name.data, html=form.html.data)
                               if layout_id else layouts.create(form.name.data, form.html.data))


def _preview_or_error(html: str) -> tuple[str, str | None]:
    try:
        return layouts.preview(html), None
    except ValidationError as exc:
        return "", localized(exc)


def _form_page(form: LayoutForm, layout: Layout | None) -> str:
    """The editor, with the preview rendered up front (the page's script keeps it live)."""
    return render_template("admin/layouts/form.html", form=form, layout=layout,
                           preview=_preview_or_error(form.html.data))


@bp.get("/")
@role_required(Role.VIEWER)
def index():
    return render_template("admin/layouts/index.html", layouts=layouts.all_layouts())


@bp.route("/new", methods=["GET", "POST"])
@role_required(Role.MARKETER)
def new():
    form = LayoutForm()
    if form.validate_on_submit() and (saved := _save(form)):
        flash(_("Layout “%(name)s” created. Choose it in a campaign's editor.", name=saved.name), "success")
        return redirect(url_for(".detail", layout_id=saved.id))
    return _form_page(form, None)


@bp.get("/<int:layout_id>")
@role_required(Role.VIEWER)
def detail(layout_id: int):
    layout = layouts.get(layout_id)
    return render_template("admin/layouts/detail.html", layout=layout, preview=_preview_or_error(layout.html),
                           used_by=layouts.usage(layout.id))


@bp.route("/<int:layout_id>/edit", methods=["GET", "POST"])
@role_required(Role.MARKETER)
def edit(layout_id: int):
    layout = layouts.get(layout_id)
    form = LayoutForm(obj=layout)
    if form.validate_on_submit() and (saved := _save(form, layout.id)):
        flash(_("Layout “%(name)s” saved.", name=saved.name), "success")
        return redirect(url_for(".detail", layout_id=saved.id))
    return _form_page(form, layout)


@bp.post("/preview")
@role_required(Role.MARKETER)
def preview():
    """The editor's live preview: JSON with the rendered HTML, or the error (422)."""
    try:
        return jsonify(html=layouts.preview(request.form.get("html", "")))
    except ValidationError as exc:
        return jsonify(error={"field": exc.field, "message": localized(exc)}), 422


@bp.route("/<int:layout_id>/delete", methods=["GET", "POST"])
@role_required(Role.MARKETER)
def delete(layout_id: int):
    """GET asks for confirmation, naming the campaigns that use it; POST deletes."""
    layout = layouts.get(layout_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        name = layout.name
        try:
            layouts.delete(layout.id)
        except ValidationError as exc:
            flash(localized(exc), "error")
            return redirect(url_for(".detail", layout_id=layout.id))
        flash(_("Layout “%(name)s” deleted.", name=name), "success")
        return redirect(url_for(".index"))
    return render_template("admin/layouts/delete.html", layout=layout, form=form, used_by=layouts.usage(layout.id))
