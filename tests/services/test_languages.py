"""Language tags: normalised one way, refused precisely, matched with a fallback to the primary language."""
from __future__ import annotations

import pytest

from newsletter.services import languages
from newsletter.services.errors import ValidationError


@pytest.mark.parametrize(("raw", "tag"), [
    ("de", "de"), ("DE", "de"), (" en-gb ", "en-GB"), ("pt_br", "pt-BR"), ("zh-hant-tw", "zh-Hant-TW"),
    ("es-419", "es-419"), ("fil", "fil"), ("", None), (None, None), ("   ", None),
])
def test_normalize(raw, tag):
    assert languages.normalize(raw) == tag


@pytest.mark.parametrize("raw", ["d", "deutsch", "de-", "de--DE", "en-GB-oxendict", "12", "de DE", "<b>", "x" * 40,
                                 "de\nDE"])
def test_not_a_tag(raw):
    with pytest.raises(ValidationError) as caught:
        languages.normalize(raw, "language")
    assert caught.value.field == "language" and "language tag" in caught.value.message


def test_pick_falls_back_to_the_primary_language_only():
    available = {"de", "pt-BR"}
    assert languages.pick("de", available) == "de"
    assert languages.pick("de-AT", available) == "de"
    assert languages.pick("pt-BR", available) == "pt-BR"
    assert languages.pick("pt", available) is None  # "pt" is not "pt-BR": the default is the safer guess
    assert languages.pick("fr", available) is None
    assert languages.pick(None, available) is None


def test_ui_locale_is_one_we_ship():
    assert [languages.ui_locale(t) for t in ("de", "de-CH", "en-US", "fr", None)] == ["de", "de", "en", "en", "en"]
