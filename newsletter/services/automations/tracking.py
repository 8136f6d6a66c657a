"""Tracked automation emails: the pixel and signed links in a send step's email, and the opens and
clicks recorded per enrollment that a branch on "opened" / "clicked" asks about.

The engagement package's pieces, reused: `links.rewrite` marks a step's trackable links and the
pixel (the same rules as campaigns: not our own pages, not Jinja expressions, not data-no-track),
`tokens.Signer` signs them under its own key ("automation." namespace: a campaign's token never
passes here, nor one of these there), with the step's id where a campaign token has the campaign
and the enrollment's where it has the subscriber. `classify` labels every hit human or machine as
for campaigns, except the burst rule (it needs the campaigns' Redis counters; a scanner that
follows every link is still caught by its user agent, HEAD or "too soon").

Unlike a campaign's hits these are written straight to the database, one row per (enrollment,
step, kind, human/machine) and only the first time: a branch needs a per-person answer, the volume
is one automation email's readers, and a repeat hit is an INSERT that does nothing.
A step's links are registered when it is saved, so sending never writes them.
"""
from __future__ import annotations

import time
from html import escape

from flask import current_app
from sqlalchemy import case, distinct, func, select
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...models import AutomationEngagement, AutomationLink, AutomationStep, EngagementKind, Enrollment, dialect
from ...models.base import utcnow
from ...sending.render import CompiledMessage
from ..engagement import classify, links, tokens
from ..errors import NotFound

NAMESPACE = "automation."
OPEN_PATH, CLICK_PATH = "/ao/", "/ac/"


def register_links(step: AutomationStep) -> None:
    """Register the links of a send step's HTML (in the caller's transaction)."""
    _, urls = links.rewrite(step.params.get("html") or "", current_app.config["BASE_URL"])
    if not urls:
        return
    statement = dialect.insert(AutomationLink.__table__).on_conflict_do_nothing(index_elements=["step_id", "url"])
    db.session.execute(statement, [{"step_id": step.id, "url": url} for url in urls])


# Sending ----------------------------------------------------------------------------------------

# (step id, version, tracked, base URL, subject, html, text) -> the compiled email and, when tracked,
# its links' ids by marker index. The sources are in the key: a reused id (SQLite reuses a deleted
# row's) must not find another step's email.
_compiled: dict[tuple[object, ...], tuple[CompiledMessage, list[int | None], list[str]]] = {}
CACHE_SIZE = 500


def compiled(step: AutomationStep, tracked: bool) -> tuple[CompiledMessage, list[int | None], list[str]]:
    """The step's email compiled once per version and process (RenderError if it does not compile);
    tracked: its HTML carries markers, with the registered id of each marked URL (None: registered
    by no save, as for a step saved before tracking existed; that link stays as written)."""
    params = step.params
    key = (step.id, step.version, tracked, current_app.config["BASE_URL"], params.get("subject"),
           params.get("html"), params.get("text"))
    found = _compiled.get(key)
    if found is not None:
        return found
    rewriter = links.Rewriter(current_app.config["BASE_URL"]) if tracked else None
    message = CompiledMessage(params["subject"], params.get("html") or "", params.get("text") or "",
                              html_transform=rewriter)
    urls = rewriter.urls if rewriter else []
    ids = dict(db.session.execute(select(AutomationLink.url, AutomationLink.id).where(
        AutomationLink.step_id == step.id, AutomationLink.url.in_(urls))).all()) if urls else {}
    found = (message, [ids.get(url) for url in urls], urls)
    if len(_compiled) >= CACHE_SIZE:
        _compiled.clear()
    _compiled[key] = found
    return found


def fill(rendered_html: str, step_id: int, enrollment_id: int, link_ids: list[int | None], urls: list[str]) -> str:
    """One enrollment's HTML with its signed links and pixel."""
    base = current_app.config["BASE_URL"]
    signer = tokens.Signer(step_id, enrollment_id, int(time.time()), NAMESPACE)

    def url(which: str) -> str:
        if which == "pixel":
            return links.PIXEL.format(f"{base}{OPEN_PATH}{signer.open()}")
        link_id = link_ids[int(which)]
        return f"{base}{CLICK_PATH}{signer.click(link_id)}" if link_id is not None else escape(urls[int(which)])

    return links.substitute(rendered_html, url)


# Hits -------------------------------------------------------------------------------------------

def record(kind: str, token: str, user_agent: str, ip: str, accept: str = "", referer: str = "",
           head: bool = False) -> str | None:
    """Record an open ("open") or a click ("click"); the click's URL. TokenInvalid for a token we
    did not sign, NotFound for a link that is gone."""
    data = tokens.load(kind, token, NAMESPACE)
    step_id, enrollment_id = data.campaign_id, data.subscriber_id
    url = None
    if kind == "click":
        url = db.session.scalar(select(AutomationLink.url).where(AutomationLink.id == data.link_id,
                                                                 AutomationLink.step_id == step_id))
        if url is None:
            db.session.rollback()
            raise NotFound("link", data.link_id)
    hit = classify.Hit(kind, user_agent, ip, time.time(), data.built_at, 1, accept, referer)
    verdict = classify.Verdict(True, classify.BOT) if head else classify.classify(hit)
    _save(enrollment_id, step_id, EngagementKind(kind), verdict)
    return url


def _save(enrollment_id: int | None, step_id: int, kind: EngagementKind, verdict: classify.Verdict) -> None:
    if enrollment_id is None or db.session.get(Enrollment, enrollment_id) is None:
        db.session.rollback()  # the automation (and its enrollments) deleted since: nothing to record
        return
    try:
        db.session.execute(dialect.insert(AutomationEngagement.__table__).on_conflict_do_nothing(), [{
            "enrollment_id": enrollment_id, "step_id": step_id, "kind": kind, "machine": verdict.machine,
            "reason": verdict.reason, "at": utcnow()}])
        db.session.commit()
    except IntegrityError:  # deleted between the look-up and the insert
        db.session.rollback()


# What a branch asks -----------------------------------------------------------------------------

def engaged(step_id: int, condition: str, enrollment_ids: list[int]) -> set[int]:
    """Which of these enrollments opened (a human open, or a human click: the image may have been
    blocked, the link was not) or clicked (a human click) the email of `step_id`."""
    if not enrollment_ids:
        return set()
    kinds = [EngagementKind.CLICK] if condition == "clicked" else [EngagementKind.OPEN, EngagementKind.CLICK]
    return set(db.session.scalars(select(AutomationEngagement.enrollment_id).where(
        AutomationEngagement.step_id == step_id, AutomationEngagement.machine.is_(False),
        AutomationEngagement.kind.in_(kinds), dialect.in_values(AutomationEngagement.enrollment_id, enrollment_ids))))


def counts(step_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per send step: how many subscribers opened and clicked it (human, as a branch counts them)."""
    who = AutomationEngagement.enrollment_id
    rows = db.session.execute(
        select(AutomationEngagement.step_id, func.count(distinct(who)),
               func.count(distinct(case((AutomationEngagement.kind == EngagementKind.CLICK, who)))))
        .where(AutomationEngagement.step_id.in_(step_ids), AutomationEngagement.machine.is_(False))
        .group_by(AutomationEngagement.step_id))
    return {step_id: {"opened": opened, "clicked": clicked} for step_id, opened, clicked in rows}
