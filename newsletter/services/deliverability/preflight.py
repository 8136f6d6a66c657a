"""Pre-flight checks on a campaign before it is sent: DNS authentication (SPF, DKIM, DMARC and
their alignment) and the message itself (Gmail's clipping size, links, unsubscribe link, text part).

Each check answers pass, warn or fail with a sentence saying why (a Message: English for the API,
translated on the admin page; its label is marked N_ and translated there too). DNS goes through dnspython,
to DNS_RESOLVER ("host:port") when set, else the system's resolvers, with DNS_TIMEOUT a lookup;
answers (NXDOMAIN included) are kept DNS_CACHE seconds per process, so the page can be reloaded
freely. A lookup that times out is a warning, never a pass.
"""
from __future__ import annotations

import ipaddress
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import dns.exception
import dns.resolver
from flask import current_app
from sqlalchemy import select

from ...extensions import db
from ...models import Campaign, DkimKey, DkimKeyStatus
from ...sending.render import CompiledMessage, RenderError
from .. import settings
from ..errors import NotFound
from ..messages import N_, Message
from . import dkim

PASS, WARN, FAIL = "pass", "warn", "fail"
GMAIL_CLIP = 102 * 1024  # Gmail shows "[Message clipped]" past 102 KB of HTML
CLIP_MARGIN = 90 * 1024
DNS_CACHE = 60.0  # seconds


@dataclass
class Check:
    key: str
    label: str
    status: str
    detail: Message
    records: list[str] = field(default_factory=list)  # the DNS records found, to show as they are


@dataclass
class Report:
    campaign_id: int
    from_domain: str
    return_path_domain: str
    status: str  # the worst of the checks
    checks: list[Check]
    checked_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """For the API: the sentences in English."""
        found = asdict(self)
        for check, original in zip(found["checks"], self.checks, strict=True):
            check["detail"] = str(original.detail)
        return found


# DNS ------------------------------------------------------------------------------------------

class DnsError(Exception):
    """The lookup itself failed (timeout, SERVFAIL): we cannot say whether the record exists."""

    def __init__(self, name: str, kind: str) -> None:
        self.text = Message("The DNS lookup of %(name)s failed (%(kind)s); try again later.", name=name, kind=kind)
        super().__init__(str(self.text))


_dns_cache: dict[tuple[Any, str, str], tuple[float, list[str] | DnsError]] = {}
_dns_lock = threading.Lock()


def _resolver() -> dns.resolver.Resolver:
    config = current_app.config
    resolver = dns.resolver.Resolver(configure=config["DNS_RESOLVER"] is None)
    if config["DNS_RESOLVER"] is not None:
        host, port = config["DNS_RESOLVER"]
        resolver.nameservers, resolver.port = [host], port
    resolver.lifetime = resolver.timeout = float(config["DNS_TIMEOUT"])
    return resolver


def lookup(name: str, kind: str = "TXT") -> list[str]:
    """The records of `name` (TXT strings joined as RFC 7208 says); [] when there are none."""
    key = (current_app.config["DNS_RESOLVER"], name.lower(), kind)
    now = time.monotonic()
    with _dns_lock:
        hit = _dns_cache.get(key)
    if hit is not None and hit[0] > now:
        if isinstance(hit[1], DnsError):
            raise hit[1]
        return hit[1]
    result: list[str] | DnsError
    try:
        answer = _resolver().resolve(name, kind, raise_on_no_answer=False)
        if kind == "TXT":
            result = [b"".join(r.strings).decode("utf-8", "replace") for r in answer]
        else:
            result = [r.to_text() for r in answer]
    except dns.resolver.NXDOMAIN:
        result = []
    except (dns.exception.DNSException, OSError) as exc:
        result = DnsError(name, type(exc).__name__)
    with _dns_lock:
        _dns_cache[key] = (now + DNS_CACHE, result)
    if isinstance(result, DnsError):
        raise result
    return result


def forget_dns() -> None:
    """Drop the cached answers (after the admin changed a record, and between tests)."""
    with _dns_lock:
        _dns_cache.clear()


def _tags(record: str) -> dict[str, str]:
    tags = {}
    for part in record.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            tags[name.strip().lower()] = "".join(value.split())
    return tags


def organizational_domain(domain: str) -> str:
    """An approximation of RFC 7489's organizational domain without the public suffix list:
    the last two labels, three under a two-letter country's second level (example.co.uk)."""
    labels = domain.lower().split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in {"co", "com", "org", "net", "ac", "gov", "edu"}:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


# The DNS checks -------------------------------------------------------------------------------

def check_spf(domain: str) -> Check:
    label = "SPF"
    try:
        records = [r for r in lookup(domain) if r.lower().startswith("v=spf1")]
    except DnsError as exc:
        return Check("spf", label, WARN, exc.text)
    if not records:
        return Check("spf", label, FAIL, Message("%(domain)s publishes no SPF record (a TXT record starting v=spf1): "
                                                 "receivers cannot tell which servers may send its mail.",
                                                 domain=domain))
    if len(records) > 1:
        return Check("spf", label, FAIL, Message("%(domain)s publishes %(count)s SPF records; receivers treat that "
                                                 "as an error (permerror). Merge them into one.",
                                                 domain=domain, count=len(records)), records)
    return Check("spf", label, *_spf_covers(records[0], settings.get("MAIL_SERVER") or ""), records)


def _spf_covers(record: str, server: str) -> tuple[str, Message]:
    """Whether the record can authorise MAIL_SERVER, when that is an IP address."""
    try:
        ip = ipaddress.ip_address(server)
    except ValueError:
        return PASS, Message("Found. MAIL_SERVER is the host name %(server)s: make sure the record covers the "
                             "addresses it sends from (its provider documents the include: to add).", server=server)
    terms = record.split()[1:]
    for term in terms:
        name, _, value = term.lstrip("+").partition(":")
        if name in ("ip4", "ip6") and value:
            try:
                if ip in ipaddress.ip_network(value, strict=False):
                    return PASS, Message("Found, and it lists MAIL_SERVER's address %(ip)s (%(term)s).",
                                         ip=str(ip), term=term)
            except ValueError:
                continue
    indirect = [t for t in terms if t.lstrip("+?~").split(":")[0].split("=")[0] in ("a", "mx", "include", "exists",
                                                                                      "redirect")]
    if indirect:
        return PASS, Message("Found. MAIL_SERVER's address %(ip)s is not listed directly; it may be covered "
                             "through %(terms)s (not followed here).", ip=str(ip), terms=", ".join(indirect))
    return WARN, Message("Found, but it does not authorise MAIL_SERVER's address %(ip)s: add %(term)s "
                         "(or the address your relay sends from).", ip=str(ip), term=f"ip{ip.version}:{ip}")


def check_dkim(domain: str) -> tuple[Check, list[DkimKey]]:
    """The active keys of `domain` and whether DNS publishes each; (check, keys whose record matches)."""
    label = "DKIM"
    keys = list(db.session.scalars(select(DkimKey).where(DkimKey.domain == domain).order_by(DkimKey.id)))
    active = [k for k in keys if k.status == DkimKeyStatus.ACTIVE]
    if not active:
        pending = [k for k in keys if k.status == DkimKeyStatus.PENDING]
        why = (Message("%(domain)s has a key (%(selector)s) not yet activated: publish its TXT record, then "
                       "activate it under Settings → DKIM. Gmail and Yahoo require signed mail from bulk senders.",
                       domain=domain, selector=pending[0].selector) if pending else
               Message("No DKIM key for %(domain)s: generate one under Settings → DKIM and publish its TXT record. "
                       "Gmail and Yahoo require signed mail from bulk senders.", domain=domain))
        return Check("dkim", label, FAIL, why), []
    good, problems, found = [], [], []
    for key in active:
        try:
            state, records = record_state(key)
        except DnsError as exc:
            return Check("dkim", label, WARN, exc.text), []
        found += records
        if state == "published":
            good.append(key)
        else:
            problems.append(Message("%(name)s: %(state)s", name=key.record_name, state=Message(STATES[state])))
    if problems:
        status = WARN if good else FAIL
        return Check("dkim", label, status, _joined(N_("Mail is signed, but %(problems)s."), problems=problems),
                     found), good
    names = ", ".join(f"{k.selector} ({k.algorithm.value})" for k in good)
    return Check("dkim", label, PASS, Message("Signed with %(names)s; the published record matches.", names=names),
                 found), good


STATES = {"published": N_("published and matching"), "missing": N_("no TXT record published"),
          "mismatch": N_("the published record holds another key")}


def _joined(template: str, **lists: list[Message]) -> Message:
    """A sentence around lists of clauses, each list joined with "; " (translated clause by clause).
    Mark the template N_() where it has words: this is no extraction keyword."""
    def clauses(name: str, items: list[Message]) -> Message:
        joined = "; ".join(f"%({name}{i})s" for i in range(len(items)))  # no words: nothing to translate
        return Message(joined, **{f"{name}{i}": item for i, item in enumerate(items)})

    return Message(template, **{name: clauses(name, items) for name, items in lists.items()})


def record_state(key: DkimKey) -> tuple[str, list[str]]:
    """("published" | "missing" | "mismatch", the records found) for a key's DNS name."""
    records = [r for r in lookup(key.record_name) if "p=" in r]
    if not records:
        return "missing", []
    if any(_tags(r).get("p") == key.public_key for r in records):
        return "published", records
    return "mismatch", records


def check_dmarc(from_domain: str, return_path_domain: str, dkim_domains: list[str], spf_ok: bool) -> Check:
    label = "DMARC"
    where = f"_dmarc.{from_domain}"
    try:
        records = [r for r in lookup(where) if r.lower().startswith("v=dmarc1")]
        org = organizational_domain(from_domain)
        if not records and org != from_domain:
            where = f"_dmarc.{org}"
            records = [r for r in lookup(where) if r.lower().startswith("v=dmarc1")]
    except DnsError as exc:
        return Check("dmarc", label, WARN, exc.text)
    if not records:
        return Check("dmarc", label, FAIL, Message("No DMARC record at %(where)s: Gmail and Yahoo require one "
                                                   "(at least v=DMARC1; p=none) from bulk senders.",
                                                   where=f"_dmarc.{from_domain}"))
    tags = _tags(records[0])
    policy = tags.get("p", "none")

    def aligned(domain: str, mode: str) -> bool:
        if mode == "s":
            return domain == from_domain
        return organizational_domain(domain) == organizational_domain(from_domain)

    dkim_aligned = any(aligned(d, tags.get("adkim", "r")) for d in dkim_domains)
    spf_aligned = spf_ok and aligned(return_path_domain, tags.get("aspf", "r"))
    parts = [Message("%(policy)s at %(where)s", policy=f"p={policy}", where=where),
             Message("DKIM aligned") if dkim_aligned else
             Message("DKIM not aligned (no matching key signs as the From domain)"),
             Message("SPF aligned") if spf_aligned else
             Message("SPF not aligned (return path %(domain)s)", domain=return_path_domain)]
    if not (dkim_aligned or spf_aligned):
        return Check("dmarc", label, FAIL, _joined(N_("DMARC would fail: %(parts)s."), parts=parts), records)
    if policy == "none":
        return Check("dmarc", label, PASS, _joined(N_("%(parts)s. p=none only monitors: consider quarantine once "
                                                      "reports look clean."), parts=parts), records)
    return Check("dmarc", label, PASS, _joined("%(parts)s.", parts=parts), records)


# The message checks ---------------------------------------------------------------------------

class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str]] = []  # (tag, url)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"a": "href", "img": "src", "area": "href"}.get(tag)
        for name, value in attrs:
            if name == wanted and value is not None:
                self.found.append((tag, value.strip()))


def check_links(html: str) -> Check:
    parser = _Links()
    parser.feed(html)
    bad, relative = [], []
    for _tag, url in parser.found:
        scheme = urlsplit(url).scheme.lower()
        if scheme in ("http", "https", "mailto", "tel", "cid"):
            continue
        if scheme:
            bad.append(url)
        elif not url.startswith("#"):
            relative.append(url)
    if bad:
        return Check("links", N_("Links"), FAIL, Message(
            "%(count)s link(s) that are not web links, which mail clients block or break: %(links)s.",
            count=len(bad), links=", ".join(_short(u) for u in bad[:5])))
    if relative:
        return Check("links", N_("Links"), WARN, Message(
            "%(count)s relative link(s), which lead nowhere from an inbox: %(links)s. Write them with https://.",
            count=len(relative), links=", ".join(_short(u) for u in relative[:5])))
    return Check("links", N_("Links"), PASS, Message("%(count)s link(s) and image(s), all http(s) or mailto.",
                                                     count=len(parser.found)))


def _short(url: str) -> str:
    return url if len(url) <= 60 else url[:57] + "…"


def check_size(html: str) -> Check:
    size = len(html.encode("utf-8"))
    kb = f"{size / 1024:,.1f}"
    if size >= GMAIL_CLIP:
        return Check("size", N_("Message size"), FAIL, Message(
            "%(kb)s KB of HTML: Gmail clips messages past 102 KB, hiding the rest (the unsubscribe link and the open "
            "pixel with it).", kb=kb))
    if size >= CLIP_MARGIN:
        return Check("size", N_("Message size"), WARN, Message(
            "%(kb)s KB of HTML: close to Gmail's 102 KB clipping; tracked links and longer names can push it over.",
            kb=kb))
    return Check("size", N_("Message size"), PASS, Message("%(kb)s KB of HTML, under Gmail's 102 KB clipping.", kb=kb))


def check_unsubscribe(html: str, text: str, links: dict[str, str]) -> Check:
    """`links`: the unsubscribe and preferences URLs the body was rendered with."""
    wanted = [links["unsubscribe_url"], links["preferences_url"]]
    if any(link in html for link in wanted):
        return Check("unsubscribe", N_("Unsubscribe link"), PASS, Message(
            "The body links to unsubscribe (or to the preference center), besides the List-Unsubscribe header."))
    if any(link in text for link in wanted):
        return Check("unsubscribe", N_("Unsubscribe link"), WARN, Message(
            "Only the text part has an unsubscribe link: add {{ unsubscribe_url }} to the HTML too."))
    return Check("unsubscribe", N_("Unsubscribe link"), FAIL, Message(
        "No unsubscribe link in the body: add a link to {{ unsubscribe_url }} (or {{ preferences_url }}). Bulk "
        "senders must offer one."))


def check_text(campaign: Campaign, text: str) -> Check:
    """Written, or generated from the HTML with some words in it (not only the links' URLs)."""
    if (campaign.text or "").strip():
        return Check("text", N_("Text part"), PASS, Message("Written by hand."))
    words = [w for w in text.split() if "://" not in w and not w.lower().startswith(("mailto:", "<mailto:"))]
    if any(ch.isalpha() for word in words for ch in word):
        return Check("text", N_("Text part"), PASS, Message(
            "Generated from the HTML (none written): check it reads well in the preview's plain-text version."))
    return Check("text", N_("Text part"), WARN, Message(
        "No real text part: none was written and the HTML yields no words, only links (images only?). Some filters "
        "score image-only mail as spam."))


# The report -----------------------------------------------------------------------------------

def return_path_domain(from_email: str) -> str:
    """The envelope sender's domain, which SPF checks: BOUNCE_ADDRESS's when set, else the From's."""
    bounce = current_app.config.get("BOUNCE_ADDRESS") or ""
    return (bounce or from_email).rpartition("@")[2].lower()


def run(campaign_id: int) -> Report:
    """Every check for a saved campaign, as a sample subscriber would get it."""
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("campaign", campaign_id)
    from_domain = campaign.from_email.rpartition("@")[2].lower()
    try:
        from_domain = dkim.normalize_domain(from_domain, "from_email")
    except ValueError:
        pass  # checked below as it is: the DNS checks then say what is missing
    bounce_domain = return_path_domain(campaign.from_email)
    spf = check_spf(bounce_domain)
    dkim_check, signing = check_dkim(from_domain)
    dmarc = check_dmarc(from_domain, bounce_domain, [k.domain for k in signing], spf.status == PASS)
    checks = [spf, dkim_check, dmarc] + _content_checks(campaign)
    order = {PASS: 0, WARN: 1, FAIL: 2}
    status = max((c.status for c in checks), key=order.__getitem__)
    return Report(campaign.id, from_domain, bounce_domain, status, checks, datetime.now(UTC))


# Stand-ins for the per-recipient links: web links of realistic length, recognisable in the result.
SAMPLE_LINKS = {name: f"https://preflight.invalid/{name.removesuffix('_url')}/{'x' * 43}"
                for name in ("unsubscribe_url", "preferences_url", "web_view_url")}


def _content_checks(campaign: Campaign) -> list[Check]:
    """Rendered for a sample subscriber, links as written (tracking changes each link's length by a
    few bytes and adds a pixel of ~100)."""
    context = {"subscriber": {"id": 0, "email": "subscriber@example.com", "name": "Sam Sample", "attributes": {}},
               "campaign": {"id": campaign.id, "name": campaign.name, "subject": campaign.subject,
                            "from_name": campaign.from_name, "from_email": campaign.from_email},
               **SAMPLE_LINKS}
    try:
        rendered = CompiledMessage(campaign.subject, campaign.html, campaign.text,
                                   campaign.layout.html if campaign.layout else None).render(context)
    except RenderError as exc:
        return [Check("render", N_("Template"), FAIL, Message("The campaign does not render: %(reason)s",
                                                             reason=exc.message))]
    return [check_size(rendered.html), check_links(rendered.html),
            check_unsubscribe(rendered.html, rendered.text, SAMPLE_LINKS), check_text(campaign, rendered.text)]
