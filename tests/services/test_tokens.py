"""Signed link tokens: the fast signer makes what itsdangerous makes, and only that."""
import time

import pytest

from newsletter.services.audience import links, tokens
from newsletter.services.campaigns.context import web_view_url


def _same_second(make_both):
    for _ in range(5):  # both sides stamp int(time.time()): retry if a second boundary fell between
        start = int(time.time())
        result = make_both()
        if int(time.time()) == start:
            return result
    pytest.fail("could not make both tokens within one second")


@pytest.mark.parametrize("purpose, payload", [
    ("unsubscribe", {"s": 1, "l": [], "c": None}),
    ("unsubscribe", {"s": 123456789, "l": [3, 7], "c": 42}),
    ("preferences", {"s": 5}),
    ("view", {"s": 0, "c": 9}),
    ("confirm", {"s": 77, "l": [1]}),
])
def test_short_tokens_are_byte_for_byte_what_itsdangerous_makes(app, purpose, payload):
    with app.app_context():
        fast, reference = _same_second(lambda: (tokens.make(purpose, payload),
                                                tokens._serializer(purpose).dumps(payload)))
        assert fast == reference
        assert tokens.load(purpose, fast) == payload


def test_a_long_payload_is_compressed_as_itsdangerous_would_and_still_loads(app):
    payload = {"s": 9, "l": list(range(1, 80)), "c": 3}
    with app.app_context():
        fast, reference = _same_second(lambda: (tokens.make("unsubscribe", payload),
                                                tokens._serializer("unsubscribe").dumps(payload)))
        assert fast.startswith(".") and fast == reference
        assert tokens.load("unsubscribe", fast) == payload


def test_a_token_signed_for_one_purpose_or_altered_is_refused(app):
    with app.app_context():
        token = tokens.make("preferences", {"s": 5})
        with pytest.raises(tokens.TokenError):
            tokens.load("unsubscribe", token)
        with pytest.raises(tokens.TokenError):
            tokens.load("preferences", token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1])


def test_links_built_around_a_token_are_the_routers_own(app):
    with app.app_context():
        for url, endpoint in ((links.unsubscribe_url(3, [1, 2], 4), "public.unsubscribe"),
                              (links.preferences_url(3), "public.preferences"),
                              (web_view_url(4, 3), "public.web_view")):
            token = url.rsplit("/", 1)[-1]
            assert url == links._external(endpoint, token=token)
            assert url.startswith(app.config["BASE_URL"] + "/")


# --- versions -----------------------------------------------------------------------------------

def _subscriber(app) -> int:
    from newsletter.services.audience import subscribers

    with app.app_context():
        return subscribers.create(f"v-{time.monotonic_ns()}@example.org", "Vera").id


def test_version_0_is_left_out_so_earlier_tokens_stay_byte_identical(app):
    subscriber_id = _subscriber(app)
    with app.app_context():
        made, reference = _same_second(lambda: (tokens.preferences_token(subscriber_id),
                                                tokens._serializer("preferences").dumps({"s": subscriber_id})))
        assert made == reference
        assert tokens.load_current("preferences", made) == {"s": subscriber_id}


def test_a_bump_refuses_every_earlier_token_and_new_ones_carry_the_version(app):
    subscriber_id = _subscriber(app)
    with app.app_context():
        before = [tokens.unsubscribe_token(subscriber_id, [1], 2), tokens.preferences_token(subscriber_id),
                  tokens.view_token(2, subscriber_id), tokens.manage_token(subscriber_id),
                  tokens.confirm_token(subscriber_id, [1])]
        purposes = ["unsubscribe", "preferences", "view", "manage", "confirm"]
        tokens.revoke_links(subscriber_id)
        for purpose, token in zip(purposes, before, strict=True):
            with pytest.raises(tokens.TokenError) as refused:
                tokens.load_current(purpose, token)
            assert refused.value.reason == "revoked"
        fresh = tokens.preferences_token(subscriber_id)
        assert tokens.load_current("preferences", fresh) == {"s": subscriber_id, "v": 1}
        # Given explicitly (the send path's way), the same token as looked up.
        assert tokens.load("preferences", tokens.preferences_token(subscriber_id, 1))["v"] == 1


def test_a_version_ahead_of_the_subscriber_or_not_a_number_is_refused(app):
    subscriber_id = _subscriber(app)
    with app.app_context():
        with pytest.raises(tokens.TokenError) as ahead:
            tokens.load_current("preferences", tokens.make("preferences", {"s": subscriber_id, "v": 3}))
        assert ahead.value.reason == "revoked"
        with pytest.raises(tokens.TokenError) as odd:
            tokens.load_current("preferences", tokens.make("preferences", {"s": subscriber_id, "v": "1"}))
        assert odd.value.reason == "invalid"


def test_the_preview_stand_in_is_recognised_and_is_no_valid_token(app):
    with app.app_context():
        for purpose in tokens.PURPOSES:
            with pytest.raises(tokens.TokenError) as preview:
                tokens.load_current(purpose, tokens.PREVIEW)
            assert preview.value.reason == "preview"
            with pytest.raises(tokens.TokenError):
                tokens.load(purpose, tokens.PREVIEW)
        assert links.preview_url("public.unsubscribe") == app.config["BASE_URL"] + "/unsubscribe/preview"


@pytest.mark.parametrize("payload", [
    {"s": -1, "l": [3, -2], "c": None, "v": 7},  # (a short payload zlib would shrink is sent uncompressed: both load)
    {"s": True, "c": False},  # bools are ints to Python, not to JSON: the json module writes these
    {"s": 1.5}, {"s": "x\"y"}, {"s": [1, None]}, {"s": {"n": 1}}, {},
])
def test_payloads_outside_the_short_form_are_still_what_itsdangerous_makes(app, payload):
    with app.app_context():
        fast, reference = _same_second(lambda: (tokens.make("preferences", payload),
                                                tokens._serializer("preferences").dumps(payload)))
        assert fast == reference


def test_a_campaigns_recipient_links_are_recipient_contexts_own(app):
    from newsletter.services.campaigns.context import RecipientLinks, recipient_context

    subscriber_id = _subscriber(app)
    campaign = {"id": 42, "name": "C", "subject": "S", "from_name": "F", "from_email": "f@example.com"}
    with app.app_context():
        made = RecipientLinks(42, [9, 2, 5])
        assert made.fits(42, [5, 9, 2]) and not made.fits(42, [5]) and not made.fits(43, [2, 5, 9])
        for args in ((subscriber_id, "a@example.com", "Ann", {"city": "Oslo"}, None),  # version looked up
                     (subscriber_id, "a@example.com", "", None, 0), (123456, "b@example.com", None, {}, 3),
                     (None, "c@example.com", "Cy", None, None)):
            fast, reference = _same_second(lambda args=args: (made.context(campaign, *args),
                                                              recipient_context(campaign, [9, 2, 5], *args)))
            assert fast == reference
        tokens.revoke_links(subscriber_id)
        fast, reference = _same_second(lambda: (made.context(campaign, subscriber_id, "a@example.com", "A", None),
                                                recipient_context(campaign, [9, 2, 5], subscriber_id, "a@example.com",
                                                                  "A", None)))
        assert fast == reference and tokens.load("unsubscribe", fast["unsubscribe_url"].rsplit("/", 1)[1])["v"] == 1
        app.config["BASE_URL"], before = "https://elsewhere.example", app.config["BASE_URL"]
        try:
            assert not made.fits(42, [2, 5, 9])
        finally:
            app.config["BASE_URL"] = before
