"""The report's small breakdown counters, added to in the flush's transaction: machine events
per reason, and (individual mode only) events per recipient mail domain."""
from __future__ import annotations

from collections import Counter
from typing import Any

from ...models import EngagementDomainCount, EngagementKind, EngagementReasonCount
from . import counters


def count(events: list[list[Any]], individual: set[int], people: dict[int, str]) -> None:
    """Add one batch's events (as flush.apply parsed them) to the counters; the caller commits.

    Domains come from the subscribers' addresses at flush time, so a report never scans events
    for them; `people` are the individual-mode subscribers still there and not erased, with
    their addresses (the flush has read them already)."""
    reasons: Counter = Counter()
    for kind, campaign_id, _link, _subscriber, machine, reason, _at in events:
        if machine and reason:
            reasons[(campaign_id, EngagementKind(kind), reason[:32])] += 1
    counters.add(EngagementReasonCount.__table__, ["campaign_id", "kind", "reason"], reasons)

    domain_of = {sid: email.rpartition("@")[2].lower()[:255] for sid, email in people.items()}
    domains: Counter = Counter()
    for kind, campaign_id, _link, subscriber_id, machine, _reason, _at in events:
        if campaign_id in individual and subscriber_id in domain_of:
            domains[(campaign_id, EngagementKind(kind), domain_of[subscriber_id], bool(machine))] += 1
    counters.add(EngagementDomainCount.__table__, ["campaign_id", "kind", "domain", "machine"], domains)

