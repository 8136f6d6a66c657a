"""What a campaign template sees: the subscriber, the campaign, and signed links."""
from __future__ import annotations

from email.utils import parseaddr
from functools import lru_cache
from typing import Any

from flask import current_app

from .. import settings
from ..audience import links, tokens

SAMPLE_SUBSCRIBER = {"id": 0, "email": "subscriber@example.com", "name": "Sam Sample", "attributes": {}}


def campaign_fields(campaign: Any) -> dict[str, Any]:
    return {"id": campaign.id, "name": campaign.name, "subject": campaign.subject,
            "from_name": campaign.from_name, "from_email": campaign.from_email}


def preview_links() -> dict[str, str]:
    """Links that look like the real ones but do nothing: followed, they say "this is a preview"."""
    return {"unsubscribe_url": links.preview_url("public.unsubscribe"),
            "preferences_url": links.preview_url("public.preferences"),
            "web_view_url": links.preview_url("public.web_view")}


def sample_context(campaign: Any | None = None, attributes: dict[str, Any] | None = None) -> dict[str, Any]:
    """A stand-in subscriber: used to test-render templates when they are saved, and to preview.

    `attributes`: the audience's keys with example values (previews); none when saving, so a
    template that breaks for a subscriber lacking one is refused."""
    return {"subscriber": {**SAMPLE_SUBSCRIBER, "attributes": dict(attributes or {})},
            "campaign": campaign_fields(campaign) if campaign is not None else
            {"id": 0, "name": "", "subject": "", "from_name": "", "from_email": ""},
            **preview_links()}


def preview_context(campaign: dict[str, Any], subscriber_id: int | None, email: str, name: str,
                    attributes: dict[str, Any] | None) -> dict[str, Any]:
    """A real subscriber's data with inert links: "preview as" and test sends.

    Never a working link: whoever sees a preview or a test email (a marketer, a colleague it
    was forwarded to) must not be able to unsubscribe or manage this person."""
    return {"subscriber": {"id": subscriber_id, "email": email, "name": name or "", "attributes": attributes or {}},
            "campaign": campaign, **preview_links()}


def recipient_context(campaign: dict[str, Any], list_ids: list[int], subscriber_id: int | None, email: str,
                      name: str, attributes: dict[str, Any] | None, token_version: int | None = None) -> dict[str, Any]:
    """The context for one real recipient (links signed for this subscriber and campaign).

    `token_version`: the subscriber's, from the rows the caller loaded (else looked up).
    """
    has_id = subscriber_id is not None
    if subscriber_id is not None and token_version is None:
        token_version = tokens.current_version(subscriber_id)
    return {
        "subscriber": {"id": subscriber_id, "email": email, "name": name or "", "attributes": attributes or {}},
        "campaign": campaign,
        "unsubscribe_url": links.unsubscribe_url(subscriber_id, list_ids, campaign["id"], token_version)
        if subscriber_id is not None else "#",
        "preferences_url": links.preferences_url(subscriber_id, token_version) if subscriber_id is not None else "#",
        "web_view_url": web_view_url(campaign["id"], subscriber_id, token_version if has_id else 0),
    }


class RecipientLinks:
    """One campaign's signed links for each recipient, with everything but the recipient's part
    made once: the signers, the URLs around the tokens, the sorted list ids.

    `context(...)` is `recipient_context(...)` byte for byte (a test compares them) for the app
    it was made in (`fits()`: the same SECRET_KEY and BASE_URL); a campaign's worker builds
    each message's three links with it.
    """

    def __init__(self, campaign_id: int, list_ids: list[int]) -> None:
        config = current_app.config
        self.app_key = (config["SECRET_KEY"], config["BASE_URL"])
        self.campaign_id, self.lists = campaign_id, sorted(list_ids)
        # After `{"s":<id>`: the campaign's part of the unsubscribe and web view payloads.
        self.unsubscribe_tail = f',"l":[{",".join(map(str, self.lists))}],"c":{campaign_id}'.encode()
        self.view_tail = f',"c":{campaign_id}'.encode()
        self.unsubscribe, self.preferences, self.view = (tokens.signer(p) for p in ("unsubscribe", "preferences",
                                                                                       "view"))
        self.unsubscribe_parts, self.preferences_parts, self.view_parts = (
            links.url_parts(f"public.{endpoint}") for endpoint in ("unsubscribe", "preferences", "web_view"))

    def fits(self, campaign_id: int, list_ids: list[int]) -> bool:
        config = current_app.config
        return (self.campaign_id == campaign_id and (config["SECRET_KEY"], config["BASE_URL"]) == self.app_key
                and self.lists == sorted(list_ids))

    def context(self, campaign: dict[str, Any], subscriber_id: int | None, email: str, name: str,
                attributes: dict[str, Any] | None, token_version: int | None = None) -> dict[str, Any]:
        if subscriber_id is not None and token_version is None:
            token_version = tokens.current_version(subscriber_id)
        if type(subscriber_id) is not int or type(token_version) is not int:  # anonymous, or not plain ints
            return recipient_context(campaign, self.lists, subscriber_id, email, name, attributes, token_version)
        # The JSON written here, as `dumps` would write it.
        subscriber = {"id": subscriber_id, "email": email, "name": name or "", "attributes": attributes or {}}
        version = f',"v":{token_version}}}'.encode() if token_version else b"}"
        who = f'{{"s":{subscriber_id}'.encode()
        return {"subscriber": subscriber, "campaign": campaign,
                "unsubscribe_url": self.unsubscribe.dumps_json(who + self.unsubscribe_tail + version)
                .join(self.unsubscribe_parts),
                "preferences_url": self.preferences.dumps_json(who + version).join(self.preferences_parts),
                "web_view_url": self.view.dumps_json(who + self.view_tail + version).join(self.view_parts)}


def web_view_url(campaign_id: int, subscriber_id: int | None, version: int | None = None) -> str:
    return links.web_view_url(campaign_id, subscriber_id, version)


def list_unsubscribe_mailto(unsubscribe_url: str) -> str:
    """The mailto: half of List-Unsubscribe (RFC 2369): the one-click link's token as subject."""
    address = current_app.config.get("LIST_UNSUBSCRIBE_MAILTO") or _address(settings.get("MAIL_DEFAULT_SENDER"))
    return f"mailto:{address}?subject=unsubscribe%20{unsubscribe_url.rsplit('/', 1)[-1]}"


@lru_cache(maxsize=8)
def _address(sender: str) -> str:
    return parseaddr(sender)[1]  # once per sender, not once per recipient
