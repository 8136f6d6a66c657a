"""An automation's report: entered, where everyone is, completed, exited, and how its emails went."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from ...extensions import db
from ...models import AutomationStep, Enrollment, EnrollmentState, Notification, StepExecution
from . import tracking
from .automations import get, steps


@dataclass
class StepRow:
    step: AutomationStep
    waiting: int = 0  # active enrollments about to run it
    outcomes: dict[str, int] = field(default_factory=dict)  # its executions by outcome
    sends: dict[str, int] = field(default_factory=dict)  # its emails by ledger status
    engagement: dict[str, int] = field(default_factory=dict)  # send steps: opened, clicked (human, tracked)


@dataclass
class Report:
    entered: int
    active: int
    completed: int
    exited: int
    steps: list[StepRow]
    sends: dict[str, int]


def build(automation_id: int) -> Report:
    get(automation_id)
    states = dict(db.session.execute(select(Enrollment.state, func.count()).where(
        Enrollment.automation_id == automation_id).group_by(Enrollment.state)).all())
    rows = {step.id: StepRow(step) for step in steps(automation_id)}
    for step_id, count in db.session.execute(select(Enrollment.current_step_id, func.count()).where(
            Enrollment.automation_id == automation_id, Enrollment.state == EnrollmentState.ACTIVE,
            Enrollment.current_step_id.is_not(None)).group_by(Enrollment.current_step_id)):
        if step_id in rows:
            rows[step_id].waiting = count
    step_ids = list(rows)
    for step_id, outcome, count in db.session.execute(
            select(StepExecution.step_id, StepExecution.outcome, func.count())
            .where(StepExecution.step_id.in_(step_ids)).group_by(StepExecution.step_id, StepExecution.outcome)):
        rows[step_id].outcomes[outcome] = count
    for step_id, engaged in tracking.counts(step_ids).items():
        rows[step_id].engagement = engaged
    totals: dict[str, int] = {}
    for step_id, status, count in db.session.execute(
            select(StepExecution.step_id, Notification.status, func.count())
            .join(Notification, Notification.id == StepExecution.notification_id)
            .where(StepExecution.step_id.in_(step_ids)).group_by(StepExecution.step_id, Notification.status)):
        rows[step_id].sends[status.value] = count
        totals[status.value] = totals.get(status.value, 0) + count
    return Report(entered=sum(states.values()), active=states.get(EnrollmentState.ACTIVE, 0),
                  completed=states.get(EnrollmentState.COMPLETED, 0), exited=states.get(EnrollmentState.EXITED, 0),
                  steps=list(rows.values()), sends=totals)
