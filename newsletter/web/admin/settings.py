"""Admin pages: Settings (SMTP server, sender, sending limits) over the environment's defaults, and DKIM keys."""
from __future__ import annotations

from email.utils import parseaddr
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from ...models import DkimAlgorithm, Role
from ...services import settings
from ...services.deliverability import dkim, preflight
from ...services.delivery import servers
from ...services.errors import ValidationError
from ...services.notifications import system_mail
from ...tasks import enqueue
from ...tasks.notifications import send_notification
from ..forms import ConfirmForm
from ..roles import role_required
from .forms import apply_error
from .forms.settings import SettingsForm, TestEmailForm

bp = Blueprint("settings", __name__, url_prefix="/admin/settings")


def _shown(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _page(form: SettingsForm, test_form: TestEmailForm | None = None, status: int = 200):
    current = settings.effective(fresh=True)
    sections = {key: [s for s in settings.SPECS if s.section == key] for key in settings.SECTIONS}
    for name, problem in current.problems.items():
        field = getattr(form, name)
        field.errors = [*field.errors, problem]
    test_form = test_form or TestEmailForm(to=current_user.email)
    return render_template("admin/settings/index.html", form=form, test_form=test_form, reset_form=ConfirmForm(),
                           current=current, sections=sections, section_names=settings.SECTIONS,
                           password_set=bool(current["MAIL_PASSWORD"])), status


@bp.route("/", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def index():
    if request.method == "GET":
        return _page(_filled_form())
    form = SettingsForm()
    if not form.validate_on_submit():
        return _page(form, status=400)
    changes = {spec.name: getattr(form, spec.name).data for spec in settings.SPECS}
    if form.clear_password.data:
        changes["MAIL_PASSWORD"] = settings.CLEAR
    try:
        servers.check_pool(changes["NOTIFY_POOL"] or settings.DEFAULT_POOL, "NOTIFY_POOL")
        changed = settings.save(changes, current_user.id)
    except ValidationError as exc:
        errors = exc.errors if isinstance(exc, settings.SettingsInvalid) else {exc.field: exc.message}
        for name, message in errors.items():
            getattr(form, name).errors = [message]
        flash("Nothing was saved: correct the fields marked below.", "error")
        return _page(form, status=400)
    return _done(changed, "Saved: {}. Every worker uses the new values within a second.", "Nothing changed.")


@bp.post("/reset")
@role_required(Role.ADMIN)
def reset():
    """Back to the environment's value: one setting (`name`) or a whole section (`section`)."""
    if not ConfirmForm().validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(url_for(".index"))
    section = request.form.get("section", "")
    names = [s.name for s in settings.SPECS if s.section == section or s.name == request.form.get("name")]
    changed = settings.save(dict.fromkeys(names), current_user.id) if names else []
    return _done(changed, "Back to the environment's value: {}.", "Those settings already come from the environment.")


@bp.post("/test")
@role_required(Role.ADMIN)
def send_test():
    """Check the saved settings now (a short SMTP session), then queue a real test message."""
    test_form = TestEmailForm()
    if not test_form.validate_on_submit():
        return _page(_filled_form(), test_form, status=400)
    problem = settings.check_smtp()
    if problem:
        current = settings.effective()
        flash(f"The SMTP server {current.smtp.host}:{current.smtp.port} did not accept us: {problem}", "error")
        return redirect(url_for(".index"))
    try:
        notification_id = system_mail.queue_test_email(test_form.to.data)
    except ValidationError as exc:  # an address the form's check let through but a send cannot use
        apply_error(test_form, exc)
        return _page(_filled_form(), test_form, status=400)
    enqueue(send_notification, notification_id)  # committed: the mail log shows it queued
    flash(f"Connected and logged in to the SMTP server. A test email to {test_form.to.data} is queued on the "
          "transactional lane.", "success")
    return redirect(url_for(".index"))


def _filled_form() -> SettingsForm:
    form = SettingsForm(formdata=None)
    current = settings.effective(fresh=True)
    for spec in settings.SPECS:
        if spec.kind != settings.SECRET:
            getattr(form, spec.name).data = _shown(current[spec.name])
    return form


def _done(changed: list[str], done: str, nothing: str):
    labels = {s.name: s.label for s in settings.SPECS}
    if changed:
        flash(done.format(", ".join(labels[n] for n in changed)), "success")
    else:
        flash(nothing, "info")
    return redirect(url_for(".index"))


# DKIM -----------------------------------------------------------------------------------------

KEY_TYPES = {"rsa-2048": "RSA, 2048 bits (recommended)", "rsa-3072": "RSA, 3072 bits", "rsa-4096": "RSA, 4096 bits",
             "ed25519": "Ed25519 (in addition to an RSA key: not every receiver checks it yet)"}


class DkimKeyForm(FlaskForm):
    domain = StringField("Sending domain", validators=[DataRequired(), Length(max=253)],
                         description="The part after @ in the From address.")
    key_type = SelectField("Key", choices=[SelectChoice(k, v) for k, v in KEY_TYPES.items()], default="rsa-2048")
    selector = StringField("Selector", validators=[Length(max=63)],
                           description="Leave empty for a dated one (nl202612): a new selector per rotation.")


def _dkim_page(form: DkimKeyForm | None = None, status: int = 200):
    keys = dkim.all_keys()
    states: dict[int, tuple[str, str]] = {}
    if request.args.get("check") == "dns":  # only when asked: each lookup may take DNS_TIMEOUT
        preflight.forget_dns()
        for key in keys:
            try:
                state, _ = preflight.record_state(key)
                states[key.id] = (state, preflight.STATES[state])
            except preflight.DnsError as exc:
                states[key.id] = ("error", str(exc))
    if form is None:
        form = DkimKeyForm(formdata=None, data={"domain": parseaddr(settings.get("MAIL_DEFAULT_SENDER") or "")[1]
                                               .rpartition("@")[2]})
    return render_template("admin/settings/dkim.html", keys=keys, form=form, states=states,
                           broken=set(dkim.undecryptable()), confirm_form=ConfirmForm()), status


@bp.route("/dkim", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def dkim_keys():
    if request.method == "GET":
        return _dkim_page()
    form = DkimKeyForm()
    if not form.validate_on_submit():
        return _dkim_page(form, 400)
    algorithm, _, bits = form.key_type.data.partition("-")
    try:
        key = dkim.generate(form.domain.data, form.selector.data, DkimAlgorithm(algorithm), int(bits or 256),
                            current_user.id)
    except ValidationError as exc:
        if not apply_error(form, exc, {"bits": "key_type"}):
            flash(exc.message, "error")
        return _dkim_page(form, 400)
    flash(f"Key generated for {key.domain}. Publish its TXT record at {key.record_name}, then activate it.", "success")
    return redirect(url_for(".dkim_keys", _anchor=f"key-{key.id}"))


@bp.post("/dkim/<int:key_id>/activate")
@role_required(Role.ADMIN)
def dkim_activate(key_id: int):
    if not ConfirmForm().validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(url_for(".dkim_keys"))
    key = dkim.get(key_id)
    try:
        state, _ = preflight.record_state(key)
    except preflight.DnsError:
        state = "error"
    retired = dkim.activate(key.id)
    done = f"{key.record_name} now signs every message from {key.domain}."
    if retired:
        done += f" Retired: {', '.join(old.selector for old in retired)} (keep its record a few days, then delete)."
    flash(done, "success")
    if state != "published":
        flash(f"Its DNS record is not {'found' if state in ('missing', 'error') else 'matching'} yet: receivers "
              "will fail the signature until it is published.", "error")
    return redirect(url_for(".dkim_keys"))


@bp.post("/dkim/<int:key_id>/delete")
@role_required(Role.ADMIN)
def dkim_delete(key_id: int):
    if not ConfirmForm().validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(url_for(".dkim_keys"))
    key = dkim.delete(key_id)
    flash(f"Deleted the key {key.record_name}; you can remove its DNS record.", "success")
    return redirect(url_for(".dkim_keys"))
