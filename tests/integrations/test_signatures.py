"""Signature verification: Standard Webhooks (Whop v1), Whop legacy v5 and Stripe."""

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from churnsaver.backend.integrations.signatures import (
    MalformedSignature,
    MissingSignature,
    SignatureMismatch,
    StaleTimestamp,
    sign_standard_webhook,
    sign_timestamped_hex,
    standard_webhooks_key,
    verify_standard_webhook,
    verify_stripe,
    verify_whop_legacy,
)

# The Standard Webhooks reference vector (standard-webhooks/standard-webhooks, spec and libraries).
REFERENCE_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
REFERENCE_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
REFERENCE_TIMESTAMP = 1614265330
REFERENCE_BODY = b'{"test": 2432232314}'
REFERENCE_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
PLAIN_SECRET = "ws_4f1c2e9a7b3d8e6f0a5c1b2d"


def reference_headers(signature: str = REFERENCE_SIGNATURE) -> dict[str, str]:
    return {
        "webhook-id": REFERENCE_ID,
        "webhook-timestamp": str(REFERENCE_TIMESTAMP),
        "webhook-signature": signature,
    }


def test_the_reference_vector_verifies_at_its_own_time():
    verify_standard_webhook(REFERENCE_BODY, reference_headers(), [REFERENCE_SECRET], now=REFERENCE_TIMESTAMP)


def test_signing_reproduces_the_reference_signature():
    assert sign_standard_webhook(REFERENCE_SECRET, REFERENCE_ID, REFERENCE_TIMESTAMP, REFERENCE_BODY) == (
        REFERENCE_SIGNATURE
    )


@pytest.mark.parametrize("position", [0, 5, len(REFERENCE_BODY) - 1])
def test_a_flipped_body_byte_fails_the_reference_vector(position):
    tampered = bytearray(REFERENCE_BODY)
    tampered[position] ^= 0x01

    with pytest.raises(SignatureMismatch):
        verify_standard_webhook(bytes(tampered), reference_headers(), [REFERENCE_SECRET], now=REFERENCE_TIMESTAMP)


def test_a_flipped_signature_byte_fails_the_reference_vector():
    signature = bytearray(base64.b64decode(REFERENCE_SIGNATURE.removeprefix("v1,")))
    signature[0] ^= 0x01
    tampered = "v1," + base64.b64encode(bytes(signature)).decode()

    with pytest.raises(SignatureMismatch):
        verify_standard_webhook(
            REFERENCE_BODY, reference_headers(tampered), [REFERENCE_SECRET], now=REFERENCE_TIMESTAMP
        )


def test_the_reference_vector_is_stale_today():
    with pytest.raises(StaleTimestamp):
        verify_standard_webhook(REFERENCE_BODY, reference_headers(), [REFERENCE_SECRET])


def test_a_whsec_secret_is_base64_after_its_prefix_and_a_plain_secret_is_its_utf8_bytes():
    assert standard_webhooks_key(REFERENCE_SECRET) == base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    assert standard_webhooks_key(PLAIN_SECRET) == PLAIN_SECRET.encode()


def test_an_unpadded_whsec_secret_decodes():
    key = b"twenty-five bytes of key!"
    unpadded = "whsec_" + base64.b64encode(key).decode().rstrip("=")

    assert standard_webhooks_key(unpadded) == key


def test_a_plain_whop_secret_signs_as_whops_sdk_does():
    """Whop's SDK hands standardwebhooks base64(secret), so the HMAC key is the secret's UTF-8 bytes."""
    body = b'{"id":"evt_1","type":"payment.succeeded"}'
    timestamp = int(time.time())
    sdk_style = Webhook(base64.b64encode(PLAIN_SECRET.encode()).decode())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sdk_style.sign("msg_1", datetime.fromtimestamp(timestamp, UTC), body.decode()),
    }

    verify_standard_webhook(body, headers, [PLAIN_SECRET])
    assert headers["webhook-signature"] == sign_standard_webhook(PLAIN_SECRET, "msg_1", timestamp, body)


def test_our_whsec_signatures_verify_with_the_standardwebhooks_library():
    body = b'{"id":"evt_2","type":"membership.activated"}'
    timestamp = int(time.time())
    headers = {
        "webhook-id": "msg_2",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_standard_webhook(REFERENCE_SECRET, "msg_2", timestamp, body),
    }

    assert Webhook(REFERENCE_SECRET).verify(body, headers) == {"id": "evt_2", "type": "membership.activated"}


def test_any_of_several_signatures_may_match():
    good = REFERENCE_SIGNATURE
    header = f"v1,aGVsbG8gd29ybGQ= v2,{good.removeprefix('v1,')} {good}"

    verify_standard_webhook(REFERENCE_BODY, reference_headers(header), [REFERENCE_SECRET], now=REFERENCE_TIMESTAMP)


def test_any_of_several_secrets_may_verify():
    verify_standard_webhook(
        REFERENCE_BODY, reference_headers(), [PLAIN_SECRET, REFERENCE_SECRET], now=REFERENCE_TIMESTAMP
    )


def test_only_v1_signatures_count():
    header = f"v2,{REFERENCE_SIGNATURE.removeprefix('v1,')}"

    with pytest.raises(MalformedSignature):
        verify_standard_webhook(REFERENCE_BODY, reference_headers(header), [REFERENCE_SECRET], now=REFERENCE_TIMESTAMP)


@pytest.mark.parametrize("offset", [-301, 301, -3600, 86400])
def test_timestamps_over_five_minutes_off_either_way_are_stale(offset):
    with pytest.raises(StaleTimestamp):
        verify_standard_webhook(
            REFERENCE_BODY, reference_headers(), [REFERENCE_SECRET], now=REFERENCE_TIMESTAMP - offset
        )


@pytest.mark.parametrize("offset", [-299, 0, 299])
def test_timestamps_within_five_minutes_either_way_verify(offset):
    verify_standard_webhook(REFERENCE_BODY, reference_headers(), [REFERENCE_SECRET], now=REFERENCE_TIMESTAMP - offset)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_each_standard_webhooks_header_is_required(missing):
    headers = reference_headers()
    del headers[missing]

    with pytest.raises(MissingSignature):
        verify_standard_webhook(REFERENCE_BODY, headers, [REFERENCE_SECRET], now=REFERENCE_TIMESTAMP)


@pytest.mark.parametrize(
    "timestamp", ["1614265330.5", "-1614265330", "soon", "\uff11\uff16\uff11\uff14\uff12\uff16\uff15\uff13\uff13\uff10"]
)
def test_a_timestamp_that_is_not_unix_seconds_is_malformed(timestamp):
    headers = {**reference_headers(), "webhook-timestamp": timestamp}

    with pytest.raises(MalformedSignature):
        verify_standard_webhook(REFERENCE_BODY, headers, [REFERENCE_SECRET], now=REFERENCE_TIMESTAMP)


@pytest.mark.parametrize("signature", ["v1,", "v1,not base64 at all!", "v1,ünïcödé", "v1,,,"])
def test_garbage_signatures_are_refused_without_crashing(signature):
    with pytest.raises(SignatureMismatch):
        verify_standard_webhook(
            REFERENCE_BODY, reference_headers(signature), [REFERENCE_SECRET], now=REFERENCE_TIMESTAMP
        )


def hex_signature(key: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def test_whop_legacy_signs_timestamp_dot_body_in_hex_with_the_secrets_bytes():
    body = b'{"action":"membership.went_valid","data":{}}'
    expected = hex_signature(PLAIN_SECRET.encode(), 1700000000, body)

    assert sign_timestamped_hex(PLAIN_SECRET, 1700000000, body) == f"t=1700000000,v1={expected}"
    verify_whop_legacy(body, {"x-whop-signature": f"t=1700000000,v1={expected}"}, [PLAIN_SECRET], now=1700000100)


def test_whop_legacy_refuses_another_secret_a_stale_timestamp_and_a_missing_header():
    body = b'{"action":"payment.failed"}'
    header = {"x-whop-signature": sign_timestamped_hex(PLAIN_SECRET, 1700000000, body)}

    with pytest.raises(SignatureMismatch):
        verify_whop_legacy(body, header, ["ws_some_other_secret_value"], now=1700000000)
    with pytest.raises(StaleTimestamp):
        verify_whop_legacy(body, header, [PLAIN_SECRET], now=1700000000 + 301)
    with pytest.raises(MissingSignature):
        verify_whop_legacy(body, {}, [PLAIN_SECRET], now=1700000000)


def test_stripe_keys_the_hmac_with_the_whole_secret_including_its_prefix():
    secret = "whsec_stripeIssuedSecret0123456789"
    body = b'{\n  "id": "evt_1"\n}'
    expected = hex_signature(secret.encode(), 1700000000, body)

    verify_stripe(body, {"stripe-signature": f"t=1700000000,v1={expected}"}, [secret], now=1700000000)


def test_stripe_accepts_any_v1_while_a_secret_is_rolled_and_ignores_v0():
    old, new = "whsec_oldStripeSecret000000000000", "whsec_newStripeSecret111111111111"
    body = b'{"id": "evt_2"}'
    header = (
        f"t=1700000000,v1={hex_signature(old.encode(), 1700000000, body)},"
        f"v1={hex_signature(new.encode(), 1700000000, body)},v0={'0' * 64}"
    )

    verify_stripe(body, {"stripe-signature": header}, [new], now=1700000000)
    verify_stripe(body, {"stripe-signature": header}, [old], now=1700000000)


@pytest.mark.parametrize(
    "header",
    ["v1=abc", "t=1700000000", "t=1700000000,t=1700000001,v1=abc", "garbage", "t=,v1=abc", "t=17e8,v1=abc"],
)
def test_malformed_stripe_headers_are_refused(header):
    with pytest.raises(MalformedSignature):
        verify_stripe(b"{}", {"stripe-signature": header}, ["whsec_x"], now=1700000000)


def test_stripe_refuses_a_stale_or_future_timestamp():
    body = b'{"id": "evt_3"}'
    header = {"stripe-signature": sign_timestamped_hex("whsec_x", 1700000000, body)}

    with pytest.raises(StaleTimestamp):
        verify_stripe(body, header, ["whsec_x"], now=1700000000 + 301)
    with pytest.raises(StaleTimestamp):
        verify_stripe(body, header, ["whsec_x"], now=1700000000 - 301)
