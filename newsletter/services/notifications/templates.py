"""Reusable transactional templates: create, edit, delete; checked (compiled in the sandbox) when saved.

A template is rendered later with each notification's `data`, which is unknown at save time:
saving refuses what can never work (syntax errors, reaching for Python internals), and a
name missing from `data` is refused when a notification is accepted.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...models import Template
from ...sending.render import RenderError, compile_each
from ..errors import Conflict, NotFound, ValidationError
from ..messages import N_
from ..text import one_line

MAX_SUBJECT = 500


def get(template_id: int, field: str | None = None) -> Template:
    """The template, or NotFound (or ValidationError naming `field`, when it was referred to)."""
    template = db.session.get(Template, template_id)
    if template is None:
        if field:
            raise ValidationError(field, "No template with id %(template_id)s.", template_id=template_id)
        raise NotFound("template", template_id)
    return template


def _clean(name: str | None, subject: str | None, html: str | None, text: str | None) -> tuple[str, str, str, str]:
    name = one_line(name, "name", 200, label=N_("A template name"))
    subject, html, text = (subject or "").strip(), html or "", text or ""
    if not name:
        raise ValidationError("name", "A template needs a name.")
    if not subject:
        raise ValidationError("subject", "A template needs a subject.")
    if len(subject) > MAX_SUBJECT or "\n" in subject or "\r" in subject:
        raise ValidationError("subject", "A subject is one line of at most %(limit)s characters.",
                              limit=MAX_SUBJECT)
    if not html.strip() and not text.strip():
        raise ValidationError("html", "A template needs an HTML or a text body (or both).")
    try:
        compile_each([("subject", subject), ("html", html), ("text", text)])
    except RenderError as exc:
        raise ValidationError(exc.field, exc.message) from None
    return name, subject, html, text


def _save(template: Template) -> Template:
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("name", "A template named “%(name)s” already exists.", name=template.name) from None
    return template


def create(name: str, subject: str, html: str = "", text: str = "") -> Template:
    name, subject, html, text = _clean(name, subject, html, text)
    if db.session.scalar(select(Template.id).where(Template.name == name)) is not None:
        raise Conflict("name", "A template named “%(name)s” already exists.", name=name)
    template = Template(name=name, subject=subject, html=html, text=text)
    db.session.add(template)
    return _save(template)


def update(template_id: int, **changes: str | None) -> Template:
    template = get(template_id)
    values = {key: changes[key] if changes.get(key) is not None else getattr(template, key)
              for key in ("name", "subject", "html", "text")}
    name, subject, html, text = _clean(**values)
    taken = db.session.scalar(select(Template.id).where(Template.name == name, Template.id != template_id))
    if taken is not None:
        raise Conflict("name", "A template named “%(name)s” already exists.", name=name)
    template.name, template.subject, template.html, template.text = name, subject, html, text
    return _save(template)


def delete(template_id: int) -> None:
    """Delete a template; notifications made from it keep what they rendered."""
    db.session.delete(get(template_id))
    db.session.commit()
