"""Every metric the platform exports, defined once (docs/operations.md says what each means).

Call sites use one line each. Labels are bounded sets only: lanes, outcomes, SMTP reply classes,
states, sources; never a subscriber, an address or a campaign id. Per message the pipeline does at
most a couple of `inc()`s (each one writes an mmap file in multiprocess mode): a campaign batch
counts its outcomes once, at its end (`messages`), and times whole SMTP rounds, not messages.
The gauges read at scrape time (ledger rows, queues...) are described here and filled by
`exposition.StateCollector` from what services.monitoring reads.
"""
from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable, Mapping

from . import multiproc

multiproc.activate()  # before prometheus_client is imported: it picks its mode at import

from prometheus_client import Counter, Histogram  # noqa: E402

PREFIX = "newsletter_"

MESSAGES = Counter(
    PREFIX + "messages", "Messages by lane (campaign, notification), outcome (sent, failed, retried, deferred, "
    "cancelled) and the SMTP server's reply class (2xx, 4xx, 5xx, none: no reply, e.g. unreachable).",
    ["lane", "outcome", "reply"])
SMTP_ROUND = Histogram(
    PREFIX + "smtp_round_seconds", "One SMTP round: a campaign's messages over its parallel sessions "
    "(SEND_SESSIONS), or one notification, from MAIL FROM to the last reply (the ledger's fence included).",
    ["lane"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
LIMITER_WAITS = Counter(
    PREFIX + "rate_limit_waits", "Times a sender slept for a rate-limit bucket (campaigns: SEND_RATE; "
    "notifications: NOTIFY_RATE; server: a sending server's own limit).", ["bucket"])
LIMITER_WAIT_SECONDS = Counter(PREFIX + "rate_limit_wait_seconds", "Seconds slept for a rate-limit bucket.",
                               ["bucket"])
LIMITER_REFUSALS = Counter(
    PREFIX + "rate_limit_refusals", "Reservations refused because the wait would be too long: the messages "
    "were handed back for later (counted as deferred too).", ["bucket"])
RECOVERIES = Counter(
    PREFIX + "sweeper_recoveries", "Rows the sweeper took back from a vanished owner, by ledger (deliveries, "
    "notifications, webhooks) and action (assumed_sent, reclaimed, republished).", ["ledger", "action"])
WEBHOOKS = Counter(PREFIX + "webhook_deliveries", "Webhook POSTs by outcome (delivered, retried, failed).",
                   ["outcome"])
BOUNCES = Counter(
    PREFIX + "bounce_reports", "Bounce and complaint reports by type (hard, soft, complaint), source (mailbox, "
    "api, ses, sendgrid, mailgun, postmark) and result (recorded, duplicate, unmatched).",
    ["type", "source", "result"])
IMPORT_ROWS = Counter(
    PREFIX + "import_rows", "CSV import rows applied, by result (created, updated, unchanged, not_found, "
    "suppressed, invalid, duplicates).", ["result"])

# Read at scrape time by the web process (name, help, label names); values from services.monitoring.
LEDGER_ROWS = (PREFIX + "ledger_rows", "Rows of a ledger by state: deliveries in every state, notifications in "
               "their unsent states (queued, sending, committing).", ("ledger", "state"))
CAMPAIGNS = (PREFIX + "campaigns", "Campaigns by status.", ("status",))
CAMPAIGN_TOTALS = (PREFIX + "recent_campaign_totals", "Sums over the campaigns started in the last 7 days: sent, "
                   "bounced, complained (each delivery counted once).", ("total",))
QUEUE_DEPTH = (PREFIX + "queue_depth", "Messages waiting in a Celery queue (the broker's count).", ("queue",))
STATE_UP = (PREFIX + "state_up", "1 if the scrape-time reading (database, broker) worked, else 0.", ("source",))

# Outcomes by the ledger status a sender wrote: a row back to pending/queued is a retry when an
# attempt was spent on it, else it was handed back unsent (rate limit, pause, our login refused).
_OUTCOME = {"sent": "sent", "failed": "failed", "cancelled": "cancelled"}


def reply_class(code: int | None) -> str:
    return f"{code // 100}xx" if code and 200 <= code < 600 else "none"


def messages(lane: str, results: Iterable[tuple[str, bool, int | None]]) -> None:
    """Count a batch's (ledger status, handed back unsent, SMTP code) results: one inc() per kind."""
    tally = Tally((_OUTCOME.get(status) or ("deferred" if released else "retried"), reply_class(code))
                  for status, released, code in results)
    for (outcome, reply), n in tally.items():
        MESSAGES.labels(lane, outcome, reply).inc(n)


def waited(bucket: str, seconds: float) -> None:
    LIMITER_WAITS.labels(bucket).inc()
    LIMITER_WAIT_SECONDS.labels(bucket).inc(seconds)


def recovered(ledger: str, counts: Mapping[str, int]) -> None:
    for action, n in counts.items():
        if n:
            RECOVERIES.labels(ledger, action).inc(n)


def webhook_outcomes(statuses: Iterable[str]) -> None:
    """Webhook rows as `record` wrote them: delivered, failed, or pending again (retried)."""
    for status, n in Tally(statuses).items():
        WEBHOOKS.labels("retried" if status == "pending" else status).inc(n)


def import_rows(counts: Mapping[str, int]) -> None:
    for result, n in counts.items():
        if n:
            IMPORT_ROWS.labels(result).inc(n)
