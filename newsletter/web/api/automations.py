"""/api/v1/automations and /api/v1/events: sequences of steps that subscribers enter on events.

An automation is created paused; PATCH `status` to `active` to start it. Steps run in
`position` order: `send` (subject, html, text: sandboxed Jinja2 with `subscriber`,
`unsubscribe_url`, `preferences_url`), `wait` (`minutes` and/or `at` "HH:MM" in the
subscriber's `timezone` attribute, else the step's `timezone`), `branch` (segment `rules`;
`on_false`: `exit` or `skip` the next step). POST /events records an event that enrols the
subscriber in every automation triggered by that name, once per `idempotency_key`.
"""
from __future__ import annotations

from typing import Any

import marshmallow as ma

from ...models import Automation, AutomationEvent, AutomationStatus, AutomationStep, StepKind, TriggerKind
from ...services.audience.segments.rules import RuleError
from ...services.automations import automations, entry, report
from .core import MAX_ID, InSchema, PageArgs, decode_cursor, page, page_schema, problem, resource_blueprint

bp = resource_blueprint("automations", "/automations",
                        "Automations: steps (send, wait, branch) subscribers go through once, entered on an event.")
events_bp = resource_blueprint("events", "/events", "Events that enrol subscribers in automations.")

PARAMS_HELP = ("send: {subject, html, text}; wait: {minutes, at: \"HH:MM\", timezone}; "
               "branch: {rules: segment rules, on_false: exit|skip}.")


def _bad_rules(error: RuleError) -> Any:
    return problem(422, f"{error.field}: {error.message}", [{"field": error.field, "message": error.message}])


for blueprint in (bp, events_bp):
    blueprint.register_error_handler(RuleError, _bad_rules)


class StepIn(InSchema):
    kind = ma.fields.Enum(StepKind, by_value=True, required=True)
    params = ma.fields.Dict(keys=ma.fields.String(), required=True, metadata={"description": PARAMS_HELP})


class StepPatch(InSchema):
    params = ma.fields.Dict(keys=ma.fields.String(), required=True, metadata={"description": PARAMS_HELP})


class StepOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    position = ma.fields.Integer(required=True)
    kind = ma.fields.Enum(StepKind, by_value=True, required=True)
    params = ma.fields.Dict(keys=ma.fields.String(), required=True)
    version = ma.fields.Integer(required=True)


class AutomationIn(InSchema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(1, 200))
    trigger = ma.fields.Enum(TriggerKind, by_value=True, required=True)
    trigger_key = ma.fields.String(required=True, validate=ma.validate.Length(1, 200),
                                   metadata={"description": "The list id (subscribed, confirmed), the attribute "
                                                            "(attribute_changed, date) or the event name (api_event)."})
    steps = ma.fields.List(ma.fields.Nested(StepIn), load_default=list, validate=ma.validate.Length(max=100))


class AutomationPatch(InSchema):
    name = ma.fields.String(validate=ma.validate.Length(1, 200))
    trigger = ma.fields.Enum(TriggerKind, by_value=True)
    trigger_key = ma.fields.String(validate=ma.validate.Length(1, 200))
    status = ma.fields.Enum(AutomationStatus, by_value=True,
                            metadata={"description": "paused holds every subscriber where they are."})


class AutomationOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    status = ma.fields.Enum(AutomationStatus, by_value=True, required=True)
    trigger = ma.fields.Enum(TriggerKind, by_value=True, required=True)
    trigger_key = ma.fields.String(required=True)
    steps = ma.fields.Function(lambda a: StepOut(many=True).dump(automations.steps(a.id)), required=True,
                               metadata={"type": "array", "items": {"type": "object"}})
    created_at = ma.fields.DateTime(required=True)



class StepReportOut(ma.Schema):
    step_id = ma.fields.Function(lambda r: r.step.id, required=True, metadata={"type": "integer"})
    position = ma.fields.Function(lambda r: r.step.position, required=True, metadata={"type": "integer"})
    kind = ma.fields.Function(lambda r: r.step.kind.value, required=True, metadata={"type": "string"})
    waiting = ma.fields.Integer(required=True, metadata={"description": "Subscribers about to run this step."})
    outcomes = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True,
                              metadata={"description": "Runs of this step by outcome (queued, waited, continued, "
                                                       "skipped, exited)."})
    sends = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True,
                           metadata={"description": "This step's emails by status (queued, sent, failed, ...)."})


class ReportOut(ma.Schema):
    entered = ma.fields.Integer(required=True)
    active = ma.fields.Integer(required=True)
    completed = ma.fields.Integer(required=True)
    exited = ma.fields.Integer(required=True)
    sends = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True)
    steps = ma.fields.List(ma.fields.Nested(StepReportOut), required=True)


class EventIn(InSchema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(1, 100))
    subscriber_id = ma.fields.Integer(validate=ma.validate.Range(1, MAX_ID))
    email = ma.fields.String(validate=ma.validate.Length(1, 254))
    idempotency_key = ma.fields.String(validate=ma.validate.Length(1, 200),
                                       metadata={"description": "The same key again records nothing new."})
    payload = ma.fields.Dict(keys=ma.fields.String(), load_default=dict)


class EventOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(attribute="key", required=True)
    subscriber_id = ma.fields.Integer(required=True)
    idempotency_key = ma.fields.String(allow_none=True, required=True)
    created_at = ma.fields.DateTime(required=True)


@bp.route("", methods=["POST"])
@bp.arguments(AutomationIn)
@bp.response(201, AutomationOut)
def create(body: dict[str, Any]) -> Automation:
    """Create a paused automation with its steps."""
    return automations.create(body["name"], body["trigger"], body["trigger_key"], body["steps"])


@bp.route("", methods=["GET"])
@bp.arguments(PageArgs, location="query")
@bp.response(200, page_schema(AutomationOut, "AutomationPage"))
def index(args: dict[str, Any]) -> dict[str, Any]:
    """Automations, oldest first."""
    return page(automations.oldest_first(decode_cursor(args["cursor"]), args["limit"] + 1), args["limit"])


@bp.route("/<int:automation_id>", methods=["GET"])
@bp.response(200, AutomationOut)
def read(automation_id: int) -> Automation:
    """One automation and its steps."""
    return automations.get(automation_id)


@bp.route("/<int:automation_id>", methods=["PATCH"])
@bp.arguments(AutomationPatch)
@bp.response(200, AutomationOut)
def patch(body: dict[str, Any], automation_id: int) -> Automation:
    """Rename, change the trigger, pause or resume."""
    automation = automations.update(automation_id, body.get("name"), body.get("trigger"), body.get("trigger_key"))
    if "status" in body:
        automation = automations.set_status(automation_id, body["status"])
    return automation


@bp.route("/<int:automation_id>", methods=["DELETE"])
@bp.response(204)
def delete(automation_id: int) -> None:
    """Delete an automation with its enrollments (emails already queued still go out)."""
    automations.delete(automation_id)


@bp.route("/<int:automation_id>/steps", methods=["POST"])
@bp.arguments(StepIn)
@bp.response(201, StepOut)
def add_step(body: dict[str, Any], automation_id: int) -> AutomationStep:
    """Append a step."""
    return automations.add_step(automation_id, body["kind"], body["params"])


@bp.route("/<int:automation_id>/steps/<int:step_id>", methods=["PATCH"])
@bp.arguments(StepPatch)
@bp.response(200, StepOut)
def edit_step(body: dict[str, Any], automation_id: int, step_id: int) -> AutomationStep:
    """New params for a step: only subscribers who have not run it yet see them."""
    return automations.edit_step(automation_id, step_id, body["params"])


@bp.route("/<int:automation_id>/steps/<int:step_id>", methods=["DELETE"])
@bp.response(204)
@bp.alt_response(409, response="CONFLICT")
def delete_step(automation_id: int, step_id: int) -> None:
    """Delete a step nobody is about to run (409 otherwise)."""
    automations.delete_step(automation_id, step_id)


@bp.route("/<int:automation_id>/report", methods=["GET"])
@bp.response(200, ReportOut)
def read_report(automation_id: int) -> report.Report:
    """Entered, active, completed, exited; per step: who is about to run it, its outcomes and its emails."""
    return report.build(automation_id)


@events_bp.route("", methods=["POST"])
@events_bp.arguments(EventIn)
@events_bp.response(202, EventOut)
@events_bp.alt_response(409, response="CONFLICT")
def record_event(body: dict[str, Any]) -> AutomationEvent:
    """Record an event for a subscriber (by id or email): automations triggered by its name enrol them
    within seconds. The same idempotency_key again returns the first event (409 if for another event)."""
    event, _ = entry.record_api_event(body["name"], body.get("subscriber_id"), body.get("email"),
                                      body.get("idempotency_key"), body.get("payload"))
    return event



