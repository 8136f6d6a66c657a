"""Admin pages for automations: the list, create, the automation with its steps and report,
pause and resume, and a form per step kind."""
from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, url_for

from ...models import AutomationStatus, AutomationStep, Role, StepKind
from ...services.automations import automations, report
from ...services.errors import ValidationError
from ..lookups import found
from ..roles import role_required
from .forms import saved_or_form_error
from .forms.automations import STEP_LABELS, AutomationForm, StatusForm, StepForm
from .lists import can_edit_context

bp = Blueprint("automations", __name__, url_prefix="/admin/automations")
bp.context_processor(can_edit_context)
bp.context_processor(lambda: {"step_labels": STEP_LABELS})

# The service names a step's fields params.<name>; the form's fields are <name>.
ALIASES = {f"params.{name}": name for name in ("subject", "html", "text", "minutes", "at", "timezone", "rules",
                                               "on_false")}


@bp.get("/")
@role_required(Role.VIEWER)
def index():
    return render_template("admin/automations/index.html", automations=automations.all_automations())


@bp.route("/new", methods=["GET", "POST"])
@role_required(Role.MARKETER)
def new():
    form = AutomationForm()
    if form.validate_on_submit() and (saved := saved_or_form_error(form, lambda: automations.create(
            form.name.data, form.trigger.data, form.trigger_key.data))):
        flash(f"Automation “{saved.name}” created, paused: add its steps, then start it.", "success")
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
    return render_template("admin/automations/detail.html", automation=automation, form=form,
                           report=report.build(automation.id), status_form=StatusForm())


@bp.post("/<automation_id>")
@role_required(Role.MARKETER)
def save(automation_id: str):
    automation = found(automations.get, automation_id, "automation")
    form = AutomationForm()
    if form.validate_on_submit() and saved_or_form_error(form, lambda: automations.update(
            automation.id, form.name.data, form.trigger.data, form.trigger_key.data)):
        flash("Automation saved.", "success")
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
    flash("Running: due steps go out within seconds." if form.status.data == "active"
          else "Paused: everyone stays where they are until you resume.", "success")
    return redirect(url_for(".detail", automation_id=automation.id))


def _params(kind: StepKind, form: StepForm) -> dict[str, Any]:
    if kind == StepKind.SEND:
        return {"subject": form.subject.data or "", "html": form.html.data or "", "text": form.text.data or ""}
    if kind == StepKind.WAIT:
        return {"minutes": form.minutes.data or 0, "at": form.at.data or "", "timezone": form.timezone.data or "UTC"}
    try:
        rules = json.loads(form.rules.data or "")
    except ValueError as exc:
        raise ValidationError("params.rules", f"Not JSON: {exc}") from None
    return {"rules": rules, "on_false": form.on_false.data}


def _fill(form: StepForm, step: AutomationStep) -> None:
    for name, value in step.params.items():
        if name in form._fields:
            form._fields[name].data = json.dumps(value, indent=2) if name == "rules" else value


@bp.route("/<automation_id>/steps/new/<kind>", methods=["GET", "POST"])
@role_required(Role.MARKETER)
def new_step(automation_id: str, kind: str):
    automation = found(automations.get, automation_id, "automation")
    if kind not in {k.value for k in StepKind}:
        abort(404)
    step_kind, form = StepKind(kind), StepForm()
    if form.validate_on_submit() and saved_or_form_error(
            form, lambda: automations.add_step(automation.id, step_kind, _params(step_kind, form)), ALIASES):
        flash(f"{STEP_LABELS[step_kind]}: step added.", "success")
        return redirect(url_for(".detail", automation_id=automation.id))
    return render_template("admin/automations/step.html", automation=automation, kind=step_kind, form=form, step=None)


@bp.get("/<automation_id>/steps/<step_id>")
@role_required(Role.VIEWER)
def edit_step(automation_id: str, step_id: str):
    automation = found(automations.get, automation_id, "automation")
    step = found(lambda i: automations.get_step(automation.id, i), step_id, "step")
    form = StepForm()
    _fill(form, step)
    return render_template("admin/automations/step.html", automation=automation, kind=step.kind, form=form,
                           step=step)


@bp.post("/<automation_id>/steps/<step_id>")
@role_required(Role.MARKETER)
def save_step(automation_id: str, step_id: str):
    automation = found(automations.get, automation_id, "automation")
    step = found(lambda i: automations.get_step(automation.id, i), step_id, "step")
    form = StepForm()
    if form.validate_on_submit() and saved_or_form_error(
            form, lambda: automations.edit_step(automation.id, step.id, _params(step.kind, form)), ALIASES):
        flash("Step saved: subscribers who have not reached it yet will see the new version.", "success")
        return redirect(url_for(".detail", automation_id=automation.id))
    return render_template("admin/automations/step.html", automation=automation, kind=step.kind, form=form,
                           step=step)


@bp.post("/<automation_id>/steps/<step_id>/delete")
@role_required(Role.MARKETER)
def delete_step(automation_id: str, step_id: str):
    automation = found(automations.get, automation_id, "automation")
    step = found(lambda i: automations.get_step(automation.id, i), step_id, "step")
    if not StatusForm().validate_on_submit():
        abort(400)
    try:
        automations.delete_step(automation.id, step.id)
        flash("Step deleted.", "success")
    except ValidationError as exc:
        flash(exc.message, "error")
    return redirect(url_for(".detail", automation_id=automation.id))
