"""Forms for the campaigns and layouts pages; the services do the real validation."""
from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    FieldList,
    Form,
    FormField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from ....models import VARIANT_LABELS
from ....services.addresses import normalize_email
from ....services.settings import TRACKING_MODES
from .audience import CheckboxesField

MAX_TEST_ADDRESSES = 10

STARTER_HTML = """<h1>Hello {{ subscriber.name or "there" }},</h1>

<p>Write your news here.</p>

<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>
"""

STARTER_LAYOUT = """<!doctype html>
<html>
<head>
  <meta charset="utf-8">
  <style>
    body { margin: 0; background: #f4f4f5; font-family: Helvetica, Arial, sans-serif; color: #18181b; }
    .wrap { max-width: 600px; margin: 0 auto; padding: 24px; background: #ffffff; }
    .footer { color: #71717a; font-size: 12px; padding: 16px 24px; text-align: center; }
  </style>
</head>
<body>
  <div class="wrap">
    {{ content }}
  </div>
  <p class="footer">
    You get this email as {{ subscriber.email }}.
    <a href="{{ preferences_url }}">Preferences</a> · <a href="{{ unsubscribe_url }}">Unsubscribe</a>
  </p>
</body>
</html>
"""


BODY_FORMATS = [SelectChoice("html", _l("HTML")), SelectChoice("markdown", _l("Markdown")),
                SelectChoice("richtext", _l("Rich text")), SelectChoice("visual", _l("Visual"))]


class TranslationForm(Form):
    """One translation row; a plain Form (the campaign form's CSRF token covers it)."""
    language = StringField(_l("Language"), validators=[Length(max=16)],
                           description=_l("A short tag: de, fr, pt-BR. "
                                          "Subscribers with that language get this version."))
    subject = StringField(_l("Subject"), validators=[Length(max=500)])
    body = TextAreaField(_l("HTML body"))
    remove = BooleanField(_l("Remove this translation"))

    def is_blank(self) -> bool:
        return not ((self.language.data or "").strip() or (self.subject.data or "").strip()
                    or (self.body.data or "").strip())


class CampaignForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)],
                       description=_l("Only you see it: for finding the campaign later."))
    subject = StringField(_l("Subject"), validators=[DataRequired(), Length(max=500)])
    from_name = StringField(_l("From name"), validators=[Length(max=200)])
    from_email = StringField(_l("From email"), validators=[DataRequired(), Length(max=254)])
    reply_to = StringField(_l("Reply-to"), validators=[Length(max=254)], description=_l("Optional: where replies go."))
    list_ids = CheckboxesField(_l("Lists"), coerce=int, validate_choice=False)
    segment_ids = CheckboxesField(_l("Segments"), coerce=int, validate_choice=False)
    layout_id = SelectField(_l("Layout"), choices=[("", _l("No layout"))], validate_choice=False)
    tracking = SelectField(_l("Tracking"), choices=[SelectChoice(k, _l(v)) for k, v in TRACKING_MODES.items()],
                           validate_choice=False,
                           description=_l("Opens come from a 1×1 image, clicks from links through this server. "
                                       "Test sends are never tracked."))
    pool = SelectField(_l("Sending servers"), choices=[SelectChoice("default", _l("default"))], validate_choice=False,
                       default="default",
                       description=_l("The pool of sending servers it goes out through (Settings → Sending servers)."))
    html = TextAreaField(_l("HTML body"), default=STARTER_HTML)
    # The editor (templates/admin/campaigns/_editor.html) and what it works on (services/campaigns/editors.py).
    body_format = RadioField(_l("Editor"), choices=BODY_FORMATS, default="html", validate_choice=False)
    body_source = TextAreaField(_l("Source"), description=_l("Markdown, the rich-text HTML, or the visual project; "
                                                      "the HTML body is made from it when you save."))
    text = TextAreaField(_l("Text body"), description=_l("Optional: generated from the HTML when empty."))
    # The saved translations plus one empty row to add another (a blank row is ignored).
    translations = FieldList(FormField(TranslationForm), min_entries=1, max_entries=51)
    translation_errors: list[str] = []  # the service's refusal of a translation, set by the view
    # Not saved: whom the live preview is rendered for.
    preview_as = StringField(_l("Preview as"), validators=[Length(max=254)])
    # The A/B test (services/campaigns/ab_variants.py); variants A-D are added below the class.
    ab_enabled = BooleanField(_l("Run an A/B test"))
    ab_share = IntegerField(_l("Test share (%)"), default=20, validators=[Optional()],
                            description=_l("This share of the recipients, picked at random, is split evenly between "
                                        "the variants; the rest get the winner."))
    ab_metric = SelectField(_l("Winner by"), choices=[SelectChoice("opens", _l("Opens (people, not machines)")),
                                                  SelectChoice("clicks", _l("Clicks (people, not machines)"))],
                            default="opens", validate_choice=False)
    ab_wait_minutes = IntegerField(_l("Wait (minutes)"), default=240, validators=[Optional()],
                                   description=_l("From the test share's start to the pick."))
    ab_mode = RadioField(_l("Then"), choices=[SelectChoice("auto", _l("Send the winner to the rest automatically")),
                                          SelectChoice("manual", _l("Let me pick the winner"))],
                         default="auto", validate_choice=False)

    def values(self) -> dict[str, Any]:
        """What the campaigns service takes."""
        return {"name": self.name.data, "subject": self.subject.data, "from_name": self.from_name.data,
                "from_email": self.from_email.data, "reply_to": self.reply_to.data, "html": self.html.data,
                "body_format": self.body_format.data, "body_source": self.body_source.data,
                "text": self.text.data, "layout_id": self.layout_id.data or None,
                "list_ids": self.list_ids.data or [], "segment_ids": self.segment_ids.data or [],
                "tracking": self.tracking.data, "pool": self.pool.data, "ab_test": self.ab_test(),
                "translations": self.translation_values()}

    def translation_values(self) -> dict[str, dict[str, str]]:
        """{tag: {subject, body}} of the rows kept; the service checks tags and templates. A row
        without a language is kept under "" so the service refuses it by name."""
        wanted: dict[str, dict[str, str]] = {}
        for entry in self.translations:
            row = entry.form
            if row.remove.data or row.is_blank():
                continue
            wanted[(row.language.data or "").strip()] = {"subject": row.subject.data or "", "body": row.body.data or ""}
        return wanted

    def load_translations(self, translations: dict[str, dict[str, str]]) -> None:
        """The saved translations as rows, and an empty one to add a language."""
        while self.translations.entries:
            self.translations.pop_entry()
        for tag, parts in translations.items():
            self.translations.append_entry({"language": tag, **parts})
        self.translations.append_entry()

    def ab_test(self) -> dict[str, Any] | None:
        """The test as the service takes it; variants left blank are not part of it."""
        if not self.ab_enabled.data:
            return None
        variants = []
        for label in VARIANT_LABELS:
            values = {key: (self[f"ab_{key}_{label.lower()}"].data or "") for key in ("subject", "from_name", "html")}
            if any(value.strip() for value in values.values()):
                variants.append(values)
        return {"variants": variants, "share": self.ab_share.data, "metric": self.ab_metric.data,
                "wait_minutes": self.ab_wait_minutes.data if self.ab_wait_minutes.data is not None else 0,
                "mode": self.ab_mode.data}

    def ab_has_errors(self) -> bool:
        return any(field.errors for name, field in self._fields.items() if name.startswith("ab_"))

    def variant_fields(self) -> list[tuple[str, Any, Any, Any]]:
        return [(label, self[f"ab_subject_{label.lower()}"], self[f"ab_from_name_{label.lower()}"],
                 self[f"ab_html_{label.lower()}"]) for label in VARIANT_LABELS]


for _label in VARIANT_LABELS:
    setattr(CampaignForm, f"ab_subject_{_label.lower()}",
            StringField(_l("Subject %(label)s", label=_label), validators=[Length(max=500)]))
    setattr(CampaignForm, f"ab_from_name_{_label.lower()}",
            StringField(_l("From name %(label)s", label=_label), validators=[Length(max=200)],
                        description=_l("Optional: the campaign's when empty.")))
    setattr(CampaignForm, f"ab_html_{_label.lower()}",
            TextAreaField(_l("HTML body %(label)s",
                             label=_label), description=_l("Optional: the campaign's body when empty.")))


def ab_form_data(test: dict[str, Any] | None) -> dict[str, Any]:
    """A saved test (ab_variants.current) as the form's data."""
    if not test:
        return {}
    data: dict[str, Any] = {"ab_enabled": True, "ab_share": test["share"], "ab_metric": test["metric"],
                            "ab_wait_minutes": test["wait_minutes"], "ab_mode": test["mode"]}
    for label, variant in zip(VARIANT_LABELS, test["variants"], strict=False):
        for key in ("subject", "from_name", "html"):
            data[f"ab_{key}_{label.lower()}"] = variant[key]
    return data


def ab_error_aliases() -> dict[str, str]:
    """The service's field names for the test's parts, as the form's."""
    aliases = {"ab_test": "ab_enabled", "ab_test.variants": "ab_subject_b", "ab_test.share": "ab_share",
               "ab_test.metric": "ab_metric", "ab_test.wait_minutes": "ab_wait_minutes", "ab_test.mode": "ab_mode"}
    for i, label in enumerate(VARIANT_LABELS):
        for key in ("subject", "from_name", "html"):
            aliases[f"ab_test.variants.{i}.{key}"] = f"ab_{key}_{label.lower()}"
    return aliases


class ResendForm(FlaskForm):
    to = RadioField(_l("Send to"), choices=[SelectChoice("non_openers", _l("Those who did not open it")),
                                        SelectChoice("non_clickers", _l("Those who did not click a link"))],
                    default="non_openers", validate_choice=False)
    subject = StringField(_l("Subject"), validators=[DataRequired(), Length(max=500)],
                          description=_l("A new subject often does better than the one they skipped."))


class SaveTemplateForm(FlaskForm):
    name = StringField(_l("Template name"), validators=[DataRequired(), Length(max=200)],
                       description=_l("Its subject and body become a starting point for new campaigns."))


class LayoutForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    html = TextAreaField(_l("HTML"), default=STARTER_LAYOUT,
                         description=_l("Put {{ content }} where each campaign's body goes."))


_AREAS = ("Africa/", "America/", "Antarctica/", "Arctic/", "Asia/", "Atlantic/", "Australia/", "Europe/", "Indian/",
          "Pacific/")


def _canonical_zones() -> set[str]:
    """The zones tzdata lists per country (zone.tab); without that file, names of the Area/City form."""
    for root in zoneinfo.TZPATH:
        tab = Path(root) / "zone.tab"
        if tab.is_file():
            rows = (line.split("\t") for line in tab.read_text(encoding="utf-8").splitlines())
            return {row[2].strip() for row in rows if len(row) >= 3 and not row[0].startswith("#")}
    return {name for name in zoneinfo.available_timezones() if name.startswith(_AREAS)}


@cache
def _zones() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    available = zoneinfo.available_timezones() - {"UTC"}
    real = sorted(available & _canonical_zones())
    other = sorted(available - set(real))
    return [("UTC", "UTC")] + [(n, n.replace("_", " ")) for n in real], [(n, n.replace("_", " ")) for n in other]


def timezone_choices() -> dict[str, list[tuple[str, str]]]:
    """Real places first (UTC, then Europe/Paris…), then the old aliases and fixed offsets (US/Eastern,
    Etc/GMT+5…), which the browser may still report, in their own group (named in the page's language)."""
    real, other = _zones()
    return {_("Time zones"): real, _("Other names"): other}


class ScheduleForm(FlaskForm):
    send_at = DateTimeLocalField(_l("Send at"), format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
                                 validators=[DataRequired(_l("Pick a date and time."))])
    timezone = SelectField(_l("Timezone"), default="UTC", validate_choice=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timezone.choices = timezone_choices()

    def validate_timezone(self, field: Any) -> None:
        try:
            zoneinfo.ZoneInfo(field.data or "")
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValidationError(_("Choose a timezone from the list.")) from None

    def aware_send_at(self) -> datetime:
        """The wall-clock time the user typed, in the timezone they chose, as a UTC instant."""
        local = self.send_at.data.replace(tzinfo=zoneinfo.ZoneInfo(self.timezone.data))
        return local.astimezone(UTC)  # SQLite keeps a datetime's digits, not its offset


class TestSendForm(FlaskForm):
    addresses = TextAreaField(_l("Send a test to"), validators=[DataRequired(_l("Enter at least one address."))],
                              description=_l("Up to %(count)s addresses, separated by commas or new lines.",
                                             count=MAX_TEST_ADDRESSES))
    preview_as = StringField(_l("Personalise as"), validators=[Length(max=254)],
                             description=_l("Optional: a subscriber's email; the sample subscriber otherwise."))
    parsed: list[str] = []

    def validate_addresses(self, field: Any) -> None:
        raw = [part.strip() for part in re.split(r"[,;\s]+", field.data or "") if part.strip()]
        if len(raw) > MAX_TEST_ADDRESSES:
            raise ValidationError(_("At most %(count)s addresses at a time (%(given)s given).",
                                    count=MAX_TEST_ADDRESSES, given=len(raw)))
        parsed: list[str] = []
        for address in raw:
            try:
                normalized = normalize_email(address)
            except ValueError as exc:
                raise ValidationError(f"“{address}”: {getattr(exc, 'message', exc)}") from None
            if normalized not in parsed:
                parsed.append(normalized)
        if not parsed:
            raise ValidationError(_("Enter at least one address."))
        self.parsed = parsed
