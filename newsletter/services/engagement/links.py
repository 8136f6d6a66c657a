"""Tracked links: rewrite a campaign's HTML once, register its links, and find a link's URL.

The HTML work happens once per compiled campaign (per worker process): every trackable `href`
becomes a marker (`MARK` + link index) and a pixel marker goes before `</body>`; per recipient
`fill` swaps the markers in the rendered HTML for signed URLs in one regex pass. (Markers in
the template's literal text pass through Jinja untouched; calling a template function per link
cost ~3x more, through the sandbox's call checks.) What stays as written:
- hrefs that are not http(s) (mailto:, tel:, #anchors), or that point at our own BASE_URL
  (the unsubscribe, preferences and web view pages are there);
- hrefs that are Jinja expressions (`{{ unsubscribe_url }}`, per-subscriber URLs): they vary per
  recipient, and a per-recipient URL in `campaign_links` would grow the table with the audience;
- links with a `data-no-track` attribute (the attribute itself is removed from the output).
The plain-text part is made from the HTML before the rewrite: its links stay untracked.
"""
from __future__ import annotations

import html
import re
import threading
import time
from collections.abc import Callable

from flask import current_app
from sqlalchemy import select

from ...extensions import db
from ...models import CampaignLink, dialect
from . import tokens

_A_TAG = re.compile(r"<a\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*>", re.I)
_HREF = re.compile(r"""(\shref\s*=\s*)(?:"([^"]*)"|'([^']*)')""", re.I)
_NO_TRACK = re.compile(r"""\s+data-no-track(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?""", re.I)
_BODY_END = re.compile(r"</body\s*>", re.I)
MARK = "\x00nl-track:"  # + the link's index or "pixel", then "\x00"; NUL never occurs in real HTML
_MARKER = re.compile("\x00nl-track:(\\d+|pixel)\x00")
PIXEL_MARK = f"{MARK}pixel\x00"
MAX_URL = 2000  # characters: longer hrefs are left untracked


def rewrite(source: str, base_url: str) -> tuple[str, list[str]]:
    """The HTML with trackable hrefs replaced by markers and the pixel's marker added; returns it
    and the distinct URLs, a marker's number indexing that list."""
    urls: list[str] = []
    index: dict[str, int] = {}
    own = base_url.rstrip("/") + "/"

    def tag(match: re.Match) -> str:
        text = match.group(0)
        if _NO_TRACK.search(text):
            return _NO_TRACK.sub("", text)
        href = _HREF.search(text)
        if href is None:
            return text
        raw = href.group(2) if href.group(2) is not None else href.group(3)
        url = html.unescape(raw).strip()
        if ("{{" in raw or "{%" in raw or not url.lower().startswith(("http://", "https://"))
                or url.startswith(own) or len(url) > MAX_URL or "\x00" in url):
            return text
        if url not in index:
            index[url] = len(urls)
            urls.append(url)
        replacement = f'{href.group(1)}"{MARK}{index[url]}\x00"'
        return text[:href.start()] + replacement + text[href.end():]

    out = _A_TAG.sub(tag, source)
    ends = list(_BODY_END.finditer(out))
    if ends:
        at = ends[-1].start()
        out = out[:at] + PIXEL_MARK + out[at:]
    else:
        out += PIXEL_MARK
    return out, urls


class Rewriter:
    """`rewrite` as a CompiledMessage's html_transform, keeping the URLs it tracked."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.urls: list[str] = []

    def __call__(self, source: str) -> str:
        out, self.urls = rewrite(source, self.base_url)
        return out


def register(campaign_id: int, urls: list[str]) -> list[int]:
    """The link ids of `urls` (in order), inserting the ones not registered yet; commits."""
    if not urls:
        return []
    statement = dialect.insert(CampaignLink.__table__).on_conflict_do_nothing(index_elements=["campaign_id", "url"])
    db.session.execute(statement, [{"campaign_id": campaign_id, "url": url} for url in urls])
    ids = dict(db.session.execute(select(CampaignLink.url, CampaignLink.id)
                                  .where(CampaignLink.campaign_id == campaign_id, CampaignLink.url.in_(urls))).all())
    db.session.commit()
    return [ids[url] for url in urls]


# The redirect's URL: one SELECT per link per process, then from memory ---------------------------

_urls: dict[tuple[int, int], str] = {}
_urls_lock = threading.Lock()
CACHE_SIZE = 100_000  # links; cleared when full (a link costs ~200 bytes)


def url_of(campaign_id: int, link_id: int) -> str | None:
    """The registered URL of a campaign's link, or None if there is no such link (any more)."""
    key = (campaign_id, link_id)
    url = _urls.get(key)
    if url is not None:
        return url
    url = _load(campaign_id, link_id)
    if url is not None:
        with _urls_lock:
            if len(_urls) >= CACHE_SIZE:
                _urls.clear()
            _urls[key] = url
    return url


def _load(campaign_id: int, link_id: int) -> str | None:
    url = db.session.scalar(select(CampaignLink.url).where(CampaignLink.id == link_id,
                                                           CampaignLink.campaign_id == campaign_id))
    db.session.commit()  # end the read: this runs on the hot path
    return url


# Per recipient: the markers in the rendered HTML become signed URLs --------------------------------

PIXEL = ('<img src="{}" width="1" height="1" alt="" '
         'style="display:block;width:1px;height:1px;border:0;margin:0;padding:0">')


def fill(rendered: str, campaign_id: int, individual: bool, link_ids: list[int], urls: list[str],
         subscriber_id: int | None, live: bool) -> str:
    """One recipient's HTML with its tracked links and pixel.

    `live` False (test sends): the original URLs and no pixel, so nothing a tester does counts.
    The subscriber id goes into the tokens only when the campaign tracks individually."""
    if not live:
        return _MARKER.sub(lambda m: "" if m.group(1) == "pixel" else html.escape(urls[int(m.group(1))]), rendered)
    built = int(time.time())
    if not individual:
        # Anonymous tokens name no one: every message built in the same second carries the same
        # ones, so they are signed once a second per campaign, not once per recipient.
        # Keyed by the links too: a campaign's translations each have their own (send._Variant).
        key = (campaign_id, tuple(link_ids))
        table = _anonymous.get(key)
        if table is None or table[0] != built:
            table = (built, _signed_urls(campaign_id, None, built, link_ids))
            _anonymous[key] = table
        found = table[1]
        return _MARKER.sub(lambda m: found[m.group(1)], rendered)
    base = current_app.config["BASE_URL"]
    signer = tokens.Signer(campaign_id, subscriber_id, built)

    def url(match: re.Match) -> str:  # only the links this recipient's render kept are signed
        which = match.group(1)
        if which == "pixel":
            return PIXEL.format(f"{base}/o/{signer.open()}")
        return f"{base}/c/{signer.click(link_ids[int(which)])}"

    return _MARKER.sub(url, rendered)


def substitute(rendered: str, url: Callable[[str], str]) -> str:
    """`rendered` with each marker replaced by `url(which)`: "pixel" or a link's index (as text).
    For mail other than campaigns' (automation emails) that signs its own URLs."""
    return _MARKER.sub(lambda m: url(m.group(1)), rendered)


# (campaign id, its variant's link ids) -> (build second, marker -> URL)
_anonymous: dict[tuple[int, tuple[int, ...]], tuple[int, dict[str, str]]] = {}


def _signed_urls(campaign_id: int, subscriber_id: int | None, built: int, link_ids: list[int]) -> dict[str, str]:
    base = current_app.config["BASE_URL"]
    signer = tokens.Signer(campaign_id, subscriber_id, built)
    found = {str(i): f"{base}/c/{signer.click(link_id)}" for i, link_id in enumerate(link_ids)}
    found["pixel"] = PIXEL.format(f"{base}/o/{signer.open()}")
    return found
