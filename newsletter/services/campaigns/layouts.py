"""Layouts: reusable HTML that wraps a campaign's body at `{{ content }}`."""
from __future__ import annotations

import re

from markupsafe import Markup
from sqlalchemy import func, select

from ...extensions import db
from ...models import Campaign, CampaignStatus, Layout
from ...sending.render import RenderError, render_string
from ..errors import NotFound, ValidationError
from ..messages import N_
from ..text import one_line
from .context import sample_context

CONTENT = re.compile(r"\{\{\s*content\s*\}\}")
SAMPLE_CONTENT = "<p>Your campaign goes here.</p>"
# A layout in use by these would change mail already on its way: refuse to delete it.
IN_FLIGHT = (CampaignStatus.SCHEDULED, CampaignStatus.SENDING, CampaignStatus.PAUSED)


def all_layouts() -> list[Layout]:
    return list(db.session.scalars(select(Layout).order_by(Layout.name, Layout.id)))


def get(layout_id: int) -> Layout:
    layout = db.session.get(Layout, layout_id)
    if layout is None:
        raise NotFound("layout", layout_id)
    return layout


def preview(html: str) -> str:
    """The layout rendered around sample content for the sample subscriber; ValidationError if broken."""
    html = html or ""
    found = len(CONTENT.findall(html))
    if found == 0:
        raise ValidationError("html", "Put {{ content }} where the campaign's body goes.")
    if found > 1:
        raise ValidationError("html", "Use {{ content }} only once: the campaign's body goes in one place.")
    # Markup: the sample body is HTML, as the campaign's body is once substituted at send time.
    context = {**sample_context(), "content": Markup(SAMPLE_CONTENT)}
    try:
        return render_string(html, context, field="html", html=True)
    except RenderError as exc:
        raise ValidationError(exc.field, exc.message) from None


def _clean(name: str | None, html: str | None) -> tuple[str, str]:
    name = one_line(name, "name", 200, label=N_("A layout name"))
    if not name:
        raise ValidationError("name", "A layout needs a name.")
    html = html or ""
    preview(html)
    return name, html


def create(name: str, html: str) -> Layout:
    name, html = _clean(name, html)
    layout = Layout(name=name, html=html)
    db.session.add(layout)
    db.session.commit()
    return layout


def update(layout_id: int, name: str | None = None, html: str | None = None) -> Layout:
    layout = get(layout_id)
    layout.name, layout.html = _clean(layout.name if name is None else name, layout.html if html is None else html)
    db.session.commit()
    return layout


def usage(layout_id: int) -> dict[str, int]:
    """How many campaigns use the layout, by status value."""
    rows = db.session.execute(select(Campaign.status, func.count()).where(Campaign.layout_id == layout_id)
                              .group_by(Campaign.status))
    return {status.value: count for status, count in rows}


def delete(layout_id: int) -> None:
    """Delete a layout; drafts and finished campaigns that used it keep their body, without a layout."""
    layout = get(layout_id)
    busy = sum(count for status, count in usage(layout_id).items() if CampaignStatus(status) in IN_FLIGHT)
    if busy:
        raise ValidationError("layout", "%(busy)s scheduled or sending campaign(s) use this layout; unschedule or "
                                        "cancel them first.", busy=busy)
    db.session.delete(layout)
    db.session.commit()
