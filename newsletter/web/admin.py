"""The admin UI: dashboard and, in development, the outbox of caught emails."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, url_for

from ..models import Role
from ..services import health, outbox
from ..tasks import email as email_tasks
from ..tasks import enqueue
from .forms import ConfirmForm, TestEmailForm
from .roles import role_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
@role_required(Role.VIEWER)
def dashboard():
    return render_template("admin/dashboard.html", test_form=TestEmailForm())


@bp.get("/status.json")
@role_required(Role.VIEWER)
def status():
    """Polled by the dashboard: dependency checks and the workers answering a ping."""
    checks = health.readiness()
    workers = health.workers() if not checks["broker"] else []
    return jsonify(checks=checks, workers=workers)


@bp.post("/test-email")
@role_required(Role.ADMIN)
def send_test_email():
    form = TestEmailForm()
    if not form.validate_on_submit():
        for field, errors in form.errors.items():
            flash(f"{getattr(form, field).label.text if hasattr(form, field) else field}: {errors[0]}", "error")
        return redirect(url_for("admin.dashboard"))
    enqueue(email_tasks.send_test_email, form.to.data)
    flash(f"A test email to {form.to.data} is queued on the transactional lane.", "success")
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
    messages = outbox.list_messages(_outbox_dir())
    return render_template(
        "admin/outbox.html", messages=messages, test_form=TestEmailForm(), clear_form=ConfirmForm()
    )


@bp.get("/outbox/<key>")
@role_required(Role.ADMIN)
def outbox_message(key: str):
    message = outbox.get_message(_outbox_dir(), key)
    if message is None:
        abort(404, description=f"No message {key!r} in the outbox.")
    return render_template(
        "admin/outbox_message.html",
        message=message,
        html=message.body("html"),
        text=message.body("plain"),
    )


@bp.post("/outbox/clear")
@role_required(Role.ADMIN)
def outbox_clear():
    if ConfirmForm().validate_on_submit():
        flash(f"Removed {outbox.clear(_outbox_dir())} messages from the outbox.", "success")
    return redirect(url_for("admin.outbox_list"))
