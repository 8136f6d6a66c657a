"""The message catalogs: every string marked for translation is in messages.pot, has a German
msgstr, keeps its placeholders, and the committed .mo says what the .po says (`make translations`)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

# one_pass (tests/conftest.py): it reads the catalogs and the code.
pytestmark = pytest.mark.one_pass

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "translations"
LANGUAGES = ["de"]
PLACEHOLDER = re.compile(r"%\(\w+\)[sr]")


def _catalog(path: Path, locale: str | None = None):
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def _key(msgid) -> str:
    """A message's key: its msgid, the singular for an ngettext pair."""
    return msgid if isinstance(msgid, str) else msgid[0]


def _forms(message) -> tuple[str, ...]:
    """Every msgid and msgstr form of a message (one for gettext, two or more for ngettext)."""
    return tuple(message) if isinstance(message, list | tuple) else (message,)


def _extracted() -> set[str]:
    """The msgids `make translations` (pybabel extract -F babel.cfg with the Makefile's keywords) finds
    in the code today: the services' sentences too (Message, the errors' message argument)."""
    with (ROOT / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None, "N_": None,
                "Message": None, "ValidationError": (2,), "Conflict": (2,), "StateConflict": (2,),
                "AccountError": (2,), "RuleError": (2,)}
    found = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=keywords):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_the_template_holds_every_marked_string():
    pot = {_key(m.id) for m in _catalog(TRANSLATIONS / "messages.pot") if m.id}
    assert sorted(_extracted() - pot) == [], "run `make translations` and translate the new strings"
    assert sorted(pot - _extracted()) == [], "messages.pot has strings no code uses: run `make translations`"


def test_every_language_translates_every_string_with_its_placeholders():
    pot = {_key(m.id) for m in _catalog(TRANSLATIONS / "messages.pot") if m.id}
    for language in LANGUAGES:
        po = {_key(m.id): m for m in _catalog(TRANSLATIONS / language / "LC_MESSAGES" / "messages.po", language)
              if m.id}
        assert sorted(pot - set(po)) == [], f"{language}: strings missing from the .po"
        untranslated = sorted(i for i in pot if not all(_forms(po[i].string)) or po[i].fuzzy)
        assert untranslated == [], f"{language}: untranslated or fuzzy"
        for msgid in pot:
            # Every plural form names the placeholders of the plural msgid (ngettext's %(num)s included).
            wanted = sorted(PLACEHOLDER.findall(_forms(po[msgid].id)[-1]))
            for form in _forms(po[msgid].string):
                assert sorted(PLACEHOLDER.findall(form)) == wanted, msgid


def test_the_compiled_catalog_matches_the_po():
    for language in LANGUAGES:
        folder = TRANSLATIONS / language / "LC_MESSAGES"
        po = {_key(m.id): _forms(m.string) for m in _catalog(folder / "messages.po", language) if m.id}
        with (folder / "messages.mo").open("rb") as handle:
            mo = {_key(m.id): _forms(m.string) for m in read_mo(handle) if m.id}
        assert mo == po, f"{language}: messages.mo is stale: run `make translations`"
