"""Starting points for new campaigns: the built-in gallery (MJML compiled to HTML) and users' saved templates.

The gallery's layouts are written in MJML under templates/gallery/src/ and compiled with MRML
(the Rust MJML engine) into templates/gallery/*.html, which are committed: the app reads the
compiled files and never needs the compiler at run time. `make gallery` recompiles them;
tests/services/test_gallery.py fails when a committed file differs from a fresh compile.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ...config import ROOT
from ...extensions import db
from ...models import BodyFormat, CampaignTemplate
from ..errors import NotFound, ValidationError
from ..messages import N_
from ..text import one_line
from .campaigns import get as get_campaign

GALLERY = ROOT / "templates" / "gallery"


@dataclass(frozen=True)
class Starter:
    slug: str
    name: str
    description: str
    subject: str

    @property
    def html(self) -> str:
        return (GALLERY / f"{self.slug}.html").read_text(encoding="utf-8")


# Names and descriptions are the gallery page's text (N_: translated there); the subjects are the
# campaign's, in the marketer's language.
STARTERS = (
    Starter("newsletter", N_("Newsletter"), N_("A banner, a greeting and two stories side by side."),
            "Our news this month"),
    Starter("announcement", N_("Announcement"), N_("One big message and one button."), "Something new is here"),
    Starter("digest", N_("Digest"), N_("A numbered list of links with a line on each."), "The week in five links"),
    Starter("letter", N_("Plain letter"), N_("A personal note: just text, like an email from a person."),
            "A short note"),
    Starter("receipt", N_("Receipt"), N_("Transactional: an order table, a total and an account button."),
            "Your receipt"),
)


def starter(slug: str) -> Starter:
    for found in STARTERS:
        if found.slug == slug:
            return found
    raise NotFound("gallery template", slug)


def compile_mjml(source: str) -> str:
    """MJML to email HTML with MRML; no web-font links (offline, and mail clients ignore most)."""
    import mrml

    return mrml.to_html(source, render_options=mrml.RenderOptions(fonts={})).content + "\n"


def source_path(slug: str) -> Path:
    return GALLERY / "src" / f"{slug}.mjml"


def write_all() -> list[Path]:
    """Compile every gallery source into its committed HTML file (`make gallery`)."""
    written = []
    for item in STARTERS:
        target = GALLERY / f"{item.slug}.html"
        target.write_text(compile_mjml(source_path(item.slug).read_text(encoding="utf-8")), encoding="utf-8")
        written.append(target)
    return written


# Saved templates ------------------------------------------------------------------------------

def saved_templates() -> list[CampaignTemplate]:
    return list(db.session.scalars(select(CampaignTemplate).order_by(CampaignTemplate.id.desc())))


def get_saved(template_id: int) -> CampaignTemplate:
    found = db.session.get(CampaignTemplate, template_id)
    if found is None:
        raise NotFound("template", template_id)
    return found


def save_from_campaign(campaign_id: int, name: Any, created_by_id: int | None = None) -> CampaignTemplate:
    """The campaign's subject and body (format, source and HTML) kept as a starting point."""
    campaign = get_campaign(campaign_id)
    template = CampaignTemplate(name=one_line(name, "name", 200, required=True), subject=campaign.subject,
                                body_format=campaign.body_format, body_source=campaign.body_source,
                                html=campaign.html, created_by_id=created_by_id)
    db.session.add(template)
    db.session.commit()
    return template


def delete_saved(template_id: int) -> None:
    db.session.delete(get_saved(template_id))
    db.session.commit()


def start_values(ref: str, editor: str | None = None) -> dict[str, Any]:
    """What a new campaign starts with from `ref` ("gallery:SLUG" or "saved:ID").

    A gallery layout starts in the HTML editor or, with `editor="visual"`, in the visual one.
    """
    kind, _, key = (ref or "").partition(":")
    if kind == "gallery":
        item = starter(key)
        body_format = BodyFormat.VISUAL if editor == "visual" else BodyFormat.HTML
        return {"subject": item.subject, "html": item.html, "body_format": body_format, "body_source": ""}
    if kind == "saved" and key.isdigit():
        saved = get_saved(int(key))
        return {"subject": saved.subject, "html": saved.html, "body_format": saved.body_format,
                "body_source": saved.body_source}
    raise ValidationError("template", "Choose a template from the gallery.")
