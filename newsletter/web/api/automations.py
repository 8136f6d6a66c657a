"""/api/v1/automations and /api/v1/events: sequences of steps that subscribers enter on events.

An automation is created paused; PATCH `status` to `active` to start it. Steps run in
`position` order: `send` (subject, html, text: sandboxed Jinja2 with `subscriber`,
`unsubscribe_url`, `preferences_url`), `wait` (`minutes` and/or `at` "HH:MM" in the
subscriber's `timezone` attribute, else the step's `timezone`), `branch` (segment `rules`;
`on_false`: `exit` or `skip` the next step), or whether the subscriber `opened` / `clicked` an
earlier send step's email (`condition`, `step_id`; the automation needs `tracking`). A subscriber
enters once, or again after leaving with `reentry` (and `reentry_gap_minutes`). POST
.../steps/<id>/move swaps a step with its neighbour in a paused automation. POST /events records
an event that enrols the subscriber in every automation triggered by that name, once per
`idempotency_key`.
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
               "branch: {condition: rules|opened|clicked, rules: segment rules (condition rules), step_id: an "
               "earlier send step (opened/clicked; default the last one before the branch; in a new automation's "
               "steps the last send step before it), on_false: exit|skip}. A branch on opened/clicked counts "
               "human opens and clicks recorded until it runs: put a wait step before it.")
REENTRY_HELP = "false: a subscriber enters once ever; true: again after completing or leaving it."
GAP_HELP = "With reentry: minutes that must pass after leaving before entering again."
TRACKING_HELP = "Its emails carry an open pixel and tracked links, recorded per subscriber (branches need it)."


def _bad_rules(error: RuleError) -> Any:
    return problem(422, f"{error.field}: {error.message}", [{"field": error.field, "message": error.message}])


for blueprint in (bp, events_bp):
    blueprint.register_error_handler(RuleError, _bad_rules)


class StepIn(InSchema):
    kind = ma.fields.Enum(StepKind, by_value=True, required=True)
    params = ma.fields.Dict(keys=ma.fields.String(), required=True, metadata={"description": PARAMS_HELP})


class StepPatch(InSchema):
    params = ma.fields.Dict(keys=ma.fields.String(), required=True, metadata={"description": PARAMS_HELP})


class StepMove(InSchema):
    direction = ma.fields.String(required=True, validate=ma.validate.OneOf(["up", "down"]),
                                 metadata={"description": "Swap with the step above (up) or below (down)."})


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
    reentry = ma.fields.Boolean(load_default=False, metadata={"description": REENTRY_HELP})
    reentry_gap_minutes = ma.fields.Integer(load_default=0, metadata={"description": GAP_HELP})
    tracking = ma.fields.Boolean(load_default=False, metadata={"description": TRACKING_HELP})


class AutomationPatch(InSchema):
    name = ma.fields.String(validate=ma.validate.Length(1, 200))
    trigger = ma.fields.Enum(TriggerKind, by_value=True)
    trigger_key = ma.fields.String(validate=ma.validate.Length(1, 200))
    status = ma.fields.Enum(AutomationStatus, by_value=True,
                            metadata={"description": "paused holds every subscriber where they are."})
    reentry = ma.fields.Boolean(metadata={"description": REENTRY_HELP})
    reentry_gap_minutes = ma.fields.Integer(metadata={"description": GAP_HELP})
    tracking = ma.fields.Boolean(metadata={"description": TRACKING_HELP})


class AutomationOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    status = ma.fields.Enum(AutomationStatus, by_value=True, required=True)
    trigger = ma.fields.Enum(TriggerKind, by_value=True, required=True)
    trigger_key = ma.fields.String(required=True)
    reentry = ma.fields.Boolean(required=True)
    reentry_gap_minutes = ma.fields.Integer(required=True)
    tracking = ma.fields.Boolean(required=True)
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
    engagement = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True,
                                metadata={"description": "Send steps of a tracked automation: subscribers who "
                                                         "opened and who clicked its email (human)."})


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
    return automations.create(body["name"], body["trigger"], body["trigger_key"], body["steps"], body["reentry"],
                              body["reentry_gap_minutes"], body["tracking"])


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
    """Rename, change the trigger, re-entry or tracking, pause or resume."""
    automation = automations.update(automation_id, body.get("name"), body.get("trigger"), body.get("trigger_key"),
                                    body.get("reentry"), body.get("reentry_gap_minutes"), body.get("tracking"))
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


@bp.route("/<int:automation_id>/steps/<int:step_id>/move", methods=["POST"])
@bp.arguments(StepMove)
@bp.response(200, StepOut)
@bp.alt_response(409, response="CONFLICT")
def move_step(body: dict[str, Any], automation_id: int, step_id: int) -> AutomationStep:
    """Swap a step with the one above or below, in a paused automation (409 otherwise). Who ran the
    upper step and waits for the lower one runs it next and does not run the upper one again."""
    return automations.move_step(automation_id, step_id, body["direction"])


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



