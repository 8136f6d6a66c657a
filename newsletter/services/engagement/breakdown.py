"""The report's small breakdown counters, added to in the flush's transaction: machine events
per reason, and (individual mode only) events per recipient mail domain."""
from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import select

from ...extensions import db
from ...models import EngagementDomainCount, EngagementKind, EngagementReasonCount, Subscriber
from ...models.base import upsert_insert


def count(events: list[list[Any]], individual: set[int], people: set[int]) -> None:
    """Add one batch's events (as flush.apply parsed them) to the counters; the caller commits.

    Domains come from the subscribers table at flush time, so a report never scans events for
    them; `people` are the individual-mode subscribers still there and not erased."""
    reasons: Counter = Counter()
    for kind, campaign_id, _link, _subscriber, machine, reason, _at in events:
        if machine and reason:
            reasons[(campaign_id, EngagementKind(kind), reason[:32])] += 1
    _add(EngagementReasonCount.__table__, ["campaign_id", "kind", "reason"], reasons)

    wanted = {int(e[3]) for e in events if int(e[1]) in individual and int(e[3]) in people}
    if not wanted:
        return
    domain_of = {sid: email.rpartition("@")[2].lower()[:255] for sid, email in db.session.execute(
        select(Subscriber.id, Subscriber.email).where(Subscriber.id.in_(wanted)))}
    domains: Counter = Counter()
    for kind, campaign_id, _link, subscriber_id, machine, _reason, _at in events:
        if campaign_id in individual and subscriber_id in domain_of:
            domains[(campaign_id, EngagementKind(kind), domain_of[subscriber_id], bool(machine))] += 1
    _add(EngagementDomainCount.__table__, ["campaign_id", "kind", "domain", "machine"], domains)


def _add(table: Any, key: list[str], counts: Counter) -> None:
    """Add each count to its row (created at 0 when missing), in one statement."""
    if not counts:
        return
    statement = upsert_insert(table)
    statement = statement.on_conflict_do_update(index_elements=key,
                                                set_={"count": table.c.count + statement.excluded["count"]})
    db.session.execute(statement, [{**dict(zip(key, values)), "count": n} for values, n in counts.items()])
