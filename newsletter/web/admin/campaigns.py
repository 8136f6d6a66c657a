"""Admin pages for campaigns: compose with a live preview, test, send or schedule, follow the progress."""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from ...models import Campaign, CampaignStatus, Role, Tracking
from ...services import settings
from ...services.addresses import normalize_email
from ...services.audience import lists as lists_service
from ...services.audience.segments import segments as segments_service
from ...services.campaigns import ab_tests, campaigns, fields, gallery, layouts, reports, resend
from ...services.campaigns import send as campaign_send
from ...services.deliverability import preflight
from ...services.deliverability import report as deliverability_report
from ...services.delivery import servers
from ...services.engagement import report as engagement_report
from ...services.engagement import stats as engagement_stats
from ...services.errors import NotFound, ValidationError
from ...services.notifications import mail_log
from ...tasks import campaigns as campaign_tasks
from ...tasks import enqueue
from ...tasks.notifications import send_notification
from ..forms import ConfirmForm
from ..i18n import localized, value_label
from ..lookups import parse_id, preview_subscriber_id
from ..roles import role_required
from .forms import apply_error, saved_or_form_error
from .forms.campaigns import CampaignForm, ResendForm, ScheduleForm, TestSendForm, ab_error_aliases, ab_form_data
from .lists import can_edit_context

bp = Blueprint("campaigns", __name__, url_prefix="/admin/campaigns")
bp.context_processor(can_edit_context)

S = CampaignStatus


@bp.app_template_filter("as_utc")
def as_utc(value: datetime | None) -> datetime | None:
    """Stored times in UTC for display (SQLite hands them back naive, already in UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _editor_form(campaign: Campaign | None = None) -> CampaignForm:
    if campaign is not None:
        values = campaigns.current_values(campaign)
        form = CampaignForm(data={**values, "layout_id": str(values["layout_id"] or ""),
                                  "tracking": values["tracking"].value, "body_format": values["body_format"].value,
                                  **ab_form_data(values["ab_test"])})
        if request.method == "GET":
            form.load_translations(values["translations"])
    else:
        form = CampaignForm(data={**_sender_defaults(), "tracking": settings.get("TRACKING_DEFAULT"), **_start()})
    counts = lists_service.counts_by_status()
    form.list_ids.choices = [(ml.id, f"{ml.name} · {counts[ml.id]['confirmed']:,} confirmed")
                             for ml in lists_service.all_lists()]
    form.segment_ids.choices = [SelectChoice(segment.id, segment.name) for segment in segments_service.all_segments()]
    form.layout_id.choices = [("", _l("No layout"))] + [(str(layout.id), layout.name)
                                                        for layout in layouts.all_layouts()]
    form.pool.choices = [SelectChoice(name, name) for name in servers.pool_names()]
    return form


def _start() -> dict[str, Any]:
    """The template a new campaign starts from (?template=gallery:SLUG or saved:ID, the gallery's links)."""
    ref = request.args.get("template")
    if not ref:
        return {}
    try:
        values = gallery.start_values(ref, request.args.get("editor"))
    except (ValidationError, NotFound):
        flash(_("That template no longer exists; starting from a blank campaign."), "info")
        return {}
    return {**values, "body_format": values["body_format"].value}


def _sender_defaults() -> dict[str, str]:
    """A new campaign starts from the platform's sender, when that is a usable address."""
    name, address = parseaddr(settings.get("MAIL_DEFAULT_SENDER") or "")
    try:
        return {"from_name": name, "from_email": normalize_email(address)}
    except ValueError:
        return {"from_name": name}


def _save(form: CampaignForm, campaign_id: int | None = None) -> Campaign | None:
    def save() -> Campaign | None:
        try:
            return campaigns.update(campaign_id, **form.values()) if campaign_id \
                else campaigns.create(created_by_id=current_user.id, **form.values())
        except ValidationError as exc:
            if not exc.field.startswith("translations"):
                raise
            form.translation_errors = [localized(exc)]  # shown in the form's translations section
            return None

    return saved_or_form_error(form, save, ab_error_aliases())


@bp.get("/")
@role_required(Role.VIEWER)
def index():
    status = request.args.get("status") or None
    if status not in {s.value for s in S}:
        status = None
    return render_template("admin/campaigns/index.html", campaigns=campaigns.recent(limit=200, status=status),
                           status=status, statuses=list(S), has_lists=bool(lists_service.all_lists()))


@bp.route("/new", methods=["GET", "POST"])
@role_required(Role.MARKETER)
def new():
    form = _editor_form()
    if form.validate_on_submit() and (saved := _save(form)):
        flash(_("Campaign “%(name)s” saved as a draft.", name=saved.name), "success")
        return redirect(url_for(".detail", campaign_id=saved.id))
    return render_template("admin/campaigns/form.html", form=form, campaign=None)


@bp.route("/<int:campaign_id>/edit", methods=["GET", "POST"])
@role_required(Role.MARKETER)
def edit(campaign_id: int):
    campaign = campaigns.get(campaign_id)
    if campaign.status not in campaigns.EDITABLE:
        flash(_("A %(status)s campaign cannot be edited; clone it to reuse its content.",
                status=campaign.status.value), "info")
        return redirect(url_for(".detail", campaign_id=campaign.id))
    form = _editor_form(campaign)
    if form.validate_on_submit() and (saved := _save(form, campaign.id)):
        flash(_("Campaign “%(name)s” saved.", name=saved.name), "success")
        return redirect(url_for(".detail", campaign_id=saved.id))
    return render_template("admin/campaigns/form.html", form=form, campaign=campaign)


def _resend_block(campaign: Campaign, form: ResendForm | None = None) -> dict[str, Any] | None:
    """What the resend partial shows: the form on a sent campaign (or why not), the origin on a resend.

    No counts here: at 1M recipients they take seconds, so the page fetches them from `resend_reach`.
    """
    if campaign.resend_to is not None:
        origin = campaigns.get(campaign.resend_of_id) if campaign.resend_of_id is not None else None
        return {"origin": origin, "label": resend.LABELS[campaign.resend_to]}
    if campaign.status != S.SENT:
        return None
    return {"refusal": resend.refusal(campaign),
            "form": form or ResendForm(formdata=None, data={"subject": campaign.subject})}


def _detail_page(campaign: Campaign, schedule_form: ScheduleForm | None = None,
                 test_form: TestSendForm | None = None, code: int = 200, resend_form: ResendForm | None = None) -> Any:
    rendered, preview_error = None, None
    try:
        rendered = campaigns.render_preview({**campaigns.current_values(campaign), "id": campaign.id})
    except ValidationError as exc:
        preview_error = localized(exc)
    if schedule_form is None:
        schedule_form = ScheduleForm(formdata=None, data={
            "send_at": send_at.replace(tzinfo=None) if (send_at := as_utc(campaign.send_at)) else None,
            "timezone": "UTC"})
    counts = lists_service.counts_by_status([ml.id for ml in campaign.lists])
    live = campaigns.progress(campaign.id) if campaign.status in (S.SENDING, S.PAUSED) else None
    engagement = engagement_stats.campaign_stats(campaign.id) if campaign.tracking != Tracking.OFF else None
    editable = campaign.status in campaigns.EDITABLE
    # Counting who lacks an attribute scans the audience (~0.4 s per 200,000 on PostgreSQL): the page asks later.
    values = campaigns.current_values(campaign)
    warnings = {**fields.campaign_warnings(values, counts=False), "list_ids": values["list_ids"]} if editable else None
    return render_template("admin/campaigns/detail.html", campaign=campaign, rendered=rendered, warnings=warnings,
                           tests=_followed_tests(campaign.id),
                           preview_error=preview_error, counts=counts, progress=live, engagement=engagement,
                           schedule_form=schedule_form, test_form=test_form or TestSendForm(formdata=None),
                           confirm_form=ConfirmForm(), resend=_resend_block(campaign, resend_form),
                           ab=ab_tests.report(campaign.id) if campaign.ab_test else None,
                           returned=deliverability_report.campaign_rate(campaign)), code


@bp.get("/<int:campaign_id>")
@role_required(Role.VIEWER)
def detail(campaign_id: int):
    return _detail_page(campaigns.get(campaign_id))


@bp.get("/<int:campaign_id>/report")
@role_required(Role.VIEWER)
def report(campaign_id: int):
    found = reports.campaign_report(campaign_id)
    return render_template("admin/campaigns/report.html", campaign=found.campaign, report=found,
                           confirm_form=ConfirmForm(),
                           ab=ab_tests.report(campaign_id) if found.campaign.ab_test else None)


@bp.post("/<int:campaign_id>/ab/winner")
@role_required(Role.MARKETER)
def ab_winner(campaign_id: int):
    """The marketer picks the A/B test's winner: the recipients still held get it."""
    campaign = campaigns.get(campaign_id)
    if not ConfirmForm().validate_on_submit():
        flash(_("The form expired; try again."), "error")
    else:
        label = request.form.get("variant", "")
        try:
            released = ab_tests.pick(campaign.id, label, campaign_tasks.publish_window)
        except ValidationError as exc:
            flash(localized(exc), "error")
        else:
            flash(_("Variant %(label)s won: it goes to the other %(released)s recipients.",
                    label=label, released=f"{released:,}"), "success")
    return redirect(url_for(".detail", campaign_id=campaign.id) + "#ab-test")


@bp.get("/<int:campaign_id>/engagement")
@role_required(Role.VIEWER)
def engagement(campaign_id: int):
    """Opens and clicks: read from the counters only, so it is as fast at a million recipients."""
    found = engagement_report.campaign_engagement(campaign_id)
    return render_template("admin/campaigns/engagement.html", campaign=found.campaign, engagement=found)


@bp.get("/<int:campaign_id>/preflight")
@role_required(Role.VIEWER)
def preflight_checks(campaign_id: int):
    """The pre-flight panel; `partial=1`: the panel alone (the campaign page fetches it); `fresh=1`: new DNS answers."""
    campaign = campaigns.get(campaign_id)
    if request.args.get("fresh"):
        preflight.forget_dns()
    found = preflight.run(campaign.id)
    template = "admin/campaigns/_preflight.html" if request.args.get("partial") else "admin/campaigns/preflight.html"
    return render_template(template, campaign=campaign, report=found)


@bp.get("/<int:campaign_id>/progress.json")
@role_required(Role.VIEWER)
def progress(campaign_id: int):
    return jsonify(campaigns.progress(campaign_id))


def _change(campaign: Campaign, change: Callable[[int], Any], done: str, dispatch: bool = False) -> Any:
    """Run one status change; flash its result; queue the dispatcher once the change committed."""
    try:
        change(campaign.id)
    except ValidationError as exc:
        flash(localized(exc), "error")
    else:
        if dispatch:
            enqueue(campaign_tasks.dispatch_campaign, campaign.id)
        flash(done, "success")
    return redirect(url_for(".detail", campaign_id=campaign.id))


@bp.route("/<int:campaign_id>/send", methods=["GET", "POST"])
@role_required(Role.MARKETER)
def send(campaign_id: int):
    """GET shows who will get it; POST starts sending."""
    campaign = campaigns.get(campaign_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        return _change(campaign, campaigns.send_now, _("“%(name)s” is sending.", name=campaign.name), dispatch=True)
    if campaign.status not in campaigns.EDITABLE:
        flash(_("A %(status)s campaign cannot be sent again; clone it instead.",
                status=value_label(campaign.status.value)), "info")
        return redirect(url_for(".detail", campaign_id=campaign.id))
    list_ids = [ml.id for ml in campaign.lists]
    estimate = (resend.recipients_now(campaign.id) if campaign.resend_to is not None
                else campaigns.estimate_recipients(list_ids, [segment.id for segment in campaign.segments]))
    return render_template("admin/campaigns/send.html", campaign=campaign, form=form, estimate=estimate,
                           counts=lists_service.counts_by_status(list_ids), example=fields.example_subject(campaign),
                           warnings=fields.campaign_warnings(campaigns.current_values(campaign)))


@bp.post("/<int:campaign_id>/schedule")
@role_required(Role.MARKETER)
def schedule(campaign_id: int):
    campaign = campaigns.get(campaign_id)
    form = ScheduleForm()
    if form.validate_on_submit():
        try:
            campaigns.schedule(campaign.id, form.aware_send_at())
        except ValidationError as exc:
            if not apply_error(form, exc):
                flash(localized(exc), "error")
        else:
            flash(_("“%(name)s” is scheduled.", name=campaign.name), "success")
            return redirect(url_for(".detail", campaign_id=campaign.id))
    return _detail_page(campaign, schedule_form=form, code=400)


@bp.post("/<int:campaign_id>/unschedule")
@role_required(Role.MARKETER)
def unschedule(campaign_id: int):
    return _change(campaigns.get(campaign_id), campaigns.unschedule, _("Unscheduled: the campaign is a draft again."))


@bp.post("/<int:campaign_id>/pause")
@role_required(Role.MARKETER)
def pause(campaign_id: int):
    return _change(campaigns.get(campaign_id), campaigns.pause,
                   _("Paused. Emails already handed to the mail server still go out."))


@bp.post("/<int:campaign_id>/resume")
@role_required(Role.MARKETER)
def resume(campaign_id: int):
    return _change(campaigns.get(campaign_id), campaigns.resume, _("Resumed."), dispatch=True)


@bp.route("/<int:campaign_id>/cancel", methods=["GET", "POST"])
@role_required(Role.MARKETER)
def cancel(campaign_id: int):
    campaign = campaigns.get(campaign_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        return _change(campaign, campaigns.cancel, _("“%(name)s” is cancelled.", name=campaign.name))
    return render_template("admin/campaigns/confirm.html", campaign=campaign, form=form, action="cancel")


@bp.post("/<int:campaign_id>/clone")
@role_required(Role.MARKETER)
def clone(campaign_id: int):
    campaign = campaigns.get(campaign_id)
    try:
        copy = campaigns.clone(campaign.id, created_by_id=current_user.id)
    except ValidationError as exc:
        flash(_("Could not clone: %(exc)s", exc=localized(exc)), "error")
        return redirect(url_for(".detail", campaign_id=campaign.id))
    flash(_("Cloned into the draft “%(name)s”.", name=copy.name), "success")
    return redirect(url_for(".edit", campaign_id=copy.id))


@bp.get("/<int:campaign_id>/resend-reach.json")
@role_required(Role.VIEWER)
def resend_reach(campaign_id: int):
    """How many a resend would reach now: per target for a sent campaign, `now` for a resend draft."""
    campaign = campaigns.get(campaign_id)
    if campaign.resend_to is not None:
        return jsonify(now=resend.recipients_now(campaign.id))
    reason = resend.refusal(campaign)
    if reason:
        return jsonify(error=localized(reason)), 409
    return jsonify({target.value: n for target, n in resend.reach(campaign.id).items()})


@bp.post("/<int:campaign_id>/resend")
@role_required(Role.MARKETER)
def resend_campaign(campaign_id: int):
    """A draft for those who did not open (or click) a sent campaign; the service refuses where it cannot know."""
    campaign = campaigns.get(campaign_id)
    form = ResendForm()
    if form.validate_on_submit():
        try:
            copy = resend.create(campaign.id, form.to.data, form.subject.data, created_by_id=current_user.id)
        except ValidationError as exc:
            if not apply_error(form, exc):
                flash(localized(exc), "error")
        else:
            flash(_("Created the draft “%(name)s”: check it, then send it.", name=copy.name), "success")
            return redirect(url_for(".detail", campaign_id=copy.id))
    return _detail_page(campaign, resend_form=form, code=400)


@bp.route("/<int:campaign_id>/delete", methods=["GET", "POST"])
@role_required(Role.MARKETER)
def delete(campaign_id: int):
    campaign = campaigns.get(campaign_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        name = campaign.name
        try:
            campaigns.delete(campaign.id)
        except ValidationError as exc:
            flash(localized(exc), "error")
            return redirect(url_for(".detail", campaign_id=campaign.id))
        flash(_("Campaign “%(name)s” deleted.", name=name), "success")
        return redirect(url_for(".index"))
    return render_template("admin/campaigns/confirm.html", campaign=campaign, form=form, action="delete")


def _test_ids() -> list[int]:
    """The test emails a page follows (`?tests=3,4`): ids, not secrets; only this campaign's are shown."""
    return [i for i in map(parse_id, (request.args.get("tests") or "").split(",")[:mail_log.MAX_FOLLOWED])
            if i is not None]


def _test_rows(campaign_id: int) -> list[dict[str, Any]]:
    return [{"id": row.id, "email": row.email, "status": row.status.value, "smtp_code": row.smtp_code,
             "smtp_message": row.smtp_message, "done": row.status.terminal,
             "url": url_for("mail_log.detail", notification_id=row.id)}
            for row in mail_log.campaign_tests(campaign_id, _test_ids())]


def _followed_tests(campaign_id: int) -> list[dict[str, Any]] | None:
    return _test_rows(campaign_id) if request.args.get("tests") else None


@bp.get("/<int:campaign_id>/tests.json")
@role_required(Role.VIEWER)
def test_status(campaign_id: int):
    """Where the test emails of `?tests=` are: queued, sending, sent or failed, with the server's reply."""
    return jsonify(tests=_test_rows(campaigns.get(campaign_id).id))


@bp.post("/<int:campaign_id>/test")
@role_required(Role.MARKETER)
def test_send(campaign_id: int):
    """Send the saved version to a few addresses, optionally personalised as a real subscriber."""
    campaign = campaigns.get(campaign_id)
    form = TestSendForm()
    if form.validate_on_submit():
        try:
            subscriber_id = preview_subscriber_id(form.preview_as.data)
        except ValidationError as exc:
            apply_error(form, exc)
        else:
            try:
                queued = campaign_send.queue_test(campaign.id, form.parsed, subscriber_id)
            except ValidationError as exc:
                flash(localized(exc), "error")
                return _detail_page(campaign, test_form=form, code=400)
            for notification_id in queued:
                enqueue(send_notification, notification_id)
            flash(_("A test of the saved version is queued for %(addresses)s.",
                    addresses=", ".join(form.parsed)), "success")
            return redirect(url_for(".detail", campaign_id=campaign.id, tests=",".join(map(str, queued)),
                                    _anchor="test-send"))
    return _detail_page(campaign, test_form=form, code=400)
