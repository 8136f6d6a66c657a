"""Tokens are compact and signed; the HTML rewrite tracks exactly the links it should."""
from __future__ import annotations

import base64

import pytest

from newsletter.services.engagement import links, tokens

BASE = "https://news.example.org"


def test_tokens_round_trip_and_are_compact(app):
    with app.app_context():
        click = tokens.make("click", 12345, 678, 9_000_001, 1_800_000_000)
        assert tokens.load("click", click) == tokens.Token(12345, 678, 9_000_001, 1_800_000_000)
        anonymous = tokens.make("open", 12345, None, None, 1_800_000_000)
        assert tokens.load("open", anonymous) == tokens.Token(12345, None, None, 1_800_000_000)
        assert len(click) <= 40 and len(anonymous) <= 32


def test_tampered_truncated_or_cross_purpose_tokens_are_refused(app):
    with app.app_context():
        good = tokens.make("click", 1, 2, None, 1_800_000_000)
        raw = bytearray(base64.urlsafe_b64decode(good + "=" * (-len(good) % 4)))
        raw[-13] ^= 1  # another link id, same MAC
        forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
        pixel = tokens.make("open", 1, None, None, 1_800_000_000)
        for bad in (forged, good[:-2], good + "A", "", "x" * 500, "!!!!", pixel):
            with pytest.raises(tokens.TokenInvalid):
                tokens.load("click", bad)
        with pytest.raises(tokens.TokenInvalid):
            tokens.load("open", good)  # a click token is not a pixel token either


def test_tokens_signed_with_another_secret_are_refused(app):
    with app.app_context():
        good = tokens.make("open", 1, None, None, 1_800_000_000)
        app.config["SECRET_KEY"], saved = "another-secret-key-" + "x" * 40, app.config["SECRET_KEY"]
        try:
            with pytest.raises(tokens.TokenInvalid):
                tokens.load("open", good)
        finally:
            app.config["SECRET_KEY"] = saved


def test_rewrite_tracks_http_links_once_each_and_adds_the_pixel():
    source = ('<html><body><a href="https://a.example/x?q=1&amp;r=2">A</a> <A HREF=\'http://b.example/\'>B</A>'
              '<a href="https://a.example/x?q=1&amp;r=2">A again</a></body></html>')
    out, urls = links.rewrite(source, BASE)
    assert urls == ["https://a.example/x?q=1&r=2", "http://b.example/"]  # entities decoded, duplicates once
    assert out.count(f'"{links.MARK}0\x00"') == 2 and out.count(f'"{links.MARK}1\x00"') == 1
    assert out.endswith(f"{links.PIXEL_MARK}</body></html>")


@pytest.mark.parametrize("anchor", [
    '<a href="mailto:help@example.com">m</a>',
    '<a href="tel:+4712345678">t</a>',
    '<a href="#top">t</a>',
    '<a href="{{ unsubscribe_url }}">u</a>',
    '<a href="{{ preferences_url }}">p</a>',
    '<a href="https://shop.example/{{ subscriber.id }}">per subscriber</a>',
    f'<a href="{BASE}/unsubscribe/abc">our own page</a>',
    '<a name="anchor-without-href">n</a>',
])
def test_rewrite_leaves_untrackable_links_as_written(anchor):
    out, urls = links.rewrite(anchor, BASE)
    assert urls == [] and out == anchor + links.PIXEL_MARK


def test_opt_out_attribute_keeps_the_link_and_is_removed():
    out, urls = links.rewrite('<a data-no-track="" href="https://x.example/">x</a><a href="https://y.example/" '
                              'data-no-track>y</a>', BASE)
    assert urls == []
    assert out == '<a href="https://x.example/">x</a><a href="https://y.example/">y</a>' + links.PIXEL_MARK
