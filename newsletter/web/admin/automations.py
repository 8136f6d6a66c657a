"""Admin pages for automations: the list, create, the automation with its steps and report,
pause and resume, and a form per step kind."""
from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ...models import Automation, AutomationStatus, AutomationStep, Role, StepKind
from ...services.automations import automations, report
from ...services.errors import ValidationError
from ..i18n import localized
from ..lookups import found
from ..roles import role_required
from .forms import saved_or_form_error
from .forms.automations import ON_FALSE, STEP_LABELS, TRIGGERS, AutomationForm, StatusForm, StepForm
from .lists import can_edit_context

bp = Blueprint("automations", __name__, url_prefix="/admin/automations")
bp.context_processor(can_edit_context)
bp.context_processor(lambda: {"step_labels": STEP_LABELS, "trigger_labels": dict(TRIGGERS),
                               "on_false_labels": dict(ON_FALSE)})

# The service names a step's fields params.<name>; the form's fields are <name>.
ALIASES = {f"params.{name}": name for name in ("subject", "html", "text", "minutes", "at", "timezone", "rules",
                                               "on_false", "condition", "step_id")}


@bp.get("/")
@role_required(Role.VIEWER)
def index():
    return render_template("admin/automations/index.html", automations=automations.all_automations())


@bp.route("/new", methods=["GET", "POST"])
@role_required(Role.MARKETER)
def new():
    form = AutomationForm()
    if form.validate_on_submit() and (saved := saved_or_form_error(form, lambda: automations.create(
            form.name.data, form.trigger.data, form.trigger_key.data, None, form.reentry.data,
            form.reentry_gap_minutes.data or 0, form.tracking.data))):
        flash(_("Automation “%(name)s” created, paused: add its steps, then start it.", name=saved.name), "success")
        return redirect(url_for(".detail", automation_id=saved.id))
    return render_template("admin/automations/new.html", form=form)


@bp.get("/<automation_id>")
@role_required(Role.VIEWER)
def detail(automation_id: str):
    automation = found(automations.get, automation_id, "automation")
    return _detail(automation.id, AutomationForm(obj=automation))


def _detail(automation_id: int, form: AutomationForm) -> str:
    automation = automations.get(automation_id)
    form.trigger.data = form.trigger.data or automation.trigger.value
    built = report.build(automation.id)
    return render_template("admin/automations/detail.html", automation=automation, form=form, report=built,
                           status_form=StatusForm(), positions={row.step.id: row.step.position for row in built.steps})


@bp.post("/<automation_id>")
@role_required(Role.MARKETER)
def save(automation_id: str):
    automation = found(automations.get, automation_id, "automation")
    form = AutomationForm()
    if form.validate_on_submit() and saved_or_form_error(form, lambda: automations.update(
            automation.id, form.name.data, form.trigger.data, form.trigger_key.data, form.reentry.data,
            form.reentry_gap_minutes.data or 0, form.tracking.data)):
        flash(_("Automation saved."), "success")
        return redirect(url_for(".detail", automation_id=automation.id))
    return _detail(automation.id, form)


@bp.post("/<automation_id>/status")
@role_required(Role.MARKETER)
def status(automation_id: str):
    automation = found(automations.get, automation_id, "automation")
    form = StatusForm()
    if not form.validate_on_submit() or form.status.data not in {s.value for s in AutomationStatus}:
        abort(400)
    automations.set_status(automation.id, form.status.data)
    flash(_("Running: due steps go out within seconds.") if form.status.data == "active"
          else _("Paused: everyone stays where they are until you resume."), "success")
    return redirect(url_for(".detail", automation_id=automation.id))


def _params(kind: StepKind, form: StepForm) -> dict[str, Any]:
    if kind == StepKind.SEND:
        return {"subject": form.subject.data or "", "html": form.html.data or "", "text": form.text.data or ""}
    if kind == StepKind.WAIT:
        return {"minutes": form.minutes.data or 0, "at": form.at.data or "", "timezone": form.timezone.data or "UTC"}
    if form.condition.data in ("opened", "clicked"):
        step_id = form.step_id.data or ""  # "": the last email before the branch; not a number: refused
        return {"condition": form.condition.data, "on_false": form.on_false.data,
                "step_id": int(step_id) if step_id.isdigit() and len(step_id) < 10 else (step_id or None)}
    try:
        rules = json.loads(form.rules.data or "")
    except ValueError as exc:
        raise ValidationError("params.rules", "Not JSON: %(exc)s", exc=exc) from None
    return {"condition": "rules", "rules": rules, "on_false": form.on_false.data}


def _fill(form: StepForm, step: AutomationStep) -> None:
    for name, value in step.params.items():
        if name in form._fields:
            form._fields[name].data = json.dumps(value, indent=2) if name == "rules" else value
    form.step_id.data = str(step.params.get("step_id") or "")


def _email_choices(form: StepForm, automation: Automation, before: AutomationStep | None) -> None:
    """The branch form's emails: the send steps before the branch (every one, for a new step)."""
    sends = [s for s in automations.steps(automation.id)
             if s.kind == StepKind.SEND and (before is None or s.position < before.position)]
    form.step_id.choices = [("", _("The last email before this branch"))] + [
        (str(s.id), _("Step %(number)s: %(subject)s", number=s.position, subject=s.params.get("subject", "")))
        for s in sends]


def _step_of(automation_id: str, step_id: str) -> tuple[Automation, AutomationStep]:
    """The automation and its step named in the URL (404 for either missing or not belonging)."""
    automation = found(automations.get, automation_id, "automation")
    return automation, found(lambda i: automations.get_step(automation.id, i), step_id, "step")


def _step_page(automation: Automation, kind: StepKind, form: StepForm, step: AutomationStep | None) -> str:
    _email_choices(form, automation, step)
    return render_template("admin/automations/step.html", automation=automation, kind=kind, form=form, step=step)


@bp.route("/<automation_id>/steps/new/<kind>", methods=["GET", "POST"])
@role_required(Role.MARKETER)
def new_step(automation_id: str, kind: str):
    automation = found(automations.get, automation_id, "automation")
    if kind not in {k.value for k in StepKind}:
        abort(404)
    step_kind, form = StepKind(kind), StepForm()
    if form.validate_on_submit() and saved_or_form_error(
            form, lambda: automations.add_step(automation.id, step_kind, _params(step_kind, form)), ALIASES):
        flash(_("%(kind)s: step added.", kind=STEP_LABELS[step_kind]), "success")
        return redirect(url_for(".detail", automation_id=automation.id))
    return _step_page(automation, step_kind, form, None)


@bp.get("/<automation_id>/steps/<step_id>")
@role_required(Role.VIEWER)
def edit_step(automation_id: str, step_id: str):
    automation, step = _step_of(automation_id, step_id)
    form = StepForm()
    _fill(form, step)
    return _step_page(automation, step.kind, form, step)


@bp.post("/<automation_id>/steps/<step_id>")
@role_required(Role.MARKETER)
def save_step(automation_id: str, step_id: str):
    automation, step = _step_of(automation_id, step_id)
    form = StepForm()
    if form.validate_on_submit() and saved_or_form_error(
            form, lambda: automations.edit_step(automation.id, step.id, _params(step.kind, form)), ALIASES):
        flash(_("Step saved: subscribers who have not reached it yet will see the new version."), "success")
        return redirect(url_for(".detail", automation_id=automation.id))
    return _step_page(automation, step.kind, form, step)


@bp.post("/<automation_id>/steps/<step_id>/delete")
@role_required(Role.MARKETER)
def delete_step(automation_id: str, step_id: str):
    automation, step = _step_of(automation_id, step_id)
    if not StatusForm().validate_on_submit():
        abort(400)
    try:
        automations.delete_step(automation.id, step.id)
        flash(_("Step deleted."), "success")
    except ValidationError as exc:
        flash(localized(exc), "error")
    return redirect(url_for(".detail", automation_id=automation.id))


@bp.post("/<automation_id>/steps/<step_id>/move")
@role_required(Role.MARKETER)
def move_step(automation_id: str, step_id: str):
    automation, step = _step_of(automation_id, step_id)
    direction = request.form.get("direction", "")
    if not StatusForm().validate_on_submit() or direction not in ("up", "down"):
        abort(400)
    try:
        automations.move_step(automation.id, step.id, direction)
        flash(_("Step moved up.") if direction == "up" else _("Step moved down."), "success")
    except ValidationError as exc:
        flash(localized(exc), "error")
    return redirect(url_for(".detail", automation_id=automation.id))
