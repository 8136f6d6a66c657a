"""The admin UI: dashboard and, in development, the outbox of caught emails."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ...config import QUEUES
from ...models import Role
from ...services import health, outbox
from ...services.audience import subscribers
from ...services.campaigns import reports
from ...services.engagement import report as engagement_report
from ...services.errors import ValidationError
from ...services.notifications import system_mail
from ...tasks import enqueue
from ...tasks.notifications import send_notification
from ..forms import ConfirmForm
from ..i18n import localized
from ..roles import role_required
from . import charts
from .forms.settings import TestEmailForm

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.add_app_template_global(charts.timeline_chart, "timeline_chart")
bp.add_app_template_global(charts.bar_chart, "bar_chart")
bp.add_app_template_global(charts.line_chart, "line_chart")
bp.add_app_template_global(charts.Series, "ChartSeries")


@bp.get("/")
@role_required(Role.VIEWER)
def dashboard():
    return render_template(
        "admin/dashboard.html", test_form=TestEmailForm(), recent=reports.recent_campaigns(limit=6),
        last_day=reports.delivery_activity("hour", 24), last_month=reports.delivery_activity("day", 30),
        growth=reports.subscriber_growth(days=90), rates=engagement_report.recent_rates(limit=8),
        statuses=subscribers.status_counts(),
    )


@bp.get("/status.json")
@role_required(Role.VIEWER)
def status():
    """Polled by the dashboard (a worker inspect waits up to a second, so never inline in the page):
    dependency checks, the live workers with the queues each consumes, and each queue's depth."""
    checks = health.readiness()
    consumers = health.active_queues() if not checks["broker"] else {}
    depths = health.queue_depths(QUEUES) if not checks["broker"] else {}
    queues, warnings = health.queue_status(QUEUES, depths, consumers)
    shown = ([localized(w) for w in warnings] if not checks["broker"] else
             [_("The broker is unreachable: %(error)s", error=checks["broker"])])
    return jsonify(checks=checks, workers=sorted(consumers), worker_queues=consumers, queues=queues, warnings=shown)


@bp.post("/test-email")
@role_required(Role.ADMIN)
def send_test_email():
    form = TestEmailForm()
    if not form.validate_on_submit():
        for field, errors in form.errors.items():
            flash(f"{getattr(form, field).label.text if hasattr(form, field) else field}: {errors[0]}", "error")
        return redirect(url_for("admin.dashboard"))
    try:
        notification_id = system_mail.queue_test_email(form.to.data)
    except ValidationError as exc:  # an address the form's check let through but a send cannot use
        flash(_("%(label)s: %(exc)s", label=form.to.label.text, exc=localized(exc)), "error")
        return redirect(url_for("admin.dashboard"))
    enqueue(send_notification, notification_id)  # committed: the mail log shows it queued
    flash(_("A test email to %(to)s is queued on the transactional lane.", to=form.to.data), "success")
    if current_app.config["OUTBOX_DIR"]:
        return redirect(url_for("admin.outbox_list"))
    return redirect(url_for("admin.dashboard"))


def _outbox_dir() -> str:
    directory = current_app.config.get("OUTBOX_DIR")
    if not directory:
        abort(404)  # the outbox exists only in development
    return directory


@bp.get("/outbox/")
@role_required(Role.ADMIN)
def outbox_list():
    to, subject = (request.args.get(name, "").strip()[:200] for name in ("to", "subject"))
    page = outbox.search(_outbox_dir(), to, subject, page=request.args.get("page", 1, type=int) or 1)
    return render_template(
        "admin/outbox.html", result=page, to=to, subject=subject, test_form=TestEmailForm(),
        clear_form=ConfirmForm(),
    )


@bp.get("/outbox/<key>")
@role_required(Role.ADMIN)
def outbox_message(key: str):
    message = outbox.get_message(_outbox_dir(), key)
    if message is None:
        abort(404, description=_("No message %(key)s in the outbox.", key=repr(key)))
    html = message.body("html")
    return render_template(
        "admin/outbox_message.html", message=message, text=message.body("plain"),
        html=outbox.framed_html(html) if html else None, links=outbox.links(html) if html else [],
    )


@bp.post("/outbox/clear")
@role_required(Role.ADMIN)
def outbox_clear():
    if ConfirmForm().validate_on_submit():
        flash(_("Removed %(clear)s messages from the outbox.", clear=outbox.clear(_outbox_dir())), "success")
    return redirect(url_for("admin.outbox_list"))
