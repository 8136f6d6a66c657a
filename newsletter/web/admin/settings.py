"""Admin pages: Settings (SMTP server, sender, sending limits) over the environment's defaults, and DKIM keys."""
from __future__ import annotations

from email.utils import parseaddr
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
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
from ..i18n import localized
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
        errors = exc.errors if isinstance(exc, settings.SettingsInvalid) else {exc.field: exc.text}
        for name, message in errors.items():
            getattr(form, name).errors = [localized(message)]
        flash(_("Nothing was saved: correct the fields marked below."), "error")
        return _page(form, status=400)
    return _done(changed, _("Saved: {}. Every worker uses the new values within a second."), _("Nothing changed."))


@bp.post("/reset")
@role_required(Role.ADMIN)
def reset():
    """Back to the environment's value: one setting (`name`) or a whole section (`section`)."""
    if not ConfirmForm().validate_on_submit():
        flash(_("The form expired; try again."), "error")
        return redirect(url_for(".index"))
    section = request.form.get("section", "")
    names = [s.name for s in settings.SPECS if s.section == section or s.name == request.form.get("name")]
    changed = settings.save(dict.fromkeys(names), current_user.id) if names else []
    return _done(changed, _("Back to the environment's value: {}."),
                 _("Those settings already come from the environment."))


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
        flash(_("The SMTP server %(host)s:%(port)s did not accept us: %(problem)s",
                host=current.smtp.host, port=current.smtp.port, problem=problem), "error")
        return redirect(url_for(".index"))
    try:
        notification_id = system_mail.queue_test_email(test_form.to.data)
    except ValidationError as exc:  # an address the form's check let through but a send cannot use
        apply_error(test_form, exc)
        return _page(_filled_form(), test_form, status=400)
    enqueue(send_notification, notification_id)  # committed: the mail log shows it queued
    flash(_("Connected and logged in to the SMTP server. A test email to %(to)s is queued on the transactional lane.",
            to=test_form.to.data), "success")
    return redirect(url_for(".index"))


def _filled_form() -> SettingsForm:
    form = SettingsForm(formdata=None)
    current = settings.effective(fresh=True)
    for spec in settings.SPECS:
        if spec.kind != settings.SECRET:
            getattr(form, spec.name).data = _shown(current[spec.name])
    return form


def _done(changed: list[str], done: str, nothing: str):
    labels = {s.name: _(s.label) for s in settings.SPECS}
    if changed:
        flash(done.format(", ".join(labels[n] for n in changed)), "success")
    else:
        flash(nothing, "info")
    return redirect(url_for(".index"))


# DKIM -----------------------------------------------------------------------------------------

KEY_TYPES = {"rsa-2048": _l("RSA, 2048 bits (recommended)"), "rsa-3072": _l("RSA, 3072 bits"),
             "rsa-4096": _l("RSA, 4096 bits"),
             "ed25519": _l("Ed25519 (in addition to an RSA key: not every receiver checks it yet)")}


class DkimKeyForm(FlaskForm):
    domain = StringField(_l("Sending domain"), validators=[DataRequired(), Length(max=253)],
                         description=_l("The part after @ in the From address."))
    key_type = SelectField(_l("Key"), choices=[SelectChoice(k, v) for k, v in KEY_TYPES.items()], default="rsa-2048")
    selector = StringField(_l("Selector"), validators=[Length(max=63)],
                           description=_l("Leave empty for a dated one (nl202612): a new selector per rotation."))


def _dkim_page(form: DkimKeyForm | None = None, status: int = 200):
    keys = dkim.all_keys()
    states: dict[int, tuple[str, str]] = {}
    if request.args.get("check") == "dns":  # only when asked: each lookup may take DNS_TIMEOUT
        preflight.forget_dns()
        for key in keys:
            try:
                state, _details = preflight.record_state(key)
                states[key.id] = (state, _(preflight.STATES[state]))
            except preflight.DnsError as exc:
                states[key.id] = ("error", localized(exc))
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
    algorithm, _sep, bits = form.key_type.data.partition("-")
    try:
        key = dkim.generate(form.domain.data, form.selector.data, DkimAlgorithm(algorithm), int(bits or 256),
                            current_user.id)
    except ValidationError as exc:
        if not apply_error(form, exc, {"bits": "key_type"}):
            flash(localized(exc), "error")
        return _dkim_page(form, 400)
    flash(_("Key generated for %(domain)s. Publish its TXT record at %(record_name)s, then activate it.",
            domain=key.domain, record_name=key.record_name), "success")
    return redirect(url_for(".dkim_keys", _anchor=f"key-{key.id}"))


@bp.post("/dkim/<int:key_id>/activate")
@role_required(Role.ADMIN)
def dkim_activate(key_id: int):
    if not ConfirmForm().validate_on_submit():
        flash(_("The form expired; try again."), "error")
        return redirect(url_for(".dkim_keys"))
    key = dkim.get(key_id)
    try:
        state, _details = preflight.record_state(key)
    except preflight.DnsError:
        state = "error"
    retired = dkim.activate(key.id)
    flash(_("%(record)s now signs every message from %(domain)s.",
            record=key.record_name, domain=key.domain), "success")
    if retired:
        flash(_("Retired: %(selectors)s (keep its record a few days, then delete).",
                selectors=", ".join(old.selector for old in retired)), "info")
    if state != "published":
        flash(_("Its DNS record is not found yet: receivers will fail the signature until it is published.")
              if state in ("missing", "error") else
              _("Its DNS record is not matching yet: receivers will fail the signature until it is published."),
                    "error")
    return redirect(url_for(".dkim_keys"))


@bp.post("/dkim/<int:key_id>/delete")
@role_required(Role.ADMIN)
def dkim_delete(key_id: int):
    if not ConfirmForm().validate_on_submit():
        flash(_("The form expired; try again."), "error")
        return redirect(url_for(".dkim_keys"))
    key = dkim.delete(key_id)
    flash(_("Deleted the key %(record_name)s; you can remove its DNS record.", record_name=key.record_name), "success")
    return redirect(url_for(".dkim_keys"))
