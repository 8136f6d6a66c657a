"""subscribers.clean_attributes: the one check on attributes (API, admin form, imports)."""
import json

import pytest

from newsletter.services.audience import subscribers
from newsletter.services.errors import ValidationError


@pytest.mark.parametrize("value", ["a" * 7 + "\U0001F642" * 832, "\x01" * 1665 + "a", '"' * 4995 + "a"])
def test_the_json_limit_is_exact_for_escaped_strings(value):
    """Strings take a shortcut when they surely fit; at the limit the JSON length decides."""
    assert len(json.dumps({"k": value})) == 10_000
    assert subscribers.clean_attributes({"k": value}) == {"k": value}
    with pytest.raises(ValidationError, match="at most 10,000 characters of JSON"):
        subscribers.clean_attributes({"k": value + "a"})


def test_names_are_one_to_a_hundred_characters():
    assert subscribers.clean_attributes({"k" * 100: 1}) == {"k" * 100: 1}
    for bad in ("k" * 101, ""):
        with pytest.raises(ValidationError) as excinfo:
            subscribers.clean_attributes({bad: 1})
        assert excinfo.value.field == "attributes"
    with pytest.raises(ValidationError, match="finite numbers"):
        subscribers.clean_attributes({"x": float("nan")})
