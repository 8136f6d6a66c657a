"""A campaign's translations: its subject and body in other languages, the campaign's own the fallback.

`{"de": {"subject": ..., "body": ...}}`, keyed by language tag (services/languages.py). Each is
checked like the campaign itself (sandbox, compile, a sample render with the campaign's layout)
when saved; the send engine compiles them once per campaign (send.prepared) and gives each
recipient the variant for their language: exact tag, then its primary language, else the default.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select

from ...extensions import db
from ...models import Campaign, CampaignTranslation
from ...models.base import utcnow
from ...sending.render import RenderError, check
from .. import languages
from ..errors import ValidationError
from ..messages import N_
from ..text import one_line
from .context import sample_context

MAX_TRANSLATIONS = 50
Translations = dict[str, dict[str, str]]


def clean(value: Any, layout_html: str | None = None) -> Translations:
    """The translations checked and normalised; ValidationError names `translations.<tag>.<part>`."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError("translations", 'Translations are an object: {"de": {"subject": ..., "body": ...}}.')
    if len(value) > MAX_TRANSLATIONS:
        raise ValidationError("translations", "At most %(limit)s translations.",
                              limit=MAX_TRANSLATIONS)
    cleaned: Translations = {}
    for raw_tag, parts in value.items():
        tag = languages.normalize(str(raw_tag), "translations")
        if tag is None:
            raise ValidationError("translations", "A translation needs a language (a tag such as de or pt-BR).")
        if tag in cleaned:
            raise ValidationError(f"translations.{tag}", "Two translations for %(tag)s.", tag=tag)
        try:
            cleaned[tag] = _clean_one(tag, parts, layout_html)
        except ValidationError as exc:
            raise ValidationError(exc.field, "Translation %(tag)s: %(reason)s", tag=tag, reason=exc.text) from None
    return cleaned


def _clean_one(tag: str, parts: Any, layout_html: str | None) -> dict[str, str]:
    if not isinstance(parts, Mapping):
        raise ValidationError(f"translations.{tag}", "a translation is an object with a subject and a body.")
    subject = one_line(parts.get("subject"), f"translations.{tag}.subject", 500, required=True, label=N_("The subject"))
    body = parts.get("body") or ""
    if not isinstance(body, str) or not body.strip():
        raise ValidationError(f"translations.{tag}.body", "write the translated body (HTML).")
    try:
        check([("subject", subject), ("html", body)], sample_context(), layout_html)
    except RenderError as exc:
        raise ValidationError(f"translations.{tag}.{'subject' if exc.field == 'subject' else 'body'}",
                              exc.message) from None
    return {"subject": subject, "body": body}


def of(campaign_id: int | None) -> Translations:
    """The campaign's translations, by tag (one query)."""
    if campaign_id is None:
        return {}
    rows = db.session.scalars(select(CampaignTranslation).where(CampaignTranslation.campaign_id == campaign_id)
                              .order_by(CampaignTranslation.language))
    return {row.language: {"subject": row.subject, "body": row.body} for row in rows}


def localized(values: Mapping[str, Any], language: str | None) -> dict[str, Any]:
    """A campaign's values (campaigns.current_values) as a subscriber of `language` receives them:
    the translation's subject and body (HTML, text made from it) when one fits, else unchanged."""
    tag = languages.pick(language, values.get("translations") or {})
    if tag is None:
        return dict(values)
    parts = values["translations"][tag]
    return {**values, "subject": parts["subject"], "html": parts["body"], "text": "", "body_format": "html",
            "body_source": ""}


def replace(campaign: Campaign, wanted: Translations) -> None:
    """Make the campaign's translations exactly `wanted` (the caller commits). A change bumps the
    campaign's updated_at, so every worker recompiles it (send.prepared keys its cache on it)."""
    if campaign.id is None and not wanted:
        return
    if campaign.id is not None and of(campaign.id) == wanted:
        return
    if campaign.id is None:
        db.session.add(campaign)
        db.session.flush()
    db.session.execute(delete(CampaignTranslation).where(CampaignTranslation.campaign_id == campaign.id))
    db.session.add_all(CampaignTranslation(campaign_id=campaign.id, language=tag, subject=parts["subject"],
                                           body=parts["body"]) for tag, parts in wanted.items())
    campaign.updated_at = utcnow()
