"""The message catalogs: every string marked for translation is in messages.pot, has a German
msgstr, keeps its placeholders, and the committed .mo says what the .po says (`make translations`)."""
from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "translations"
LANGUAGES = ["de"]
PLACEHOLDER = re.compile(r"%\(\w+\)s")


def _catalog(path: Path, locale: str | None = None):
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def _extracted() -> set[str]:
    """The msgids `pybabel extract -F babel.cfg -k _l -k lazy_gettext` finds in the code today."""
    with (ROOT / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None}
    found = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=keywords):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_the_template_holds_every_marked_string():
    pot = {m.id for m in _catalog(TRANSLATIONS / "messages.pot") if m.id}
    assert sorted(_extracted() - pot) == [], "run `make translations` and translate the new strings"
    assert sorted(pot - _extracted()) == [], "messages.pot has strings no code uses: run `make translations`"


def test_every_language_translates_every_string_with_its_placeholders():
    pot = {m.id for m in _catalog(TRANSLATIONS / "messages.pot") if m.id}
    for language in LANGUAGES:
        po = {m.id: m for m in _catalog(TRANSLATIONS / language / "LC_MESSAGES" / "messages.po", language) if m.id}
        assert sorted(pot - set(po)) == [], f"{language}: strings missing from the .po"
        untranslated = sorted(i for i in pot if not po[i].string or po[i].fuzzy)
        assert untranslated == [], f"{language}: untranslated or fuzzy"
        for msgid in pot:
            assert sorted(PLACEHOLDER.findall(po[msgid].string)) == sorted(PLACEHOLDER.findall(msgid)), msgid


def test_the_compiled_catalog_matches_the_po():
    for language in LANGUAGES:
        folder = TRANSLATIONS / language / "LC_MESSAGES"
        po = {m.id: m.string for m in _catalog(folder / "messages.po", language) if m.id}
        with (folder / "messages.mo").open("rb") as handle:
            mo = {m.id: m.string for m in read_mo(handle) if m.id}
        assert mo == po, f"{language}: messages.mo is stale: run `make translations`"
