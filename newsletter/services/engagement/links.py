"""Tracked links: rewrite a campaign's HTML once, register its links, and find a link's URL.

The HTML work happens once per compiled campaign (per worker process): every trackable `href`
becomes `{{ tracked_link(i) }}` and a `{{ tracking_pixel() }}` goes before `</body>`, so per
recipient only the tokens are made. What stays as written:
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
from typing import Any

from flask import current_app
from markupsafe import Markup
from sqlalchemy import select

from ...extensions import db
from ...models import CampaignLink
from ...models.base import upsert_insert
from . import tokens

_A_TAG = re.compile(r"<a\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*>", re.I)
_HREF = re.compile(r"""(\shref\s*=\s*)(?:"([^"]*)"|'([^']*)')""", re.I)
_NO_TRACK = re.compile(r"""\s+data-no-track(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?""", re.I)
_BODY_END = re.compile(r"</body\s*>", re.I)
PIXEL_CALL = "{{ tracking_pixel() }}"
MAX_URL = 2000  # characters: longer hrefs are left untracked


def rewrite(source: str, base_url: str) -> tuple[str, list[str]]:
    """The HTML with trackable hrefs replaced by `{{ tracked_link(i) }}` and the pixel added;
    returns it and the distinct URLs, `i` indexing that list."""
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
                or url.startswith(own) or len(url) > MAX_URL):
            return text
        if url not in index:
            index[url] = len(urls)
            urls.append(url)
        replacement = f'{href.group(1)}"{{{{ tracked_link({index[url]}) }}}}"'
        return text[:href.start()] + replacement + text[href.end():]

    out = _A_TAG.sub(tag, source)
    ends = list(_BODY_END.finditer(out))
    if ends:
        at = ends[-1].start()
        out = out[:at] + PIXEL_CALL + out[at:]
    else:
        out += PIXEL_CALL
    return out, urls


def register(campaign_id: int, urls: list[str]) -> list[int]:
    """The link ids of `urls` (in order), inserting the ones not registered yet; commits."""
    if not urls:
        return []
    statement = upsert_insert(CampaignLink.__table__).on_conflict_do_nothing(index_elements=["campaign_id", "url"])
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


# What a compiled, rewritten template calls per recipient ----------------------------------------

PIXEL = ('<img src="{}" width="1" height="1" alt="" '
         'style="display:block;width:1px;height:1px;border:0;margin:0;padding:0">')


def template_functions(campaign_id: int, individual: bool, link_ids: list[int], urls: list[str],
                       subscriber_id: int | None, live: bool) -> dict[str, Any]:
    """`tracked_link(i)` and `tracking_pixel()` for one recipient of a rewritten template.

    `live` False (test sends): the original URLs and no pixel, so nothing a tester does counts.
    The subscriber id goes into the tokens only when the campaign tracks individually."""
    if not live:
        return {"tracked_link": lambda i: urls[i], "tracking_pixel": lambda: Markup("")}
    base = current_app.config["BASE_URL"]
    built = int(time.time())
    who = subscriber_id if individual else None
    return {
        "tracked_link": lambda i: f"{base}/c/{tokens.make('click', campaign_id, link_ids[i], who, built)}",
        "tracking_pixel": lambda: Markup(PIXEL.format(f"{base}/o/{tokens.make('open', campaign_id, None, who, built)}")),
    }
