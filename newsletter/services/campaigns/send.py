"""Sending a campaign: prepare the ledger, send one batch of deliveries, queue test sends.

`send_batch` is what a bulk worker runs for a batch of delivery ids. It reads the rows still
to send (registered under its lease, so the sweeper can tell who has them); per recipient it
waits for the global rate limit, renders with the campaign's precompiled templates, and hands
the message to one of the batch's SMTP sessions (a round of messages goes out over several
connections at once), claiming its row right before the final dot: the fence moves it
(fresh pending, or queued) -> `committing` under the batch's token, so another batch holding the same row
(a redelivered message) is refused there. Outcomes are written back in one statement
every RECORD_EVERY seconds of a batch and at its end, so the campaign's progress (counted
from the ledger) moves while a batch sends instead of jumping by a batch at its end.
One recipient's failure never raises: it is recorded and the batch goes on.
A test send is rendered here and queued as notifications (kind `campaign_test`) that the
transactional lane sends.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import redis
from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError

from ...extensions import db
from ...metrics import instruments as metrics
from ...models import Campaign, CampaignStatus, DeliveryStatus, Layout, NotificationKind, Subscriber, Tracking
from ...models.base import utcnow
from ...sending import message as mime
from ...sending import pools, smtp
from ...sending.errors import Kind, SmtpFailure
from ...sending.limiter import RateLimiter, thread_limiter
from ...sending.render import CompiledMessage, RenderError
from .. import audit, languages, settings
from ..deliverability import dkim, verp
from ..delivery import leases, ledger, servers
from ..delivery.fences import FenceLine
from ..delivery.ledger import Claimed, Outcome
from ..delivery.retries import retry_delay
from ..engagement import links as engagement_links
from ..errors import ValidationError
from ..notifications import one_off
from . import ab_variants, campaigns, recipients
from . import translations as translations_service
from .context import RecipientLinks, campaign_fields, list_unsubscribe_mailto, preview_context, sample_context
from .status import transition

D = DeliveryStatus
MAX_TEST_ADDRESSES = 10
STATUS_CHECK_EVERY = 0.5  # seconds: how quickly a pause or cancel stops a running batch
RECORD_EVERY = 0.5  # seconds: how often a batch writes the outcomes it has (progress reads them)
RECORD_TRIES = 4  # a batch's outcomes are written on a fresh connection up to this many times (Batch.record)


def prepare(campaign_id: int, first_chunk_only: bool = False) -> bool:
    """Snapshot the recipients once (safe to repeat); True while the campaign is sending.

    `first_chunk_only`: freeze just the first chunk, so the dispatcher can publish the first
    windows at once and freeze the rest while they send. One process snapshots a campaign
    at a time (a lease in Redis): the sweeper, which calls this for every sending campaign,
    takes over only if the dispatcher has stopped renewing it.
    """
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None or campaign.status != CampaignStatus.SENDING:
        return False
    if campaign.snapshot_at is None:
        db.session.commit()  # end the read: no transaction waits on the lease
        with _snapshot_lease(campaign_id) as renew:
            if renew is not None:
                while not recipients.snapshot_chunk(campaign_id) and not first_chunk_only:
                    renew()
    return True


SNAPSHOT_LEASE = 60  # seconds; renewed after every chunk


@contextmanager
def _snapshot_lease(campaign_id: int):
    """Yield a renew() callable while this process holds the campaign's snapshot lease, else None."""
    client = limiter().client
    key, token = f"newsletter:campaign:{campaign_id}:snapshot", uuid.uuid4().hex
    if not client.set(key, token, nx=True, ex=SNAPSHOT_LEASE):
        yield None
        return
    try:
        yield lambda: client.expire(key, SNAPSHOT_LEASE)
    finally:
        if client.get(key) == token.encode():
            client.delete(key)


# Per-process caches: the compiled templates and the limiter ------------------------------------

@dataclass
class _Variant:
    """One language's compiled message and its tracked links (each variant's HTML has its own)."""
    compiled: CompiledMessage
    link_ids: list[int] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)


@dataclass
class _Prepared:
    """Everything a message needs from its campaign, read once (never per recipient)."""
    key: tuple
    compiled: CompiledMessage
    fields: dict[str, Any]  # id, name, subject, from_name, from_email (the template's `campaign`)
    reply_to: str
    list_ids: list[int]
    list_id_header: str
    tracking: Tracking = Tracking.OFF
    link_ids: list[int] = field(default_factory=list)  # the tracked links' ids, in template order
    urls: list[str] = field(default_factory=list)  # and their URLs (test sends link to these)
    feedback_id: str = ""  # Gmail's feedback loop: campaign, list, mail type, sender (see feedback_id)
    # The campaign's translations by language tag (services/campaigns/translations.py), compiled here
    # once; a recipient's variant is a dict lookup (variant_for).
    translations: dict[str, _Variant] = field(default_factory=dict)
    links: RecipientLinks | None = None  # made at the first message (in the app that sends it)

    def __post_init__(self) -> None:
        self.default = _Variant(self.compiled, self.link_ids, self.urls)

    def recipient_links(self) -> RecipientLinks:
        links = self.links
        if links is None or not links.fits(self.fields["id"], self.list_ids):
            links = self.links = RecipientLinks(self.fields["id"], self.list_ids)
        return links

    def variant_for(self, language: str | None) -> _Variant:
        """The recipient's language (exact tag, then its primary language), else the campaign's own."""
        tag = languages.pick(language, self.translations) if language and self.translations else None
        return self.translations[tag] if tag else self.default


# Least recently used last; bounded, so a worker that sends campaign after campaign for weeks
# does not keep every one it ever compiled (the soak bench saw ~17 KB a campaign accumulate).
_cache: OrderedDict[tuple[int, str | None], _Prepared] = OrderedDict()  # (campaign, A/B variant)
_cache_lock = threading.Lock()
CACHE_SIZE = 32


def _domain() -> str:
    return _host(current_app.config["BASE_URL"])


@lru_cache(maxsize=8)
def _host(base_url: str) -> str:
    return urlsplit(base_url).hostname or "localhost"


def prepared(campaign: Campaign, variant: str | None = None) -> _Prepared:
    """The campaign (or one A/B variant of it: its subject, from-name and body when it has them)
    compiled once per worker process (recompiled only if it or its layout changed)."""
    layout = db.session.get(Layout, campaign.layout_id) if campaign.layout_id else None
    key = (campaign.updated_at, layout.updated_at if layout else None)
    cache_key = (campaign.id, variant)
    with _cache_lock:
        hit = _cache.get(cache_key)
        if hit is not None and hit.key == key:
            _cache.move_to_end(cache_key)
            return hit
    fields = campaign_fields(campaign)
    html, text = campaign.html, campaign.text
    chosen = ab_variants.variant(campaign.id, variant)
    if chosen is not None:
        fields.update(subject=chosen.subject, from_name=chosen.from_name or campaign.from_name)
        if chosen.html.strip():
            html, text = chosen.html, ""  # its own body: the text part is made from it
    tracking = campaign.tracking
    # Tracked: the HTML is rewritten once, here; per recipient only the tokens are made.
    rewriter = engagement_links.Rewriter(current_app.config["BASE_URL"]) if tracking != Tracking.OFF else None
    compiled = CompiledMessage(fields["subject"], html, text, layout.html if layout else None,
                               html_transform=rewriter)
    urls = rewriter.urls if rewriter else []
    list_ids = [m.id for m in campaign.lists]
    names = ", ".join(m.name for m in campaign.lists)[:100]
    entry = _Prepared(key, compiled, fields, campaign.reply_to, list_ids,
                      _list_id(names, campaign.id), tracking,
                      engagement_links.register(campaign.id, urls), urls, feedback_id(campaign.id, list_ids),
                      # An A/B variant is sent as written (a campaign has one or the other: campaigns._clean).
                      {} if chosen else _translated(campaign.id, layout.html if layout else None, tracking))
    with _cache_lock:
        _cache[cache_key] = entry
        _cache.move_to_end(cache_key)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return entry


def _translated(campaign_id: int, layout_html: str | None, tracking: Tracking) -> dict[str, _Variant]:
    """The campaign's translations compiled (one query), each with its own tracked links."""
    variants = {}
    for tag, parts in translations_service.of(campaign_id).items():
        rewriter = engagement_links.Rewriter(current_app.config["BASE_URL"]) if tracking != Tracking.OFF else None
        compiled = CompiledMessage(parts["subject"], parts["body"], "", layout_html, html_transform=rewriter)
        urls = rewriter.urls if rewriter else []
        variants[tag] = _Variant(compiled, engagement_links.register(campaign_id, urls), urls)
    return variants


def _list_id(names: str, campaign_id: int) -> str:
    """List-Id (RFC 2919): the lists' names as a phrase, always quoted (`"Weekly news" <campaign-3.host>`) so
    mail clients show it whole; RFC 2047-encoded instead when not ASCII (an encoded word may not be quoted)."""
    list_id = f"campaign-{campaign_id}.{_domain()}"
    if not names:
        return f"<{list_id}>"
    if not names.isascii():
        return mime.address(names, list_id)
    phrase = " ".join(names.split()).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{phrase}" <{list_id}>'


def feedback_id(campaign_id: int, list_ids: list[int]) -> str:
    """Gmail's `Feedback-ID: a:b:c:SenderId`: the campaign, its list (or `all` when several), the mail
    type, and FEEDBACK_ID_SENDER. Prefixed (c12, l3) because Google asks that one value never
    stands in two fields; nothing in it is per recipient."""
    list_part = f"l{list_ids[0]}" if len(list_ids) == 1 else "all"
    return f"c{campaign_id}:{list_part}:newsletter:{current_app.config['FEEDBACK_ID_SENDER']}"


def limiter() -> RateLimiter:
    """The campaigns' cluster-wide bucket (SEND_RATE, with the optional hour/day caps)."""
    config = current_app.config
    return thread_limiter(config["REDIS_URL"], settings.get("SEND_RATE"), per_hour=config["SEND_PER_HOUR"],
                          per_day=config["SEND_PER_DAY"])


# One message ----------------------------------------------------------------------------------

def build_envelope(entry: _Prepared, delivery_id: int | None, subscriber_id: int | None, email: str, name: str,
                   attributes: dict | None, subject_prefix: str = "", token_version: int | None = None,
                   inert_links: bool = False, language: str | None = None) -> mime.Envelope:
    """`token_version`: the subscriber's (see `ledger.take_with_people`); `inert_links`: a test send's preview links;
    `language`: the subscriber's, which picks the campaign's translation (else its own subject and body)."""
    if inert_links:
        context = preview_context(entry.fields, subscriber_id, email, name, attributes)
    else:  # recipient_context, with the campaign's part of the links made once
        context = entry.recipient_links().context(entry.fields, subscriber_id, email, name, attributes,
                                                  token_version)
    campaign_id = entry.fields["id"]
    variant = entry.variant_for(language)
    rendered = variant.compiled.render(context)
    html = _tracked_html(entry, rendered.html, subscriber_id, live=not inert_links and delivery_id is not None,
                         variant=variant)
    headers = _list_headers(entry, context, subscriber_id)
    if delivery_id is not None:
        headers += [("Feedback-ID", entry.feedback_id), ("X-Newsletter-Delivery", f"{campaign_id}.{delivery_id}")]
    envelope = mime.build(
        from_name=entry.fields["from_name"], from_email=entry.fields["from_email"], to=email,
        subject=subject_prefix + rendered.subject, html=html, text=rendered.text,
        reply_to=entry.reply_to, extra_headers=headers,
        message_id=mime.message_id(_domain(), campaign_id, delivery_id or "test"),
        return_path=verp.return_path("d", delivery_id) if delivery_id is not None else None)
    return dkim.sign(envelope, entry.fields["from_email"])  # last: it signs the headers above


def _tracked_html(entry: _Prepared, html: str, subscriber_id: int | None, live: bool,
                  variant: _Variant | None = None) -> str:
    """The rendered HTML with its tracking markers filled: signed links and the pixel when `live`,
    else (test sends) the original links and no pixel."""
    if entry.tracking == Tracking.OFF:
        return html
    variant = variant or entry.variant_for(None)
    return engagement_links.fill(html, entry.fields["id"], entry.tracking == Tracking.INDIVIDUAL, variant.link_ids,
                                 variant.urls, subscriber_id, live=live)


def _list_headers(entry: _Prepared, context: dict[str, Any], subscriber_id: int | None) -> list[tuple[str, str]]:
    """List-Id and Precedence; for a subscriber, List-Unsubscribe with the context's own link."""
    headers = [("List-Id", entry.list_id_header), ("Precedence", "bulk")]
    if subscriber_id is not None:
        unsubscribe = context["unsubscribe_url"]
        headers += [
            ("List-Unsubscribe", f"<{unsubscribe}>, <{list_unsubscribe_mailto(unsubscribe)}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ]
    return headers


def _failure_outcome(row: Claimed, failure: SmtpFailure, now: datetime) -> Outcome:
    retryable = failure.kind in (Kind.TRANSIENT, Kind.THROTTLED)
    if retryable and row.attempts < settings.get("SEND_MAX_ATTEMPTS"):
        return Outcome(row.id, D.PENDING, failure.code, failure.message,
                       retry_at=now + timedelta(seconds=retry_delay(row.attempts)))
    return Outcome(row.id, D.FAILED, failure.code, failure.message)


# One batch ------------------------------------------------------------------------------------

class _Batch:
    def __init__(self, campaign: Campaign, claimed: list[Claimed], token: str, lease: leases.Lease,
                 worker: str = "", task_id: str = "") -> None:
        self.campaign, self.claimed, self.token, self.lease = campaign, claimed, token, lease
        self.campaign_id = campaign.id  # a plain int: the ORM object expires at every commit
        self.fences = FenceLine(claiming=True, worker=worker)  # the fence is the claim
        self.outcomes: list[Outcome] = []
        self.recorded = 0  # outcomes[:recorded] are in the ledger
        self.recorded_at = time.monotonic()
        self.attempts = {c.id: c.attempts for c in claimed}
        self.worker, self.task_id = worker, task_id
        self.must_reset_errors = True  # the first success of every batch clears the count
        self.stop_reason = ""
        self.fenced_off = False  # the lease went stale: the rest is handed back unsent
        self.next_check = time.monotonic() + STATUS_CHECK_EVERY

    def still_sending(self) -> bool:
        if time.monotonic() < self.next_check:
            return True
        self.next_check = time.monotonic() + STATUS_CHECK_EVERY
        status = db.session.scalar(select(Campaign.status).where(Campaign.id == self.campaign_id))
        db.session.commit()  # end the read transaction: no snapshot held across sends
        return status == CampaignStatus.SENDING

    def release(self, rows: list[Claimed], retry_at: datetime | None = None, why: str = "") -> None:
        status = D.PENDING
        if retry_at is None and db.session.scalar(select(Campaign.status).where(
                Campaign.id == self.campaign_id)) == CampaignStatus.CANCELLED:
            status = D.CANCELLED
        self.outcomes += [Outcome(r.id, status, smtp_message=why, retry_at=retry_at, release=True) for r in rows]

    def record(self, tries: int = RECORD_TRIES) -> None:
        """Write the outcomes not yet written (each exactly once: the ledger adds an attempt per outcome).

        These outcomes can be the only evidence that a message went out (a fence whose COMMIT
        the database lost while its dots were sent leaves the row sendable), so a dropped
        database connection is tried again on a fresh one before the batch gives up. A second
        write of the same outcomes only rewrites rows this batch owns with what they already say.
        """
        for attempt in range(1, tries + 1):
            try:
                ledger.record(self.outcomes[self.recorded:], self.token, self.attempts, self.worker, self.task_id)
                break
            except DBAPIError as exc:
                db.session.rollback()
                if attempt == tries or not (exc.connection_invalidated or isinstance(exc, OperationalError)):
                    raise
                current_app.logger.warning("claim %s: recording outcomes failed (%s); trying again", self.token,
                                           exc.__class__.__name__)
                time.sleep(0.2 * attempt)
        self.recorded, self.recorded_at = len(self.outcomes), time.monotonic()

    def record_if_due(self) -> None:
        if len(self.outcomes) > self.recorded and time.monotonic() - self.recorded_at >= RECORD_EVERY:
            self.record()


def send_batch(campaign_id: int, delivery_ids: list[int], worker: str = "", task_id: str = "") -> dict[str, int]:
    """Send the deliveries among `delivery_ids` still to send; returns counts for the chord.

    `worker` and `task_id` (the Celery task's id) go into every attempt this batch records.
    """
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        return {"claimed": 0}
    lease = leases.current()  # before the read: no row is ever fenced under a lease not yet taken
    token = lease.token()
    leases.register(lease, delivery_ids)  # a dead worker's unfenced rows: the sweeper's at once
    claimed, people = ledger.take_with_people(delivery_ids)  # commits: nothing open across SMTP I/O
    if not claimed:
        leases.unregister(lease, delivery_ids)
        return {"claimed": 0}
    batch = _Batch(campaign, claimed, token, lease, worker, task_id)
    try:
        if campaign.status != CampaignStatus.SENDING:
            batch.release(claimed)
        else:
            try:
                _send_claimed(batch, people)
            finally:
                batch.fences.close()
    finally:
        # Also when sending failed (the database went away mid-batch, say): what went out is
        # written before the error rises (a row left sendable would be published and sent again).
        batch.record()
    leases.unregister(lease, delivery_ids)
    metrics.messages("campaign", [(o.status.value, o.release, o.smtp_code) for o in batch.outcomes])
    if batch.stop_reason:
        # Of the batches that hit the error limit at once, the one that moves the campaign audits it.
        if transition(campaign_id, CampaignStatus.PAUSED, batch.stop_reason, commit=False):
            audit.record("campaign.paused", "campaign", campaign_id, reason=batch.stop_reason, automatic=True)
        db.session.commit()
    sent = sum(1 for o in batch.outcomes if o.status == D.SENT)
    return {"claimed": len(claimed), "sent": sent, "failed": sum(1 for o in batch.outcomes if o.status == D.FAILED)}


People = dict[int, ledger.Person]  # name, attributes, token version and language by subscriber id


def _send_claimed(batch: _Batch, people: People) -> None:
    try:
        entries = {variant: prepared(batch.campaign, variant) for variant in sorted(
            {row.variant for row in batch.claimed}, key=lambda v: v or "")}
    except RenderError as exc:  # a layout edited into something broken since the campaign was saved
        batch.stop_reason = f"The template no longer renders: {exc.message}"
        batch.release(batch.claimed)
        return
    rate = limiter()
    current_rate = rate.effective_rate()
    route = servers.route(batch.campaign.pool, current_rate)
    throttles = settings.domain_throttles()
    db.session.commit()  # end the reads above (the campaign reloaded): no transaction open across SMTP I/O
    size = current_app.config["SEND_SESSIONS"]
    rows, i = batch.claimed, 0
    while i < len(rows):
        if not batch.still_sending():
            batch.release(rows[i:])
            return
        n = rate.chunk(len(rows) - i, current_rate)
        wait = rate.reserve(n, max_wait=1.0)
        if wait is None:  # the cluster is at its rate: hand the rest back instead of sleeping on it
            metrics.LIMITER_REFUSALS.labels("campaigns").inc()
            batch.release(rows[i:], retry_at=utcnow() + timedelta(seconds=max(1.0, rate.refused_wait)))
            return
        if wait:
            metrics.waited("campaigns", wait)
            time.sleep(wait)
        chunk = _admitted(batch, route, rows[i:i + n], throttles)
        if not _send_chunk(batch, entries, route, chunk, people, size, rate.client):
            done = {o.id for o in batch.outcomes}
            batch.release([r for r in rows if r.id not in done], retry_at=servers.retry_at(route),
                          why=servers.why_not(route))
            return
        if batch.stop_reason or batch.fenced_off:
            done = {o.id for o in batch.outcomes}
            batch.release([r for r in rows if r.id not in done],
                          why="This worker could not renew its lease: handed back unsent." if batch.fenced_off else "")
            return
        i += n


def _admitted(batch: _Batch, route: pools.Route, chunk: list[Claimed], throttles: pools.Throttles) -> list[Claimed]:
    """The chunk's rows whose recipient domain has room now; the others wait for their window."""
    if not throttles:
        return chunk
    waits = route.shared.admit_domains([r.email for r in chunk], throttles)
    now = utcnow()
    for row, wait in zip(chunk, waits, strict=True):
        if wait:
            batch.release([row], retry_at=now + timedelta(seconds=wait),
                          why=f"Waiting for the {pools.domain_of(row.email)} throttle.")
    return [row for row, wait in zip(chunk, waits, strict=True) if not wait]


Entries = dict[str | None, _Prepared]  # a batch's compiled message per A/B variant (None: no test)


def _send_chunk(batch: _Batch, entries: Entries, route: pools.Route, chunk: list[Claimed],
                people: People, size: int, client: redis.Redis) -> bool:
    """Send the chunk round by round, each round through the next server of the pool with room.

    False when no server can take what is left (all down or at their limits): the caller
    hands it back. Rows a server could not be reached for never got near their final dot, so
    they go to the pool's next server; the unreachable one is marked down for every worker.
    """
    pause_after = settings.get("SEND_PAUSE_AFTER_ERRORS")
    while chunk:
        picked = route.pick(min(size, len(chunk)), ahead=max(0, len(chunk) - size))
        if picked is None:
            return False
        server, wait = picked
        if wait:
            metrics.waited("server", wait)
            time.sleep(wait)
        if not batch.lease.fresh():  # self-fencing (leases.py): no new SMTP transaction on a stale lease
            batch.fenced_off = True
            return True
        sessions = smtp.sessions(server.smtp, size)
        current, chunk = chunk[:sessions.size], chunk[sessions.size:]
        failures, unreached = _send_round(batch, entries, sessions, current, people)
        batch.record_if_due()
        if unreached:
            route.failed(server, unreached[0][1].message)
            chunk = [row for row, _ in unreached] + chunk  # failover: the pool's next server
        if batch.must_reset_errors and len(failures) + len(unreached) < len(current):
            client.delete(_errors_key(batch.campaign_id))  # a success since the last failure
            batch.must_reset_errors = False
        for failure in failures:
            if failure.kind == Kind.THROTTLED:
                route.throttled(server)  # that server slows down, not the cluster
            if failure.kind == Kind.AUTH:
                batch.stop_reason = (f"The SMTP server {server.name} refused our login: "
                                     f"{failure.code} {failure.message}")
            elif failure.kind != Kind.PERMANENT:
                in_a_row = _count_error(client, batch.campaign_id)
                batch.must_reset_errors = True
                if in_a_row >= pause_after:
                    batch.stop_reason = (f"Paused after {in_a_row} failed sends in a row; "
                                         f"last: {failure.code or ''} {failure.message}".strip())
        if batch.stop_reason:
            return True
    return True


def _errors_key(campaign_id: int) -> str:
    return f"newsletter:campaign:{campaign_id}:errors-in-a-row"


def _count_error(client: redis.Redis, campaign_id: int) -> int:
    """Transient failures in a row across every worker (a success anywhere clears it)."""
    pipe = client.pipeline()
    pipe.incr(_errors_key(campaign_id))
    pipe.expire(_errors_key(campaign_id), 3600)
    return int(pipe.execute()[0])


Unreached = list[tuple[Claimed, SmtpFailure]]


def _send_round(batch: _Batch, entries: Entries, sessions: smtp.Sessions, rows: list[Claimed],
                people: People) -> tuple[list[SmtpFailure], Unreached]:
    """One message per session, fenced together; every outcome recorded. Returns the SMTP
    failures that have an outcome, and the rows the server could not be reached for (no
    outcome: they never reached the fence, the caller sends them elsewhere or hands them back).
    """
    items, sending = [], []
    for row in rows:
        envelope = _envelope_for(batch, entries[row.variant], row, people)
        if envelope is not None:
            items.append((row.id, envelope))
            sending.append(row)
    if not items:
        return [], []
    # A database error from the fence stops the batch (the sweeper recovers its rows).
    with metrics.SMTP_ROUND.labels("campaign").time():
        results = sessions.send(items, batch.fences.group(batch.token))
    failures: list[SmtpFailure] = []
    unreached: Unreached = []
    for row, result in zip(sending, results, strict=True):
        if isinstance(result, smtp.FenceClosed):
            continue  # the row was taken over by a recovery: its new owner sends it
        if isinstance(result, SmtpFailure):
            if result.unreachable:
                unreached.append((row, result))
                continue
            failures.append(result)
            if result.kind == Kind.AUTH:
                batch.outcomes.append(Outcome(row.id, D.PENDING, result.code, result.message, release=True))
            else:
                batch.outcomes.append(_failure_outcome(row, result, utcnow()))
            continue
        code, text = result
        batch.outcomes.append(Outcome(row.id, D.SENT, code, text))
    return failures, unreached


def _envelope_for(batch: _Batch, entry: _Prepared, row: Claimed,
                  people: People) -> mime.Envelope | None:
    """The recipient's message, or None with the failure recorded (it cannot be built)."""
    unknown: tuple[str, dict, int, str | None] = ("", {}, 0, None)  # an erased subscriber's row has no id
    name, attributes, version, language = unknown if row.subscriber_id is None else \
        people.get(row.subscriber_id, unknown)
    try:
        return build_envelope(entry, row.id, row.subscriber_id, row.email, name, attributes, token_version=version,
                              language=language)
    except RenderError as exc:
        batch.outcomes.append(Outcome(row.id, D.FAILED, None, f"Template error: {exc.message}"))
    except Exception as exc:  # noqa: BLE001  (e.g. a value the message cannot carry)
        batch.outcomes.append(Outcome(row.id, D.FAILED, None, f"Could not build the message: {exc}"[:500]))
    return None


# Test sends -----------------------------------------------------------------------------------

def queue_test(campaign_id: int, addresses: list[str], subscriber_id: int | None = None,
               idempotency_key: str | None = None) -> list[int]:
    """The saved campaign to typed addresses, as a chosen subscriber or the sample one: one
    queued notification (kind `campaign_test`) per address, all or none; their ids.

    Its links are inert previews (also in List-Unsubscribe): a test email goes to people who
    are not the subscriber. The caller enqueues `send_notification` for each id.
    """
    if len(addresses) > MAX_TEST_ADDRESSES:
        raise ValidationError("addresses", "At most %(limit)s addresses.",
                              limit=MAX_TEST_ADDRESSES)
    campaign = campaigns.get(campaign_id)
    person = db.session.get(Subscriber, subscriber_id) if subscriber_id else None
    sample = sample_context()["subscriber"]
    name, attributes = (person.name, person.attributes) if person else (sample["name"], {})
    try:
        entry = prepared(campaign)
        variant = entry.variant_for(person.language if person else None)  # as that subscriber would get it
        messages = [(address, variant.compiled.render(context), context) for address, context in (
            (address, preview_context(entry.fields, person.id if person else None, address, name, attributes))
            for address in addresses)]
    except RenderError as exc:  # a layout edited into something broken since the campaign was saved
        raise ValidationError("html", "The campaign does not render: %(reason)s", reason=exc.message) from None
    ids = [one_off.queue(NotificationKind.CAMPAIGN_TEST, address, "[Test] " + rendered.subject,
                         _tracked_html(entry, rendered.html, None, live=False, variant=variant), rendered.text,
                         subscriber_id=person.id if person else None,
                         data={"campaign_id": campaign.id}, from_name=entry.fields["from_name"],
                         from_email=entry.fields["from_email"], reply_to=entry.reply_to,
                         headers=_list_headers(entry, context, person.id if person else None),
                         idempotency_key=f"{idempotency_key}:{n}" if idempotency_key else None, commit=False)
           for n, (address, rendered, context) in enumerate(messages)]
    db.session.commit()
    return ids
