"""Start a campaign from a template: the built-in gallery and the users' saved templates; "Save as template"."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup

from ...models import Role
from ...services.campaigns import campaigns, gallery
from ...services.errors import ValidationError
from ..forms import ConfirmForm
from ..i18n import localized
from ..roles import role_required
from .forms import saved_or_form_error
from .forms.campaigns import SaveTemplateForm
from .lists import can_edit_context

bp = Blueprint("campaign_gallery", __name__, url_prefix="/admin/campaigns")
bp.context_processor(can_edit_context)


def _thumbnail(subject: str, html: str) -> str:
    """The layout rendered for the sample subscriber (shown scaled down in a sandboxed frame)."""
    try:
        return campaigns.render_preview({"subject": subject, "html": html}).html
    except ValidationError as exc:
        return str(Markup("<p>{}</p>").format(_("This template does not render: %(reason)s", reason=localized(exc))))


@bp.get("/gallery")
@role_required(Role.MARKETER)
def index():
    starters = [{"item": item, "preview": _thumbnail(item.subject, item.html)} for item in gallery.STARTERS]
    saved = [{"item": item, "preview": _thumbnail(item.subject, item.html)} for item in gallery.saved_templates()]
    return render_template("admin/campaigns/gallery.html", starters=starters, saved=saved,
                           confirm_form=ConfirmForm())


@bp.post("/templates/<int:template_id>/delete")
@role_required(Role.MARKETER)
def delete(template_id: int):
    if ConfirmForm().validate_on_submit():
        name = gallery.get_saved(template_id).name
        gallery.delete_saved(template_id)
        flash(_("Template “%(name)s” deleted.", name=name), "success")
    return redirect(url_for(".index"))


@bp.route("/<int:campaign_id>/save-template", methods=["GET", "POST"])
@role_required(Role.MARKETER)
def save(campaign_id: int) -> Any:
    campaign = campaigns.get(campaign_id)
    form = SaveTemplateForm(data={"name": campaign.name})
    if form.validate_on_submit() and (saved := saved_or_form_error(
            form, lambda: gallery.save_from_campaign(campaign.id, form.name.data, current_user.id))):
        flash(_("Saved as the template “%(name)s”: find it under New campaign → Start from a template.",
                name=saved.name), "success")
        return redirect(url_for("campaigns.detail", campaign_id=campaign.id))
    return render_template("admin/campaigns/save_template.html", form=form, campaign=campaign)
