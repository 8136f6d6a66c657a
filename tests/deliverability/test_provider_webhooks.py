"""The provider webhooks over HTTP: each accepts what its provider signed and refuses the rest
(tampered, wrong key, stale, replayed, foreign certificate), answering JSON and never a 500."""
from __future__ import annotations

import base64
import json
import time

import pytest

from tests.support.providers import (
    mailgun_payload,
    sendgrid_headers,
    sendgrid_keys,
    ses_bounce,
    ses_complaint,
    sns_notification,
    sns_sign,
)

MAILGUN_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"


def _handled(body: dict) -> int:
    return body["recorded"] + body["duplicate"] + body["unmatched"]


def _post_sns(client, message: dict, **headers):
    headers.setdefault("x-amz-sns-message-type", message.get("Type", ""))
    return client.post("/webhooks/ses", data=json.dumps(message), headers=headers,
                       content_type="text/plain; charset=UTF-8")


# --- Amazon SES via SNS ---

@pytest.mark.parametrize("version", ["1", "2"])
def test_ses_signed_bounce_is_accepted_with_either_signature_version(client, sns, version):
    message = sns_sign(sns_notification(ses_bounce("gone@example.com")), sns.key, f"{sns.base}/cert.pem", version)
    response = _post_sns(client, message)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json["received"] == 1 and _handled(response.json) == 1
    assert "Set-Cookie" not in response.headers  # no session


def test_ses_signing_certificate_is_fetched_once_and_cached(client, sns):
    for n in range(3):
        message = sns_sign(sns_notification(ses_bounce(f"c{n}@example.com"), message_id=f"cache-{n}"), sns.key,
                           f"{sns.base}/cached.pem")
        assert _post_sns(client, message).status_code == 200
    assert sns.requests.count("/cached.pem") == 1


def test_ses_tampered_message_is_refused(client, sns):
    message = sns_sign(sns_notification(ses_bounce("gone@example.com")), sns.key, f"{sns.base}/cert.pem")
    message["Message"] = message["Message"].replace("gone@example.com", "someone-else@example.com")
    response = _post_sns(client, message)
    assert response.status_code == 401 and "signature" in response.json["error"]


def test_ses_signature_by_another_key_is_refused(client, sns):
    message = sns_sign(sns_notification(ses_bounce("gone@example.com")), sns.key, f"{sns.base}/other.pem")
    assert _post_sns(client, message).status_code == 401


@pytest.mark.parametrize("url", [
    "https://evil.example.com/cert.pem",
    "http://sns.us-east-1.amazonaws.com/cert.pem",
    "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem",
    "https://user@sns.us-east-1.amazonaws.com/cert.pem",
    "https://sns.us-east-1.amazonaws.com/cert.pem?again=1",
    "https://sns.us-east-1.amazonaws.com/cert.txt",
])
def test_ses_certificate_from_anywhere_but_sns_is_refused_without_fetching(client, settings, sns_host, url):
    settings(SES_SNS_CERT_URL_PATTERN=r"https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/")
    message = sns_sign(sns_notification(ses_bounce("gone@example.com")), sns_host.key, url)
    response = _post_sns(client, message)
    assert response.status_code == 403 and "SigningCertURL" in response.json["error"]


def test_ses_foreign_certificate_on_the_test_host_pattern_is_refused(client, sns):
    message = sns_sign(sns_notification(ses_bounce("gone@example.com")), sns.key,
                       f"https://127.0.0.2:{sns.base.rsplit(':', 1)[1]}/cert.pem")
    assert _post_sns(client, message).status_code == 403
    assert sns.requests == []


def test_ses_topic_outside_the_allow_list_is_refused(client, sns, settings):
    settings(SES_SNS_TOPIC_ARNS=["arn:aws:sns:us-east-1:123456789012:ours"])
    message = sns_sign(sns_notification(ses_bounce("gone@example.com")), sns.key, f"{sns.base}/cert.pem")
    response = _post_sns(client, message)
    assert response.status_code == 403 and "SES_SNS_TOPIC_ARNS" in response.json["error"]
    ours = sns_notification(ses_bounce("gone@example.com"), topic="arn:aws:sns:us-east-1:123456789012:ours")
    allowed = sns_sign(ours, sns.key, f"{sns.base}/cert.pem")
    assert _post_sns(client, allowed).status_code == 200


def test_ses_subscription_confirmation_loads_the_subscribe_url(client, sns):
    message = sns_sign({"Type": "SubscriptionConfirmation", "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
                        "Token": "2336412f37", "TopicArn": "arn:aws:sns:us-east-1:123456789012:ses-bounces",
                        "Message": "You have chosen to subscribe to the topic ...",
                        "SubscribeURL": f"{sns.base}/confirm?Action=ConfirmSubscription&Token=2336412f37",
                        "Timestamp": "2026-12-06T12:00:00.000Z"}, sns.key, f"{sns.base}/cert.pem")
    response = _post_sns(client, message)
    assert response.status_code == 200 and response.json["note"] == "subscription confirmed"
    assert "/confirm?Action=ConfirmSubscription&Token=2336412f37" in sns.requests


def test_ses_subscription_confirmation_to_a_foreign_address_is_refused(client, sns):
    message = sns_sign({"Type": "SubscriptionConfirmation", "MessageId": "m-1", "Token": "t",
                        "TopicArn": "arn:aws:sns:us-east-1:123456789012:ses-bounces", "Message": "subscribe",
                        "SubscribeURL": "http://127.0.0.1:9/steal", "Timestamp": "2026-12-06T12:00:00.000Z"},
                       sns.key, f"{sns.base}/cert.pem")
    response = _post_sns(client, message)
    assert response.status_code == 403 and "SubscribeURL" in response.json["error"]
    assert not any("steal" in path for path in sns.requests)


def test_ses_complaint_and_topic_test_message_are_handled(client, sns):
    complaint = sns_sign(sns_notification(ses_complaint("angry@example.com"), message_id="complaint-1"), sns.key,
                         f"{sns.base}/cert.pem", "2")
    assert _handled(_post_sns(client, complaint).json) == 1
    note = sns_notification({}, message_id="test-1")
    note["Message"] = "Successfully validated SNS topic for Amazon SES event publishing."
    response = _post_sns(client, sns_sign(note, sns.key, f"{sns.base}/cert.pem"))
    assert response.status_code == 200 and response.json["ignored"] == 1


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'{"Type": "Notification"}', b'{"Type": 5}',
                                  json.dumps({"Type": "Notification", "Message": "x", "MessageId": "1",
                                              "Timestamp": "t", "TopicArn": "a", "SignatureVersion": "1",
                                              "Signature": "!!!", "SigningCertURL": "x"}).encode(),
                                  "\udcff".encode("utf-8", "surrogatepass"), b"\xff\xfe"])
def test_ses_garbage_is_a_4xx_never_a_500(client, sns, body):
    response = client.post("/webhooks/ses", data=body, content_type="application/json")
    assert 400 <= response.status_code < 500 and "error" in response.json


def test_ses_message_type_header_must_match(client, sns):
    message = sns_sign(sns_notification(ses_bounce("gone@example.com")), sns.key, f"{sns.base}/cert.pem")
    response = _post_sns(client, message, **{"x-amz-sns-message-type": "SubscriptionConfirmation"})
    assert response.status_code == 400


# --- SendGrid ---

@pytest.fixture
def sendgrid_key(settings):
    key, public = sendgrid_keys()
    settings(SENDGRID_WEBHOOK_PUBLIC_KEY=public, PROVIDER_WEBHOOK_MAX_AGE=300.0)
    return key


def _sendgrid_body(*events: dict) -> bytes:
    return json.dumps(list(events)).encode()


BOUNCE = {"email": "gone@example.com", "timestamp": 1765022400, "event": "bounce", "type": "bounce",
          "status": "5.1.1", "reason": "550 5.1.1 The email account does not exist", "sg_event_id": "sg-bounce-1",
          "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>"}


def test_sendgrid_signed_events_are_accepted(client, sendgrid_key):
    body = _sendgrid_body(BOUNCE, {**BOUNCE, "event": "deferred", "sg_event_id": "sg-deferred-1"},
                          {"email": "angry@example.com", "event": "spamreport", "sg_event_id": "sg-spam-1",
                           "timestamp": 1765022400})
    response = client.post("/webhooks/sendgrid", data=body, headers=sendgrid_headers(body, sendgrid_key))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert (response.json["received"], _handled(response.json), response.json["ignored"]) == (3, 2, 1)


def test_sendgrid_tampered_body_wrong_key_and_stale_timestamp_are_refused(client, sendgrid_key):
    body = _sendgrid_body(BOUNCE)
    headers = sendgrid_headers(body, sendgrid_key)
    tampered = body.replace(b"gone@", b"else@")
    assert client.post("/webhooks/sendgrid", data=tampered, headers=headers).status_code == 401
    other, _ = sendgrid_keys()
    assert client.post("/webhooks/sendgrid", data=body, headers=sendgrid_headers(body, other)).status_code == 401
    stale = sendgrid_headers(body, sendgrid_key, timestamp=int(time.time()) - 3600)
    response = client.post("/webhooks/sendgrid", data=body, headers=stale)
    assert response.status_code == 401 and "stale" in response.json["error"]
    unsigned = client.post("/webhooks/sendgrid", data=body, content_type="application/json")
    assert unsigned.status_code == 401 and "X-Twilio-Email-Event-Webhook-Signature" in unsigned.json["error"]


def test_sendgrid_off_until_its_key_is_set(client, settings):
    settings(SENDGRID_WEBHOOK_PUBLIC_KEY="")
    response = client.post("/webhooks/sendgrid", data=b"[]", content_type="application/json")
    assert response.status_code == 403 and "SENDGRID_WEBHOOK_PUBLIC_KEY" in response.json["error"]


def test_sendgrid_signed_garbage_is_a_400(client, sendgrid_key):
    for body in (b"{}", b"not json", b'{"a": 1}'):
        response = client.post("/webhooks/sendgrid", data=body, headers=sendgrid_headers(body, sendgrid_key))
        assert response.status_code == 400, body
    body = b'[1, "x", null, {"event": "bounce"}]'  # events without what we need are ignored, not errors
    response = client.post("/webhooks/sendgrid", data=body, headers=sendgrid_headers(body, sendgrid_key))
    assert (response.status_code, response.json["ignored"]) == (200, 4)


# --- Mailgun ---

@pytest.fixture
def mailgun_key(settings):
    settings(MAILGUN_WEBHOOK_SIGNING_KEY=MAILGUN_KEY, PROVIDER_WEBHOOK_MAX_AGE=300.0)
    return MAILGUN_KEY


FAILED = {"event": "failed", "severity": "permanent", "id": "G9Bn5sl1TC6nu79C8C0bwg", "timestamp": 1765022400.5,
          "recipient": "gone@example.com", "reason": "bounce",
          "delivery-status": {"code": 550, "message": "5.1.1 The email account that you tried to reach does not exist",
                              "description": ""},
          "message": {"headers": {"message-id": "20261206120000.1.abc@mg.example.com"}}}


def test_mailgun_signed_event_is_accepted_once_and_its_replay_refused(client, mailgun_key):
    payload = mailgun_payload(mailgun_key, FAILED)
    response = client.post("/webhooks/mailgun", json=payload)
    assert response.status_code == 200 and _handled(response.json) == 1
    replay = client.post("/webhooks/mailgun", json=payload)
    assert replay.status_code == 403 and "replay" in replay.json["error"]


def test_mailgun_wrong_key_tampered_and_old_timestamp_are_refused(client, mailgun_key):
    wrong = mailgun_payload("key-someone-else", FAILED)
    assert client.post("/webhooks/mailgun", json=wrong).status_code == 401
    tampered = mailgun_payload(mailgun_key, FAILED)
    tampered["signature"]["timestamp"] = str(int(tampered["signature"]["timestamp"]) + 1)
    assert client.post("/webhooks/mailgun", json=tampered).status_code == 401
    old = mailgun_payload(mailgun_key, FAILED, timestamp=int(time.time()) - 3600)
    response = client.post("/webhooks/mailgun", json=old)
    assert response.status_code == 401 and "stale" in response.json["error"]
    for body in (b"[]", b"nope", b'{"signature": 5}', b'{"signature": {"timestamp": [], "token": 1}}'):
        assert client.post("/webhooks/mailgun", data=body, content_type="application/json").status_code in (400, 401)


def test_mailgun_other_events_are_ignored(client, mailgun_key):
    response = client.post("/webhooks/mailgun", json=mailgun_payload(mailgun_key, {**FAILED, "event": "delivered"}))
    assert (response.status_code, response.json["ignored"]) == (200, 1)


# --- Postmark ---

@pytest.fixture
def postmark_auth(settings):
    settings(POSTMARK_WEBHOOK_USER="postmark", POSTMARK_WEBHOOK_PASSWORD="s3cret-Pa55word-for-hooks",
             POSTMARK_WEBHOOK_IPS=[])
    return {"Authorization": "Basic " + base64.b64encode(b"postmark:s3cret-Pa55word-for-hooks").decode()}


POSTMARK_BOUNCE = {"RecordType": "Bounce", "ID": 4323372036854775807, "Type": "HardBounce", "TypeCode": 1,
                   "Name": "Hard bounce", "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
                   "Description": "The server was unable to deliver your message (ex: unknown user).",
                   "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist",
                   "Email": "gone@example.com", "BouncedAt": "2026-12-06T12:00:00Z", "Metadata": {}}


def test_postmark_with_credentials_is_accepted(client, postmark_auth):
    response = client.post("/webhooks/postmark", json=POSTMARK_BOUNCE, headers=postmark_auth)
    assert response.status_code == 200 and _handled(response.json) == 1


def test_postmark_without_or_with_wrong_credentials_is_refused(client, postmark_auth):
    response = client.post("/webhooks/postmark", json=POSTMARK_BOUNCE)
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Basic")
    wrong = {"Authorization": "Basic " + base64.b64encode(b"postmark:guess").decode()}
    assert client.post("/webhooks/postmark", json=POSTMARK_BOUNCE, headers=wrong).status_code == 401


def test_postmark_ip_allow_list(client, postmark_auth, settings):
    settings(POSTMARK_WEBHOOK_IPS=["50.31.156.6/32"])
    response = client.post("/webhooks/postmark", json=POSTMARK_BOUNCE, headers=postmark_auth)
    assert response.status_code == 403 and "POSTMARK_WEBHOOK_IPS" in response.json["error"]
    settings(POSTMARK_WEBHOOK_IPS=["127.0.0.0/8"])
    assert client.post("/webhooks/postmark", json=POSTMARK_BOUNCE, headers=postmark_auth).status_code == 200


def test_postmark_off_until_configured(client, settings):
    settings(POSTMARK_WEBHOOK_USER="", POSTMARK_WEBHOOK_PASSWORD="")
    assert client.post("/webhooks/postmark", json=POSTMARK_BOUNCE).status_code == 403


# --- all of them ---

@pytest.mark.parametrize("path", ["/webhooks/ses", "/webhooks/sendgrid", "/webhooks/mailgun", "/webhooks/postmark"])
def test_bodies_over_the_limit_are_refused_unread_with_json(client, path, settings):
    response = client.post(path, data=b"x" * (1024 * 1024 + 1), content_type="application/json")
    assert response.status_code == 413 and "error" in response.json


@pytest.mark.parametrize("path", ["/webhooks/ses", "/webhooks/sendgrid", "/webhooks/mailgun", "/webhooks/postmark"])
def test_only_post(client, path):
    assert client.get(path).status_code == 405


def test_an_address_that_keeps_being_refused_gets_429_and_accepted_requests_never_count(
        client, postmark_auth, settings):
    settings(PROVIDER_WEBHOOK_REFUSED_LIMIT="3 per minute")
    for _ in range(5):  # a provider's burst: accepted, never counted
        assert client.post("/webhooks/postmark", json=POSTMARK_BOUNCE, headers=postmark_auth).status_code == 200
    wrong = {"Authorization": "Basic " + base64.b64encode(b"postmark:guess").decode()}
    for _ in range(3):
        assert client.post("/webhooks/postmark", json=POSTMARK_BOUNCE, headers=wrong).status_code == 401
    # The limit covers every provider's endpoint: the same address is refused everywhere now.
    for path in ("/webhooks/postmark", "/webhooks/sendgrid", "/webhooks/ses"):
        refused = client.post(path, json=POSTMARK_BOUNCE, headers=postmark_auth)
        assert refused.status_code == 429 and "error" in refused.json, path
