"""What a campaign template sees: the subscriber, the campaign, and signed links."""
from __future__ import annotations

from email.utils import parseaddr
from functools import lru_cache
from typing import Any

from flask import current_app

from . import links, settings, tokens

SAMPLE_SUBSCRIBER = {"id": 0, "email": "subscriber@example.com", "name": "Sam Sample", "attributes": {}}


def campaign_fields(campaign: Any) -> dict[str, Any]:
    return {"id": campaign.id, "name": campaign.name, "subject": campaign.subject,
            "from_name": campaign.from_name, "from_email": campaign.from_email}


def sample_context(campaign: Any | None = None) -> dict[str, Any]:
    """A stand-in subscriber: used to test-render templates when they are saved."""
    return {"subscriber": dict(SAMPLE_SUBSCRIBER),
            "campaign": campaign_fields(campaign) if campaign is not None else
            {"id": 0, "name": "", "subject": "", "from_name": "", "from_email": ""},
            "unsubscribe_url": "#unsubscribe", "preferences_url": "#preferences", "web_view_url": "#web-view"}


def recipient_context(campaign: dict[str, Any], list_ids: list[int], subscriber_id: int | None, email: str,
                      name: str, attributes: dict[str, Any] | None) -> dict[str, Any]:
    """The context for one real recipient (links signed for this subscriber and campaign)."""
    has_id = subscriber_id is not None
    return {
        "subscriber": {"id": subscriber_id, "email": email, "name": name or "", "attributes": attributes or {}},
        "campaign": campaign,
        "unsubscribe_url": links.unsubscribe_url(subscriber_id, list_ids, campaign["id"]) if has_id else "#",
        "preferences_url": links.preferences_url(subscriber_id) if has_id else "#",
        "web_view_url": web_view_url(campaign["id"], subscriber_id),
    }


def web_view_url(campaign_id: int, subscriber_id: int | None) -> str:
    token = tokens.make("view", {"s": subscriber_id or 0, "c": campaign_id})
    return links._tokened("public.web_view", token)


def list_unsubscribe_mailto(unsubscribe_url: str) -> str:
    """The mailto: half of List-Unsubscribe (RFC 2369): the one-click link's token as subject."""
    address = current_app.config.get("LIST_UNSUBSCRIBE_MAILTO") or _address(settings.get("MAIL_DEFAULT_SENDER"))
    return f"mailto:{address}?subject=unsubscribe%20{unsubscribe_url.rsplit('/', 1)[-1]}"


@lru_cache(maxsize=8)
def _address(sender: str) -> str:
    return parseaddr(sender)[1]  # once per sender, not once per recipient
