"""Admin pages for the send log: every delivery with filters, its attempts, CSV export, retry failed."""
from __future__ import annotations

from datetime import date

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, stream_with_context, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import Length, Optional

from ...models import DeliveryStatus, Role
from ...services.campaigns import campaigns
from ...services.delivery import ledger as deliveries
from ...services.delivery import send_log
from ...services.errors import NotFound, ValidationError
from ...tasks import campaigns as campaign_tasks
from ...tasks import enqueue
from ..forms import ConfirmForm
from ..i18n import VALUE_LABELS, localized
from ..roles import role_required
from .forms import apply_error
from .lists import can_edit_context

bp = Blueprint("send_log", __name__, url_prefix="/admin/send-log")
bp.context_processor(can_edit_context)

class FilterForm(FlaskForm):
    """The GET filter form: no CSRF token (it changes nothing and its URL must be shareable)."""

    class Meta:
        csrf = False

    campaign_id = SelectField(_l("Campaign"), choices=[("", _l("Any campaign"))], validate_choice=False)
    status = SelectField(_l("Status"), choices=[("", _l("Any status"))]
                         + [(s.value, VALUE_LABELS.get(s.value, s.value)) for s in DeliveryStatus],
                         validate_choice=False)
    q = StringField(_l("Recipient"), validators=[Optional(), Length(max=254)])
    code = StringField(_l("SMTP code"), validators=[Optional(), Length(max=3)])
    since = StringField(_l("From"), render_kw={"type": "date"})
    until = StringField(_l("To"), render_kw={"type": "date"})


def _filters() -> send_log.Filters:
    args = request.args
    return send_log.make_filters(args.get("campaign_id"), args.get("status"), args.get("q"), args.get("code"),
                                 args.get("since"), args.get("until"))


@bp.get("/")
@role_required(Role.VIEWER)
def index():
    form = FilterForm(formdata=request.args)
    form.campaign_id.choices = [("", _l("Any campaign"))] + [(str(i), name) for i, name in send_log.campaign_choices()]
    found, filters, retryable = None, None, 0
    try:
        filters = _filters()
        found = send_log.page(filters, request.args.get("cursor"))
    except ValidationError as exc:
        if not apply_error(form, exc):
            flash(localized(exc), "error")
    campaign_id = filters.campaign_id if filters is not None else None
    if campaign_id is not None:
        retryable = deliveries.retryable(campaign_id)
    return render_template("admin/send_log/index.html", form=form, page=found,
                           args=filters.as_args() if filters else {},
                           paged=bool(request.args.get("cursor")), invalid=filters is None, retryable=retryable,
                           campaign_status=_campaign_status(campaign_id) if campaign_id is not None else None,
                           retry_form=ConfirmForm(), retry_from={s.value for s in campaigns.RETRY_FROM})


def _campaign_status(campaign_id: int) -> str | None:
    try:
        return campaigns.get(campaign_id).status.value
    except NotFound:
        return None


@bp.get("/<int:delivery_id>")
@role_required(Role.VIEWER)
def detail(delivery_id: int):
    delivery, campaign_name, attempts = send_log.detail(delivery_id)
    return render_template("admin/send_log/detail.html", delivery=delivery, campaign_name=campaign_name,
                           attempts=attempts)


@bp.get("/export.csv")
@role_required(Role.VIEWER)
def export_csv():
    """The filtered view as CSV, streamed while it is read in keyset batches."""
    try:
        filters = _filters()
    except ValidationError as exc:
        flash(localized(exc), "error")
        return redirect(url_for(".index"))
    name = f"send-log-{date.today().isoformat()}.csv"
    if filters.campaign_id is not None:
        name = f"send-log-campaign-{filters.campaign_id}-{date.today().isoformat()}.csv"
    response = Response(stream_with_context(send_log.export_csv(filters)), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@bp.post("/campaigns/<int:campaign_id>/retry-failed")
@role_required(Role.MARKETER)
def retry_failed(campaign_id: int):
    """Send again what failed transiently or was cancelled; enqueue the dispatcher after the commit."""
    if not ConfirmForm().validate_on_submit():
        abort(400, description=_l("The form expired; reload the page and try again."))
    try:
        moved = campaigns.retry_failed(campaign_id, by=f"retry by {current_user.email}")
    except ValidationError as exc:
        flash(localized(exc), "error")
    else:
        if moved:
            enqueue(campaign_tasks.dispatch_campaign, campaign_id)
            flash(ngettext("Sending %(count)s delivery again.", "Sending %(count)s deliveries again.", moved,
                           count=f"{moved:,}"), "success")
        else:
            flash(_("Nothing to retry: no transient failures or cancelled deliveries."), "info")
    back = request.form.get("next") or ""
    if not back.startswith("/") or back.startswith("//"):
        back = url_for(".index", campaign_id=campaign_id)
    return redirect(back)

